package outbox_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/localeurope/piazza/pkg/bus"
	"github.com/localeurope/piazza/pkg/outbox"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

func TestPublishPending(t *testing.T) {
	t.Run("publishes exactly the committed rows, in sequence order, and marks them", func(t *testing.T) {
		e := newEnv(t)
		ctx := testContext(t)
		first := e.addEvents(t, 3)
		second := e.addEvents(t, 2)
		rolledBack := newEvent(t, 99)
		tx, err := e.pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := outbox.Add(ctx, tx, "svc.ghent.stall.checked_in", rolledBack); err != nil {
			t.Fatal(err)
		}
		if err := tx.Rollback(ctx); err != nil {
			t.Fatal(err)
		}

		r := e.relay(nil)
		reg := prometheus.NewRegistry()
		r.Metrics = outbox.NewMetrics(reg)
		n, err := r.PublishPending(ctx)
		if err != nil {
			t.Fatalf("PublishPending: %v", err)
		}
		if n != 5 {
			t.Errorf("published %d rows, want 5", n)
		}
		want := append(ids(first), ids(second)...)
		got := e.streamEvents(t)
		if !slices.Equal(ids(got), want) {
			t.Errorf("stream holds %v, want %v", ids(got), want)
		}
		for i, ev := range got {
			wantEv := append(first, second...)[i]
			// timestamptz keeps microseconds.
			if ev.Type != wantEv.Type || ev.Source != wantEv.Source || ev.Subject != wantEv.Subject ||
				ev.DataContentType != wantEv.DataContentType || ev.TraceParent != wantEv.TraceParent || ev.Time.Sub(wantEv.Time).Abs() >= time.Microsecond ||
				string(ev.Data) != string(wantEv.Data) {
				t.Errorf("stream message %d = %+v, want %+v", i+1, ev, wantEv)
			}
		}
		if b := e.backlog(t); b != 0 {
			t.Errorf("backlog = %d after publishing, want 0", b)
		}
		if got := counterValue(t, reg, "piazza_outbox_published_total"); got != 5 {
			t.Errorf("piazza_outbox_published_total = %v, want 5", got)
		}

		if n, err := r.PublishPending(ctx); err != nil || n != 0 {
			t.Errorf("a second pass published %d rows (err %v), want 0", n, err)
		}
		if m := e.streamMsgs(t); m != 5 {
			t.Errorf("stream holds %d messages after a second pass, want 5", m)
		}
	})

	t.Run("a rolled-back transaction publishes nothing", func(t *testing.T) {
		e := newEnv(t)
		ctx := testContext(t)
		err := pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error {
			if err := outbox.Add(ctx, tx, "svc.ghent.stall.checked_in", newEvent(t, 1)); err != nil {
				return err
			}
			return errors.New("the state change failed")
		})
		if err == nil {
			t.Fatal("the transaction committed")
		}
		n, err := e.relay(nil).PublishPending(ctx)
		if err != nil || n != 0 {
			t.Errorf("PublishPending = %d, %v; want 0, nil", n, err)
		}
		if m := e.streamMsgs(t); m != 0 {
			t.Errorf("stream holds %d messages, want 0", m)
		}
	})

	t.Run("a row that commits after a later row was published is still published", func(t *testing.T) {
		e := newEnv(t)
		ctx := testContext(t)
		r := e.relay(nil)

		late := newEvent(t, 1)
		txA, err := e.pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer txA.Rollback(ctx)
		if err := outbox.Add(ctx, txA, "svc.ghent.stall.checked_in", late); err != nil {
			t.Fatal(err)
		}
		early := e.addEvents(t, 1)[0] // transaction B: a higher seq, committed first

		if n, err := r.PublishPending(ctx); err != nil || n != 1 {
			t.Fatalf("first pass = %d, %v; want 1, nil", n, err)
		}
		if err := txA.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		if n, err := r.PublishPending(ctx); err != nil || n != 1 {
			t.Fatalf("pass after the late commit = %d, %v; want 1, nil", n, err)
		}

		if got, want := ids(e.streamEvents(t)), []string{early.ID, late.ID}; !slices.Equal(got, want) {
			t.Errorf("stream holds %v, want %v", got, want)
		}
		var seqLate, seqEarly int64
		if err := e.pool.QueryRow(ctx, `SELECT (SELECT seq FROM outbox WHERE event_id = $1), (SELECT seq FROM outbox WHERE event_id = $2)`,
			late.ID, early.ID).Scan(&seqLate, &seqEarly); err != nil {
			t.Fatal(err)
		}
		if seqLate >= seqEarly {
			t.Errorf("the late row has seq %d, the early one %d: the test did not commit out of order", seqLate, seqEarly)
		}
		if b := e.backlog(t); b != 0 {
			t.Errorf("backlog = %d, want 0", b)
		}
	})

	t.Run("a crash between PubAck and marking republishes, and the stream keeps one copy", func(t *testing.T) {
		e := newEnv(t)
		ctx := testContext(t)
		crash := &crashAfterPublish{}
		r := e.relay(func(p outbox.Publisher) outbox.Publisher { crash.next = p; return crash })
		ev := e.addEvents(t, 1)[0]

		crash.arm()
		if _, err := r.PublishPending(ctx); err == nil {
			t.Fatal("PublishPending succeeded although the relay crashed before marking")
		}
		if m := e.streamMsgs(t); m != 1 {
			t.Fatalf("stream holds %d messages after the first publish, want 1", m)
		}
		if b := e.backlog(t); b != 1 {
			t.Fatalf("backlog = %d after the crash, want the row still unpublished", b)
		}

		if n, err := r.PublishPending(ctx); err != nil || n != 1 {
			t.Fatalf("pass after the crash = %d, %v; want 1, nil", n, err)
		}
		if crash.published() != 2 {
			t.Errorf("the event went to JetStream %d times, want 2 (once more after the crash)", crash.published())
		}
		if got := ids(e.streamEvents(t)); !slices.Equal(got, []string{ev.ID}) {
			t.Errorf("stream holds %v, want the event once", got)
		}
		if b := e.backlog(t); b != 0 {
			t.Errorf("backlog = %d, want the row marked", b)
		}
	})

	t.Run("a failed publish leaves the rows for the next pass", func(t *testing.T) {
		e := newEnv(t)
		ctx := testContext(t)
		down := true
		r := e.relay(func(p outbox.Publisher) outbox.Publisher {
			return publisherFunc(func(ctx context.Context, msgs []*nats.Msg) error {
				if down {
					return errors.New("nats: no responders available for request")
				}
				return p.PublishBatch(ctx, msgs)
			})
		})
		e.addEvents(t, 2)
		if _, err := r.PublishPending(ctx); err == nil {
			t.Fatal("PublishPending succeeded with JetStream down")
		}
		if b := e.backlog(t); b != 2 {
			t.Fatalf("backlog = %d, want 2", b)
		}
		down = false
		if n, err := r.PublishPending(ctx); err != nil || n != 2 {
			t.Errorf("pass after recovery = %d, %v; want 2, nil", n, err)
		}
	})

	t.Run("publishes at most BatchSize rows per pass", func(t *testing.T) {
		e := newEnv(t)
		ctx := testContext(t)
		evs := e.addEvents(t, 5)
		r := e.relay(nil)
		r.BatchSize = 2
		for _, want := range []int{2, 2, 1, 0} {
			if n, err := r.PublishPending(ctx); err != nil || n != want {
				t.Fatalf("pass = %d, %v; want %d, nil", n, err, want)
			}
		}
		if got := ids(e.streamEvents(t)); !slices.Equal(got, ids(evs)) {
			t.Errorf("stream holds %v, want %v", got, ids(evs))
		}
	})
}

func TestAdd(t *testing.T) {
	e := newEnv(t)
	ctx := testContext(t)
	tests := []struct {
		name    string
		subject string
		mutate  func(*bus.Event)
	}{
		{"rejects an event without an id", "svc.x", func(ev *bus.Event) { ev.ID = "" }},
		{"rejects an event without a type", "svc.x", func(ev *bus.Event) { ev.Type = "" }},
		{"rejects an event without a source", "svc.x", func(ev *bus.Event) { ev.Source = "" }},
		{"rejects an event without a NATS subject", "", func(*bus.Event) {}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev := newEvent(t, 1)
			tc.mutate(&ev)
			err := pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error { return outbox.Add(ctx, tx, tc.subject, ev) })
			if err == nil {
				t.Fatal("Add accepted the event")
			}
		})
	}
	t.Run("rejects the same event id twice", func(t *testing.T) {
		ev := newEvent(t, 1)
		add := func() error {
			return pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error { return outbox.Add(ctx, tx, "svc.x", ev) })
		}
		if err := add(); err != nil {
			t.Fatal(err)
		}
		if err := add(); err == nil {
			t.Fatal("Add stored a second row for one event id")
		}
	})
}

func TestAddAll(t *testing.T) {
	e := newEnv(t)
	ctx := testContext(t)
	t.Run("writes every entry, in order, and the relay publishes them in that order", func(t *testing.T) {
		evs := []bus.Event{newEvent(t, 1), newEvent(t, 2), newEvent(t, 3)}
		err := pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error {
			return outbox.AddAll(ctx, tx,
				outbox.Entry{Subject: "svc.ghent.stall.checked_in", Event: evs[0]},
				outbox.Entry{Subject: "svc.ghent.stall.checked_in", Event: evs[1]},
				outbox.Entry{Subject: "svc.ghent.stall.checked_in", Event: evs[2]})
		})
		if err != nil {
			t.Fatal(err)
		}
		if n, err := e.relay(nil).PublishPending(ctx); err != nil || n != 3 {
			t.Fatalf("PublishPending = %d, %v; want 3", n, err)
		}
		got := e.streamEvents(t)
		if len(got) != 3 {
			t.Fatalf("%d events in the stream, want 3", len(got))
		}
		for i := range evs {
			if !sameEvent(got[i], evs[i]) {
				t.Errorf("stream[%d] = %+v, want %+v", i, got[i], evs[i])
			}
		}
	})
	t.Run("Queue writes the entries with the caller's other statements, in order", func(t *testing.T) {
		before := len(e.streamEvents(t))
		evs := []bus.Event{newEvent(t, 6), newEvent(t, 7)}
		evs[1].TraceParent = ""
		conn, err := e.pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Release()
		b := &pgx.Batch{}
		b.Queue(`BEGIN`)
		if err := outbox.Queue(conn.Conn(), b, outbox.Entry{Subject: "svc.ghent.stall.checked_in", Event: evs[0]},
			outbox.Entry{Subject: "svc.ghent.stall.checked_out", Event: evs[1]}); err != nil {
			t.Fatal(err)
		}
		b.Queue(`COMMIT`)
		if err := conn.SendBatch(ctx, b).Close(); err != nil {
			t.Fatal(err)
		}
		if n, err := e.relay(nil).PublishPending(ctx); err != nil || n != 2 {
			t.Fatalf("PublishPending = %d, %v; want 2", n, err)
		}
		got := e.streamEvents(t)[before:]
		if len(got) != 2 || !sameEvent(got[0], evs[0]) || !sameEvent(got[1], evs[1]) {
			t.Errorf("stream = %+v, want %+v", got, evs)
		}
		if err := outbox.Queue(conn.Conn(), &pgx.Batch{}, outbox.Entry{Subject: "svc.x"}); err == nil {
			t.Error("Queue accepted an entry without an event")
		}
	})
	t.Run("one invalid entry writes none of them", func(t *testing.T) {
		bad := newEvent(t, 5)
		bad.Type = ""
		err := pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error {
			return outbox.AddAll(ctx, tx, outbox.Entry{Subject: "svc.x", Event: newEvent(t, 4)}, outbox.Entry{Subject: "svc.x", Event: bad})
		})
		if err == nil {
			t.Fatal("AddAll accepted an event without a type")
		}
		if n, err := outbox.Backlog(ctx, e.pool); err != nil || n != 0 {
			t.Errorf("backlog = %d, %v after a failed AddAll; want 0", n, err)
		}
	})
}

func TestPrune(t *testing.T) {
	e := newEnv(t)
	ctx := testContext(t)
	evs := e.addEvents(t, 3)
	r := e.relay(nil)
	r.Retention = time.Hour
	if _, err := r.PublishPending(ctx); err != nil {
		t.Fatal(err)
	}
	unpublished := e.addEvents(t, 1)[0]
	ages := map[string]string{evs[0].ID: "2 hours", evs[1].ID: "59 minutes", evs[2].ID: "1 second"}
	for id, age := range ages {
		if _, err := e.pool.Exec(ctx, `UPDATE outbox SET published_at = now() - $2::interval WHERE event_id = $1`, id, age); err != nil {
			t.Fatal(err)
		}
	}

	n, err := r.Prune(ctx)
	if err != nil {
		t.Fatalf("Prune: %v", err)
	}
	if n != 1 {
		t.Errorf("pruned %d rows, want 1", n)
	}
	rows, err := e.pool.Query(ctx, `SELECT event_id::text FROM outbox ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	left, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{evs[1].ID, evs[2].ID, unpublished.ID}; !slices.Equal(left, want) {
		t.Errorf("rows left = %v, want the two recently published and the unpublished one %v", left, want)
	}
}

// crashAfterPublish lets the real publisher publish, then, when armed, fails
// as if the relay died before it could mark the rows.
type crashAfterPublish struct {
	next  outbox.Publisher
	mu    sync.Mutex
	armed bool
	calls int
}

func (c *crashAfterPublish) arm() { c.mu.Lock(); c.armed = true; c.mu.Unlock() }

func (c *crashAfterPublish) published() int { c.mu.Lock(); defer c.mu.Unlock(); return c.calls }

func (c *crashAfterPublish) PublishBatch(ctx context.Context, msgs []*nats.Msg) error {
	if err := c.next.PublishBatch(ctx, msgs); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls += len(msgs)
	if c.armed {
		c.armed = false
		return errors.New("relay killed after PubAck")
	}
	return nil
}

type publisherFunc func(ctx context.Context, msgs []*nats.Msg) error

func (f publisherFunc) PublishBatch(ctx context.Context, msgs []*nats.Msg) error { return f(ctx, msgs) }

func counterValue(tb testing.TB, reg *prometheus.Registry, name string) float64 {
	tb.Helper()
	families, err := reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	var sum float64
	for _, f := range families {
		if f.GetName() == name {
			for _, m := range f.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

func TestJetStreamBatches(t *testing.T) {
	batchIDs := func(t *testing.T, e *env) []string {
		t.Helper()
		ctx := testContext(t)
		info, err := e.stream.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
			raw, err := e.stream.GetMsg(ctx, seq)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, raw.Header.Get("Nats-Batch-Id"))
		}
		return out
	}

	t.Run("a backlog goes as one atomic batch, the rest one by one, in order", func(t *testing.T) {
		e := newEnv(t)
		ctx := testContext(t)
		want := ids(e.addEvents(t, 276))
		r := e.relay(nil)
		r.BatchSize = 256
		if n, err := r.PublishPending(ctx); err != nil || n != 256 {
			t.Fatalf("first PublishPending = %d, %v; want 256", n, err)
		}
		if n, err := r.PublishPending(ctx); err != nil || n != 20 {
			t.Fatalf("second PublishPending = %d, %v; want 20", n, err)
		}
		if got := ids(e.streamEvents(t)); !slices.Equal(got, want) {
			t.Fatalf("stream holds %d events out of order or incomplete, want the 276 in order", len(got))
		}
		b := batchIDs(t, e)
		if b[0] == "" || slices.ContainsFunc(b[:256], func(id string) bool { return id != b[0] }) {
			t.Errorf("the first 256 messages were not stored as one batch: batch ids %q … %q", b[0], b[255])
		}
		if slices.ContainsFunc(b[256:], func(id string) bool { return id != "" }) {
			t.Errorf("the last 20 (fewer than AtomicMin) were stored as a batch")
		}
	})

	t.Run("a republished backlog is stored once", func(t *testing.T) {
		e := newEnv(t)
		ctx := testContext(t)
		want := ids(e.addEvents(t, 100))
		r := e.relay(nil)
		if n, err := r.PublishPending(ctx); err != nil || n != 100 {
			t.Fatalf("PublishPending = %d, %v; want 100", n, err)
		}
		// The marks are lost (a crash before they reached the disk): the
		// whole backlog is published again, and the atomic batch is refused
		// for its duplicate ids.
		if _, err := e.pool.Exec(ctx, `UPDATE outbox SET published_at = NULL`); err != nil {
			t.Fatal(err)
		}
		more := ids(e.addEvents(t, 10))
		if n, err := r.PublishPending(ctx); err != nil || n != 110 {
			t.Fatalf("PublishPending after lost marks = %d, %v; want 110", n, err)
		}
		if got := ids(e.streamEvents(t)); !slices.Equal(got, append(want, more...)) {
			t.Errorf("stream holds %d events, want the 110 once each in order", len(got))
		}
		// Duplicates do not turn batches off: the next backlog is atomic.
		e.addEvents(t, 40)
		if n, err := r.PublishPending(ctx); err != nil || n != 40 {
			t.Fatalf("PublishPending = %d, %v; want 40", n, err)
		}
		if b := batchIDs(t, e); b[len(b)-1] == "" {
			t.Error("the backlog after a duplicate refusal was not sent as a batch")
		}
	})

	t.Run("a stream without atomic batches gets every message", func(t *testing.T) {
		e := newEnv(t)
		ctx := testContext(t)
		if _, err := e.js.UpdateStream(ctx, jetstream.StreamConfig{
			Name: "SVC", Subjects: []string{"svc.>"}, Storage: jetstream.FileStorage, Duplicates: 2 * time.Minute,
		}); err != nil {
			t.Fatal(err)
		}
		r := e.relay(nil)
		for range 2 {
			want := ids(e.addEvents(t, 64))
			if n, err := r.PublishPending(ctx); err != nil || n != 64 {
				t.Fatalf("PublishPending = %d, %v; want 64", n, err)
			}
			if got := ids(e.streamEvents(t)); !slices.Equal(got[len(got)-64:], want) {
				t.Fatal("the stream lacks the batch's events")
			}
		}
		if m := e.streamMsgs(t); m != 128 {
			t.Errorf("stream holds %d messages, want 128", m)
		}
	})
}

// sameEvent compares the fields an event carries through the outbox (whose
// times are Postgres's, to the microsecond).
func sameEvent(a, b bus.Event) bool {
	return a.ID == b.ID && a.Source == b.Source && a.Type == b.Type && a.Subject == b.Subject &&
		a.Time.Sub(b.Time).Abs() < time.Microsecond && a.DataContentType == b.DataContentType && a.TraceParent == b.TraceParent &&
		bytes.Equal(a.Data, b.Data)
}
