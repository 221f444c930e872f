package accounts

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// limiter allows burst events at once per key, then one per every, counted
// in PostgreSQL so that every replica of the service shares the limit: with
// a limit per process, n replicas behind a load balancer would allow n times
// the guesses at a password. It is a generic cell rate algorithm: one row per
// key, one statement per check.
type limiter struct {
	pool  *pgxpool.Pool
	name  string // prefixes keys, so that limiters share the table
	every time.Duration
	burst int
}

// allow takes one event for key at now, or reports that the key is over its
// limit.
func (l *limiter) allow(ctx context.Context, key string, now time.Time) (bool, error) {
	// tat is when the key's bucket is full again; an event is allowed if
	// after it the bucket holds at most burst events.
	var ok bool
	err := l.pool.QueryRow(ctx, `
		INSERT INTO rate_limits AS r (key, tat) VALUES ($1, $2::timestamptz + $3 * interval '1 microsecond')
		ON CONFLICT (key) DO UPDATE SET tat = greatest(r.tat, $2) + $3 * interval '1 microsecond'
		WHERE greatest(r.tat, $2) + $3 * interval '1 microsecond' <= $2::timestamptz + $4 * interval '1 microsecond'
		RETURNING true`,
		l.name+":"+key, now, l.every.Microseconds(), (time.Duration(l.burst) * l.every).Microseconds()).Scan(&ok)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("accounts: rate limit: %w", err)
	}
	return ok, nil
}

// pruneLimits forgets keys whose buckets are full again, every interval
// until ctx is done.
func pruneLimits(ctx context.Context, pool *pgxpool.Pool, now func() time.Time, interval time.Duration) {
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
