package bus_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/localeurope/piazza/pkg/bus"
	"github.com/localeurope/piazza/pkg/bus/bustest"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

func TestConsume(t *testing.T) {
	_, js := bustest.Connect(t)

	t.Run("a handled event is acked once", func(t *testing.T) {
		c := newConsumerTest(t, js, "ok", func(context.Context, bus.Event, bus.Delivery) error { return nil })
		ev := c.publish(t, "stall.checked_in")
		c.start(t, bus.ConsumerSpec{})
		c.waitSettled(t, 1)

		calls := c.calls()
		if len(calls) != 1 || calls[0].ev.ID != ev.ID {
			t.Fatalf("handler calls = %+v, want one with event %s", calls, ev.ID)
		}
		if d := calls[0].d; d.NumDelivered != 1 || d.StreamSeq != 1 || d.Subject != c.subject("stall.checked_in") {
			t.Errorf("delivery = %+v, want the first delivery of stream message 1 on its subject", d)
		}
		info := c.info(t)
		if info.NumRedelivered != 0 || info.Delivered.Consumer != 1 {
			t.Errorf("consumer delivered %d times with %d redelivered, want once", info.Delivered.Consumer, info.NumRedelivered)
		}
		c.assertOutcomes(t, map[string]float64{"acked": 1})
		c.assertNoPoison(t)
	})

	t.Run("a transient error is redelivered after the backoff and then acked", func(t *testing.T) {
		var mu sync.Mutex
		failed := false
		c := newConsumerTest(t, js, "retry", func(context.Context, bus.Event, bus.Delivery) error {
			mu.Lock()
			defer mu.Unlock()
			if !failed {
				failed = true
				return errors.New("database is restarting")
			}
			return nil
		})
		c.publish(t, "stall.checked_in")
		c.start(t, bus.ConsumerSpec{})
		c.waitSettled(t, 1)

		calls := c.calls()
		if len(calls) != 2 {
			t.Fatalf("handler ran %d times, want 2", len(calls))
		}
		if calls[0].d.NumDelivered != 1 || calls[1].d.NumDelivered != 2 {
			t.Errorf("deliveries = %d, %d; want 1, 2", calls[0].d.NumDelivered, calls[1].d.NumDelivered)
		}
		c.assertOutcomes(t, map[string]float64{"nacked": 1, "acked": 1})
		c.assertNoPoison(t)
	})

	t.Run("a permanent error terminates the message, tells Poison once and never redelivers", func(t *testing.T) {
		c := newConsumerTest(t, js, "permanent", func(_ context.Context, ev bus.Event, _ bus.Delivery) error {
			if ev.Type == "bad" {
				return bus.Permanent(errors.New("unknown payload version"))
			}
			return nil
		})
		bad := c.publishEvent(t, "stall.checked_in", bus.Event{Type: "bad"})
		c.start(t, bus.ConsumerSpec{})
		c.waitSettled(t, 1)
		// A later message is handled after the poison one: had the poison
		// message been nacked instead of terminated, it would come back too.
		good := c.publish(t, "stall.checked_in")
		c.waitSettled(t, 2)

		calls := c.calls()
		if len(calls) != 2 || calls[0].ev.ID != bad.ID || calls[1].ev.ID != good.ID {
			t.Fatalf("handler calls = %+v, want the bad event once, then the good one", calls)
		}
		p := c.onePoison(t)
		if p.ev.ID != bad.ID || p.d.StreamSeq != 1 || !bus.IsPermanent(p.reason) {
			t.Errorf("poison = %+v, want the bad event with its permanent error", p)
		}
		if info := c.info(t); info.NumRedelivered != 0 {
			t.Errorf("%d messages were redelivered", info.NumRedelivered)
		}
		c.assertOutcomes(t, map[string]float64{"terminated": 1, "acked": 1})
	})

	t.Run("a message still failing at MaxDeliver is terminated and told to Poison", func(t *testing.T) {
		c := newConsumerTest(t, js, "maxdeliver", func(context.Context, bus.Event, bus.Delivery) error {
			return errors.New("downstream is down")
		})
		ev := c.publish(t, "stall.checked_in")
		c.start(t, bus.ConsumerSpec{Config: jetstream.ConsumerConfig{MaxDeliver: 3}})
		c.waitSettled(t, 1)

		if n := len(c.calls()); n != 3 {
			t.Errorf("handler ran %d times, want 3", n)
		}
		p := c.onePoison(t)
		if p.ev.ID != ev.ID || p.d.NumDelivered != 3 || p.reason == nil || !strings.Contains(p.reason.Error(), "downstream is down") {
			t.Errorf("poison = %+v, want the event at its 3rd delivery with the last error", p)
		}
		c.assertOutcomes(t, map[string]float64{"nacked": 2, "terminated": 1})
	})

	t.Run("a handler panic is treated as a permanent error", func(t *testing.T) {
		c := newConsumerTest(t, js, "panic", func(context.Context, bus.Event, bus.Delivery) error {
			panic("nil map")
		})
		ev := c.publish(t, "stall.checked_in")
		c.start(t, bus.ConsumerSpec{})
		c.waitSettled(t, 1)

		if n := len(c.calls()); n != 1 {
			t.Errorf("handler ran %d times, want 1", n)
		}
		p := c.onePoison(t)
		if p.ev.ID != ev.ID || !bus.IsPermanent(p.reason) || !strings.Contains(p.reason.Error(), "nil map") {
			t.Errorf("poison = %+v, want the event with a permanent error naming the panic", p)
		}
		c.assertOutcomes(t, map[string]float64{"terminated": 1})
	})

	t.Run("a message that is not a CloudEvent goes to Poison without reaching the handler", func(t *testing.T) {
		c := newConsumerTest(t, js, "raw", func(context.Context, bus.Event, bus.Delivery) error { return nil })
		if _, err := js.Publish(testContext(t), c.subject("raw"), []byte("hello")); err != nil {
			t.Fatal(err)
		}
		c.start(t, bus.ConsumerSpec{})
		c.waitSettled(t, 1)

		if n := len(c.calls()); n != 0 {
			t.Errorf("handler ran %d times, want 0", n)
		}
		p := c.onePoison(t)
		if p.d.Subject != c.subject("raw") || p.d.StreamSeq != 1 || !bus.IsPermanent(p.reason) {
			t.Errorf("poison = %+v, want the raw message with a permanent error", p)
		}
		c.assertOutcomes(t, map[string]float64{"terminated": 1})
	})

	t.Run("cancelling the context makes Consume return nil", func(t *testing.T) {
		c := newConsumerTest(t, js, "cancel", func(context.Context, bus.Event, bus.Delivery) error { return nil })
		stop := c.start(t, bus.ConsumerSpec{})
		c.publish(t, "stall.checked_in")
		c.waitSettled(t, 1) // the loop is running
		if err := stop(); err != nil {
			t.Errorf("Consume returned %v, want nil", err)
		}
	})

	t.Run("the message in hand at shutdown is finished with a live context and acked", func(t *testing.T) {
		entered, release := make(chan struct{}), make(chan struct{})
		var handlerErr error
		c := newConsumerTest(t, js, "drain", func(ctx context.Context, _ bus.Event, _ bus.Delivery) error {
			close(entered)
			<-release
			handlerErr = ctx.Err()
			return nil
		})
		c.publish(t, "stall.checked_in")
		stop := c.start(t, bus.ConsumerSpec{})
		<-entered
		stopped := make(chan error, 1)
		go func() { stopped <- stop() }()
		close(release)
		if err := <-stopped; err != nil {
			t.Errorf("Consume returned %v, want nil", err)
		}
		if handlerErr != nil {
			t.Errorf("the handler's context was cancelled during shutdown: %v", handlerErr)
		}
		c.waitSettled(t, 1)
		c.assertOutcomes(t, map[string]float64{"acked": 1})
	})

	t.Run("Consume fails when the stream does not exist", func(t *testing.T) {
		err := bus.Consume(testContext(t), js, bus.ConsumerSpec{
			Stream: "NOPE", Config: jetstream.ConsumerConfig{Durable: "x"},
			Handler: func(context.Context, bus.Event, bus.Delivery) error { return nil },
		}, discardLog())
		if err == nil {
			t.Fatal("Consume succeeded on a missing stream")
		}
	})
}

type handlerCall struct {
	ev bus.Event
	d  bus.Delivery
}

type poisonCall struct {
	ev     bus.Event
	d      bus.Delivery
	reason error
}

// consumerTest is one stream, one durable consumer and a record of what the
// handler and the poison hook were given.
type consumerTest struct {
	js       jetstream.JetStream
	stream   string
	handler  bus.Handler
	registry *prometheus.Registry

	mu       sync.Mutex
	handled  []handlerCall
	poisoned []poisonCall
}

func newConsumerTest(tb testing.TB, js jetstream.JetStream, name string, h bus.Handler) *consumerTest {
	tb.Helper()
	stream := strings.ToUpper(name)
	createStream(tb, js, stream, name+".>")
	return &consumerTest{js: js, stream: stream, handler: h, registry: prometheus.NewRegistry()}
}

func (c *consumerTest) subject(suffix string) string {
	return strings.ToLower(c.stream) + ".ghent." + suffix
}

func (c *consumerTest) publish(tb testing.TB, suffix string) bus.Event {
	tb.Helper()
	return c.publishEvent(tb, suffix, bus.Event{})
}

// publishEvent publishes a sample event with ev's non-empty fields.
func (c *consumerTest) publishEvent(tb testing.TB, suffix string, ev bus.Event) bus.Event {
	tb.Helper()
	e, err := bus.NewEvent("test", "eu.piazza.test.thing.happened.v1", "thing/1", map[string]int{"n": 1})
	if err != nil {
		tb.Fatal(err)
	}
	if ev.Type != "" {
		e.Type = ev.Type
	}
	if _, err := c.js.PublishMsg(testContext(tb), e.Msg(c.subject(suffix))); err != nil {
		tb.Fatalf("publish: %v", err)
	}
	return e
}

// start runs Consume with spec (Stream, Durable, Handler, Poison, Metrics and
// a fast Backoff filled in) until the returned stop is called or the test ends.
func (c *consumerTest) start(tb testing.TB, spec bus.ConsumerSpec) (stop func() error) {
	tb.Helper()
	spec.Stream = c.stream
	spec.Config.Durable = "worker"
	spec.Handler = func(ctx context.Context, ev bus.Event, d bus.Delivery) error {
		c.mu.Lock()
		c.handled = append(c.handled, handlerCall{ev, d})
		c.mu.Unlock()
		return c.handler(ctx, ev, d)
	}
	spec.Poison = func(_ context.Context, ev bus.Event, d bus.Delivery, reason error) {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.poisoned = append(c.poisoned, poisonCall{ev, d, reason})
	}
	spec.Backoff = func(uint64) time.Duration { return 10 * time.Millisecond }
	spec.Metrics = bus.NewConsumeMetrics(c.registry)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- bus.Consume(ctx, c.js, spec, discardLog()) }()
	var once sync.Once
	var result error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case result = <-done:
			case <-time.After(time.Minute):
				result = errors.New("Consume did not return within a minute of cancel")
			}
		})
		return result
	}
	tb.Cleanup(func() {
		if err := stop(); err != nil {
			tb.Errorf("Consume: %v", err)
		}
	})
	return stop
}

// publishThings publishes each events about each of things things
// (ce-subject thing/<k>, body {"n": <n>}), round robin.
func (c *consumerTest) publishThings(tb testing.TB, things, each int) {
	tb.Helper()
	for n := range each {
		for k := range things {
			ev, err := bus.NewEvent("test", "eu.piazza.test.thing.happened.v1", fmt.Sprintf("thing/%d", k), map[string]int{"n": n})
			if err != nil {
				tb.Fatal(err)
			}
			if _, err := c.js.PublishMsg(testContext(tb), ev.Msg(c.subject("thing"))); err != nil {
				tb.Fatal(err)
			}
		}
	}
}

func (c *consumerTest) info(tb testing.TB) *jetstream.ConsumerInfo {
	tb.Helper()
	ctx := testContext(tb)
	cons, err := c.js.Consumer(ctx, c.stream, "worker")
	if err != nil {
		tb.Fatalf("consumer: %v", err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		tb.Fatalf("consumer info: %v", err)
	}
	return info
}

// waitSettled waits until the consumer's ack floor reaches stream message
// seq and nothing is pending or awaiting an ack.
func (c *consumerTest) waitSettled(tb testing.TB, seq uint64) {
	tb.Helper()
	var last *jetstream.ConsumerInfo
	waitFor(tb, fmt.Sprintf("consumer settled at stream message %d", seq), func() bool {
		ctx := testContext(tb)
		cons, err := c.js.Consumer(ctx, c.stream, "worker")
		if err != nil {
			return false
		}
		last, err = cons.Info(ctx)
		return err == nil && last.AckFloor.Stream >= seq && last.NumAckPending == 0 && last.NumPending == 0
	}, func() string { return fmt.Sprintf("last consumer info: %+v", last) })
}

func (c *consumerTest) calls() []handlerCall {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]handlerCall(nil), c.handled...)
}

func (c *consumerTest) onePoison(tb testing.TB) poisonCall {
	tb.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.poisoned) != 1 {
		tb.Fatalf("Poison was called %d times, want once: %+v", len(c.poisoned), c.poisoned)
	}
	return c.poisoned[0]
}

func (c *consumerTest) assertNoPoison(tb testing.TB) {
	tb.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.poisoned) != 0 {
		tb.Errorf("Poison was called: %+v", c.poisoned)
	}
}

// assertOutcomes compares piazza_consumer_messages_total by outcome.
func (c *consumerTest) assertOutcomes(tb testing.TB, want map[string]float64) {
	tb.Helper()
	families, err := c.registry.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "piazza_consumer_messages_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" {
					got[l.GetValue()] = m.GetCounter().GetValue()
				}
			}
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		tb.Errorf("messages by outcome = %v, want %v", got, want)
	}
}

// waitFor polls cond until it holds, failing the test after a generous
// deadline; describe, if set, explains the last state seen.
func waitFor(tb testing.TB, what string, cond func() bool, describe func() string) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			msg := ""
			if describe != nil {
				msg = describe()
			}
			tb.Fatalf("gave up waiting for %s; %s", what, msg)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func discardLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestConsumeStoppedBeforeItStarts(t *testing.T) {
	_, js := bustest.Connect(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := bus.Consume(ctx, js, bus.ConsumerSpec{Stream: "NOWHERE", Config: jetstream.ConsumerConfig{Durable: "early"},
		Handler: func(context.Context, bus.Event, bus.Delivery) error { return nil }}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("Consume after shutdown began = %v, want nil: stopping is not a failure", err)
	}
	err = bus.Consume(context.Background(), js, bus.ConsumerSpec{Stream: "NOWHERE", Config: jetstream.ConsumerConfig{Durable: "late"},
		Handler: func(context.Context, bus.Event, bus.Delivery) error { return nil }}, slog.New(slog.DiscardHandler))
	if err == nil {
		t.Fatal("Consume on a missing stream succeeded")
	}
}

// TestConsumeParallel: with Parallel, messages about different things are
// handled at the same time, and those about one thing in stream order.
func TestConsumeParallel(t *testing.T) {
	_, js := bustest.Connect(t)
	var (
		mu       sync.Mutex
		inFlight int
		peak     int
		order    = map[string][]int{}
	)
	c := newConsumerTest(t, js, "parallel", func(_ context.Context, ev bus.Event, _ bus.Delivery) error {
		mu.Lock()
		inFlight++
		peak = max(peak, inFlight)
		mu.Unlock()
		time.Sleep(2 * time.Millisecond)
		var body struct{ N int }
		if err := ev.Unmarshal(&body); err != nil {
			return bus.Permanent(err)
		}
		mu.Lock()
		inFlight--
		order[ev.Subject] = append(order[ev.Subject], body.N)
		mu.Unlock()
		return nil
	})
	const things, each = 8, 25
	c.publishThings(t, things, each)
	c.start(t, bus.ConsumerSpec{Parallel: 4})
	c.waitSettled(t, things*each)

	mu.Lock()
	defer mu.Unlock()
	if peak < 2 {
		t.Errorf("at most %d handler ran at once, want several", peak)
	}
	if peak > 4 {
		t.Errorf("%d handlers ran at once, want at most Parallel = 4", peak)
	}
	for k := range things {
		got := order[fmt.Sprintf("thing/%d", k)]
		if len(got) != each {
			t.Errorf("thing/%d: %d messages handled, want %d", k, len(got), each)
			continue
		}
		for i, n := range got {
			if n != i {
				t.Errorf("thing/%d handled in the order %v, want stream order", k, got)
				break
			}
		}
	}
}

// TestConsumeBatches: with Batch, what waits in a lane is handed over
// together, in stream order per thing, and acked once; a failing batch falls
// back to the Handler message by message.
func TestConsumeBatches(t *testing.T) {
	_, js := bustest.Connect(t)

	t.Run("waiting messages come together, in order, acked once", func(t *testing.T) {
		var (
			mu     sync.Mutex
			sizes  []int
			order  = map[string][]int{}
			single int
		)
		gate := make(chan struct{})
		var gateOnce sync.Once
		c := newConsumerTest(t, js, "batched", func(_ context.Context, ev bus.Event, _ bus.Delivery) error {
			gateOnce.Do(func() { <-gate }) // the first message holds its lane while the rest queue up
			var body struct{ N int }
			if err := ev.Unmarshal(&body); err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			single++
			order[ev.Subject] = append(order[ev.Subject], body.N)
			return nil
		})
		const things, each = 4, 30
		c.start(t, bus.ConsumerSpec{Parallel: 2, MaxBatch: 16, Batch: func(_ context.Context, evs []bus.Event, ds []bus.Delivery) error {
			mu.Lock()
			defer mu.Unlock()
			sizes = append(sizes, len(evs))
			for i, ev := range evs {
				var body struct{ N int }
				if err := ev.Unmarshal(&body); err != nil {
					return err
				}
				if ds[i].StreamSeq == 0 {
					t.Errorf("event %s without its delivery", ev.ID)
				}
				order[ev.Subject] = append(order[ev.Subject], body.N)
			}
			return nil
		}})
		c.publishThings(t, things, each)
		time.Sleep(100 * time.Millisecond) // let the lanes fill behind the held message
		close(gate)
		c.waitSettled(t, things*each)

		mu.Lock()
		defer mu.Unlock()
		total := single
		biggest := 0
		for _, n := range sizes {
			total += n
			biggest = max(biggest, n)
		}
		if total != things*each {
			t.Errorf("%d messages handled (%d alone, batches %v), want %d", total, single, sizes, things*each)
		}
		if biggest < 2 || biggest > 16 {
			t.Errorf("batch sizes %v: want batches of several, at most MaxBatch = 16", sizes)
		}
		info := c.info(t)
		if info.NumRedelivered != 0 {
			t.Errorf("%d messages redelivered, want none", info.NumRedelivered)
		}
		c.assertOutcomes(t, map[string]float64{"acked": things * each})
		for k := range things {
			got := order[fmt.Sprintf("thing/%d", k)]
			if len(got) != each {
				t.Errorf("thing/%d: %d messages handled, want %d", k, len(got), each)
			}
			for i := 1; i < len(got); i++ {
				if got[i] != got[i-1]+1 {
					t.Errorf("thing/%d handled in the order %v, want stream order", k, got)
					break
				}
			}
		}
	})

	t.Run("a failing batch is handled message by message", func(t *testing.T) {
		gate := make(chan struct{})
		var once sync.Once
		var batches atomic.Int32
		c := newConsumerTest(t, js, "batchfail", func(_ context.Context, ev bus.Event, _ bus.Delivery) error {
			once.Do(func() { <-gate })
			if ev.Type == "eu.piazza.test.bad.v1" {
				return bus.Permanent(errors.New("unknown payload"))
			}
			return nil
		})
		c.start(t, bus.ConsumerSpec{Parallel: 1, Batch: func(context.Context, []bus.Event, []bus.Delivery) error {
			batches.Add(1)
			return errors.New("one of them is bad")
		}})
		c.publish(t, "thing") // held by the gate while the rest queue
		time.Sleep(50 * time.Millisecond)
		for range 5 {
			c.publish(t, "thing")
		}
		bad := c.publishEvent(t, "thing", bus.Event{Type: "eu.piazza.test.bad.v1"})
		for range 5 {
			c.publish(t, "thing")
		}
		time.Sleep(100 * time.Millisecond)
		close(gate)
		c.waitSettled(t, 12)
		if batches.Load() == 0 {
			t.Error("no batch was tried")
		}
		if p := c.onePoison(t); p.ev.ID != bad.ID {
			t.Errorf("poisoned %s, want the bad event %s", p.ev.ID, bad.ID)
		}
		c.assertOutcomes(t, map[string]float64{"acked": 11, "terminated": 1})
	})
}
