package bus

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

type permanentError struct{ err error }

func (p permanentError) Error() string { return p.err.Error() }
func (p permanentError) Unwrap() error { return p.err }

// Permanent marks err as one that redelivery cannot fix (bad data, an unknown
// version): the consume loop terminates the message instead of retrying.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether err was marked with Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

// Delivery tells a handler where a message sits in its stream.
type Delivery struct {
	StreamSeq    uint64
	NumDelivered uint64
	Subject      string
}

// Handler processes one event. It returns nil when done (the message is
// acked), a Permanent error for a poison message (terminated) or any other
// error for a transient failure (redelivered after a backoff).
type Handler func(ctx context.Context, ev Event, d Delivery) error

// BatchHandler processes several events at once, in order, all or nothing:
// nil when all are done (every message is acked); any error and each message
// is handed to the Handler on its own, which decides its fate as if no batch
// had been tried.
type BatchHandler func(ctx context.Context, evs []Event, ds []Delivery) error

// Poison is told about every message the loop gives up on, so that it can be
// kept where an operator can see it.
type Poison func(ctx context.Context, ev Event, d Delivery, reason error)

// ConsumerSpec describes one durable pull consumer and its handler.
type ConsumerSpec struct {
	Stream  string
	Config  jetstream.ConsumerConfig // Durable and FilterSubject(s) set by the caller; AckPolicy is always explicit
	Handler Handler
	Poison  Poison // optional
	// Backoff returns the redelivery delay after the n-th failed delivery
	// (default: 500ms doubling to 30s).
	Backoff func(n uint64) time.Duration
	// HandlerTimeout bounds one handler call (default 30s; keep it below AckWait).
	HandlerTimeout time.Duration
	// Parallel, above 1, handles up to that many messages at once. Messages
	// about one thing (the same ce-subject, else the same NATS subject) go
	// to the same lane and are handled one after another, in stream order;
	// messages about different things may finish in any order. The handler
	// must then be safe to run concurrently. 0 or 1: one at a time.
	Parallel int
	// Batch, optional, takes the messages that are already waiting in a
	// lane (up to MaxBatch, default 32) together, e.g. in one database
	// transaction; a message that finds its lane idle is handled at once,
	// on its own. Batches form only under load, and cost no latency.
	Batch    BatchHandler
	MaxBatch int
	Metrics  *ConsumeMetrics // optional
}

// DefaultMaxDeliver caps deliveries of one message when the spec sets none.
const DefaultMaxDeliver = 10

func defaultBackoff(n uint64) time.Duration {
	d := 500 * time.Millisecond
	for i := uint64(1); i < n && d < 30*time.Second; i++ {
		d *= 2
	}
	return min(d, 30*time.Second)
}

// Consume creates or updates the durable consumer and processes messages
// until ctx is done. It then stops fetching, lets the handler finish the
// message in hand and returns nil.
func Consume(ctx context.Context, js jetstream.JetStream, spec ConsumerSpec, log *slog.Logger) error {
	cfg := spec.Config
	cfg.AckPolicy = jetstream.AckExplicitPolicy
	if cfg.MaxDeliver == 0 {
		cfg.MaxDeliver = DefaultMaxDeliver
	}
	if cfg.AckWait == 0 {
		cfg.AckWait = 60 * time.Second
	}
	if spec.Backoff == nil {
		spec.Backoff = defaultBackoff
	}
	if spec.HandlerTimeout == 0 {
		spec.HandlerTimeout = 30 * time.Second
	}
	log = log.With("stream", spec.Stream, "consumer", cfg.Durable)
	cons, err := js.CreateOrUpdateConsumer(ctx, spec.Stream, cfg)
	if err != nil && ctx.Err() != nil {
		return nil // shutting down before the consumer existed
	}
	if err != nil {
		return fmt.Errorf("bus: consumer %s on %s: %w", cfg.Durable, spec.Stream, err)
	}
	// Handler calls get a context that outlives ctx by the drain: the message
	// in hand finishes and is acked during shutdown instead of redelivered.
	hctx, hcancel := context.WithCancel(context.WithoutCancel(ctx))
	defer hcancel()
	one := func(msg jetstream.Msg) { handle(hctx, msg, spec, cfg.MaxDeliver, log) }
	var deliver func(jetstream.Msg)
	var closeLanes func()
	if spec.Batch != nil {
		maxBatch := spec.MaxBatch
		if maxBatch <= 0 {
			maxBatch = 32
		}
		deliver, closeLanes = batchLanes(max(spec.Parallel, 1), maxBatch, func(msgs []jetstream.Msg) {
			handleBatch(hctx, msgs, spec, cfg.MaxDeliver, log)
		})
	} else {
		deliver, closeLanes = lanes(spec.Parallel, one)
	}
	defer closeLanes()
	cc, err := cons.Consume(deliver, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		if !errors.Is(err, jetstream.ErrNoHeartbeat) {
			log.Warn("consume error", "err", err)
		} else {
			log.Debug("consume heartbeat missed", "err", err)
		}
	}))
	if err != nil {
		return fmt.Errorf("bus: consume %s: %w", cfg.Durable, err)
	}
	<-ctx.Done()
	cc.Drain()
	select {
	case <-cc.Closed():
	case <-time.After(spec.HandlerTimeout + time.Second):
		log.Warn("consumer did not drain in time")
		cc.Stop()
	}
	return nil
}

// lanes returns the message callback for Consume: with n <= 1, h itself;
// otherwise a dispatcher to n goroutines, each running h on the messages of
// its lane in order. closeLanes stops them once the messages handed over
// are handled; messages delivered after it are left unacked (redelivered).
func lanes(n int, h func(jetstream.Msg)) (deliver func(jetstream.Msg), closeLanes func()) {
	if n <= 1 {
		return h, func() {}
	}
	return batchLanes(n, 1, func(msgs []jetstream.Msg) { h(msgs[0]) })
}

// batchLanes is lanes whose goroutines take what is waiting in their lane,
// up to maxBatch messages, and run h on them together, in order.
func batchLanes(n, maxBatch int, h func([]jetstream.Msg)) (deliver func(jetstream.Msg), closeLanes func()) {
	var (
		mu     sync.RWMutex
		closed bool
		wg     sync.WaitGroup
		queues = make([]chan jetstream.Msg, n)
	)
	for i := range queues {
		q := make(chan jetstream.Msg, max(8, maxBatch))
		queues[i] = q
		wg.Go(func() {
			batch := make([]jetstream.Msg, 0, maxBatch)
			for msg := range q {
				batch = append(batch[:0], msg)
			more:
				for len(batch) < maxBatch {
					select {
					case m, ok := <-q:
						if !ok {
							break more
						}
						batch = append(batch, m)
					default:
						break more
					}
				}
				h(batch)
				clear(batch)
			}
		})
	}
	deliver = func(msg jetstream.Msg) {
		mu.RLock()
		defer mu.RUnlock()
		if closed {
			return
		}
		queues[laneOf(msg, n)] <- msg // blocks while the lane is full: back pressure
	}
	closeLanes = func() {
		mu.Lock()
		if !closed {
			closed = true
			for _, q := range queues {
				close(q)
			}
		}
		mu.Unlock()
		wg.Wait()
	}
	return deliver, closeLanes
}

// laneOf picks a message's lane by what it is about: its ce-subject, else
// its NATS subject.
func laneOf(msg jetstream.Msg, n int) int {
	key := ""
	if h := msg.Headers(); h != nil {
		key = h.Get(hdrPrefix + "subject")
	}
	if key == "" {
		key = msg.Subject()
	}
	f := fnv.New32a()
	_, _ = f.Write([]byte(key))
	return int(f.Sum32() % uint32(n))
}

// handleBatch runs spec.Batch on msgs and acks them all, or, when there is
// only one, when one is not a CloudEvent, or when the batch fails, handles
// each on its own.
func handleBatch(ctx context.Context, msgs []jetstream.Msg, spec ConsumerSpec, maxDeliver int, log *slog.Logger) {
	if len(msgs) > 1 {
		evs := make([]Event, len(msgs))
		ds := make([]Delivery, len(msgs))
		ok := true
		for i, msg := range msgs {
			var err error
			if evs[i], err = Decode(&nats.Msg{Subject: msg.Subject(), Header: msg.Headers(), Data: msg.Data()}); err != nil {
				ok = false
				break
			}
			ds[i] = delivery(msg, spec)
		}
		if ok {
			hctx, cancel := context.WithTimeout(ctx, spec.HandlerTimeout)
			err := safeCallBatch(hctx, spec.Batch, evs, ds)
			cancel()
			if err == nil {
				for i, msg := range msgs {
					spec.Metrics.count(spec.Stream, spec.Config.Durable, "acked")
					if aerr := msg.Ack(); aerr != nil {
						log.Warn("ack failed; the message will be redelivered and deduplicated",
							"event_id", evs[i].ID, "subject", ds[i].Subject, "stream_seq", ds[i].StreamSeq, "err", aerr)
					}
				}
				return
			}
			log.Debug("batch failed; handling its messages one by one", "messages", len(msgs), "err", err)
		}
	}
	for _, msg := range msgs {
		handle(ctx, msg, spec, maxDeliver, log)
	}
}

func delivery(msg jetstream.Msg, spec ConsumerSpec) Delivery {
	d := Delivery{Subject: msg.Subject()}
	if meta, err := msg.Metadata(); err == nil {
		d.StreamSeq, d.NumDelivered = meta.Sequence.Stream, meta.NumDelivered
		spec.Metrics.observePending(spec.Stream, spec.Config.Durable, meta.NumPending)
	}
	return d
}

func safeCallBatch(ctx context.Context, h BatchHandler, evs []Event, ds []Delivery) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("batch handler panic: %v", v)
		}
	}()
	return h(ctx, evs, ds)
}

func handle(ctx context.Context, msg jetstream.Msg, spec ConsumerSpec, maxDeliver int, log *slog.Logger) {
	d := delivery(msg, spec)
	ev, err := Decode(&nats.Msg{Subject: msg.Subject(), Header: msg.Headers(), Data: msg.Data()})
	if err == nil {
		hctx, cancel := context.WithTimeout(ctx, spec.HandlerTimeout)
		err = safeCall(hctx, spec.Handler, ev, d)
		cancel()
	}
	attrs := []any{"event_id", ev.ID, "event_type", ev.Type, "subject", d.Subject, "stream_seq", d.StreamSeq, "delivery", d.NumDelivered}
	switch {
	case err == nil:
		spec.Metrics.count(spec.Stream, spec.Config.Durable, "acked")
		if aerr := msg.Ack(); aerr != nil {
			log.Warn("ack failed; the message will be redelivered and deduplicated", append(attrs, "err", aerr)...)
		}
	case IsPermanent(err) || (maxDeliver > 0 && d.NumDelivered >= uint64(maxDeliver)):
		spec.Metrics.count(spec.Stream, spec.Config.Durable, "terminated")
		log.Error("event terminated as poison", append(attrs, "err", err)...)
		if spec.Poison != nil {
			spec.Poison(ctx, ev, d, err)
		}
		_ = msg.TermWithReason(truncate(err.Error(), 200))
	default:
		spec.Metrics.count(spec.Stream, spec.Config.Durable, "nacked")
		delay := spec.Backoff(d.NumDelivered)
		log.Warn("event failed; redelivering", append(attrs, "err", err, "delay_ms", delay.Milliseconds())...)
		_ = msg.NakWithDelay(delay)
	}
}

// safeCall turns a handler panic into a permanent error: a panic on a message
// would panic again on every redelivery.
func safeCall(ctx context.Context, h Handler, ev Event, d Delivery) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = Permanent(fmt.Errorf("handler panic: %v", v))
		}
	}()
	return h(ctx, ev, d)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// ConsumeMetrics count handled messages by outcome and track consumer lag.
type ConsumeMetrics struct {
	handled *prometheus.CounterVec
	pending *prometheus.GaugeVec
}

// NewConsumeMetrics registers the consumer metrics with reg.
func NewConsumeMetrics(reg prometheus.Registerer) *ConsumeMetrics {
	m := &ConsumeMetrics{
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "piazza_consumer_messages_total", Help: "Messages handled by outcome (acked, nacked, terminated).",
		}, []string{"stream", "consumer", "outcome"}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "piazza_consumer_pending_messages", Help: "Messages in the stream not yet delivered to the consumer (lag).",
		}, []string{"stream", "consumer"}),
	}
	reg.MustRegister(m.handled, m.pending)
	return m
}

func (m *ConsumeMetrics) count(stream, consumer, outcome string) {
	if m != nil {
		m.handled.WithLabelValues(stream, consumer, outcome).Inc()
	}
}

func (m *ConsumeMetrics) observePending(stream, consumer string, n uint64) {
	if m != nil {
		m.pending.WithLabelValues(stream, consumer).Set(float64(n))
	}
}
