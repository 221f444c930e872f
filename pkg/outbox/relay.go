package outbox

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/localeurope/piazza/pkg/bus"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/synadia-io/orbit.go/jetstreamext"
)

// Publisher publishes a batch of messages and returns once JetStream has
// acknowledged every one of them (or with an error if any failed).
type Publisher interface {
	PublishBatch(ctx context.Context, msgs []*nats.Msg) error
}

// Relay publishes committed outbox rows of one schema.
type Relay struct {
	Pool      *pgxpool.Pool
	Publisher Publisher
	Log       *slog.Logger
	Metrics   *Metrics // optional
	// BatchSize bounds the rows published per transaction (default 256).
	BatchSize int
	// Wake, if set, wakes the relay when a transaction on its pool's
	// connections that added rows ends (see Wake); PollInterval covers the
	// rest.
	Wake *Wake
	// PollInterval bounds how long a row waits without a wake-up: one
	// written by another process (default 1s).
	PollInterval time.Duration
	// Retention keeps published rows this long so a stream can be re-fed
	// (default 7 days); older ones are deleted.
	Retention time.Duration
	// LateCommit is how long after its round a row may still commit below
	// the rows that round published and be found by the next wake-up
	// (default 2s); one that commits later still is published by the next
	// poll. See Run.
	LateCommit time.Duration

	mu sync.Mutex
	// rounds are this relay's recent rounds: when each ended and the
	// highest seq it published, oldest first; none older than LateCommit
	// but the newest of those.
	rounds []round
}

type round struct {
	at  time.Time
	seq int64
}

func (r *Relay) defaults() {
	if r.BatchSize <= 0 {
		r.BatchSize = 256
	}
	if r.PollInterval <= 0 {
		r.PollInterval = time.Second
	}
	if r.Retention <= 0 {
		r.Retention = 7 * 24 * time.Hour
	}
	if r.LateCommit <= 0 {
		r.LateCommit = 2 * time.Second
	}
}

// from is where a wake-up round starts reading: after the highest seq this
// relay published at least LateCommit ago, or at the start of the table.
//
// A marked row leaves the unpublished index only when vacuum removes its
// old version, and until then every read of the index steps over it: tens
// of thousands of entries between two autovacuum runs under load, and a
// millisecond or more per round (a bitmap scan, which never marks index
// entries dead, visited 1,307 heap pages for 10 rows in 20,000). A round
// that starts at from steps only over what was published in the last
// LateCommit. A row below from can still commit (its transaction took its
// seq earlier and committed late): the poll's rounds read the whole table.
func (r *Relay) from(now time.Time) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.trim(now) {
		return r.rounds[0].seq + 1
	}
	return 0
}

// remember records a round that published rows up to seq.
func (r *Relay) remember(now time.Time, seq int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.trim(now)
	r.rounds = append(r.rounds, round{at: now, seq: seq})
}

// trim drops the rounds older than LateCommit but the newest of them, and
// reports whether that one is left (first).
func (r *Relay) trim(now time.Time) bool {
	i := 0
	for i < len(r.rounds) && now.Sub(r.rounds[i].at) >= r.LateCommit {
		i++
	}
	if i == 0 {
		return false
	}
	r.rounds = r.rounds[i-1:]
	return true
}

func (r *Relay) schema() string {
	return r.Pool.Config().ConnConfig.RuntimeParams["search_path"]
}

// Run publishes until ctx is done: when Wake signals a commit of this
// process, and at least every PollInterval. A round after a wake-up reads
// the rows after those it published LateCommit ago; the first round and the
// poll's read the whole table, so a row that commits later than that is
// published within PollInterval.
func (r *Relay) Run(ctx context.Context) error {
	r.defaults()
	var wake <-chan struct{}
	if r.Wake != nil {
		wake = r.Wake.c
	}
	poll := time.NewTicker(r.PollInterval)
	defer poll.Stop()
	lastPrune, lastBacklog := time.Time{}, time.Time{}
	// soon wakes the relay again shortly after it found another relay at
	// work (another replica's): that round may have missed rows this one
	// was woken for.
	soon := time.NewTimer(time.Hour)
	soon.Stop()
	defer soon.Stop()
	full := true
	for {
		for {
			from := int64(0)
			if !full {
				from = r.from(time.Now())
			}
			n, busy, err := r.publishPending(ctx, from)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				r.Log.Warn("outbox relay failed; retrying", "schema", r.schema(), "err", err)
				break
			}
			if busy {
				soon.Reset(10 * time.Millisecond)
			}
			if n < r.BatchSize {
				break
			}
		}
		// The backlog gauge at most once a second: counting on every wake-up
		// was a statement per commit under load.
		if r.Metrics != nil && time.Since(lastBacklog) >= time.Second {
			if n, err := Backlog(ctx, r.Pool); err == nil {
				r.Metrics.backlog.WithLabelValues(r.schema()).Set(float64(n))
			}
			lastBacklog = time.Now()
		}
		if time.Since(lastPrune) > time.Hour {
			if n, err := r.Prune(ctx); err != nil && ctx.Err() == nil {
				r.Log.Warn("outbox prune failed", "err", err)
			} else if n > 0 {
				r.Log.Info("outbox pruned", "rows", n)
			}
			lastPrune = time.Now()
		}
		full = false
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
		case <-poll.C:
			full = true
		case <-soon.C:
		}
	}
}

type row struct {
	Seq         int64
	EventID     string
	Subject     string
	Source      string
	Type        string
	CESubject   string
	EventTime   time.Time
	ContentType string
	TraceParent string
	Data        []byte
	CreatedAt   time.Time
}

// PublishPending publishes one batch of unpublished rows in sequence order
// and marks them, returning how many it published: 0 also when another
// relay of the schema is publishing at the time.
func (r *Relay) PublishPending(ctx context.Context) (int, error) {
	n, _, err := r.publishPending(ctx, 0)
	return n, err
}

// publishPending is PublishPending over the rows from seq from on that also
// says whether another relay was at work.
func (r *Relay) publishPending(ctx context.Context, from int64) (published int, busy bool, err error) {
	r.defaults()
	defer func() {
		if err != nil {
			err = fmt.Errorf("outbox: relay %s: %w", r.schema(), err)
		}
	}()
	conn, err := r.Pool.Acquire(ctx)
	if err != nil {
		return 0, false, err
	}
	defer conn.Release()
	// An error on the way (a failed publish, say) rolls the transaction
	// back here, which frees the lock at once for the next round: a
	// connection released inside it would be closed by the pool, and the
	// lock held until its server process noticed.
	defer func() {
		if err != nil && conn.Conn().PgConn().TxStatus() != 'I' {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			_, _ = conn.Exec(rctx, `ROLLBACK`)
		}
	}()

	// A round is two round trips and the publish: the transaction, its
	// lock and its rows, marked published, in one batch; the commit, once
	// JetStream has acknowledged them, in another. A publish that fails
	// rolls the marks back. Under load every round trip and statement waits
	// for the CPU, and the relay's lag is made of them.
	//
	// One relay at a time per schema. A relay that finds another at work
	// returns at once instead of queueing behind it, and Run tries again
	// 10 ms later for the rows the other's query may not have seen.
	// (Queueing made the replicas of a service take turns on every wake-up,
	// each round waiting out the others' publishes: 61 ms per round at 300
	// notifications/s over three notifiers.) The marking statement takes
	// the lock once more (it is the session's already, or it was freed in
	// between: a relay that marks rows holds it), once, before it reads
	// anything: without the lock it reads nothing (a lock tried for each
	// row instead read every unpublished row of a busy outbox in each of
	// the other replicas' rounds). It reads the seqs first, into an array,
	// and then marks them one by one by the primary key: as a join, a plan
	// made on a small table walked the whole unpublished index in every
	// round. It checks each row it marks as it is then, not as its
	// snapshot, taken before the lock, has it: a row the relay before
	// marked is skipped.
	//
	// The commit need not wait for its WAL flush (synchronous_commit off
	// for this transaction only): if the server crashes before the flush,
	// the marks are lost and the rows are published again with the same
	// Nats-Msg-Id, which JetStream drops as duplicates. That is the crash
	// case the relay already handles, and it takes a disk flush out of
	// every relay round.
	//
	// The round's statement reads the outbox by its indexes only, whatever
	// its statistics say (seq and bitmap scans off, for this transaction
	// only). It is prepared once per connection and runs a generic plan
	// from its sixth run on: made while the outbox was a few pages (a new
	// deployment, before autovacuum's first analyze), the plan that marked
	// rows scanned the whole table, and kept doing so as the table grew
	// (6–9 ms a round in the latency benchmark). Planning each round for
	// the table as it is instead (plan_cache_mode) cost a fifth of the
	// relay's CPU in PostgreSQL. A bitmap scan would also leave the index
	// entries of marked rows unmarked as dead (see from).
	b := &pgx.Batch{}
	b.Queue(`BEGIN`)
	b.Queue(`SELECT pg_try_advisory_xact_lock(hashtextextended(current_schema() || '.outbox.relay', 0))
		FROM set_config('synchronous_commit', 'off', true) s, set_config('enable_seqscan', 'off', true) q,
		     set_config('enable_bitmapscan', 'off', true) b`)
	b.Queue(`UPDATE outbox SET published_at = clock_timestamp()
		WHERE seq = ANY (ARRAY(
		        SELECT seq FROM outbox
		        WHERE published_at IS NULL AND seq >= $2
		          AND (SELECT pg_try_advisory_xact_lock(hashtextextended(current_schema() || '.outbox.relay', 0)))
		        ORDER BY seq LIMIT $1))
		  AND published_at IS NULL
		RETURNING seq, event_id::text, subject, source, type, ce_subject, event_time, content_type, traceparent, data, created_at`,
		r.BatchSize, from)
	br := conn.SendBatch(ctx, b)
	var locked bool
	var batch []row
	_, err = br.Exec()
	if err == nil {
		err = br.QueryRow().Scan(&locked)
	}
	if err == nil {
		var rows pgx.Rows
		if rows, err = br.Query(); err == nil {
			batch, err = pgx.CollectRows(rows, pgx.RowToStructByPos[row])
		}
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, false, err
	}
	if len(batch) == 0 {
		_, err = conn.Exec(ctx, `COMMIT`)
		return 0, !locked, err
	}
	// RETURNING keeps no order; JetStream's must be the outbox's.
	slices.SortFunc(batch, func(a, b row) int { return cmp.Compare(a.Seq, b.Seq) })

	msgs := make([]*nats.Msg, len(batch))
	for i, b := range batch {
		ev := bus.Event{ID: b.EventID, Source: b.Source, Type: b.Type, Subject: b.CESubject, Time: b.EventTime,
			DataContentType: b.ContentType, TraceParent: b.TraceParent, Data: b.Data}
		msgs[i] = ev.Msg(b.Subject)
	}
	if err := r.Publisher.PublishBatch(ctx, msgs); err != nil {
		return 0, false, fmt.Errorf("publish: %w", err)
	}
	acked := time.Now()
	tag, err := conn.Exec(ctx, `COMMIT`)
	if err == nil && tag.String() != "COMMIT" {
		err = fmt.Errorf("commit: %s", tag)
	}
	if err != nil {
		return 0, false, err
	}
	published = len(batch)
	r.remember(time.Now(), batch[len(batch)-1].Seq)
	if r.Metrics != nil {
		for _, b := range batch {
			r.Metrics.lag.WithLabelValues(r.schema()).Observe(acked.Sub(b.CreatedAt).Seconds())
		}
		r.Metrics.published.WithLabelValues(r.schema()).Add(float64(published))
	}
	return published, false, nil
}

// Prune deletes rows published longer ago than Retention.
func (r *Relay) Prune(ctx context.Context) (int64, error) {
	r.defaults()
	tag, err := r.Pool.Exec(ctx, `DELETE FROM outbox WHERE published_at < now() - make_interval(secs => $1)`, r.Retention.Seconds())
	if err != nil {
		return 0, fmt.Errorf("outbox: prune: %w", err)
	}
	return tag.RowsAffected(), nil
}

// Backlog counts rows not yet published.
func Backlog(ctx context.Context, pool *pgxpool.Pool) (int64, error) {
	var n int64
	err := pool.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE published_at IS NULL`).Scan(&n)
	return n, err
}

// JetStream publishes a relay's batches to JetStream and returns once every
// message is stored.
//
// A batch of AtomicMin messages or more goes as one atomic batch (ADR-50,
// nats-server 2.12+, the stream's allow_atomic): with sync_interval always,
// nats-server writes the batch and syncs its file once, where separate
// publishes cost a sync each — the difference between about 4,500 and
// 30,000 stored messages a second on one disk. A batch costs about 5 ms
// whatever its size (the server stages it in a store of its own), so
// smaller ones, the common case when the relay keeps up, are published
// message by message, asynchronously, and their PubAcks awaited.
//
// An atomic batch is all or nothing: when the server refuses one (a message
// id it has seen, which a republish after a lost mark brings; a stream without
// allow_atomic; a server that predates batches), the same messages are
// published one by one, and JetStream drops the duplicates by Nats-Msg-Id.
// After a refusal that is not about duplicates, batches are not tried again.
type JetStream struct {
	JS jetstream.JetStream
	// AckTimeout bounds the wait for a batch's acknowledgements (default 10s).
	AckTimeout time.Duration
	// AtomicMin is the smallest batch sent atomically (default 32; negative:
	// never).
	AtomicMin int

	noAtomic atomic.Bool
}

// errCodeBatchDuplicate is JetStream's error code for an atomic batch that
// holds a message id the stream has already stored.
const errCodeBatchDuplicate = 10201

// PublishBatch implements Publisher.
func (p *JetStream) PublishBatch(ctx context.Context, msgs []*nats.Msg) error {
	minAtomic := p.AtomicMin
	if minAtomic == 0 {
		minAtomic = 32
	}
	if minAtomic > 0 && len(msgs) >= minAtomic && !p.noAtomic.Load() {
		err := p.publishAtomic(ctx, msgs)
		if err == nil || ctx.Err() != nil {
			return err
		}
		var apiErr *jetstream.APIError
		if !errors.As(err, &apiErr) || apiErr.ErrorCode != errCodeBatchDuplicate {
			p.noAtomic.Store(true)
		}
		for _, m := range msgs {
			m.Header.Del(jetstreamext.BatchIDHeader)
			m.Header.Del(jetstreamext.BatchSeqHeader)
			m.Header.Del(jetstreamext.BatchCommitHeader)
		}
	}
	return p.publishEach(ctx, msgs)
}

func (p *JetStream) timeout() time.Duration {
	if p.AckTimeout <= 0 {
		return 10 * time.Second
	}
	return p.AckTimeout
}

func (p *JetStream) publishAtomic(ctx context.Context, msgs []*nats.Msg) error {
	ctx, cancel := context.WithTimeout(ctx, p.timeout())
	defer cancel()
	// No flow control: the commit's reply says whether the whole batch was
	// stored, and a refusal stores nothing.
	_, err := jetstreamext.PublishMsgBatch(ctx, p.JS, msgs, jetstreamext.BatchFlowControl{AckTimeout: p.timeout()})
	return err
}

func (p *JetStream) publishEach(ctx context.Context, msgs []*nats.Msg) error {
	futures := make([]jetstream.PubAckFuture, 0, len(msgs))
	for _, m := range msgs {
		f, err := p.JS.PublishMsgAsync(m)
		if err != nil {
			return err
		}
		futures = append(futures, f)
	}
	deadline := time.NewTimer(p.timeout())
	defer deadline.Stop()
	var errs []error
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			errs = append(errs, err)
		case <-deadline.C:
			return errors.New("timed out waiting for PubAcks")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return errors.Join(errs...)
}

// Metrics of the relay.
type Metrics struct {
	published *prometheus.CounterVec
	lag       *prometheus.HistogramVec
	backlog   *prometheus.GaugeVec
}

// NewMetrics registers the outbox metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "piazza_outbox_published_total", Help: "Outbox events published to JetStream.",
		}, []string{"schema"}),
		lag: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "piazza_outbox_relay_lag_seconds", Help: "Time from writing an outbox row to its PubAck.",
			Buckets: []float64{.001, .0025, .005, .01, .02, .03, .05, .075, .1, .15, .2, .25, .35, .5, 1, 2.5, 5, 10},
		}, []string{"schema"}),
		backlog: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "piazza_outbox_backlog", Help: "Outbox rows not yet published.",
		}, []string{"schema"}),
	}
	reg.MustRegister(m.published, m.lag, m.backlog)
	return m
}
