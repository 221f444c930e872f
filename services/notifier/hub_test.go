package notifier

import (
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// queueClient is a client without a connection (and so without a writer):
// its queue is what it got.
func queueClient(h *Hub, queue int, topics ...string) *client {
	c := newClient(nil, h)
	c.limit = queue
	h.add(c)
	if len(topics) > 0 {
		h.subscribe(c, topics, nil, nil)
	}
	return c
}

// queued drains c's queue.
func queued(c *client) []frame {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := append([]frame(nil), c.queue...)
	c.queue = c.queue[:0]
	return out
}

// takeOne takes the oldest queued frame, as a writer would.
func takeOne(c *client) frame {
	c.mu.Lock()
	defer c.mu.Unlock()
	f := c.queue[0]
	c.queue = append(c.queue[:0], c.queue[1:]...)
	return f
}

// drain empties c's queue without allocating.
func drain(c *client) {
	c.mu.Lock()
	clear(c.queue)
	c.queue = c.queue[:0]
	c.mu.Unlock()
}

func closeRequest(c *client) (closeReq, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeWith, c.closing
}

func TestHubDispatch(t *testing.T) {
	t.Run("one notification to many subscribers is prepared once and shared", func(t *testing.T) {
		h := NewHub(0, newHubMetrics(nil))
		clients := make([]*client, 100)
		for i := range clients {
			clients[i] = queueClient(h, 4, "city:ghent")
		}
		if err := h.Dispatch(1, notification(t, "city:ghent")); err != nil {
			t.Fatal(err)
		}
		var shared *byte
		for i, c := range clients {
			got := queued(c)
			if len(got) != 1 {
				t.Fatalf("client %d got %d messages, want 1", i, len(got))
			}
			if shared == nil {
				shared = &got[0][0]
			}
			if &got[0][0] != shared {
				t.Fatalf("client %d got its own prepared message: the notification was encoded more than once", i)
			}
		}
	})

	t.Run("a client subscribed to several of a notification's topics gets it once", func(t *testing.T) {
		h := NewHub(0, newHubMetrics(nil))
		c := queueClient(h, 8, "city:ghent", "vendor:v1", "market:m1")
		for seq := uint64(1); seq <= 3; seq++ {
			if err := h.Dispatch(seq, notification(t, "city:ghent", "place:p1", "market:m1", "vendor:v1")); err != nil {
				t.Fatal(err)
			}
		}
		if got := len(queued(c)); got != 3 {
			t.Errorf("got %d messages for 3 notifications, want 3", got)
		}
	})

	t.Run("only subscribers of a notification's topics get it", func(t *testing.T) {
		h := NewHub(0, newHubMetrics(nil))
		ghent := queueClient(h, 4, "city:ghent")
		bologna := queueClient(h, 4, "city:bologna")
		idle := queueClient(h, 4)
		if err := h.Dispatch(1, notification(t, "city:ghent")); err != nil {
			t.Fatal(err)
		}
		if a, b, c := len(queued(ghent)), len(queued(bologna)), len(queued(idle)); a != 1 || b != 0 || c != 0 {
			t.Errorf("ghent, bologna and idle clients got %d, %d, %d; want 1, 0, 0", a, b, c)
		}
	})

	t.Run("subscribe starts after the last dispatched notification", func(t *testing.T) {
		h := NewHub(41, newHubMetrics(nil))
		first := queueClient(h, 4, "city:ghent")
		if seq := h.subscribe(first, []string{"city:bologna"}, nil, nil).Seq; seq != 41 || h.LastSeq() != 41 {
			t.Errorf("subscribe = %d, LastSeq = %d; want 41", seq, h.LastSeq())
		}
		if err := h.Dispatch(42, notification(t, "city:ghent")); err != nil {
			t.Fatal(err)
		}
		late := queueClient(h, 4)
		if seq := h.subscribe(late, []string{"city:ghent"}, nil, nil).Seq; seq != 42 {
			t.Errorf("subscribe after 42 = %d, want 42", seq)
		}
	})

	t.Run("a body that is not a notification is skipped and still advances the position", func(t *testing.T) {
		h := NewHub(0, newHubMetrics(nil))
		c := queueClient(h, 4, "city:ghent")
		if err := h.Dispatch(7, []byte("not json")); err == nil {
			t.Error("Dispatch of garbage = nil, want an error")
		}
		if h.LastSeq() != 7 || len(queued(c)) != 0 {
			t.Errorf("LastSeq = %d with %d queued, want 7 and none", h.LastSeq(), len(queued(c)))
		}
	})

	t.Run("a client whose queue is full is closed with 4001 and the others get everything", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		h := NewHub(0, newHubMetrics(reg))
		slow := queueClient(h, 2, "city:ghent")
		healthy := queueClient(h, 16, "city:ghent")
		for seq := uint64(1); seq <= 5; seq++ {
			if err := h.Dispatch(seq, notification(t, "city:ghent")); err != nil {
				t.Fatal(err)
			}
		}
		if got := len(queued(healthy)); got != 5 {
			t.Errorf("the healthy client got %d of 5", got)
		}
		req, ok := closeRequest(slow)
		if !ok || req.code != 4001 {
			t.Errorf("slow client close request = %+v, %v; want code 4001", req, ok)
		}
		if n := counterValue(t, reg, "piazza_ws_slow_clients_closed_total"); n != 1 {
			t.Errorf("slow clients closed = %v, want 1", n)
		}
	})

	t.Run("a client being closed for falling behind gets nothing more, so it never sees a gap", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		h := NewHub(0, newHubMetrics(reg))
		slow := queueClient(h, 2, "city:ghent")
		for seq := uint64(1); seq <= 3; seq++ { // 3 does not fit
			if err := h.Dispatch(seq, notification(t, "city:ghent")); err != nil {
				t.Fatal(err)
			}
		}
		takeOne(slow) // the writer catches up a little, making room
		if err := h.Dispatch(4, notification(t, "city:ghent")); err != nil {
			t.Fatal(err)
		}
		if got := len(queued(slow)); got != 1 {
			t.Errorf("%d messages queued after the drop, want only notification 2 (and never 4 after a missing 3)", got)
		}
		if n := counterValue(t, reg, "piazza_ws_slow_clients_closed_total"); n != 1 {
			t.Errorf("slow clients closed = %v, want 1 however many notifications it missed", n)
		}
	})

	t.Run("unsubscribing stops delivery of that topic only", func(t *testing.T) {
		h := NewHub(0, newHubMetrics(nil))
		c := queueClient(h, 4, "city:ghent", "city:bologna")
		h.unsubscribe(c, []string{"city:ghent"})
		_ = h.Dispatch(1, notification(t, "city:ghent"))
		_ = h.Dispatch(2, notification(t, "city:bologna"))
		if got := len(queued(c)); got != 1 {
			t.Errorf("got %d messages, want only bologna's", got)
		}
		h.remove(c)
		if len(h.topics) != 0 || h.clientCount() != 0 {
			t.Errorf("after remove: %d topics and %d clients left", len(h.topics), h.clientCount())
		}
	})
}

// drained is a hub with n subscribers to city:ghent whose queues the caller
// empties after each dispatch.
func drained(n int) (*Hub, []*client) {
	h := NewHub(0, newHubMetrics(nil))
	clients := make([]*client, n)
	for i := range clients {
		clients[i] = queueClient(h, 1, "city:ghent")
	}
	return h, clients
}

func TestHubDispatchAllocations(t *testing.T) {
	body := notification(t, "city:ghent", "place:p", "market:m", "vendor:v")
	allocs := func(n int) float64 {
		h, clients := drained(n)
		seq := uint64(0)
		return testing.AllocsPerRun(50, func() {
			seq++
			if err := h.Dispatch(seq, body); err != nil {
				t.Fatal(err)
			}
			for _, c := range clients {
				drain(c)
			}
		})
	}
	one, many := allocs(1), allocs(2000)
	if many > one {
		t.Errorf("a dispatch to 2000 subscribers allocates %v times, to one %v: fan-out must not allocate per recipient", many, one)
	}
}

func BenchmarkHubDispatch(b *testing.B) {
	for _, n := range []int{10_000} {
		b.Run(fmt.Sprintf("subscribers=%d", n), func(b *testing.B) {
			h, clients := drained(n)
			body := notification(b, "city:ghent", "place:p", "market:m", "vendor:v")
			b.ReportAllocs()
			b.ResetTimer()
			seq := uint64(0)
			for b.Loop() {
				seq++
				if err := h.Dispatch(seq, body); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				for _, c := range clients {
					drain(c)
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/recipient")
		})
	}
}
