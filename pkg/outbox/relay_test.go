package outbox_test

import (
	"context"
	"errors"
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
			r.Wake = outbox.NewWake() // each replica has its own pool
			r.Pool = openPool(t, e.url, r.Wake)
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
					err := pgx.BeginFunc(ctx, relays[w%2].Pool, func(tx pgx.Tx) error {
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

	t.Run("replicas woken by their own commits, finding each other at work, strand no row without polling", func(t *testing.T) {
		e := newEnv(t)
		counter := &countingPublisher{counts: map[string]int{}}
		relays := make([]*outbox.Relay, 3)
		for i := range relays {
			r := e.relay(nil)
			r.Wake = outbox.NewWake()
			r.Pool = openPool(t, e.url, r.Wake)
			r.Publisher = counter.wrap(r.Publisher)
			r.BatchSize = 8
			r.PollInterval = time.Hour // only their own processes' commits wake them
			relays[i] = r
			runRelay(t, r)
		}
		ctx := testContext(t)
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Go(func() {
				for i := range 40 {
					ev := newEvent(t, w*40+i)
					if err := pgx.BeginFunc(ctx, relays[w%len(relays)].Pool, func(tx pgx.Tx) error {
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
		r.Pool = openPool(t, e.url, nil)
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

	t.Run("a commit on the relay's pool wakes it long before its poll interval", func(t *testing.T) {
		e := newEnv(t)
		r := e.relay(nil)
		r.PollInterval = time.Hour
		runRelay(t, r)
		for want := uint64(1); want <= 2; want++ {
			e.addEvents(t, 1)
			waitFor(t, fmt.Sprintf("event %d to reach the stream", want), func() bool { return e.streamMsgs(t) == want })
		}
	})

	t.Run("a row another process wrote is published by the poll", func(t *testing.T) {
		e := newEnv(t)
		r := e.relay(nil)
		r.PollInterval = 50 * time.Millisecond
		runRelay(t, r)
		other := &env{pool: openPool(t, e.url, nil)} // no wake-ups for this relay
		other.addEvents(t, 1)
		waitFor(t, "the other process's event to reach the stream", func() bool { return e.streamMsgs(t) == 1 })
	})

	t.Run("a rolled-back transaction wakes the relay harmlessly and keeps its connection", func(t *testing.T) {
		e := newEnv(t)
		r := e.relay(nil)
		r.PollInterval = time.Hour
		runRelay(t, r)
		ctx := testContext(t)
		conns := e.pool.Stat().NewConnsCount()
		rollback := errors.New("changed my mind")
		for i := range 20 {
			err := pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error {
				if err := outbox.Add(ctx, tx, "svc.ghent.stall.checked_in", newEvent(t, i)); err != nil {
					return err
				}
				return rollback
			})
			if !errors.Is(err, rollback) {
				t.Fatalf("BeginFunc = %v", err)
			}
		}
		e.addEvents(t, 1)
		waitFor(t, "the committed event to reach the stream", func() bool { return e.streamMsgs(t) == 1 })
		// The relay's rounds and the writer need a few; a connection
		// destroyed at each release would need 21.
		if n := e.pool.Stat().NewConnsCount() - conns; n > 5 {
			t.Errorf("the pool opened %d connections for 21 transactions, want a few", n)
		}
		if m := e.streamMsgs(t); m != 1 {
			t.Errorf("stream holds %d messages, want only the committed one", m)
		}
	})

	t.Run("Run returns nil when its context is cancelled", func(t *testing.T) {
		e := newEnv(t)
		stop := runRelay(t, e.relay(nil))
		if err := stop(); err != nil {
			t.Errorf("Run returned %v, want nil", err)
		}
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

// A relay's statements are prepared once per connection, and PostgreSQL
// keeps a generic plan for such a statement after its fifth run. Planned
// while the outbox was nearly empty (a new deployment, its first minute
// before autovacuum has analyzed the table), the plan that marks rows
// published scanned the whole table, and kept doing so as the table grew:
// 6–9 ms a round in the latency benchmark. The relay reads the outbox by its
// indexes only.
func TestRelayNeverScansTheWholeOutbox(t *testing.T) {
	e := newEnv(t)
	ctx := testContext(t)
	pool, stat := e.statsPool(t)
	r := e.relay(nil)
	r.Pool = pool
	// Rounds of a dozen rows, past the fifth run of each statement: for
	// these, scanning a table of a few pages is the cheaper plan.
	for range 8 {
		e.addEvents(t, 12)
		if n, err := r.PublishPending(ctx); err != nil || n != 12 {
			t.Fatalf("PublishPending = %d, %v; want 12", n, err)
		}
	}
	// A week of published rows, as the relay keeps them.
	if _, err := e.pool.Exec(ctx, `
		INSERT INTO outbox (event_id, subject, source, type, event_time, data, published_at)
		SELECT gen_random_uuid(), 'svc.ghent.stall.checked_in', 'svc', 'eu.piazza.svc.stall.checked_in.v1', now(),
		       convert_to(repeat('x', 300), 'UTF8'), now() - interval '1 hour'
		FROM generate_series(1, 20000)`); err != nil {
		t.Fatal(err)
	}
	scans := func() int64 {
		return stat(`SELECT seq_scan FROM pg_stat_user_tables WHERE schemaname = $1 AND relname = 'outbox'`)
	}
	before := scans()
	evs := e.addEvents(t, 12)
	if n, err := r.PublishPending(ctx); err != nil || n != len(evs) {
		t.Fatalf("PublishPending = %d, %v; want %d", n, err, len(evs))
	}
	if after := scans(); after != before {
		t.Errorf("a relay round scanned the whole outbox %d times (20,000 rows)", after-before)
	}
}

// Between two vacuums of the outbox, every row the relay marked stays in the
// unpublished index, and a read of the index steps over all of them. A
// round after a wake-up starts after what the relay published LateCommit
// ago; a row that commits later than that below it is the poll's.
func TestRelayWakeUpRoundsSkipWhatWasPublished(t *testing.T) {
	e := newEnv(t)
	ctx := testContext(t)
	pool, stat := e.statsPool(t)
	indexReads := func() int64 {
		return stat(`SELECT idx_blks_hit + idx_blks_read FROM pg_statio_user_indexes
			WHERE schemaname = $1 AND indexrelname = 'outbox_unpublished'`)
	}

	r := e.relay(nil)
	r.Pool, r.BatchSize = pool, 1000
	r.LateCommit, r.PollInterval = 100*time.Millisecond, time.Hour
	stop := runRelay(t, r)
	const published = 10000
	e.addEvents(t, published)
	waitFor(t, "the first rows to be published", func() bool { return e.streamMsgs(t) == published })

	// A transaction takes its seq now and commits after the next rounds.
	late := newEvent(t, -1)
	txLate, err := e.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer txLate.Rollback(ctx)
	if err := outbox.Add(ctx, txLate, "svc.ghent.stall.checked_in", late); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * r.LateCommit) // the first rows' round is now older than LateCommit

	before := indexReads()
	for i := range 3 {
		e.addEvents(t, 1)
		waitFor(t, "a woken round to publish", func() bool { return e.streamMsgs(t) == uint64(published+1+i) })
	}
	woken := indexReads() - before
	// A full round, by hand, finds nothing (the late row is not committed)
	// after reading the whole index.
	before = indexReads()
	if n, err := r.PublishPending(ctx); err != nil || n != 0 {
		t.Fatalf("a full round before the late commit = %d, %v; want 0", n, err)
	}
	if full := indexReads() - before; woken >= full {
		t.Errorf("three woken rounds read %d blocks of the unpublished index, one full round %d: they stepped over the %d rows published before",
			woken, full, published)
	}

	// The late row commits below what the woken rounds start from, once
	// they are older than LateCommit: no wake-up finds it (its own commit
	// wakes the relay), the poll does.
	time.Sleep(3 * r.LateCommit)
	if err := txLate.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	e.addEvents(t, 1)
	waitFor(t, "a woken round to publish", func() bool { return e.streamMsgs(t) == published+4 })
	if got := e.backlog(t); got != 1 {
		t.Fatalf("backlog = %d after the late commit and a wake-up; want the late row alone (the test relies on it)", got)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// The poll's round, by hand.
	if n, err := r.PublishPending(ctx); err != nil || n != 1 {
		t.Fatalf("a full round = %d, %v; want the late row", n, err)
	}
	if got := e.streamEvents(t); got[len(got)-1].ID != late.ID {
		t.Errorf("the last event published is %s; want the late row %s", got[len(got)-1].ID, late.ID)
	}
}
