package notifier

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"
	"github.com/localeurope/piazza/pkg/bus/bustest"
	"github.com/localeurope/piazza/pkg/web"
	"github.com/localeurope/piazza/services/contract"
	"github.com/nats-io/nats.go"
)

// dispatchAll dispatches one notification per entry, seqs from the hub's
// position on, and returns the seqs.
func dispatchAll(tb testing.TB, h *Hub, topics ...[]string) []uint64 {
	tb.Helper()
	var seqs []uint64
	for _, ts := range topics {
		seq := h.LastSeq() + 1
		if err := h.Dispatch(seq, notification(tb, ts...)); err != nil {
			tb.Fatal(err)
		}
		seqs = append(seqs, seq)
	}
	return seqs
}

func queuedSeqs(tb testing.TB, h *Hub, c *client) string {
	tb.Helper()
	var out []uint64
	for _, f := range queued(c) {
		out = append(out, frameSeq(tb, h, f))
	}
	return fmt.Sprint(out)
}

func TestHubLaterSubscribe(t *testing.T) {
	ghent, bologna, both := []string{"city:ghent"}, []string{"city:bologna"}, []string{"city:ghent", "city:bologna"}
	since := func(s uint64) *uint64 { return &s }

	t.Run("a later subscribe with since replays only what the connection has not sent", func(t *testing.T) {
		h := NewHub(0, newHubMetrics(nil))
		dispatchAll(t, h, ghent, bologna, both, ghent, both, bologna) // 1..6
		c := queueClient(h, 64)
		if res := h.subscribe(c, ghent, since(0), nil); res.Seq != 6 || res.Missed != 4 {
			t.Fatalf("first subscribe = %+v, want seq 6 with 4 missed", res)
		}
		if got := queuedSeqs(t, h, c); got != "[1 3 4 5]" {
			t.Fatalf("first replay %s, want [1 3 4 5]", got)
		}
		dispatchAll(t, h, both, bologna) // 7 reaches c live, 8 does not
		if got := queuedSeqs(t, h, c); got != "[7]" {
			t.Fatalf("live %s, want [7]", got)
		}
		res := h.subscribe(c, bologna, since(0), nil)
		if res.Reset || res.Seq != 8 || res.Missed != 3 {
			t.Fatalf("second subscribe = %+v, want seq 8 with 3 missed", res)
		}
		if got := queuedSeqs(t, h, c); got != "[2 6 8]" {
			t.Fatalf("second replay %s, want [2 6 8]: nothing sent before, nothing twice", got)
		}
		dispatchAll(t, h, both, bologna)
		if got := queuedSeqs(t, h, c); got != "[9 10]" {
			t.Fatalf("after both subscriptions %s, want [9 10]", got)
		}
	})

	t.Run("a topic joined without since does not hide what a later since-subscribe missed", func(t *testing.T) {
		h := NewHub(0, newHubMetrics(nil))
		dispatchAll(t, h, ghent, bologna, both, ghent, both, bologna) // 1..6
		c := queueClient(h, 64)
		if res := h.subscribe(c, ghent, nil, nil); res.Seq != 6 || res.Missed != 0 {
			t.Fatalf("subscribe without since = %+v", res)
		}
		// ghent is live from 6: 3 and 5 were never sent, so bologna's
		// resume must bring them.
		if res := h.subscribe(c, bologna, since(0), nil); res.Missed != 4 {
			t.Fatalf("subscribe with since = %+v, want 4 missed", res)
		}
		if got := queuedSeqs(t, h, c); got != "[2 3 5 6]" {
			t.Fatalf("replay %s, want [2 3 5 6]", got)
		}
	})

	t.Run("subscribing again to a held topic with since replays nothing", func(t *testing.T) {
		h := NewHub(0, newHubMetrics(nil))
		dispatchAll(t, h, ghent, ghent, ghent)
		c := queueClient(h, 64)
		h.subscribe(c, ghent, since(0), nil)
		queued(c)
		if res := h.subscribe(c, []string{"city:ghent", "city:ghent"}, since(0), nil); res.Missed != 0 || res.Reset || res.Seq != 3 {
			t.Fatalf("subscribe again = %+v, want seq 3, nothing missed", res)
		}
		if got := queuedSeqs(t, h, c); got != "[]" {
			t.Fatalf("replayed %s again", got)
		}
	})

	t.Run("a connection that resumed ahead of the replica keeps its position for every topic", func(t *testing.T) {
		h := NewHub(0, newHubMetrics(nil))
		dispatchAll(t, h, ghent, ghent, ghent, ghent, bologna) // 1..5
		c := queueClient(h, 64)
		if res := h.subscribe(c, ghent, since(7), nil); res.Seq != 7 || res.Reset {
			t.Fatalf("resume ahead = %+v, want seq 7", res)
		}
		// bologna's 6 and 7 were never dispatched here: they cannot be
		// replayed, so the new topic gets a reset at the connection's
		// position, never a silent gap.
		if res := h.subscribe(c, bologna, since(5), nil); !res.Reset || res.Seq != 7 {
			t.Fatalf("a later subscribe from before the connection's position = %+v, want a reset at 7", res)
		}
		// A since past the connection's position is capped: ghent must
		// not lose 8..9.
		if res := h.subscribe(c, []string{"market:m"}, since(9), nil); res.Reset || res.Seq != 7 {
			t.Fatalf("a since past the position = %+v, want seq 7", res)
		}
		dispatchAll(t, h, ghent, ghent, ghent, ghent) // 6..9
		if got := queuedSeqs(t, h, c); got != "[8 9]" {
			t.Fatalf("got %s, want [8 9]", got)
		}
	})
}

// helloServer serves a hub's websocket handler, with its own sinceWait.
type helloServer struct {
	hub *Hub
	ws  *wsHandler
	url string
}

func newHelloServer(tb testing.TB, lastSeq uint64, sinceWait time.Duration) *helloServer {
	tb.Helper()
	hub := NewHub(lastSeq, newHubMetrics(nil))
	ws := newWSHandler(hub, nil, testLog(tb))
	ws.sinceWait = sinceWait
	mux := http.NewServeMux()
	mux.Handle("GET /api/v1/notifier/ws", ws)
	srv := httptest.NewServer(web.Middleware{Log: testLog(tb)}.Wrap(mux))
	tb.Cleanup(srv.Close)
	return &helloServer{hub: hub, ws: ws, url: wsURL(srv.URL, "/api/v1/notifier/ws")}
}

// confirmed is a subscribed frame with what hello and resumes add.
type confirmed struct {
	Type     string   `json:"type"`
	Topics   []string `json:"topics"`
	Seq      uint64   `json:"seq"`
	Missed   int      `json:"missed"`
	Resident string   `json:"resident"`
	Follows  []string `json:"follows"`
	Code     string   `json:"code"`
	Message  string   `json:"message"`
}

// untilSubscribed reads notifications until the subscribed frame (after an
// optional reset) and returns their seqs, whether a reset came, and the frame.
func (c *wsClient) untilSubscribed() (seqs []uint64, reset bool, sub confirmed) {
	c.tb.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		var m confirmed
		if err := c.conn.ReadJSON(&m); err != nil {
			c.tb.Fatalf("read: %v", err)
		}
		switch m.Type {
		case "notification":
			seqs = append(seqs, m.Seq)
		case "reset":
			reset = true
		case "subscribed":
			return seqs, reset, m
		default:
			c.tb.Fatalf("got %+v before subscribed", m)
		}
	}
}

// topicCount is how many topics have subscribers.
func (h *Hub) topicCount() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.topics)
}

func TestHelloSubscribes(t *testing.T) {
	vendor := "vendor:01a218ba-dab3-7356-96d5-2a55ee090e07"
	ghent, bologna := []string{"city:ghent"}, []string{"city:bologna"}
	both, vendorOnly := []string{"city:ghent", vendor}, []string{vendor}

	t.Run("a hello with topics and since resumes them all in one step: no gap, no duplicate", func(t *testing.T) {
		s := newHelloServer(t, 0, time.Second)
		dispatchAll(t, s.hub, ghent, both, bologna, vendorOnly, both, ghent, bologna, vendorOnly) // 1..8
		c := dial(t, s.url, nil)
		c.send(map[string]any{"type": "hello", "device": uuid.NewString(), "topics": []string{"city:ghent", vendor}, "since": 2})
		if w := c.nextOf("welcome"); w.Type != "welcome" {
			t.Fatal(w)
		}
		seqs, reset, sub := c.untilSubscribed()
		if reset || fmt.Sprint(seqs) != "[4 5 6 8]" || sub.Seq != 8 || sub.Missed != 4 || len(sub.Topics) != 2 {
			t.Fatalf("replayed %v (reset %v), then %+v; want [4 5 6 8] then seq 8, 4 missed, 2 topics", seqs, reset, sub)
		}
		dispatchAll(t, s.hub, both, bologna, ghent) // 9..11
		if a, b := c.nextOf("notification").Seq, c.nextOf("notification").Seq; a != 9 || b != 11 {
			t.Fatalf("live %d, %d; want 9 then 11 (9 once although two topics match)", a, b)
		}
	})

	t.Run("a hello whose since is out of the resume window gets a reset, then subscribed", func(t *testing.T) {
		s := newHelloServer(t, 0, time.Second)
		s.hub.recent = newRing(4)
		dispatchAll(t, s.hub, ghent, ghent, ghent, ghent, ghent, ghent) // the window holds 3..6
		c := dial(t, s.url, nil)
		c.send(map[string]any{"type": "hello", "topics": ghent, "since": 1})
		c.nextOf("welcome")
		seqs, reset, sub := c.untilSubscribed()
		if !reset || len(seqs) != 0 || sub.Seq != 6 {
			t.Fatalf("replayed %v (reset %v), then %+v; want a reset at 6", seqs, reset, sub)
		}
	})

	t.Run("adding a topic later replays what the client lacks, and nothing twice", func(t *testing.T) {
		s := newHelloServer(t, 0, time.Second)
		dispatchAll(t, s.hub, ghent, both, vendorOnly, both) // 1..4
		c := dial(t, s.url, nil)
		c.send(map[string]any{"type": "hello", "topics": ghent, "since": 0})
		c.nextOf("welcome")
		first, _, sub := c.untilSubscribed()
		dispatchAll(t, s.hub, both, vendorOnly, ghent) // 5 and 7 come live
		live := []uint64{c.nextOf("notification").Seq, c.nextOf("notification").Seq}
		// The client still says since 0 (say, the vendor was followed on
		// another page): only the vendor's notifications not sent yet come.
		c.send(map[string]any{"type": "subscribe", "topics": []string{vendor}, "since": 0})
		added, reset, sub2 := c.untilSubscribed()
		all := slices.Concat(first, live, added)
		slices.Sort(all)
		if reset || fmt.Sprint(all) != "[1 2 3 4 5 6 7]" || fmt.Sprint(added) != "[3 6]" || sub2.Seq != 7 {
			t.Fatalf("hello %v (at %d), live %v, subscribe %v (at %d, reset %v): want each of 1..7 once, the subscribe bringing [3 6]",
				first, sub.Seq, live, added, sub2.Seq, reset)
		}
	})

	t.Run("a since ahead of the replica waits for the replica to catch up", func(t *testing.T) {
		s := newHelloServer(t, 0, 10*time.Second)
		dispatchAll(t, s.hub, ghent, ghent) // 1..2
		c := dial(t, s.url, nil)
		c.send(map[string]any{"type": "hello", "topics": ghent, "since": 4}) // seen on a replica further along
		time.Sleep(50 * time.Millisecond)
		dispatchAll(t, s.hub, ghent, ghent) // 3..4
		c.nextOf("welcome")
		if seqs, reset, sub := c.untilSubscribed(); reset || len(seqs) != 0 || sub.Seq != 4 {
			t.Fatalf("replayed %v (reset %v), then %+v; want seq 4 and nothing the client has seen", seqs, reset, sub)
		}
		dispatchAll(t, s.hub, ghent)
		if m := c.nextOf("notification"); m.Seq != 5 {
			t.Fatalf("live %d, want 5", m.Seq)
		}
	})

	for _, tt := range []struct {
		name    string
		msg     any
		code    string
		mention string // the message must say it
	}{
		{"an unknown field", map[string]any{"type": "hello", "topic": []string{"city:ghent"}}, "bad_message", `"topic"`},
		{"a since that is not a number", map[string]any{"type": "hello", "topics": []string{"city:ghent"}, "since": "12"}, "bad_message", "since"},
		{"a negative since", map[string]any{"type": "hello", "topics": []string{"city:ghent"}, "since": -1}, "bad_message", "since"},
		{"topics that are not a list", map[string]any{"type": "hello", "topics": "city:ghent"}, "bad_message", "topics"},
		{"a malformed topic", map[string]any{"type": "hello", "topics": []string{"ghent"}}, "bad_topics", "city:ghent"},
		{"an unknown topic kind", map[string]any{"type": "hello", "topics": []string{"planet:mars"}}, "bad_topics", "kinds"},
		{"an account topic", map[string]any{"type": "hello", "topics": []string{"account:01a218ba-dab3-7356-96d5-2a55ee090e07"}}, "bad_topics", "kinds"},
		{"over maxTopics topics", map[string]any{"type": "hello", "topics": manyTopics(maxTopics + 1)}, "bad_topics", strconv.Itoa(maxTopics)},
		{"a since beyond the stream", map[string]any{"type": "hello", "topics": []string{"city:ghent"}, "since": 1000}, "bad_since", "1000"},
		{"a subscribe whose since is beyond the stream", map[string]any{"type": "subscribe", "topics": []string{"city:ghent"}, "since": 1000}, "bad_since", "without since"},
		{"a bad device id", map[string]any{"type": "hello", "device": "nope", "topics": []string{"city:ghent"}}, "bad_device", "UUID"},
	} {
		t.Run(tt.name+" is refused with "+tt.code+", nothing is subscribed, and the connection stays open", func(t *testing.T) {
			s := newHelloServer(t, 10, 300*time.Millisecond)
			c := dial(t, s.url, nil)
			c.send(tt.msg)
			m := c.nextOf("error")
			if m.Code != tt.code || !strings.Contains(m.Message, tt.mention) {
				t.Errorf("got %+v, want %s saying %s", m, tt.code, tt.mention)
			}
			if n := s.hub.topicCount(); n != 0 {
				t.Errorf("a refused hello subscribed %d topics", n)
			}
			c.send(map[string]any{"type": "hello", "topics": []string{"city:ghent"}, "since": 10})
			c.nextOf("welcome")
			if _, _, sub := c.untilSubscribed(); sub.Seq != 10 {
				t.Errorf("a good hello after it: %+v", sub)
			}
		})
	}

	t.Run("a hello that would take the connection past maxTopics is refused whole", func(t *testing.T) {
		s := newHelloServer(t, 0, time.Second)
		c := dial(t, s.url, nil)
		c.subscribe(manyTopics(maxTopics - 1)...)
		c.send(map[string]any{"type": "hello", "topics": []string{"city:ghent", "city:bologna"}})
		if m := c.nextOf("error"); m.Code != "bad_topics" {
			t.Fatalf("got %+v, want bad_topics", m)
		}
		c.send(map[string]any{"type": "hello", "topics": []string{"city:ghent", "place:0"}}) // place:0 is held
		c.nextOf("welcome")
		c.nextOf("subscribed")
	})

	t.Run("ten refused frames in a row close the connection with 1008", func(t *testing.T) {
		s := newHelloServer(t, 0, time.Second)
		c := dial(t, s.url, nil)
		for i := range maxRefused - 1 {
			c.send(map[string]any{"type": "hello", "topics": []string{"nope"}})
			if m := c.nextOf("error"); m.Code != "bad_topics" {
				t.Fatalf("frame %d: %+v", i, m)
			}
		}
		c.subscribe("city:ghent") // an accepted frame starts the count again
		for range maxRefused {
			c.send(map[string]any{"type": "hello", "topics": []string{"nope"}})
		}
		if code := c.closeCode(); code != websocket.ClosePolicyViolation {
			t.Errorf("close code %d, want 1008", code)
		}
	})
}

// TestHelloResumeAcrossReplicas runs two notifier replicas on one NATS and
// one database. Clients say hello with a topic of their own and their
// follows, and since; each drops its connection at random moments and
// resumes with one hello on a replica picked at random. Every client must see
// every notification on its topics after its first position exactly once, in
// order — and none on topics it does not hold.
func TestHelloResumeAcrossReplicas(t *testing.T) {
	const (
		clients       = 40
		notifications = 200
	)
	dbURL := newDatabase(t)
	_, js := bustest.Connect(t)
	replicas := []string{startRun(t, dbURL, js), startRun(t, dbURL, js)}
	device := uuid.NewString()
	me := residentClient{tb: t, base: replicas[0], device: device}
	if code, _ := me.do("PUT", "/api/v1/notifier/follows/market:m1", nil); code != 200 {
		t.Fatalf("follow: %d", code)
	}

	var pub struct {
		sync.Mutex
		mine []uint64 // seqs on city:ghent or market:m1, in order
		done bool
	}
	published := func() ([]uint64, bool) {
		pub.Lock()
		defer pub.Unlock()
		return slices.Clone(pub.mine), pub.done
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	runs := make([]resumeRun, clients)
	started := make(chan struct{}, clients)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			runs[i].err = helloWithDrops(ctx, replicas, device, &runs[i], started, published)
		})
	}
	for range clients {
		<-started
	}
	topics := [][]string{{"city:ghent"}, {"market:m1"}, {"city:ghent", "market:m1"}, {"city:bologna"}}
	for i := range notifications {
		ts := topics[i%len(topics)]
		if i == notifications-1 {
			ts = topics[0] // the last one is every client's
		}
		msg := nats.NewMsg(contract.NotifySubject("ghent", "stall.registered"))
		msg.Data = notification(t, ts...)
		ack, err := js.PublishMsg(ctx, msg)
		if err != nil {
			t.Fatal(err)
		}
		pub.Lock()
		if !slices.Equal(ts, []string{"city:bologna"}) {
			pub.mine = append(pub.mine, ack.Sequence)
		}
		pub.Unlock()
		if i%10 == 0 {
			time.Sleep(2 * time.Millisecond)
		}
	}
	pub.Lock()
	pub.done = true
	pub.Unlock()
	wg.Wait()

	mine, _ := published()
	drops := 0
	for i, r := range runs {
		if r.err != nil {
			t.Errorf("client %d: %v", i, r.err)
			continue
		}
		drops += r.drops
		var want []uint64
		for _, s := range mine {
			if s > r.first {
				want = append(want, s)
			}
		}
		if fmt.Sprint(r.seen) != fmt.Sprint(want) {
			t.Errorf("client %d (first %d, %d drops) saw %d notifications, want %d: %v",
				i, r.first, r.drops, len(r.seen), len(want), diffSeqs(r.seen, want))
		}
	}
	if drops < clients {
		t.Errorf("only %d drops over %d clients: the test did not exercise resuming", drops, clients)
	}
	t.Logf("%d clients, %d notifications, %d drops and resumes", clients, notifications, drops)
}

// helloWithDrops says hello with city:ghent and the device's follows until
// it has seen the last published notification, dropping the connection after
// a random number of notifications and resuming, with one hello, on a random
// replica.
func helloWithDrops(ctx context.Context, replicas []string, device string, r *resumeRun, started chan<- struct{},
	published func() ([]uint64, bool)) error {
	var last uint64
	first := true
	caughtUp := func() bool {
		mine, done := published()
		return done && len(mine) > 0 && last >= mine[len(mine)-1]
	}
	for {
		url := wsURL(replicas[rand.IntN(len(replicas))], "/api/v1/notifier/ws")
		conn, _, err := websocket.DefaultDialer.DialContext(ctx, url, nil)
		if err != nil {
			return err
		}
		hello := map[string]any{"type": "hello", "device": device, "follows": true, "topics": []string{"city:ghent"}}
		if !first {
			hello["since"] = last
		}
		if err := conn.WriteJSON(hello); err != nil {
			conn.Close()
			return err
		}
		budget := 1 + rand.IntN(30)
		quietSince := time.Now()
		for budget > 0 {
			_ = conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			var m confirmed
			if err := conn.ReadJSON(&m); err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					if caughtUp() {
						conn.Close()
						return nil
					}
					if time.Since(quietSince) < 30*time.Second {
						break // gorilla marks a timed-out connection broken: resume on a new one
					}
				}
				conn.Close()
				return fmt.Errorf("read: %w", err)
			}
			quietSince = time.Now()
			switch m.Type {
			case "welcome":
			case "subscribed":
				if !slices.Contains(m.Topics, "city:ghent") || !slices.Contains(m.Topics, "market:m1") {
					conn.Close()
					return fmt.Errorf("subscribed to %v, want city:ghent and the follow market:m1", m.Topics)
				}
				if first {
					r.first, last, first = m.Seq, m.Seq, false
					started <- struct{}{}
				}
			case "notification":
				if m.Seq <= last {
					conn.Close()
					return fmt.Errorf("notification %d after %d", m.Seq, last)
				}
				r.seen = append(r.seen, m.Seq)
				last = m.Seq
				budget--
			default:
				conn.Close()
				return fmt.Errorf("unexpected %+v", m)
			}
			if caughtUp() {
				conn.Close()
				return nil
			}
		}
		conn.Close()
		r.drops++
	}
}
