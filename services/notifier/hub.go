package notifier

import (
	"encoding/json"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
)

// Hub fans notifications out to the websocket clients of one notifier
// replica, by topic. Each notification is encoded once (a prepared websocket
// message shared by every recipient) and sending never blocks: a client whose
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
}

// NewHub returns an empty hub whose position is lastSeq.
func NewHub(lastSeq uint64, m *hubMetrics) *Hub {
	h := &Hub{topics: map[string]map[*client]struct{}{}, clients: map[*client]struct{}{}, metrics: m}
	h.lastSeq.Store(lastSeq)
	return h
}

// LastSeq is the stream position the hub has dispatched up to.
func (h *Hub) LastSeq() uint64 { return h.lastSeq.Load() }

func (h *Hub) add(c *client) {
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

// subscribe adds topics to c and returns the position after which c gets
// every matching notification. confirm runs under the hub's lock, so the
// frame it queues reaches the client before any notification after seq.
func (h *Hub) subscribe(c *client, topics []string, confirm func(seq uint64)) uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, t := range topics {
		if _, ok := c.topics[t]; ok {
			continue
		}
		c.topics[t] = struct{}{}
		subs := h.topics[t]
		if subs == nil {
			subs = map[*client]struct{}{}
			h.topics[t] = subs
		}
		subs[c] = struct{}{}
	}
	seq := h.lastSeq.Load()
	if confirm != nil {
		confirm(seq)
	}
	return seq
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
	frame := make([]byte, 0, len(body)+64)
	frame = append(frame, `{"type":"notification","seq":`...)
	frame = strconv.AppendUint(frame, seq, 10)
	frame = append(frame, `,"notification":`...)
	frame = append(frame, body...)
	frame = append(frame, '}')
	pm, err := websocket.NewPreparedMessage(websocket.TextMessage, frame)
	if err != nil {
		return err
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	delivered := 0
	for _, t := range n.Topics {
		for c := range h.topics[t] {
			if c.lastSeq == seq { // subscribed to several of its topics
				continue
			}
			c.lastSeq = seq
			if c.send(pm) {
				delivered++
			}
		}
	}
	h.lastSeq.Store(seq)
	h.metrics.delivered.Add(float64(delivered))
	return nil
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
