package notifier

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/localeurope/piazza/pkg/bus/bustest"
	"github.com/localeurope/piazza/services/contract"
	"github.com/nats-io/nats.go"
)

func TestHubResume(t *testing.T) {
	// dispatched returns a hub that has dispatched seqs 1..n, alternating
	// between Ghent and Bologna.
	dispatched := func(t *testing.T, n int) *Hub {
		t.Helper()
		h := NewHub(0, newHubMetrics(nil))
		for i := 1; i <= n; i++ {
			city := "city:ghent"
			if i%2 == 0 {
				city = "city:bologna"
			}
			if err := h.Dispatch(uint64(i), notification(t, city)); err != nil {
				t.Fatal(err)
			}
		}
		return h
	}
	seqs := func(t *testing.T, h *Hub, c *client) []uint64 {
		t.Helper()
		var out []uint64
		for _, f := range queued(c) {
			out = append(out, frameSeq(t, h, f))
		}
		return out
	}

	t.Run("a client that resumes gets exactly the matching notifications it missed", func(t *testing.T) {
		h := dispatched(t, 10)
		c := queueClient(h, 64)
		since := uint64(4)
		res := h.subscribe(c, []string{"city:ghent"}, &since, nil)
		if res.Reset || res.Seq != 10 || res.Missed != 3 {
			t.Fatalf("resume = %+v, want seq 10 with 3 missed", res)
		}
		if got := seqs(t, h, c); fmt.Sprint(got) != "[5 7 9]" {
			t.Fatalf("replayed %v, want [5 7 9]", got)
		}
		if err := h.Dispatch(11, notification(t, "city:ghent")); err != nil {
			t.Fatal(err)
		}
		if got := seqs(t, h, c); fmt.Sprint(got) != "[11]" {
			t.Fatalf("after the resume got %v, want [11]", got)
		}
	})
	t.Run("a client that is up to date gets nothing again", func(t *testing.T) {
		h := dispatched(t, 10)
		c := queueClient(h, 64)
		since := uint64(10)
		if res := h.subscribe(c, []string{"city:ghent"}, &since, nil); res.Reset || res.Missed != 0 || res.Seq != 10 {
			t.Fatalf("resume = %+v", res)
		}
		if got := seqs(t, h, c); len(got) != 0 {
			t.Fatalf("got %v, want nothing", got)
		}
	})
	t.Run("a client ahead of this replica does not get what it saw on another", func(t *testing.T) {
		h := dispatched(t, 10)
		c := queueClient(h, 64)
		since := uint64(13) // it saw 11..13 on a replica that is further along
		if res := h.subscribe(c, []string{"city:ghent"}, &since, nil); res.Reset || res.Seq != 13 {
			t.Fatalf("resume = %+v, want seq 13", res)
		}
		for seq := uint64(11); seq <= 15; seq++ {
			if err := h.Dispatch(seq, notification(t, "city:ghent")); err != nil {
				t.Fatal(err)
			}
		}
		if got := seqs(t, h, c); fmt.Sprint(got) != "[14 15]" {
			t.Fatalf("got %v, want [14 15]", got)
		}
	})
	t.Run("a position older than the resume window gets a reset", func(t *testing.T) {
		h := NewHub(0, newHubMetrics(nil))
		h.recent = newRing(4)
		for i := 1; i <= 10; i++ {
			if err := h.Dispatch(uint64(i), notification(t, "city:ghent")); err != nil {
				t.Fatal(err)
			}
		}
		c := queueClient(h, 64)
		since := uint64(5) // 6 is gone: the window holds 7..10
		res := h.subscribe(c, []string{"city:ghent"}, &since, nil)
		if !res.Reset || res.Seq != 10 {
			t.Fatalf("resume = %+v, want a reset at 10", res)
		}
		if got := seqs(t, h, c); len(got) != 0 {
			t.Fatalf("a reset replayed %v", got)
		}
		since = 6 // exactly the window's start
		c2 := queueClient(h, 64)
		if res := h.subscribe(c2, []string{"city:ghent"}, &since, nil); res.Reset || res.Missed != 4 {
			t.Fatalf("resume from the window's edge = %+v, want 4 missed", res)
		}
	})
	t.Run("more missed notifications than the send queue holds gives a reset, not an overflow", func(t *testing.T) {
		h := dispatched(t, 2*maxResume+10)
		c := queueClient(h, sendQueueLen)
		since := uint64(0)
		res := h.subscribe(c, []string{"city:ghent"}, &since, nil)
		if !res.Reset {
			t.Fatalf("resume = %+v, want a reset", res)
		}
		if _, closed := closeRequest(c); closed {
			t.Fatal("the client was closed")
		}
	})
}

// frameSeq finds a queued frame's seq in the hub's resume window, where
// every dispatched frame is kept with its seq.
func frameSeq(tb testing.TB, h *Hub, f frame) uint64 {
	tb.Helper()
	var seq uint64
	h.recent.each(0, func(e recentEntry) {
		if &e.frame[0] == &f[0] {
			seq = e.seq
		}
	})
	if seq == 0 {
		tb.Fatal("a queued frame is not in the resume window")
	}
	return seq
}

// TestResumeAcrossReplicas runs two notifier replicas on one NATS and one
// database. 200 clients follow Ghent while notifications flow; each drops its
// connection at random moments and resumes, with the last seq it saw, on a
// replica picked at random. Every client must see every notification after
// its first position exactly once, in order: no gap, no duplicate.
func TestResumeAcrossReplicas(t *testing.T) {
	const (
		clients       = 200
		notifications = 300
	)
	dbURL := newDatabase(t)
	nc, js := bustest.Connect(t)
	replicas := []string{startRun(t, dbURL, js), startRun(t, dbURL, js)}

	results := make([]resumeRun, clients)
	var final struct {
		sync.Mutex
		seq  uint64
		done bool
	}
	finalSeq := func() (uint64, bool) {
		final.Lock()
		defer final.Unlock()
		return final.seq, final.done
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	started := make(chan struct{}, clients)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &results[i]
			r.err = followWithDrops(ctx, replicas, r, started, finalSeq)
		}()
	}
	for range clients {
		<-started // every client has its first position before anything is published
	}

	for i := 0; i < notifications; i++ {
		msg := nats.NewMsg(contract.NotifySubject("ghent", "stall.registered"))
		msg.Data = notification(t, "city:ghent")
		ack, err := js.PublishMsg(ctx, msg)
		if err != nil {
			t.Fatal(err)
		}
		final.Lock()
		final.seq = ack.Sequence
		final.Unlock()
		if i%10 == 0 {
			time.Sleep(2 * time.Millisecond) // let drops and resumes interleave with the flow
		}
	}
	final.Lock()
	final.done = true
	final.Unlock()
	wg.Wait()
	_ = nc

	last, _ := finalSeq()
	drops := 0
	for i, r := range results {
		if r.err != nil {
			t.Errorf("client %d: %v", i, r.err)
			continue
		}
		drops += r.drops
		want := make([]uint64, 0, last-r.first)
		for s := r.first + 1; s <= last; s++ {
			want = append(want, s)
		}
		if fmt.Sprint(r.seen) != fmt.Sprint(want) {
			t.Errorf("client %d (first %d, %d drops) saw %d notifications, want %d: gaps or duplicates: %v",
				i, r.first, r.drops, len(r.seen), len(want), diffSeqs(r.seen, want))
		}
	}
	if drops < clients {
		t.Errorf("only %d drops over %d clients: the test did not exercise resuming", drops, clients)
	}
	t.Logf("%d clients, %d notifications, %d drops and resumes", clients, last, drops)
}

// resumeRun is what one client saw.
type resumeRun struct {
	first uint64   // the position of its first subscription
	seen  []uint64 // every notification's seq, in arrival order
	drops int
	err   error
}

// followWithDrops follows city:ghent until it has seen the final seq,
// dropping the connection after a random number of notifications and
// resuming on a random replica.
func followWithDrops(ctx context.Context, replicas []string, r *resumeRun, started chan<- struct{}, finalSeq func() (uint64, bool)) error {
	var last uint64
	first := true
	for {
		url := wsURL(replicas[rand.IntN(len(replicas))], "/api/v1/notifier/ws")
		conn, _, err := websocket.DefaultDialer.DialContext(ctx, url, nil)
		if err != nil {
			return err
		}
		sub := map[string]any{"type": "subscribe", "topics": []string{"city:ghent"}}
		if !first {
			sub["since"] = last
		}
		if err := conn.WriteJSON(sub); err != nil {
			conn.Close()
			return err
		}
		budget := 1 + rand.IntN(40) // notifications before the next drop
		quietSince := time.Now()
		for {
			// Short reads, so that a client that already has everything
			// notices when the publisher declares the end.
			_ = conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			var m serverMsg
			if err := conn.ReadJSON(&m); err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					if fs, done := finalSeq(); done && last >= fs {
						conn.Close()
						return nil
					}
					if time.Since(quietSince) < 30*time.Second {
						// gorilla marks a timed-out connection broken: resume on a new one.
						break
					}
				}
				conn.Close()
				return fmt.Errorf("read: %w", err)
			}
			quietSince = time.Now()
			switch m.Type {
			case "subscribed":
				if first {
					r.first, last, first = m.Seq, m.Seq, false
					started <- struct{}{}
				}
			case "notification":
				r.seen = append(r.seen, m.Seq)
				last = m.Seq
				budget--
			case "reset":
				conn.Close()
				return fmt.Errorf("reset at seq %d although the gap was inside the resume window", m.Seq)
			default:
				conn.Close()
				return fmt.Errorf("unexpected %+v", m)
			}
			if fs, done := finalSeq(); done && last >= fs {
				conn.Close()
				return nil
			}
			if budget <= 0 {
				break
			}
		}
		conn.Close()
		r.drops++
	}
}

func diffSeqs(got, want []uint64) string {
	seen := map[uint64]int{}
	for _, s := range got {
		seen[s]++
	}
	var missing, dup []uint64
	for _, s := range want {
		if seen[s] == 0 {
			missing = append(missing, s)
		}
	}
	for s, n := range seen {
		if n > 1 {
			dup = append(dup, s)
		}
	}
	return fmt.Sprintf("missing %v, duplicated %v", missing, dup)
}
