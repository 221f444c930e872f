// Package notifier is the notifier service: it turns domain events into
// notifications for residents (who should hear of it, and the facts to say),
// appends them to its log and the NOTIFICATIONS stream, and pushes them live
// to websocket clients. Every replica reads the whole notification stream and
// serves its own connections, so a client can reconnect to any replica.
//
// It never reads another service's tables and never imports another service.
package notifier

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"time"

	"github.com/gorilla/websocket"
	"github.com/localeurope/piazza/pkg/app"
	"github.com/localeurope/piazza/pkg/bus"
	"github.com/localeurope/piazza/pkg/inbox"
	"github.com/localeurope/piazza/pkg/outbox"
	"github.com/localeurope/piazza/pkg/postgres"
	"github.com/localeurope/piazza/services/contract"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Schema is the Postgres schema the service owns.
const Schema = "notifier"

// Migrations are the notifier schema's migration sets.
func Migrations() []postgres.MigrationSet {
	sub, _ := fs.Sub(migrationFiles, "migrations")
	return []postgres.MigrationSet{outbox.Migrations(), inbox.Migrations(), {Name: "notifier", FS: sub}}
}

// Run runs the notifier until ctx is done.
func Run(ctx context.Context, d app.Deps) error {
	log := d.Log.With("service", "notifier")
	wake := outbox.NewWake()
	pool, err := postgres.Open(ctx, d.DatabaseURL, postgres.Options{Schema: Schema, AppName: "piazza-notifier", AfterRelease: wake.AfterRelease})
	if err != nil {
		return fmt.Errorf("notifier: %w", err)
	}
	defer pool.Close()
	// The relay has a connection of its own: queued behind the handlers'
	// transactions for the pool's, its lag under load was their wait.
	relayPool, err := postgres.Open(ctx, d.DatabaseURL, postgres.Options{Schema: Schema, AppName: "piazza-notifier-relay", MaxConns: 1})
	if err != nil {
		return fmt.Errorf("notifier: relay: %w", err)
	}
	defer relayPool.Close()
	if err := postgres.Migrate(ctx, pool, log, Migrations()...); err != nil {
		return fmt.Errorf("notifier: %w", err)
	}
	if err := bus.EnsureStream(ctx, d.JS, contract.StreamConfig(contract.StreamNotifications, d.StreamReplicas), true); err != nil {
		return fmt.Errorf("notifier: %w", err)
	}
	for _, name := range []string{contract.StreamListings, contract.StreamCalendar} {
		if err := bus.EnsureStream(ctx, d.JS, contract.StreamConfig(name, d.StreamReplicas), false); err != nil {
			return fmt.Errorf("notifier: %w", err)
		}
	}
	info, err := d.JS.Stream(ctx, contract.StreamNotifications)
	if err != nil {
		return fmt.Errorf("notifier: %w", err)
	}
	// Start a resume window behind the stream's end, so that clients that
	// reconnect after this replica restarted can still resume; the replica is
	// ready once it has read up to where the stream ended at start.
	state := info.CachedInfo().State
	from := state.LastSeq - min(state.LastSeq, DefaultResumeWindow)
	if state.FirstSeq > 0 {
		from = max(from, state.FirstSeq-1)
	}
	hub := NewHub(from, newHubMetrics(d.Metrics))
	store := &Store{pool: pool}
	ws := newWSHandler(hub, d.AllowedOrigins, log)
	ws.verifier, ws.store = d.Verifier, store
	routes(d.Mux, store, ws, log)
	d.OnShutdown(func() { hub.closeAll(websocket.CloseGoingAway, "server shutting down; reconnect and resume") })
	d.Health.AddCheck("notifier_postgres", func(ctx context.Context) error { return pool.Ping(ctx) })

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return feedHub(ctx, d.JS, hub, log) })
	g.Go(func() error { return hub.keepAlive(ctx) })
	g.Go(func() error {
		return bus.Consume(ctx, d.JS, bus.ConsumerSpec{
			Stream: contract.StreamListings,
			Config: jetstream.ConsumerConfig{
				Durable:        consumerListings,
				FilterSubjects: listingsSubjects,
				DeliverPolicy:  jetstream.DeliverAllPolicy,
			},
			Handler: inbox.Handler(pool, consumerListings, notifyListingsEvent),
			Poison:  inbox.Poison(pool, consumerListings, log),
			Metrics: d.ConsumeMetrics,
			// A market's stalls change all day at once: handle up to 8
			// events together, each stall's (each ce-subject's) in order.
			// The handler's writes are versioned upserts and inserts.
			Parallel: 8,
			// Under load, what waits in a lane goes in one transaction.
			Batch: inbox.BatchHandler(pool, consumerListings, notifyListingsEvent),
		}, log)
	})
	g.Go(func() error {
		return bus.Consume(ctx, d.JS, bus.ConsumerSpec{
			Stream: contract.StreamCalendar,
			Config: jetstream.ConsumerConfig{
				Durable:        consumerCalendar,
				FilterSubjects: []string{"calendar.*.event.>"},
				DeliverPolicy:  jetstream.DeliverAllPolicy,
			},
			Handler: inbox.Handler(pool, consumerCalendar, notifyCalendarEvent),
			Poison:  inbox.Poison(pool, consumerCalendar, log),
			Metrics: d.ConsumeMetrics,
		}, log)
	})
	g.Go(func() error { return remindTomorrow(ctx, pool, d.Now, log) })
	relay := &outbox.Relay{Pool: relayPool, Wake: wake, Publisher: &outbox.JetStream{JS: d.JS}, Log: log, Metrics: d.OutboxMetrics}
	g.Go(func() error { return relay.Run(ctx) })
	g.Go(func() error {
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for hub.LastSeq() < state.LastSeq {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
		}
		d.Ready()
		return nil
	})
	return g.Wait()
}

// feedHub reads the notification stream from the hub's position on, in
// order, with an ordered consumer (ephemeral, recreated by the client on any
// gap), and dispatches each notification.
func feedHub(ctx context.Context, js jetstream.JetStream, hub *Hub, log *slog.Logger) error {
	cons, err := js.OrderedConsumer(ctx, contract.StreamNotifications, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   hub.LastSeq() + 1,
	})
	if err != nil && ctx.Err() != nil {
		return nil // shutting down before the feed started
	}
	if err != nil {
		return fmt.Errorf("notifier: notification feed: %w", err)
	}
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		meta, err := msg.Metadata()
		if err != nil {
			log.Error("notification without metadata", "err", err)
			return
		}
		if err := hub.Dispatch(meta.Sequence.Stream, msg.Data()); err != nil {
			log.Error("notification not dispatched", "seq", meta.Sequence.Stream, "err", err)
		}
	}, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		log.Debug("notification feed", "err", err)
	}))
	if err != nil {
		return fmt.Errorf("notifier: notification feed: %w", err)
	}
	<-ctx.Done()
	cc.Stop()
	return nil
}
