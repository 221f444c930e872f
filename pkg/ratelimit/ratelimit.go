// Package ratelimit limits events per key (an address, an email) across every
// replica of a service: the counts live in the service's PostgreSQL schema, so
// n replicas behind a load balancer do not allow n times the attempts.
//
// It is a generic cell rate algorithm (GCRA): one row per key holding when its
// bucket is full again, and one statement per check.
package ratelimit

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/localeurope/piazza/pkg/postgres"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations is the rate_limits table's migration set, applied in each
// service schema that uses a Limiter.
func Migrations() postgres.MigrationSet {
	sub, _ := fs.Sub(migrations, "migrations")
	return postgres.MigrationSet{Name: "ratelimit", FS: sub}
}

// Limiter allows Burst events at once per key, then one per Every.
type Limiter struct {
	Pool  *pgxpool.Pool
	Name  string // prefixes keys, so that limiters share the table
	Every time.Duration
	Burst int
}

// Allow takes one event for key at now, or reports that the key is over its
// limit. An error (the database) allows nothing.
func (l *Limiter) Allow(ctx context.Context, key string, now time.Time) (bool, error) {
	// tat is when the key's bucket is full again; an event is allowed if
	// after it the bucket holds at most Burst events.
	var ok bool
	err := l.Pool.QueryRow(ctx, `
		INSERT INTO rate_limits AS r (key, tat) VALUES ($1, $2::timestamptz + $3 * interval '1 microsecond')
		ON CONFLICT (key) DO UPDATE SET tat = greatest(r.tat, $2) + $3 * interval '1 microsecond'
		WHERE greatest(r.tat, $2) + $3 * interval '1 microsecond' <= $2::timestamptz + $4 * interval '1 microsecond'
		RETURNING true`,
		l.Name+":"+key, now, l.Every.Microseconds(), (time.Duration(l.Burst) * l.Every).Microseconds()).Scan(&ok)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("ratelimit %s: %w", l.Name, err)
	}
	return ok, nil
}

// Prune forgets keys whose buckets are full again, every interval until ctx
// is done.
func Prune(ctx context.Context, pool *pgxpool.Pool, now func() time.Time, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_, _ = pool.Exec(ctx, `DELETE FROM rate_limits WHERE tat < $1`, now())
		}
	}
}
