package outbox_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/localeurope/piazza/pkg/bus"
	"github.com/localeurope/piazza/pkg/bus/bustest"
	"github.com/localeurope/piazza/pkg/inbox"
	"github.com/localeurope/piazza/pkg/outbox"
	"github.com/localeurope/piazza/pkg/postgres"
	"github.com/localeurope/piazza/pkg/postgres/pgtest"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

const schema = "svc"

// env is one service schema with the outbox migrated into it, and a real
// nats-server with the service's stream.
type env struct {
	url    string
	pool   *pgxpool.Pool // its releases wake the relays of e.relay
	wake   *outbox.Wake
	js     jetstream.JetStream
	stream jetstream.Stream
}

func newEnv(tb testing.TB) *env {
	tb.Helper()
	url := pgtest.NewDatabase(tb, pgtest.Template{
		Name:        "svc",
		Fingerprint: postgres.Fingerprint(outbox.Migrations(), inbox.Migrations()),
		Migrate: func(ctx context.Context, url string) error {
			pool, err := postgres.Open(ctx, url, postgres.Options{Schema: schema})
			if err != nil {
				return err
			}
			defer pool.Close()
			return postgres.Migrate(ctx, pool, discardLog(), outbox.Migrations(), inbox.Migrations())
		},
	})
	_, js := bustest.Connect(tb)
	// As the services' streams: on the embedded server's synced file store,
	// open to atomic batches.
	stream, err := js.CreateStream(testContext(tb), jetstream.StreamConfig{
		Name: "SVC", Subjects: []string{"svc.>"}, Storage: jetstream.FileStorage, Duplicates: 2 * time.Minute,
		AllowAtomicPublish: true,
	})
	if err != nil {
		tb.Fatalf("create stream: %v", err)
	}
	wake := outbox.NewWake()
	return &env{url: url, pool: openPool(tb, url, wake), wake: wake, js: js, stream: stream}
}

// openPool opens a pool of the schema whose releases signal wake (if not
// nil), as a service's does.
func openPool(tb testing.TB, url string, wake *outbox.Wake) *pgxpool.Pool {
	tb.Helper()
	opts := postgres.Options{Schema: schema}
	if wake != nil {
		opts.AfterRelease = wake.AfterRelease
	}
	pool, err := postgres.Open(testContext(tb), url, opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(pool.Close)
	return pool
}

// statsPool turns autovacuum off for the outbox (it would analyze and clean
// it during the test) and opens a pool of one connection for a relay, with
// stat, which reports that connection's pending statistics and then runs
// query (its $1 the schema) for one number.
func (e *env) statsPool(t *testing.T) (*pgxpool.Pool, func(query string) int64) {
	t.Helper()
	ctx := testContext(t)
	if _, err := e.pool.Exec(ctx, `ALTER TABLE outbox SET (autovacuum_enabled = false)`); err != nil {
		t.Fatal(err)
	}
	pool, err := postgres.Open(ctx, e.url, postgres.Options{Schema: schema, MaxConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool, func(query string) int64 {
		t.Helper()
		c, err := pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// Forced, the connection reports its counts as it goes idle after
		// this statement.
		_, err = c.Exec(ctx, `SELECT pg_stat_force_next_flush()`)
		c.Release()
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		if err := e.pool.QueryRow(ctx, `SELECT pg_stat_clear_snapshot() IS NULL, (`+query+`)`, schema).Scan(new(bool), &n); err != nil {
			t.Fatal(err)
		}
		return n
	}
}

// relay returns a relay over the real JetStream publisher; wrap, if given,
// wraps that publisher.
func (e *env) relay(wrap func(outbox.Publisher) outbox.Publisher) *outbox.Relay {
	var p outbox.Publisher = &outbox.JetStream{JS: e.js}
	if wrap != nil {
		p = wrap(p)
	}
	return &outbox.Relay{Pool: e.pool, Wake: e.wake, Publisher: p, Log: discardLog()}
}

func newEvent(tb testing.TB, n int) bus.Event {
	tb.Helper()
	ev, err := bus.NewEvent("svc", "eu.piazza.svc.stall.checked_in.v1", fmt.Sprintf("stall/%d", n), map[string]int{"n": n})
	if err != nil {
		tb.Fatal(err)
	}
	ev.TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	return ev
}

// addEvents writes n events in one transaction of its own and commits it.
func (e *env) addEvents(tb testing.TB, n int) []bus.Event {
	tb.Helper()
	ctx := testContext(tb)
	evs := make([]bus.Event, n)
	err := pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error {
		for i := range evs {
			evs[i] = newEvent(tb, i)
			if err := outbox.Add(ctx, tx, "svc.ghent.stall.checked_in", evs[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatalf("add events: %v", err)
	}
	return evs
}

// streamEvents decodes every message in the stream, in stream order.
func (e *env) streamEvents(tb testing.TB) []bus.Event {
	tb.Helper()
	ctx := testContext(tb)
	info, err := e.stream.Info(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	var evs []bus.Event
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		raw, err := e.stream.GetMsg(ctx, seq)
		if err != nil {
			tb.Fatalf("get stream message %d: %v", seq, err)
		}
		ev, err := bus.Decode(&nats.Msg{Subject: raw.Subject, Header: raw.Header, Data: raw.Data})
		if err != nil {
			tb.Fatalf("stream message %d: %v", seq, err)
		}
		evs = append(evs, ev)
	}
	return evs
}

func (e *env) streamMsgs(tb testing.TB) uint64 {
	tb.Helper()
	info, err := e.stream.Info(testContext(tb))
	if err != nil {
		tb.Fatal(err)
	}
	return info.State.Msgs
}

func (e *env) backlog(tb testing.TB) int64 {
	tb.Helper()
	n, err := outbox.Backlog(testContext(tb), e.pool)
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// runRelay runs r until the returned stop is called or the test ends; stop
// reports what Run returned.
func runRelay(tb testing.TB, r *outbox.Relay) (stop func() error) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var result error
	stopped := false
	stop = func() error {
		if !stopped {
			stopped = true
			cancel()
			select {
			case result = <-done:
			case <-time.After(time.Minute):
				result = fmt.Errorf("Run did not return within a minute of cancel")
			}
		}
		return result
	}
	tb.Cleanup(func() {
		if err := stop(); err != nil {
			tb.Errorf("Run: %v", err)
		}
	})
	return stop
}

func ids(evs []bus.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.ID
	}
	return out
}

// waitFor polls cond until it holds, failing after a generous deadline.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func testContext(tb testing.TB) context.Context {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	tb.Cleanup(cancel)
	return ctx
}

func discardLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
