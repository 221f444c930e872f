// Package listings is the market-listings service: cities, squares and their
// pitch plans, markets and market days, vendors and their applications for a
// stall. Every state change that others care about is written together with
// its event (transactional outbox) and published to the LISTINGS stream.
//
// It never reads another service's tables and never imports another service.
package listings

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"time"

	"github.com/localeurope/piazza/pkg/app"
	"github.com/localeurope/piazza/pkg/bus"
	"github.com/localeurope/piazza/pkg/idempotency"
	"github.com/localeurope/piazza/pkg/outbox"
	"github.com/localeurope/piazza/pkg/postgres"
	"github.com/localeurope/piazza/services/contract"
	"golang.org/x/sync/errgroup"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Schema is the Postgres schema the service owns.
const Schema = "listings"

// Migrations are the listings schema's migration sets.
func Migrations() []postgres.MigrationSet {
	sub, _ := fs.Sub(migrationFiles, "migrations")
	return []postgres.MigrationSet{outbox.Migrations(), idempotency.Migrations(), {Name: "listings", FS: sub}}
}

// Options are the settings of market-listings that a city may tune.
type Options struct {
	// StatusPostInterval is the least time between two status posts of a
	// stall; 0 lifts the limit.
	StatusPostInterval time.Duration
}

// DefaultOptions are the settings Run uses.
func DefaultOptions() Options {
	return Options{StatusPostInterval: DefaultStatusPostInterval}
}

// Run runs market-listings with the default options until ctx is done.
func Run(ctx context.Context, d app.Deps) error { return DefaultOptions().Run(ctx, d) }

// Run runs market-listings with o until ctx is done.
func (o Options) Run(ctx context.Context, d app.Deps) error {
	if o.StatusPostInterval < 0 {
		return fmt.Errorf("listings: status post interval %s: must not be negative", o.StatusPostInterval)
	}
	log := d.Log.With("service", "listings")
	wake := outbox.NewWake()
	pool, err := postgres.Open(ctx, d.DatabaseURL, postgres.Options{Schema: Schema, AppName: "piazza-listings", AfterRelease: wake.AfterRelease})
	if err != nil {
		return fmt.Errorf("listings: %w", err)
	}
	defer pool.Close()
	// The relay has a connection of its own: queued behind the handlers'
	// transactions for the pool's, its lag under load was their wait.
	relayPool, err := postgres.Open(ctx, d.DatabaseURL, postgres.Options{Schema: Schema, AppName: "piazza-listings-relay", MaxConns: 1})
	if err != nil {
		return fmt.Errorf("listings: relay: %w", err)
	}
	defer relayPool.Close()
	if err := postgres.Migrate(ctx, pool, log, Migrations()...); err != nil {
		return fmt.Errorf("listings: %w", err)
	}
	if err := bus.EnsureStream(ctx, d.JS, contract.StreamConfig(contract.StreamListings, d.StreamReplicas), true); err != nil {
		return fmt.Errorf("listings: %w", err)
	}
	store := &Store{pool: pool, statusPostInterval: &o.StatusPostInterval}
	if d.DemoData {
		seeded, err := store.SeedDemo(ctx, d.Now())
		if err != nil {
			return err
		}
		if seeded {
			log.Info("demo data seeded")
		}
	}
	if _, err := store.GenerateMarketDays(ctx, d.Now(), Horizon); err != nil {
		return err
	}
	routes(d.Mux, store, log, d.Now)
	d.Health.AddCheck("listings_postgres", func(ctx context.Context) error { return pool.Ping(ctx) })
	d.Ready()

	g, ctx := errgroup.WithContext(ctx)
	relay := &outbox.Relay{Pool: relayPool, Wake: wake, Publisher: &outbox.JetStream{JS: d.JS}, Log: log, Metrics: d.OutboxMetrics}
	g.Go(func() error { return relay.Run(ctx) })
	g.Go(func() error { return rollHorizon(ctx, store, d.Now, log) })
	g.Go(func() error { return sweepApplications(ctx, store, d.Now, log) })
	return g.Wait()
}

// rollHorizon keeps market days generated up to the horizon as days pass.
func rollHorizon(ctx context.Context, store *Store, now func() time.Time, log *slog.Logger) error {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if _, err := store.GenerateMarketDays(ctx, now(), Horizon); err != nil && ctx.Err() == nil {
				log.Warn("generating market days failed", "err", err)
			}
		}
	}
}
