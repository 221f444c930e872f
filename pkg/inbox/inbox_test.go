package inbox_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/localeurope/piazza/pkg/bus"
	"github.com/localeurope/piazza/pkg/inbox"
	"github.com/localeurope/piazza/pkg/outbox"
	"github.com/localeurope/piazza/pkg/postgres"
	"github.com/localeurope/piazza/pkg/postgres/pgtest"
)

func TestOnce(t *testing.T) {
	t.Run("runs fn once for an event id seen twice", func(t *testing.T) {
		pool := newSchema(t)
		ctx := testContext(t)
		for i, wantRan := range []bool{true, false} {
			ran, err := inbox.Once(ctx, pool, "calendar", "ev-1", recordEffect(ctx, "ev-1"))
			if err != nil {
				t.Fatalf("delivery %d: %v", i+1, err)
			}
			if ran != wantRan {
				t.Errorf("delivery %d: ran = %v, want %v", i+1, ran, wantRan)
			}
		}
		if n := effects(t, pool); n != 1 {
			t.Errorf("%d effects recorded, want 1", n)
		}
	})

	t.Run("a failing fn rolls back its inbox record, so a retry runs fn again", func(t *testing.T) {
		pool := newSchema(t)
		ctx := testContext(t)
		boom := errors.New("pitch table locked")
		ran, err := inbox.Once(ctx, pool, "calendar", "ev-1", func(tx pgx.Tx) error {
			if err := recordEffect(ctx, "ev-1")(tx); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("err = %v, want fn's error", err)
		}
		if ran {
			t.Error("ran = true for a transaction that rolled back")
		}
		if n := effects(t, pool); n != 0 {
			t.Errorf("%d effects survived the rollback", n)
		}
		if n := count(t, pool, "SELECT count(*) FROM inbox"); n != 0 {
			t.Errorf("%d inbox records survived the rollback", n)
		}

		ran, err = inbox.Once(ctx, pool, "calendar", "ev-1", recordEffect(ctx, "ev-1"))
		if err != nil || !ran {
			t.Fatalf("retry: ran = %v, err = %v; want fn to run", ran, err)
		}
		if n := effects(t, pool); n != 1 {
			t.Errorf("%d effects after the retry, want 1", n)
		}
	})

	t.Run("each consumer keeps its own record of an event", func(t *testing.T) {
		pool := newSchema(t)
		ctx := testContext(t)
		for _, consumer := range []string{"calendar", "notifier"} {
			ran, err := inbox.Once(ctx, pool, consumer, "ev-1", recordEffect(ctx, "ev-1"))
			if err != nil || !ran {
				t.Errorf("%s: ran = %v, err = %v; want fn to run", consumer, ran, err)
			}
		}
	})

	t.Run("concurrent deliveries of one event run fn once", func(t *testing.T) {
		pool := newSchema(t)
		ctx := testContext(t)
		var ran atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range 8 {
			wg.Go(func() {
				<-start
				ok, err := inbox.Once(ctx, pool, "notifier", "ev-1", recordEffect(ctx, "ev-1"))
				if err != nil {
					t.Errorf("Once: %v", err)
				}
				if ok {
					ran.Add(1)
				}
			})
		}
		close(start)
		wg.Wait()
		if ran.Load() != 1 {
			t.Errorf("fn ran %d times, want 1", ran.Load())
		}
		if n := effects(t, pool); n != 1 {
			t.Errorf("%d effects recorded, want 1", n)
		}
	})
}

func TestHandler(t *testing.T) {
	pool := newSchema(t)
	ctx := testContext(t)
	ev := bus.Event{ID: "0190f0a1-7c2e-7cc3-b8a5-3b6f2d2b9e01", Source: "listings", Type: "eu.piazza.listings.stall.checked_in.v1"}

	t.Run("runs the function with the event and its delivery, once per event id", func(t *testing.T) {
		var calls []bus.Delivery
		h := inbox.Handler(pool, "calendar", func(ctx context.Context, tx pgx.Tx, got bus.Event, d bus.Delivery) error {
			if got.ID != ev.ID {
				t.Errorf("event id = %s, want %s", got.ID, ev.ID)
			}
			calls = append(calls, d)
			return recordEffect(ctx, got.ID)(tx)
		})
		for n := uint64(1); n <= 2; n++ {
			if err := h(ctx, ev, bus.Delivery{StreamSeq: 7, NumDelivered: n}); err != nil {
				t.Fatalf("delivery %d: %v", n, err)
			}
		}
		if len(calls) != 1 || calls[0].StreamSeq != 7 || calls[0].NumDelivered != 1 {
			t.Errorf("calls = %+v, want only the first delivery", calls)
		}
	})

	t.Run("a permanent error from the function stays permanent", func(t *testing.T) {
		h := inbox.Handler(pool, "notifier", func(context.Context, pgx.Tx, bus.Event, bus.Delivery) error {
			return bus.Permanent(errors.New("unknown payload version"))
		})
		if err := h(ctx, ev, bus.Delivery{}); !bus.IsPermanent(err) {
			t.Errorf("err = %v, want a permanent error", err)
		}
	})
}

func TestPoison(t *testing.T) {
	t.Run("records a dead letter an operator can inspect", func(t *testing.T) {
		pool := newSchema(t)
		ev := bus.Event{ID: "ev-9", Type: "eu.piazza.listings.stall.checked_in.v1", Data: []byte(`{"version":"x"}`)}
		d := bus.Delivery{StreamSeq: 42, NumDelivered: 10, Subject: "listings.ghent.stall.checked_in"}
		// The consume loop may be shutting down: the record is written anyway.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		inbox.Poison(pool, "calendar", discardLog())(ctx, ev, d, bus.Permanent(errors.New("unknown payload version")))

		var consumer, eventID, eventType, subject, reason string
		var seq int64
		var data []byte
		err := pool.QueryRow(testContext(t), `SELECT consumer, event_id, event_type, subject, stream_seq, reason, data FROM dead_letters`).
			Scan(&consumer, &eventID, &eventType, &subject, &seq, &reason, &data)
		if err != nil {
			t.Fatalf("read dead letter: %v", err)
		}
		if consumer != "calendar" || eventID != ev.ID || eventType != ev.Type || subject != d.Subject || seq != 42 ||
			reason != "unknown payload version" || string(data) != string(ev.Data) {
			t.Errorf("dead letter = %q %q %q %q %d %q %q", consumer, eventID, eventType, subject, seq, reason, data)
		}
	})

	t.Run("records a message that was not a CloudEvent", func(t *testing.T) {
		pool := newSchema(t)
		inbox.Poison(pool, "calendar", discardLog())(testContext(t), bus.Event{}, bus.Delivery{StreamSeq: 3, Subject: "listings.x"},
			bus.Permanent(errors.New("not a CloudEvent")))
		if n := count(t, pool, "SELECT count(*) FROM dead_letters WHERE stream_seq = 3 AND event_id = ''"); n != 1 {
			t.Errorf("%d dead letters recorded, want 1", n)
		}
	})
}

func TestPrune(t *testing.T) {
	pool := newSchema(t)
	ctx := testContext(t)
	for _, id := range []string{"old", "recent"} {
		if _, err := inbox.Once(ctx, pool, "calendar", id, func(pgx.Tx) error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := pool.Exec(ctx, `UPDATE inbox SET processed_at = now() - interval '8 days' WHERE event_id = 'old'`); err != nil {
		t.Fatal(err)
	}
	n, err := inbox.Prune(ctx, pool, 7*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("pruned %d ids, want 1", n)
	}
	if left := count(t, pool, "SELECT count(*) FROM inbox WHERE event_id = 'recent'"); left != 1 {
		t.Error("the recent id was pruned")
	}
}

// newSchema returns a pool on a fresh database whose svc schema holds the
// outbox and inbox tables and an effects table for fn to write to.
func newSchema(tb testing.TB) *pgxpool.Pool {
	tb.Helper()
	url := pgtest.NewDatabase(tb, pgtest.Template{
		Name:        "svc",
		Fingerprint: postgres.Fingerprint(outbox.Migrations(), inbox.Migrations()),
		Migrate: func(ctx context.Context, url string) error {
			pool, err := postgres.Open(ctx, url, postgres.Options{Schema: "svc"})
			if err != nil {
				return err
			}
			defer pool.Close()
			return postgres.Migrate(ctx, pool, discardLog(), outbox.Migrations(), inbox.Migrations())
		},
	})
	pool, err := postgres.Open(testContext(tb), url, postgres.Options{Schema: "svc"})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(pool.Close)
	if _, err := pool.Exec(testContext(tb), `CREATE TABLE effects (event_id text NOT NULL)`); err != nil {
		tb.Fatal(err)
	}
	return pool
}

func recordEffect(ctx context.Context, eventID string) func(pgx.Tx) error {
	return func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO effects (event_id) VALUES ($1)`, eventID)
		return err
	}
}

func effects(tb testing.TB, pool *pgxpool.Pool) int {
	tb.Helper()
	return count(tb, pool, "SELECT count(*) FROM effects")
}

func count(tb testing.TB, pool *pgxpool.Pool, query string) int {
	tb.Helper()
	var n int
	if err := pool.QueryRow(testContext(tb), query).Scan(&n); err != nil {
		tb.Fatalf("%s: %v", query, err)
	}
	return n
}

func testContext(tb testing.TB) context.Context {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	tb.Cleanup(cancel)
	return ctx
}

func discardLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestBatchHandler(t *testing.T) {
	ev := func(id string) bus.Event {
		return bus.Event{ID: id, Source: "listings", Type: "eu.piazza.listings.stall.checked_in.v1"}
	}

	t.Run("runs fn in order, once per new id, in one transaction", func(t *testing.T) {
		pool := newSchema(t)
		ctx := testContext(t)
		if _, err := inbox.Once(ctx, pool, "notifier", "ev-2", recordEffect(ctx, "ev-2")); err != nil {
			t.Fatal(err)
		}
		var order []string
		var txs []pgx.Tx
		h := inbox.BatchHandler(pool, "notifier", func(ctx context.Context, tx pgx.Tx, ev bus.Event, d bus.Delivery) error {
			order = append(order, fmt.Sprintf("%s@%d", ev.ID, d.StreamSeq))
			txs = append(txs, tx)
			return recordEffect(ctx, ev.ID)(tx)
		})
		// ev-2 was processed before; ev-1 comes twice (a redelivery while
		// the first was still waiting in the lane).
		evs := []bus.Event{ev("ev-1"), ev("ev-2"), ev("ev-3"), ev("ev-1"), ev("ev-4")}
		ds := []bus.Delivery{{StreamSeq: 1}, {StreamSeq: 2}, {StreamSeq: 3}, {StreamSeq: 1, NumDelivered: 2}, {StreamSeq: 4}}
		if err := h(ctx, evs, ds); err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(order); got != "[ev-1@1 ev-3@3 ev-4@4]" {
			t.Errorf("fn ran for %s, want [ev-1@1 ev-3@3 ev-4@4]", got)
		}
		for _, tx := range txs[1:] {
			if tx != txs[0] {
				t.Error("the events ran in different transactions")
			}
		}
		if n := effects(t, pool); n != 4 {
			t.Errorf("%d effects, want 4", n)
		}
		if err := h(ctx, evs, ds); err != nil {
			t.Fatal(err)
		}
		if n := effects(t, pool); n != 4 {
			t.Errorf("%d effects after the batch came again, want still 4", n)
		}
	})

	t.Run("a failure rolls back every event of the batch", func(t *testing.T) {
		pool := newSchema(t)
		ctx := testContext(t)
		boom := errors.New("disk full")
		h := inbox.BatchHandler(pool, "notifier", func(ctx context.Context, tx pgx.Tx, ev bus.Event, _ bus.Delivery) error {
			if err := recordEffect(ctx, ev.ID)(tx); err != nil {
				return err
			}
			if ev.ID == "ev-3" {
				return boom
			}
			return nil
		})
		err := h(ctx, []bus.Event{ev("ev-1"), ev("ev-2"), ev("ev-3")}, make([]bus.Delivery, 3))
		if !errors.Is(err, boom) {
			t.Fatalf("err = %v, want fn's error", err)
		}
		if n := effects(t, pool); n != 0 {
			t.Errorf("%d effects survived the failed batch, want 0", n)
		}
		if n := count(t, pool, "SELECT count(*) FROM inbox"); n != 0 {
			t.Errorf("%d inbox records survived the failed batch, want 0", n)
		}
		// Each on its own, as bus.Consume does next: the good ones run.
		for _, id := range []string{"ev-1", "ev-2"} {
			if ran, err := inbox.Once(ctx, pool, "notifier", id, recordEffect(ctx, id)); err != nil || !ran {
				t.Errorf("%s on its own: ran %v, err %v", id, ran, err)
			}
		}
	})
}
