package notifier

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
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
		// Clients send a few small frames: a small read buffer (frames
		// larger than it are still read whole, up to maxFrameBytes).
		ReadBufferSize: 512,
		// Notifications bypass gorilla's writer (client.writeFrames), and
		// a pool means no write buffer is held by an idle connection.
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

// ServeHTTP upgrades the connection and returns, leaving one goroutine to
// read it: returning lets net/http drop what it kept for the request (its
// buffers, the request, the handler goroutine's grown stack).
func (h *wsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	conn, err := h.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered
	}
	c := newClient(conn, h.hub)
	// Pongs and close replies go through the writer too, so it is the
	// only goroutine that writes (gorilla itself still answers a protocol
	// error with a close frame).
	conn.SetPingHandler(func(data string) error { c.answerPing(data); return nil })
	conn.SetCloseHandler(func(code int, _ string) error {
		if code == websocket.CloseNoStatusReceived {
			code = websocket.CloseNormalClosure
		}
		c.close(code, "")
		return nil
	})
	h.hub.add(c)
	go func() {
		h.readLoop(c)
		h.hub.remove(c)
		c.close(websocket.CloseNormalClosure, "")
	}()
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
		// Each message is handled on a short goroutine of its own, the
		// reader waiting: decoding and subscribing grow a stack to 8 KB,
		// which the reader of an idle connection would keep (a goroutine's
		// stack only shrinks by halves, at a GC), where reading needs 2 KB.
		done := make(chan struct{})
		go func() {
			defer close(done)
			h.handle(c, data)
		}()
		<-done
	}
}

// handle answers one client message. Only c's reader calls it, one message
// at a time.
func (h *wsHandler) handle(c *client, data []byte) {
	var m clientMsg
	if err := json.Unmarshal(data, &m); err != nil {
		h.reply(c, map[string]any{"type": "error", "code": "bad_message", "message": "frames must be JSON objects"})
		return
	}
	// Only c's reader changes c.topics, so reading its size is safe.
	// The limit is on subscribing: a full client must be able to unsubscribe.
	have := len(c.topics)
	if m.Type == "unsubscribe" {
		have = 0
	}
	if msg := validTopics(m.Topics, have); msg != "" && (m.Type == "subscribe" || m.Type == "unsubscribe") {
		h.reply(c, map[string]any{"type": "error", "code": "bad_topics", "message": msg})
		return
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
	c.send(textFrame(b))
}
