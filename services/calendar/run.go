// Package calendar is the events-calendar service: a city's events with
// recurrence (RRULE, EXDATE, RDATE) and per-occurrence changes, moderation of
// submissions, iCalendar and Atom feeds, and every change published through
// the outbox to the CALENDAR stream. Market days appear on the calendar from
// listings events it consumes idempotently; it never reads the listings
// tables. Occurrences are expanded on every read, never stored.
package calendar

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"time"

	"github.com/localeurope/piazza/pkg/app"
	"github.com/localeurope/piazza/pkg/bus"
	"github.com/localeurope/piazza/pkg/idempotency"
	"github.com/localeurope/piazza/pkg/inbox"
	"github.com/localeurope/piazza/pkg/outbox"
	"github.com/localeurope/piazza/pkg/postgres"
	"github.com/localeurope/piazza/pkg/ratelimit"
	"github.com/localeurope/piazza/services/contract"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Schema is the Postgres schema the service owns.
const Schema = "calendar"

// Migrations are the calendar schema's migration sets.
func Migrations() []postgres.MigrationSet {
	sub, _ := fs.Sub(migrationFiles, "migrations")
	return []postgres.MigrationSet{outbox.Migrations(), inbox.Migrations(), idempotency.Migrations(), ratelimit.Migrations(), {Name: "calendar", FS: sub}}
}

// Run runs the events calendar until ctx is done.
func Run(ctx context.Context, d app.Deps) error {
	log := d.Log.With("service", "calendar")
	wake := outbox.NewWake()
	pool, err := postgres.Open(ctx, d.DatabaseURL, postgres.Options{Schema: Schema, AppName: "piazza-calendar", AfterRelease: wake.AfterRelease})
	if err != nil {
		return fmt.Errorf("calendar: %w", err)
	}
	defer pool.Close()
	// The relay has a connection of its own: queued behind the handlers'
	// transactions for the pool's, its lag under load was their wait.
	relayPool, err := postgres.Open(ctx, d.DatabaseURL, postgres.Options{Schema: Schema, AppName: "piazza-calendar-relay", MaxConns: 1})
	if err != nil {
		return fmt.Errorf("calendar: relay: %w", err)
	}
	defer relayPool.Close()
	if err := postgres.Migrate(ctx, pool, log, Migrations()...); err != nil {
		return fmt.Errorf("calendar: %w", err)
	}
	go ratelimit.Prune(ctx, pool, d.Now, 10*time.Minute)
	if err := bus.EnsureStream(ctx, d.JS, contract.StreamConfig(contract.StreamCalendar, d.StreamReplicas), true); err != nil {
		return fmt.Errorf("calendar: %w", err)
	}
	// The listings stream may not exist yet when calendar starts first in
	// split mode; its config is in the contract, so either side can create it.
	if err := bus.EnsureStream(ctx, d.JS, contract.StreamConfig(contract.StreamListings, d.StreamReplicas), false); err != nil {
		return fmt.Errorf("calendar: %w", err)
	}
	store := &Store{pool: pool}
	routes(d.Mux, store, log, d.Now)
	d.Health.AddCheck("calendar_postgres", func(ctx context.Context) error { return pool.Ping(ctx) })

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return bus.Consume(ctx, d.JS, bus.ConsumerSpec{
			Stream: contract.StreamListings,
			Config: jetstream.ConsumerConfig{
				Durable:        consumerName,
				FilterSubjects: consumerSubjects,
				DeliverPolicy:  jetstream.DeliverAllPolicy,
			},
			Handler: inbox.Handler(pool, consumerName, applyListingsEvent),
			Poison:  inbox.Poison(pool, consumerName, log),
			Metrics: d.ConsumeMetrics,
		}, log)
	})
	relay := &outbox.Relay{Pool: relayPool, Wake: wake, Publisher: &outbox.JetStream{JS: d.JS}, Log: log, Metrics: d.OutboxMetrics}
	g.Go(func() error { return relay.Run(ctx) })
	d.Ready()
	return g.Wait()
}
