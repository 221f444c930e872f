package notifier

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/localeurope/piazza/pkg/postgres"
	"github.com/localeurope/piazza/pkg/postgres/pgtest"
	"github.com/localeurope/piazza/services/contract"
	"github.com/prometheus/client_golang/prometheus"
)

// testLog writes to the test's output until the test ends, and nowhere after.
func testLog(tb testing.TB) *slog.Logger {
	tb.Helper()
	w := &testWriter{w: tb.Output()}
	tb.Cleanup(w.stop)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct {
	mu   sync.Mutex
	w    io.Writer
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return len(p), nil
	}
	return w.w.Write(p)
}

func (w *testWriter) stop() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}

func newDatabase(tb testing.TB) string {
	tb.Helper()
	return pgtest.NewDatabase(tb, pgtest.Template{
		Name:        "notifier",
		Fingerprint: postgres.Fingerprint(Migrations()...),
		Migrate: func(ctx context.Context, url string) error {
			pool, err := postgres.Open(ctx, url, postgres.Options{Schema: Schema})
			if err != nil {
				return err
			}
			defer pool.Close()
			return postgres.Migrate(ctx, pool, slog.New(slog.DiscardHandler), Migrations()...)
		},
	})
}

func openPool(tb testing.TB, url string) *pgxpool.Pool {
	tb.Helper()
	pool, err := postgres.Open(context.Background(), url, postgres.Options{Schema: Schema})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(pool.Close)
	return pool
}

func count(tb testing.TB, pool *pgxpool.Pool, sql string, args ...any) int {
	tb.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		tb.Fatalf("%s: %v", sql, err)
	}
	return n
}

// eventually polls cond until it holds or the deadline passes.
func eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// notification is the stream body of a notification for topics.
func notification(tb testing.TB, topics ...string) []byte {
	tb.Helper()
	b, err := json.Marshal(contract.NotificationV1{
		ID: uuid.NewString(), Kind: "stall.registered", City: "ghent", Topics: topics,
		Time: time.Date(2026, 5, 2, 8, 0, 0, 0, time.UTC), Data: json.RawMessage(`{"pitch":"A1"}`),
	})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// serverMsg is any message the server sends.
type serverMsg struct {
	Type         string                  `json:"type"`
	Topics       []string                `json:"topics"`
	Seq          uint64                  `json:"seq"`
	Code         string                  `json:"code"`
	Message      string                  `json:"message"`
	Notification contract.NotificationV1 `json:"notification"`
}

type wsClient struct {
	tb   testing.TB
	conn *websocket.Conn
}

// dial opens a websocket to url (ws://…) and closes it when the test ends.
func dial(tb testing.TB, url string, header http.Header) *wsClient {
	tb.Helper()
	return dialWith(tb, websocket.DefaultDialer, url, header)
}

func dialWith(tb testing.TB, d *websocket.Dialer, url string, header http.Header) *wsClient {
	tb.Helper()
	conn, res, err := d.Dial(url, header)
	if err != nil {
		status := 0
		if res != nil {
			status = res.StatusCode
		}
		tb.Fatalf("dial %s: %v (status %d)", url, err, status)
	}
	tb.Cleanup(func() { conn.Close() })
	return &wsClient{tb: tb, conn: conn}
}

func wsURL(httpURL, path string) string { return "ws" + strings.TrimPrefix(httpURL, "http") + path }

func (c *wsClient) send(v any) {
	c.tb.Helper()
	if err := c.conn.WriteJSON(v); err != nil {
		c.tb.Fatalf("write: %v", err)
	}
}

// next reads the next message; the deadline only guards against a hang.
func (c *wsClient) next() serverMsg {
	c.tb.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	var m serverMsg
	if err := c.conn.ReadJSON(&m); err != nil {
		c.tb.Fatalf("read: %v", err)
	}
	return m
}

// nextOf reads the next message and checks its type.
func (c *wsClient) nextOf(typ string) serverMsg {
	c.tb.Helper()
	m := c.next()
	if m.Type != typ {
		c.tb.Fatalf("got %+v, want a %q message", m, typ)
	}
	return m
}

// subscribe subscribes to topics and returns the position it starts after.
func (c *wsClient) subscribe(topics ...string) uint64 {
	c.tb.Helper()
	c.send(map[string]any{"type": "subscribe", "topics": topics})
	return c.nextOf("subscribed").Seq
}

func (c *wsClient) unsubscribe(topics ...string) {
	c.tb.Helper()
	c.send(map[string]any{"type": "unsubscribe", "topics": topics})
	c.nextOf("unsubscribed")
}

// closeCode reads until the connection ends and returns the close code
// (websocket.CloseAbnormalClosure when it ended without a close frame).
func (c *wsClient) closeCode() int {
	c.tb.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		_, _, err := c.conn.ReadMessage()
		if err == nil {
			continue
		}
		if ce, ok := err.(*websocket.CloseError); ok {
			return ce.Code
		}
		c.tb.Fatalf("connection ended without a close frame: %v", err)
	}
}

// counterValue reads a counter from reg by name.
func counterValue(tb testing.TB, reg *prometheus.Registry, name string) float64 {
	tb.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}

// clientCount is how many connections the hub knows.
func (h *Hub) clientCount() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.clients)
}

// subscriberCount is how many connections hold topic.
func (h *Hub) subscriberCount(topic string) int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.topics[topic])
}
