package outbox_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/localeurope/piazza/pkg/bus"
	"github.com/localeurope/piazza/pkg/outbox"
	"github.com/nats-io/nats.go"
)

func TestRelayRun(t *testing.T) {
	t.Run("two relays over rows from concurrent writers publish every row exactly once", func(t *testing.T) {
		e := newEnv(t)
		counter := &countingPublisher{counts: map[string]int{}}
		relays := []*outbox.Relay{e.relay(nil), e.relay(nil)}
		for i, r := range relays {
			r.Pool = openPool(t, e.url) // each replica has its own pool
			r.Publisher = counter.wrap(r.Publisher)
			r.BatchSize = 16
			r.PollInterval = 20 * time.Millisecond
			relays[i] = r
		}
		stops := []func() error{runRelay(t, relays[0]), runRelay(t, relays[1])}

		const writers, perWriter = 10, 50
		written := make(chan string, writers*perWriter)
		ctx := testContext(t)
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for w := range writers {
			wg.Go(func() {
				for i := range perWriter {
					ev := newEvent(t, w*perWriter+i)
					err := pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error {
						return outbox.Add(ctx, tx, fmt.Sprintf("svc.city%d.stall.checked_in", w), ev)
					})
					if err != nil {
						errs <- err
						return
					}
					written <- ev.ID
				}
			})
		}
		wg.Wait()
		close(errs)
		close(written)
		for err := range errs {
			t.Fatalf("writer: %v", err)
		}

		waitFor(t, "the backlog to drain", func() bool { return e.backlog(t) == 0 })
		for i, stop := range stops {
			if err := stop(); err != nil {
				t.Errorf("relay %d: Run returned %v", i, err)
			}
		}
		counts := counter.snapshot()
		n := 0
		for id := range written {
			n++
			if counts[id] != 1 {
				t.Errorf("event %s was published %d times, want once", id, counts[id])
			}
		}
		if len(counts) != n {
			t.Errorf("the relays published %d distinct events, the writers wrote %d", len(counts), n)
		}
		if m := e.streamMsgs(t); m != uint64(n) {
			t.Errorf("stream holds %d messages, want %d", m, n)
		}
	})

	t.Run("relays that find each other at work strand no row, without polling", func(t *testing.T) {
		e := newEnv(t)
		counter := &countingPublisher{counts: map[string]int{}}
		relays := make([]*outbox.Relay, 3)
		for i := range relays {
			r := e.relay(nil)
			r.Pool = openPool(t, e.url)
			r.Publisher = counter.wrap(r.Publisher)
			r.BatchSize = 8
			r.PollInterval = time.Hour // only notifications wake them
			relays[i] = r
			runRelay(t, r)
		}
		ctx := testContext(t)
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Go(func() {
				for i := range 40 {
					ev := newEvent(t, w*40+i)
					if err := pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error {
						return outbox.Add(ctx, tx, "svc.ghent.stall.checked_in", ev)
					}); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		waitFor(t, "the backlog to drain without a poll", func() bool { return e.backlog(t) == 0 })
		if m := e.streamMsgs(t); m != 320 {
			t.Errorf("stream holds %d messages, want 320", m)
		}
		for id, n := range counter.snapshot() {
			if n != 1 {
				t.Errorf("event %s published %d times", id, n)
			}
		}
	})

	t.Run("one relay listens; when it stops, another takes the lead", func(t *testing.T) {
		e := newEnv(t)
		ctx := testContext(t)
		leaders := func() []int32 {
			rows, err := e.pool.Query(ctx, `SELECT pid FROM pg_stat_activity
				WHERE datname = current_database() AND query LIKE 'LISTEN %' ORDER BY pid`)
			if err != nil {
				t.Fatal(err)
			}
			pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
			if err != nil {
				t.Fatal(err)
			}
			return pids
		}
		listeners := func() int { return len(leaders()) }
		start := func() func() error {
			r := e.relay(nil)
			r.Pool = openPool(t, e.url)
			r.PollInterval = 100 * time.Millisecond
			return runRelay(t, r)
		}
		stopFirst := start()
		waitFor(t, "the first relay to lead", func() bool { return listeners() == 1 })
		start()
		start()
		time.Sleep(300 * time.Millisecond) // several tries of the others
		if n := listeners(); n != 1 {
			t.Fatalf("%d relays listen, want only the leader", n)
		}
		first := leaders()[0]
		if err := stopFirst(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "another relay to take the lead", func() bool {
			l := leaders()
			return len(l) == 1 && l[0] != first
		})
		evs := e.addEvents(t, 5)
		waitFor(t, "the last relay to publish", func() bool { return e.streamMsgs(t) == uint64(len(evs)) })
	})

	t.Run("a relay does not wait while another publishes", func(t *testing.T) {
		e := newEnv(t)
		ctx := testContext(t)
		e.addEvents(t, 3)
		// Another replica's relay in the middle of its round.
		holder, err := e.pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer holder.Rollback(ctx)
		if _, err := holder.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended(current_schema() || '.outbox.relay', 0))`); err != nil {
			t.Fatal(err)
		}
		r := e.relay(nil)
		r.Pool = openPool(t, e.url)
		short, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if n, err := r.PublishPending(short); err != nil || n != 0 {
			t.Fatalf("PublishPending while another relay works = %d, %v; want 0, nil at once", n, err)
		}
		if err := holder.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
		if n, err := r.PublishPending(ctx); err != nil || n != 3 {
			t.Fatalf("PublishPending after the other finished = %d, %v; want 3", n, err)
		}
	})

	t.Run("a notification wakes the relay long before its poll interval", func(t *testing.T) {
		e := newEnv(t)
		r := e.relay(nil)
		r.PollInterval = time.Hour
		runRelay(t, r)
		waitForListener(t, e)

		for want := uint64(1); want <= 2; want++ {
			e.addEvents(t, 1)
			waitFor(t, fmt.Sprintf("event %d to reach the stream", want), func() bool { return e.streamMsgs(t) == want })
		}
	})

	t.Run("a row whose notification was missed is published by the poll", func(t *testing.T) {
		e := newEnv(t)
		r := e.relay(nil)
		r.PollInterval = 50 * time.Millisecond
		runRelay(t, r)
		waitForListener(t, e)
		e.addEvents(t, 1)
		waitFor(t, "the first event to reach the stream", func() bool { return e.streamMsgs(t) == 1 })

		// Insert the way Add does, without its NOTIFY.
		ev := newEvent(t, 2)
		if _, err := e.pool.Exec(testContext(t), `
			INSERT INTO outbox (event_id, subject, source, type, event_time, data) VALUES ($1, $2, $3, $4, $5, $6)`,
			ev.ID, "svc.ghent.stall.checked_in", ev.Source, ev.Type, ev.Time, ev.Data); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the silent row to reach the stream", func() bool { return e.streamMsgs(t) == 2 })
	})

	t.Run("Run returns nil when its context is cancelled", func(t *testing.T) {
		e := newEnv(t)
		stop := runRelay(t, e.relay(nil))
		waitForListener(t, e)
		if err := stop(); err != nil {
			t.Errorf("Run returned %v, want nil", err)
		}
		waitFor(t, "the listening connection to close", func() bool { return listeners(t, e) == 0 })
	})
}

// countingPublisher counts, per event id, how often a batch holding it was
// handed to the real publisher it wraps.
type countingPublisher struct {
	mu     sync.Mutex
	counts map[string]int
}

func (c *countingPublisher) wrap(next outbox.Publisher) outbox.Publisher {
	return publisherFunc(func(ctx context.Context, msgs []*nats.Msg) error {
		c.mu.Lock()
		for _, m := range msgs {
			c.counts[m.Header.Get(bus.HdrMsgID)]++
		}
		c.mu.Unlock()
		return next.PublishBatch(ctx, msgs)
	})
}

func (c *countingPublisher) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.counts))
	for k, v := range c.counts {
		out[k] = v
	}
	return out
}

// waitForListener waits until a session of the test database has run its
// LISTEN on the outbox channel.
func waitForListener(tb testing.TB, e *env) {
	tb.Helper()
	waitFor(tb, "the relay to LISTEN", func() bool { return listeners(tb, e) == 1 })
}

func listeners(tb testing.TB, e *env) int {
	tb.Helper()
	var n int
	err := e.pool.QueryRow(testContext(tb), `
		SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND state = 'idle' AND query = 'LISTEN "svc.outbox"'`).Scan(&n)
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// BenchmarkRelay measures one PublishPending pass over 256 committed events
// (written with Add in one transaction, outside the timer) to a stream on
// the embedded server's synced file store: as one atomic batch, and message
// by message.
func BenchmarkRelay(b *testing.B) {
	for _, bc := range []struct {
		name      string
		atomicMin int
	}{{"atomic", 0}, {"each", -1}} {
		b.Run(bc.name, func(b *testing.B) { benchmarkRelay(b, bc.atomicMin) })
	}
}

func benchmarkRelay(b *testing.B, atomicMin int) {
	const batch = 256
	e := newEnv(b)
	r := e.relay(nil)
	r.Publisher.(*outbox.JetStream).AtomicMin = atomicMin
	r.BatchSize = batch
	ctx := testContext(b)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		err := pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error {
			for i := range batch {
				ev, err := bus.NewEvent("svc", "eu.piazza.svc.stall.checked_in.v1", "stall/1", i)
				if err != nil {
					return err
				}
				if err := outbox.Add(ctx, tx, "svc.ghent.stall.checked_in", ev); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if n, err := r.PublishPending(ctx); err != nil || n != batch {
			b.Fatalf("PublishPending = %d, %v; want %d", n, err, batch)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/event")
}
