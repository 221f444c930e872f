package notifier

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
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
	maxTopics      = maxFollows + 56 // every follow, plus topics a client names itself
	maxTopicLen    = 80
	writeWait      = 10 * time.Second
	pongWait       = 60 * time.Second
	pingPeriod     = pongWait * 9 / 10
	closeSlow      = 4001 // the send queue overflowed: reconnect and resume
	closeBadClient = websocket.ClosePolicyViolation
	// maxRefused is how many client frames in a row may be refused before
	// the connection is closed with closeBadClient: a client that loops on
	// a bad hello is told to stop.
	maxRefused = 10
	// sinceWait is how long a since ahead of this replica waits for the
	// replica to catch up (the client saw it on one further along) before
	// it is refused as beyond the stream.
	sinceWait = 5 * time.Second
)

// clientMsg is what a client sends. Its fields are exactly those a hello
// may carry.
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

// refusal is why a client frame was refused: the code and message of the
// error frame that answers it.
type refusal struct{ code, message string }

type wsHandler struct {
	hub      *Hub
	log      *slog.Logger
	upgrader websocket.Upgrader
	// For hello: who a resident is and what they follow. Either may be nil
	// (then hello only greets).
	verifier *auth.Verifier
	store    *Store
	// sinceWait: see the constant.
	sinceWait time.Duration
}

func newWSHandler(hub *Hub, allowed []string, log *slog.Logger) *wsHandler {
	allow := map[string]bool{}
	for _, o := range allowed {
		allow[strings.TrimRight(strings.ToLower(o), "/")] = true
	}
	return &wsHandler{hub: hub, log: log, sinceWait: sinceWait, upgrader: websocket.Upgrader{
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
	conn.SetPingHandler(func(data string) error { c.heard(); c.answerPing(data); return nil })
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
	c.heard()
	c.conn.SetPongHandler(func(string) error { c.heard(); return nil })
	refused := 0 // client frames refused in a row
	for {
		typ, data, err := c.conn.ReadMessage()
		if err != nil {
			return
		}
		c.heard()
		if typ != websocket.TextMessage {
			c.close(websocket.CloseUnsupportedData, "send JSON text frames")
			return
		}
		// Each message is handled on a short goroutine of its own, the
		// reader waiting: decoding and subscribing grow a stack to 8 KB,
		// which the reader of an idle connection would keep (a goroutine's
		// stack only shrinks by halves, at a GC), where reading needs 2 KB.
		done := make(chan struct{})
		var ok bool
		go func() {
			defer close(done)
			ok = h.handle(c, data)
		}()
		<-done
		if ok {
			refused = 0
		} else if refused++; refused >= maxRefused {
			c.close(closeBadClient, "too many refused frames in a row")
			return
		}
	}
}

// handle answers one client message, and reports whether it was accepted.
// Only c's reader calls it, one message at a time.
func (h *wsHandler) handle(c *client, data []byte) bool {
	m, r := decodeClientMsg(data)
	if r == nil {
		r = h.answer(c, m)
	}
	if r != nil {
		h.reply(c, map[string]any{"type": "error", "code": r.code, "message": r.message})
		return false
	}
	return true
}

// decodeClientMsg decodes a client frame. A hello refuses fields it does not
// know, so that a misspelt topics or since cannot silently cost a client its
// subscription or its resume; subscribe and unsubscribe ignore them, as they
// always have, for the clients written before hello took topics.
func decodeClientMsg(data []byte) (clientMsg, *refusal) {
	var m clientMsg
	if err := json.Unmarshal(data, &m); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return m, &refusal{"bad_message", fieldTypeMessage(te.Field)}
		}
		return m, &refusal{"bad_message", "frames must be JSON objects"}
	}
	if m.Type == "hello" {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&clientMsg{}); err != nil {
			return m, &refusal{"bad_message", "a hello takes type, token, device, follows, topics and since, not " +
				strings.TrimPrefix(err.Error(), "json: unknown field ")}
		}
	}
	return m, nil
}

func fieldTypeMessage(field string) string {
	switch field {
	case "since":
		return "since must be a whole number: the seq of the last notification you have seen"
	case "topics":
		return "topics must be a list of topics such as city:ghent"
	case "follows":
		return "follows must be true or false"
	default:
		return field + " must be a string"
	}
}

// answer carries out one decoded client message.
func (h *wsHandler) answer(c *client, m clientMsg) *refusal {
	switch m.Type {
	case "hello":
		return h.hello(c, m)
	case "subscribe":
		if r := checkTopics(c, m.Topics); r != nil {
			return r
		}
		if r := h.checkSince(m.Since); r != nil {
			return r
		}
		h.subscribe(c, m.Topics, m.Since)
	case "unsubscribe":
		// No limit: a full client must be able to unsubscribe.
		if msg := validTopics(m.Topics, 0); msg != "" {
			return &refusal{"bad_topics", msg}
		}
		h.hub.unsubscribe(c, m.Topics)
		h.reply(c, map[string]any{"type": "unsubscribed", "topics": m.Topics})
	default:
		return &refusal{"unknown_type", "type must be hello, subscribe or unsubscribe"}
	}
	return nil
}

// subscribe subscribes c to topics, resuming from since, and confirms: a
// reset when the resume is out of reach, then subscribed.
func (h *wsHandler) subscribe(c *client, topics []string, since *uint64) {
	h.hub.subscribe(c, topics, since, func(r resumeResult) {
		if r.Reset {
			h.reply(c, map[string]any{"type": "reset", "seq": r.Seq,
				"message": "your last seq is outside the resume window; reload the current state"})
		}
		h.reply(c, map[string]any{"type": "subscribed", "topics": topics, "seq": r.Seq, "missed": r.Missed})
	})
}

// hello identifies the resident (token or device id) and subscribes the
// connection, in one step, to the topics it lists, to what the resident
// follows when asked, and to the account's own topic, resuming all of them
// from since: one replay, one subscribed. A hello that is refused changes
// nothing.
func (h *wsHandler) hello(c *client, m clientMsg) *refusal {
	who, kind, r := h.identify(m)
	if r != nil {
		return r
	}
	if len(m.Topics) > 0 {
		if msg := validTopics(m.Topics, 0); msg != "" {
			return &refusal{"bad_topics", msg}
		}
	}
	var follows []string
	if m.Follows && who != "" && h.store != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		fs, err := h.store.Follows(ctx, who)
		cancel()
		if err != nil {
			h.log.Warn("hello: follows not loaded", "err", err)
			return &refusal{"unavailable", "your follows could not be loaded; say hello again in a moment"}
		}
		for _, f := range fs {
			follows = append(follows, f.Topic)
		}
		if msg := validTopics(follows, 0); len(follows) > 0 && msg != "" {
			return &refusal{"bad_topics", "your follows: " + msg}
		}
	}
	topics := slices.Clone(m.Topics)
	for _, t := range follows {
		if !slices.Contains(topics, t) {
			topics = append(topics, t)
		}
	}
	if len(topics) > 0 {
		if r := checkTopics(c, topics); r != nil {
			return r
		}
	}
	if r := h.checkSince(m.Since); r != nil {
		return r
	}
	// An account's private topic (a waitlist offer, say) is only ever
	// subscribed here, after its token verified; it is not counted. A hello
	// for someone else (signed out, or another account) drops the one an
	// earlier hello took.
	private := residentTopics(who)
	if stale := slices.DeleteFunc(slices.Clone(c.private), func(t string) bool { return slices.Contains(private, t) }); len(stale) > 0 {
		h.hub.unsubscribe(c, stale)
	}
	c.private = private
	h.reply(c, map[string]any{"type": "welcome", "resident": kind, "follows": append(nonNil(follows), private...)})
	if all := append(topics, private...); len(all) > 0 {
		h.subscribe(c, all, m.Since)
	}
	return nil
}

// identify says who a hello speaks for: "account:<id>", "device:<id>" or ""
// (anonymous), and its kind.
func (h *wsHandler) identify(m clientMsg) (who, kind string, r *refusal) {
	switch {
	case m.Token != "":
		if h.verifier == nil {
			return "", "", &refusal{"bad_token", "tokens are not accepted here"}
		}
		p, err := h.verifier.Verify(m.Token)
		if err != nil {
			return "", "", &refusal{"bad_token", "the access token is invalid or expired; refresh it and say hello again"}
		}
		return "account:" + p.AccountID, "account", nil
	case m.Device != "":
		id, err := uuid.Parse(m.Device)
		if err != nil || len(m.Device) != 36 {
			return "", "", &refusal{"bad_device", "device must be a UUID"}
		}
		return "device:" + id.String(), "device", nil
	default:
		return "", "anonymous", nil
	}
}

// checkTopics refuses topics that are malformed or would take c past
// maxTopics. Only c's reader changes c.topics, so it may read them.
func checkTopics(c *client, topics []string) *refusal {
	if msg := validTopics(topics, 0); msg != "" {
		return &refusal{"bad_topics", msg}
	}
	added := 0
	for i, t := range topics {
		if _, ok := c.topics[t]; !ok && !slices.Contains(topics[:i], t) {
			added++
		}
	}
	if len(c.topics)+added > maxTopics {
		return &refusal{"bad_topics", fmt.Sprintf("at most %d topics per connection", maxTopics)}
	}
	return nil
}

// checkSince refuses a since beyond the notification stream. A since ahead
// of this replica is first given sinceWait for the replica to catch up: the
// client may have seen it on a replica further along. Trusting a since that
// no replica has reached would hold back every notification up to it: a
// silent gap.
func (h *wsHandler) checkSince(since *uint64) *refusal {
	if since == nil || h.hub.waitFor(*since, h.sinceWait) {
		return nil
	}
	return &refusal{"bad_since", fmt.Sprintf("since %d is beyond the notification stream (at %d here); "+
		"send it again without since and reload the current state", *since, h.hub.LastSeq())}
}

// validTopics returns why topics are unacceptable, or "".
func validTopics(topics []string, have int) string {
	if len(topics) == 0 {
		return "topics must list at least one topic"
	}
	if have+len(topics) > maxTopics {
		return fmt.Sprintf("at most %d topics per connection", maxTopics)
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
