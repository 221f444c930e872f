package ratelimit_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/localeurope/piazza/pkg/postgres"
	"github.com/localeurope/piazza/pkg/postgres/pgtest"
	"github.com/localeurope/piazza/pkg/ratelimit"
)

func newPool(tb testing.TB) *pgxpool.Pool {
	tb.Helper()
	url := pgtest.NewDatabase(tb, pgtest.Template{
		Name:        "ratelimit",
		Fingerprint: postgres.Fingerprint(ratelimit.Migrations()),
		Migrate: func(ctx context.Context, url string) error {
			pool, err := postgres.Open(ctx, url, postgres.Options{Schema: "svc"})
			if err != nil {
				return err
			}
			defer pool.Close()
			return postgres.Migrate(ctx, pool, slog.New(slog.NewTextHandler(io.Discard, nil)), ratelimit.Migrations())
		},
	})
	pool, err := postgres.Open(context.Background(), url, postgres.Options{Schema: "svc"})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(pool.Close)
	return pool
}

func TestLimiter(t *testing.T) {
	pool := newPool(t)
	ctx := context.Background()
	t0 := time.Date(2026, 5, 2, 8, 0, 0, 0, time.UTC)
	allow := func(t *testing.T, l *ratelimit.Limiter, key string, at time.Time) bool {
		t.Helper()
		ok, err := l.Allow(ctx, key, at)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}

	t.Run("a burst, then one per interval", func(t *testing.T) {
		l := &ratelimit.Limiter{Pool: pool, Name: "a", Every: 10 * time.Second, Burst: 3}
		for i := range 3 {
			if !allow(t, l, "k", t0) {
				t.Fatalf("event %d of the burst refused", i+1)
			}
		}
		if allow(t, l, "k", t0) {
			t.Error("a fourth event at once allowed")
		}
		if allow(t, l, "k", t0.Add(9*time.Second)) {
			t.Error("allowed 9 s later, want 10")
		}
		if !allow(t, l, "k", t0.Add(10*time.Second)) {
			t.Error("refused 10 s later")
		}
		if !allow(t, l, "other", t0) {
			t.Error("another key is limited too")
		}
		// Refused events do not count: after a full rest the burst is back.
		for i := range 3 {
			if !allow(t, l, "k", t0.Add(time.Hour)) {
				t.Fatalf("after an hour, event %d refused", i+1)
			}
		}
	})

	t.Run("limiters with other names count apart", func(t *testing.T) {
		a := &ratelimit.Limiter{Pool: pool, Name: "x", Every: time.Minute, Burst: 1}
		b := &ratelimit.Limiter{Pool: pool, Name: "y", Every: time.Minute, Burst: 1}
		if !allow(t, a, "k", t0) || !allow(t, b, "k", t0) {
			t.Error("one name's event limited the other's")
		}
	})

	t.Run("concurrent events from several limiters (replicas) never exceed the burst", func(t *testing.T) {
		var wg sync.WaitGroup
		var mu sync.Mutex
		allowed := 0
		for range 4 { // four replicas, 10 tries each, at one instant
			l := &ratelimit.Limiter{Pool: pool, Name: "shared", Every: time.Minute, Burst: 5}
			for range 10 {
				wg.Go(func() {
					ok, err := l.Allow(ctx, "k", t0)
					if err != nil {
						t.Error(err)
					}
					if ok {
						mu.Lock()
						allowed++
						mu.Unlock()
					}
				})
			}
		}
		wg.Wait()
		if allowed != 5 {
			t.Errorf("%d of 40 concurrent events allowed, want the burst of 5", allowed)
		}
	})
}
