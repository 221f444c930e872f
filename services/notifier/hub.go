package notifier

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Hub fans notifications out to the websocket clients of one notifier
// replica, by topic. Each notification is encoded once (a complete websocket
// frame shared by every recipient) and sending never blocks: a client whose
// queue is full is closed and resumes later.
type Hub struct {
	mu      sync.RWMutex
	topics  map[string]map[*client]struct{}
	clients map[*client]struct{}
	// lastSeq is the stream sequence of the last dispatched notification.
	// Subscribe reads it under the write lock while Dispatch holds the read
	// lock, so a subscriber sees every notification after the seq it is told.
	lastSeq atomic.Uint64
	metrics *hubMetrics
	// recent holds the last notifications dispatched (the resume window):
	// a client that reconnects with a seq inside it gets exactly what it
	// missed. Written by Dispatch under the read lock (there is one
	// dispatcher), read by subscribe under the write lock.
	recent ring
	bufs   writeBufs
	// pingEvery is how often each client is pinged (by keepAlive).
	pingEvery time.Duration
	// writeWait is how long a write to a client may take before keepAlive
	// closes its connection.
	writeWait time.Duration
	// pongWait is how long a client may stay silent (pongs count) before
	// keepAlive closes it.
	pongWait time.Duration
}

// DefaultResumeWindow is how many recent notifications a replica keeps to
// resume reconnecting clients from.
const DefaultResumeWindow = 10_000

// maxResume bounds the notifications replayed to one connection at once; a
// client that missed more matching ones gets a reset (it fits the send
// queue, so a resume never overflows it).
const maxResume = sendQueueLen - 16

// NewHub returns an empty hub whose position is lastSeq.
func NewHub(lastSeq uint64, m *hubMetrics) *Hub {
	h := &Hub{topics: map[string]map[*client]struct{}{}, clients: map[*client]struct{}{}, metrics: m,
		recent: newRing(DefaultResumeWindow), pingEvery: pingPeriod, writeWait: writeWait, pongWait: pongWait}
	h.lastSeq.Store(lastSeq)
	return h
}

// ring is a fixed-size circular buffer of dispatched notifications.
type ring struct {
	buf   []recentEntry
	start int // index of the oldest entry
	n     int
}

type recentEntry struct {
	seq    uint64
	topics []string
	frame  frame
}

func newRing(size int) ring { return ring{buf: make([]recentEntry, max(size, 1))} }

func (r *ring) add(e recentEntry) {
	if r.n < len(r.buf) {
		r.buf[(r.start+r.n)%len(r.buf)] = e
		r.n++
		return
	}
	r.buf[r.start] = e
	r.start = (r.start + 1) % len(r.buf)
}

// oldest is the seq of the oldest entry, or 0 when empty.
func (r *ring) oldest() uint64 {
	if r.n == 0 {
		return 0
	}
	return r.buf[r.start].seq
}

// each calls f for the entries after seq, oldest first.
func (r *ring) each(after uint64, f func(recentEntry)) {
	for i := 0; i < r.n; i++ {
		if e := r.buf[(r.start+i)%len(r.buf)]; e.seq > after {
			f(e)
		}
	}
}

// LastSeq is the stream position the hub has dispatched up to.
func (h *Hub) LastSeq() uint64 { return h.lastSeq.Load() }

// waitFor waits until the hub has dispatched up to seq, for at most wait,
// and reports whether it has. A client may have seen a notification on a
// replica that is a little ahead of this one.
func (h *Hub) waitFor(seq uint64, wait time.Duration) bool {
	if h.lastSeq.Load() >= seq {
		return true
	}
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		<-t.C
		if h.lastSeq.Load() >= seq {
			return true
		}
	}
	return false
}

func (h *Hub) add(c *client) {
	c.pingAt = time.Now().Add(h.pingEvery).UnixNano()
	h.mu.Lock()
	h.clients[c] = struct{}{}
	h.mu.Unlock()
	h.metrics.connections.Inc()
}

// remove forgets c and all its subscriptions.
func (h *Hub) remove(c *client) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.clients[c]; !ok {
		return
	}
	delete(h.clients, c)
	for t := range c.topics {
		h.unsubscribeLocked(c, t)
	}
	h.metrics.connections.Dec()
}

// resumeResult says how a subscription started.
type resumeResult struct {
	Seq    uint64 // the position after which the client gets everything
	Missed int    // notifications replayed from the resume window
	Reset  bool   // since was outside the window: the client must reload its snapshot
}

// subscribe adds topics to c and says from which position c gets them.
//
// Without since, the added topics are live from c's position: the hub's, or
// further when c was told a later one. With since (the last seq the client
// has seen), c first gets the notifications on the added topics after since
// that it missed — or, when they are out of reach, a reset — and never one
// this connection has already sent it: a later subscribe that adds topics
// replays only what the client has not had. On a connection that holds no
// topic yet, a since ahead of the hub is the client's word that it has seen
// that far on another replica; on one that holds topics, since is capped at
// c's position (c was told it, so it cannot have seen further here).
//
// confirm runs under the hub's lock, after the replay, so that nothing can
// come between the replay, the confirmation and the live notifications.
func (h *Hub) subscribe(c *client, topics []string, since *uint64, confirm func(resumeResult)) resumeResult {
	h.mu.Lock()
	defer h.mu.Unlock()
	last := h.lastSeq.Load()
	pos := max(last, c.lastSeq)
	res := resumeResult{Seq: pos}
	added := make([]string, 0, len(topics))
	for _, t := range topics {
		if _, ok := c.topics[t]; !ok && !slices.Contains(added, t) {
			added = append(added, t)
		}
	}
	from := pos // the added topics' notifications after it are c's
	if since != nil && len(added) > 0 {
		switch s := *since; {
		case s >= pos && len(c.topics) == 0:
			// The client has seen further than this replica (it comes
			// from one that is ahead): skip what it has already seen.
			c.lastSeq = s
			res.Seq, from = s, s
		case s >= pos:
			// Up to date; a since beyond c's position is capped at it.
		default:
			res = h.resumeLocked(c, added, s, last, pos)
			if !res.Reset {
				from = s
			}
		}
	}
	for _, t := range added {
		c.topics[t] = from
		subs := h.topics[t]
		if subs == nil {
			subs = map[*client]struct{}{}
			h.topics[t] = subs
		}
		subs[c] = struct{}{}
	}
	if confirm != nil {
		confirm(res)
	}
	return res
}

// resumeLocked replays what c missed after since on the added topics, up to
// pos, leaving out what c has been sent already on the topics it holds.
func (h *Hub) resumeLocked(c *client, added []string, since, last, pos uint64) resumeResult {
	reset := resumeResult{Seq: pos, Reset: true}
	if pos > last {
		// c was told a position this replica has not reached (it resumed
		// from one that was ahead): what the added topics had up to there
		// cannot be replayed from here.
		return reset
	}
	if oldest := h.recent.oldest(); oldest == 0 || since+1 < oldest {
		c.lastSeq = max(c.lastSeq, last)
		return reset
	}
	want := make(map[string]bool, len(added))
	for _, t := range added {
		want[t] = true
	}
	var missed []frame
	h.recent.each(since, func(e recentEntry) {
		for _, t := range e.topics {
			if want[t] {
				if !c.sent(e) {
					missed = append(missed, e.frame)
				}
				return
			}
		}
	})
	c.lastSeq = max(c.lastSeq, last)
	if len(missed) > maxResume {
		return reset
	}
	for _, f := range missed {
		c.send(f)
	}
	h.metrics.delivered.Add(float64(len(missed)))
	return resumeResult{Seq: last, Missed: len(missed)}
}

// sent reports whether c has been sent e on a topic it holds: every
// notification on a held topic after that topic's from has been (by a
// replay or live). Under the hub's lock.
func (c *client) sent(e recentEntry) bool {
	for _, t := range e.topics {
		if from, ok := c.topics[t]; ok && e.seq > from {
			return true
		}
	}
	return false
}

func (h *Hub) unsubscribe(c *client, topics []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, t := range topics {
		h.unsubscribeLocked(c, t)
	}
}

func (h *Hub) unsubscribeLocked(c *client, t string) {
	delete(c.topics, t)
	if subs := h.topics[t]; subs != nil {
		delete(subs, c)
		if len(subs) == 0 {
			delete(h.topics, t)
		}
	}
}

// Dispatch sends the notification with stream sequence seq (its JSON body as
// stored in the stream) to every client subscribed to one of its topics, once
// per client. It is called from one goroutine, in stream order.
func (h *Hub) Dispatch(seq uint64, body []byte) error {
	var n struct {
		Topics []string `json:"topics"`
	}
	if err := json.Unmarshal(body, &n); err != nil {
		h.lastSeq.Store(seq)
		return err
	}
	f := notificationFrame(seq, body)
	h.mu.RLock()
	defer h.mu.RUnlock()
	delivered := 0
	for _, t := range n.Topics {
		for c := range h.topics[t] {
			if c.lastSeq >= seq { // subscribed to several of its topics, or seen already
				continue
			}
			c.lastSeq = seq
			if c.send(f) {
				delivered++
			}
		}
	}
	h.recent.add(recentEntry{seq: seq, topics: n.Topics, frame: f})
	h.lastSeq.Store(seq)
	h.metrics.delivered.Add(float64(delivered))
	return nil
}

// notificationFrame is the websocket frame of the notification seq, made in
// one allocation: {"type":"notification","seq":N,"notification":body}.
func notificationFrame(seq uint64, body []byte) frame {
	const prefix, mid = `{"type":"notification","seq":`, `,"notification":`
	var digits [20]byte
	s := strconv.AppendUint(digits[:0], seq, 10)
	n := len(prefix) + len(s) + len(mid) + len(body) + 1
	f := make(frame, 0, frameHeaderLen(n)+n)
	f = appendTextHeader(f, n)
	f = append(f, prefix...)
	f = append(f, s...)
	f = append(f, mid...)
	f = append(f, body...)
	return append(f, '}')
}

// keepAlive pings every client every pingEvery, from one goroutine for
// the whole hub rather than a timer per connection; each ping is written
// by the client's writer. Clients are pinged pingEvery after they connect,
// so connections made together are pinged together, not all at once.
func (h *Hub) keepAlive(ctx context.Context) error {
	t := time.NewTicker(min(time.Second, h.pingEvery/4, h.writeWait/4, h.pongWait/4))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			ns := now.UnixNano()
			h.mu.RLock()
			for c := range h.clients {
				if since := c.writingSince.Load(); since != 0 && ns-since > int64(h.writeWait) && c.conn != nil {
					// A write that has not returned: the client does not read
					// (or its network is gone). Closing the socket ends the
					// write with an error, and the writer and reader clean up.
					_ = c.conn.NetConn().Close()
					continue
				}
				if heard := c.heardAt.Load(); heard != 0 && ns-heard > int64(h.pongWait) && c.conn != nil {
					// Nothing from the client, not even a pong, for pongWait:
					// it is gone. Closing the socket ends the reader.
					_ = c.conn.NetConn().Close()
					continue
				}
				if ns >= c.pingAt {
					c.pingAt = ns + int64(h.pingEvery)
					c.pingNow()
				}
			}
			h.mu.RUnlock()
		}
	}
}

// closeAll closes every client with code, e.g. when the server shuts down.
func (h *Hub) closeAll(code int, reason string) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for c := range h.clients {
		c.close(code, reason)
	}
}

type hubMetrics struct {
	connections prometheus.Gauge
	delivered   prometheus.Counter
	dropped     prometheus.Counter
}

func newHubMetrics(reg prometheus.Registerer) *hubMetrics {
	m := &hubMetrics{
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "piazza_ws_connections", Help: "Open websocket connections."}),
		delivered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "piazza_ws_notifications_delivered_total", Help: "Notifications queued to websocket clients."}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "piazza_ws_slow_clients_closed_total", Help: "Clients closed because their send queue was full."}),
	}
	if reg != nil {
		reg.MustRegister(m.connections, m.delivered, m.dropped)
	}
	return m
}
