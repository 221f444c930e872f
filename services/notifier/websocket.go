package notifier

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"
	"github.com/localeurope/piazza/pkg/auth"
)

// Protocol limits and timings; docs/websocket.md documents them.
const (
	maxFrameBytes  = 4096
	sendQueueLen   = 256
	maxTopics      = 100
	maxTopicLen    = 80
	writeWait      = 10 * time.Second
	pongWait       = 60 * time.Second
	pingPeriod     = pongWait * 9 / 10
	closeSlow      = 4001 // the send queue overflowed: reconnect and resume
	closeBadClient = websocket.ClosePolicyViolation
)

type client struct {
	conn   *websocket.Conn
	out    chan *websocket.PreparedMessage
	topics map[string]struct{} // guarded by the hub's lock
	// lastSeq is the highest seq queued to the client: a notification is sent
	// once however many of its topics the client follows, and never again
	// after a resume. Written by Dispatch and, under the write lock, subscribe.
	lastSeq   uint64
	closeOnce sync.Once
	closing   chan closeReq
	// closed is set once a close is requested: nothing is queued after it,
	// so a client dropped for falling behind never receives a later
	// notification past the one it missed (a silent gap).
	closed  atomic.Bool
	metrics *hubMetrics
}

type closeReq struct {
	code   int
	reason string
}

// send queues pm without blocking; a full queue closes the client.
func (c *client) send(pm *websocket.PreparedMessage) bool {
	if c.closed.Load() {
		return false
	}
	select {
	case c.out <- pm:
		return true
	default:
		if c.close(closeSlow, "send queue full; resume from your last seq") {
			c.metrics.dropped.Inc()
		}
		return false
	}
}

// close asks the writer to send a close frame and hang up. It reports
// whether this call was the one that closed c.
func (c *client) close(code int, reason string) bool {
	first := false
	c.closeOnce.Do(func() {
		first = true
		c.closed.Store(true)
		c.closing <- closeReq{code, reason}
	})
	return first
}

// clientMsg is what a client sends.
type clientMsg struct {
	Type   string   `json:"type"`
	Topics []string `json:"topics"`
	Since  *uint64  `json:"since,omitempty"`
	// hello: who the resident is. A token wins over a device id.
	Token  string `json:"token,omitempty"`
	Device string `json:"device,omitempty"`
	// hello: also subscribe to everything the resident follows.
	Follows bool `json:"follows,omitempty"`
}

type wsHandler struct {
	hub      *Hub
	log      *slog.Logger
	upgrader websocket.Upgrader
	// For hello: who a resident is and what they follow. Either may be nil
	// (then hello only greets).
	verifier *auth.Verifier
	store    *Store
}

func newWSHandler(hub *Hub, allowed []string, log *slog.Logger) *wsHandler {
	allow := map[string]bool{}
	for _, o := range allowed {
		allow[strings.TrimRight(strings.ToLower(o), "/")] = true
	}
	return &wsHandler{hub: hub, log: log, upgrader: websocket.Upgrader{
		ReadBufferSize:  1024,
		WriteBufferSize: 1024,
		// Share write buffers between idle connections.
		WriteBufferPool: &sync.Pool{},
		CheckOrigin: func(r *http.Request) bool {
			origin := r.Header.Get("Origin")
			if origin == "" {
				return true // not a browser: origin checks protect browsers' users
			}
			u, err := url.Parse(origin)
			if err != nil {
				return false
			}
			if strings.EqualFold(u.Host, r.Host) {
				return true
			}
			return allow[strings.ToLower(u.Scheme+"://"+u.Host)]
		},
		Error: func(w http.ResponseWriter, r *http.Request, status int, reason error) {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(status)
			_ = json.NewEncoder(w).Encode(map[string]any{"type": "about:blank", "title": http.StatusText(status),
				"status": status, "detail": reason.Error()})
		},
	}}
}

func (h *wsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	conn, err := h.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered
	}
	c := &client{conn: conn, out: make(chan *websocket.PreparedMessage, sendQueueLen),
		topics: map[string]struct{}{}, closing: make(chan closeReq, 1), metrics: h.hub.metrics}
	h.hub.add(c)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.writeLoop()
	}()
	h.readLoop(c)
	h.hub.remove(c)
	c.close(websocket.CloseNormalClosure, "")
	<-done
}

func (h *wsHandler) readLoop(c *client) {
	c.conn.SetReadLimit(maxFrameBytes)
	_ = c.conn.SetReadDeadline(time.Now().Add(pongWait))
	c.conn.SetPongHandler(func(string) error { return c.conn.SetReadDeadline(time.Now().Add(pongWait)) })
	for {
		typ, data, err := c.conn.ReadMessage()
		if err != nil {
			return
		}
		_ = c.conn.SetReadDeadline(time.Now().Add(pongWait))
		if typ != websocket.TextMessage {
			c.close(websocket.CloseUnsupportedData, "send JSON text frames")
			return
		}
		var m clientMsg
		if err := json.Unmarshal(data, &m); err != nil {
			h.reply(c, map[string]any{"type": "error", "code": "bad_message", "message": "frames must be JSON objects"})
			continue
		}
		// Only this goroutine changes c.topics, so reading its size is safe.
		// The limit is on subscribing: a full client must be able to unsubscribe.
		have := len(c.topics)
		if m.Type == "unsubscribe" {
			have = 0
		}
		if msg := validTopics(m.Topics, have); msg != "" && (m.Type == "subscribe" || m.Type == "unsubscribe") {
			h.reply(c, map[string]any{"type": "error", "code": "bad_topics", "message": msg})
			continue
		}
		switch m.Type {
		case "hello":
			h.hello(c, m)
		case "subscribe":
			h.hub.subscribe(c, m.Topics, m.Since, func(r resumeResult) {
				if r.Reset {
					h.reply(c, map[string]any{"type": "reset", "seq": r.Seq,
						"message": "your last seq is outside the resume window; reload the current state"})
				}
				h.reply(c, map[string]any{"type": "subscribed", "topics": m.Topics, "seq": r.Seq, "missed": r.Missed})
			})
		case "unsubscribe":
			h.hub.unsubscribe(c, m.Topics)
			h.reply(c, map[string]any{"type": "unsubscribed", "topics": m.Topics})
		default:
			h.reply(c, map[string]any{"type": "error", "code": "unknown_type", "message": "type must be hello, subscribe or unsubscribe"})
		}
	}
}

// hello identifies the resident (token or device id) and, when asked,
// subscribes the connection to what they follow, resuming from since.
func (h *wsHandler) hello(c *client, m clientMsg) {
	var who, kind string
	switch {
	case m.Token != "":
		if h.verifier == nil {
			h.reply(c, map[string]any{"type": "error", "code": "bad_token", "message": "tokens are not accepted here"})
			return
		}
		p, err := h.verifier.Verify(m.Token)
		if err != nil {
			h.reply(c, map[string]any{"type": "error", "code": "bad_token", "message": "the access token is invalid or expired; refresh it and say hello again"})
			return
		}
		who, kind = "account:"+p.AccountID, "account"
	case m.Device != "":
		id, err := uuid.Parse(m.Device)
		if err != nil || len(m.Device) != 36 {
			h.reply(c, map[string]any{"type": "error", "code": "bad_device", "message": "device must be a UUID"})
			return
		}
		who, kind = "device:"+id.String(), "device"
	default:
		kind = "anonymous"
	}
	var topics []string
	if m.Follows && who != "" && h.store != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		fs, err := h.store.Follows(ctx, who)
		cancel()
		if err != nil {
			h.log.Warn("hello: follows not loaded", "err", err)
			h.reply(c, map[string]any{"type": "error", "code": "unavailable", "message": "your follows could not be loaded; try again"})
			return
		}
		for _, f := range fs {
			topics = append(topics, f.Topic)
		}
	}
	if msg := validTopics(topics, len(c.topics)); len(topics) > 0 && msg != "" {
		h.reply(c, map[string]any{"type": "error", "code": "bad_topics", "message": msg})
		return
	}
	// An account's private topic (a waitlist offer, say) is only ever
	// subscribed here, after its token verified.
	topics = append(topics, residentTopics(who)...)
	h.reply(c, map[string]any{"type": "welcome", "resident": kind, "follows": nonNil(topics)})
	if len(topics) == 0 {
		return
	}
	h.hub.subscribe(c, topics, m.Since, func(r resumeResult) {
		if r.Reset {
			h.reply(c, map[string]any{"type": "reset", "seq": r.Seq,
				"message": "your last seq is outside the resume window; reload the current state"})
		}
		h.reply(c, map[string]any{"type": "subscribed", "topics": topics, "seq": r.Seq, "missed": r.Missed})
	})
}

// validTopics returns why topics are unacceptable, or "".
func validTopics(topics []string, have int) string {
	if len(topics) == 0 {
		return "topics must list at least one topic"
	}
	if have+len(topics) > maxTopics {
		return "at most 100 topics per connection"
	}
	for _, t := range topics {
		kind, id, ok := strings.Cut(t, ":")
		if !ok || id == "" || len(t) > maxTopicLen {
			return "a topic looks like city:ghent or vendor:<id>"
		}
		switch kind {
		case "city", "place", "market", "vendor", "category":
		default:
			return "topic kinds are city, place, market, vendor and category"
		}
	}
	return ""
}

func (h *wsHandler) reply(c *client, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	pm, err := websocket.NewPreparedMessage(websocket.TextMessage, b)
	if err != nil {
		return
	}
	c.send(pm)
}

// writeLoop is the only goroutine that writes to the connection.
func (c *client) writeLoop() {
	ping := time.NewTicker(pingPeriod)
	defer ping.Stop()
	defer c.conn.Close()
	for {
		select {
		case pm := <-c.out:
			_ = c.conn.SetWriteDeadline(time.Now().Add(writeWait))
			if err := c.conn.WritePreparedMessage(pm); err != nil {
				return
			}
		case <-ping.C:
			if err := c.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeWait)); err != nil {
				return
			}
		case req := <-c.closing:
			_ = c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(req.code, req.reason), time.Now().Add(time.Second))
			return
		}
	}
}
