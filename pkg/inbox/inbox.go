// Package inbox makes event consumers idempotent: a consumer records each
// event id it processes in its own schema, in the same transaction as the
// effect, and acks only after commit. A redelivery then finds the id and does
// nothing. It also keeps poison messages where an operator can see them.
//
// It must never decide what an event means; the consumer's function does.
package inbox

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/localeurope/piazza/pkg/bus"
	"github.com/localeurope/piazza/pkg/postgres"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations is the inbox tables' migration set.
func Migrations() postgres.MigrationSet {
	sub, _ := fs.Sub(migrations, "migrations")
	return postgres.MigrationSet{Name: "inbox", FS: sub}
}

// Once runs fn in a transaction unless consumer already processed eventID;
// the record and fn's effects commit together. It reports whether fn ran.
func Once(ctx context.Context, pool *pgxpool.Pool, consumer, eventID string, fn func(pgx.Tx) error) (bool, error) {
	ran := false
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO inbox (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`, consumer, eventID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return nil // processed before: a redelivery
		}
		ran = true
		return fn(tx)
	})
	if err != nil {
		return false, fmt.Errorf("inbox: %s: event %s: %w", consumer, eventID, err)
	}
	return ran, nil
}

// Handler wraps fn as a bus.Handler that runs it at most once per event id.
func Handler(pool *pgxpool.Pool, consumer string, fn func(ctx context.Context, tx pgx.Tx, ev bus.Event, d bus.Delivery) error) bus.Handler {
	return func(ctx context.Context, ev bus.Event, d bus.Delivery) error {
		_, err := Once(ctx, pool, consumer, ev.ID, func(tx pgx.Tx) error { return fn(ctx, tx, ev, d) })
		return err
	}
}

// BatchHandler is Handler for several events in one transaction: their ids
// are recorded in one statement, fn runs, in order, for each event not
// processed before, and one commit covers them all. Any error rolls all of
// it back (bus.Consume then hands each event to Handler on its own).
func BatchHandler(pool *pgxpool.Pool, consumer string, fn func(ctx context.Context, tx pgx.Tx, ev bus.Event, d bus.Delivery) error) bus.BatchHandler {
	return func(ctx context.Context, evs []bus.Event, ds []bus.Delivery) error {
		ids := make([]string, len(evs))
		for i, ev := range evs {
			ids[i] = ev.ID
		}
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			rows, err := tx.Query(ctx, `INSERT INTO inbox (consumer, event_id) SELECT $1, unnest($2::text[])
				ON CONFLICT DO NOTHING RETURNING event_id`, consumer, ids)
			if err != nil {
				return err
			}
			fresh, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				return err
			}
			todo := make(map[string]bool, len(fresh))
			for _, id := range fresh {
				todo[id] = true
			}
			for i, ev := range evs {
				if !todo[ev.ID] {
					continue // processed before, or earlier in this batch
				}
				delete(todo, ev.ID)
				if err := fn(ctx, tx, ev, ds[i]); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("inbox: %s: batch of %d events: %w", consumer, len(evs), err)
		}
		return nil
	}
}

// Poison returns a bus.Poison that stores given-up messages in dead_letters.
func Poison(pool *pgxpool.Pool, consumer string, log *slog.Logger) bus.Poison {
	return func(ctx context.Context, ev bus.Event, d bus.Delivery, reason error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_, err := pool.Exec(ctx, `
			INSERT INTO dead_letters (consumer, event_id, event_type, subject, stream_seq, reason, data)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			consumer, ev.ID, ev.Type, d.Subject, int64(d.StreamSeq), reason.Error(), ev.Data)
		if err != nil {
			log.Error("dead letter not recorded", "consumer", consumer, "event_id", ev.ID, "err", err)
		}
	}
}

// Prune forgets processed ids older than keep; keep must exceed the longest
// time a message can still be redelivered.
func Prune(ctx context.Context, pool *pgxpool.Pool, keep time.Duration) (int64, error) {
	tag, err := pool.Exec(ctx, `DELETE FROM inbox WHERE processed_at < now() - make_interval(secs => $1)`, keep.Seconds())
	if err != nil {
		return 0, fmt.Errorf("inbox: prune: %w", err)
	}
	return tag.RowsAffected(), nil
}
