package notifier

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/localeurope/piazza/pkg/web"
	"github.com/prometheus/client_golang/prometheus"
)

const allowedOrigin = "https://app.piazza.example"

// hubServer serves a hub's websocket handler behind the process middleware.
type hubServer struct {
	hub *Hub
	reg *prometheus.Registry
	srv *httptest.Server
}

func newHubServer(tb testing.TB, lastSeq uint64, wrap func(net.Listener) net.Listener) *hubServer {
	tb.Helper()
	reg := prometheus.NewRegistry()
	hub := NewHub(lastSeq, newHubMetrics(reg))
	log := testLog(tb)
	mux := http.NewServeMux()
	mux.Handle("GET /api/v1/notifier/ws", newWSHandler(hub, []string{allowedOrigin + "/"}, log))
	srv := httptest.NewUnstartedServer(web.Middleware{Log: log}.Wrap(mux))
	if wrap != nil {
		srv.Listener = wrap(srv.Listener)
	}
	srv.Start()
	tb.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { _ = hub.keepAlive(ctx) }()
	tb.Cleanup(cancel)
	return &hubServer{hub: hub, reg: reg, srv: srv}
}

func (s *hubServer) url() string { return wsURL(s.srv.URL, "/api/v1/notifier/ws") }

func (s *hubServer) dial(tb testing.TB) *wsClient {
	tb.Helper()
	return dial(tb, s.url(), nil)
}

func TestWebsocket(t *testing.T) {
	s := newHubServer(t, 41, nil)

	t.Run("subscribing answers with the hub's position", func(t *testing.T) {
		c := s.dial(t)
		c.send(map[string]any{"type": "subscribe", "topics": []string{"city:ghent"}})
		m := c.nextOf("subscribed")
		if m.Seq != s.hub.LastSeq() || m.Seq != 41 || len(m.Topics) != 1 || m.Topics[0] != "city:ghent" {
			t.Errorf("subscribed = %+v, want seq %d for city:ghent", m, s.hub.LastSeq())
		}
	})

	t.Run("a notification arrives once, after the subscribed position, even when several topics match", func(t *testing.T) {
		c := s.dial(t)
		vendor := "vendor:01a218ba-dab3-7356-96d5-2a55ee090e07"
		from := c.subscribe("city:ghent", vendor)
		seq := s.hub.LastSeq() + 1
		if err := s.hub.Dispatch(seq, notification(t, "city:ghent", "place:p", vendor)); err != nil {
			t.Fatal(err)
		}
		// A barrier: had the first one come twice, the copy would come before it.
		if err := s.hub.Dispatch(seq+1, notification(t, "city:ghent")); err != nil {
			t.Fatal(err)
		}
		first, second := c.nextOf("notification"), c.nextOf("notification")
		if first.Seq != seq || first.Seq <= from || second.Seq != seq+1 {
			t.Errorf("got seqs %d then %d after subscribing at %d, want %d then %d", first.Seq, second.Seq, from, seq, seq+1)
		}
		if first.Notification.Kind != "stall.registered" || len(first.Notification.Topics) != 3 {
			t.Errorf("notification = %+v", first.Notification)
		}
	})

	t.Run("unsubscribing stops delivery", func(t *testing.T) {
		c := s.dial(t)
		c.subscribe("city:ghent", "city:bologna")
		c.unsubscribe("city:ghent")
		seq := s.hub.LastSeq() + 1
		_ = s.hub.Dispatch(seq, notification(t, "city:ghent"))
		_ = s.hub.Dispatch(seq+1, notification(t, "city:bologna"))
		if m := c.nextOf("notification"); m.Seq != seq+1 {
			t.Errorf("got notification %d, want only bologna's (%d)", m.Seq, seq+1)
		}
	})

	t.Run("a client at the topic limit can still unsubscribe", func(t *testing.T) {
		c := s.dial(t)
		topics := make([]string, maxTopics)
		for i := range topics {
			topics[i] = fmt.Sprintf("market:%d", i)
		}
		c.subscribe(topics...)
		c.send(map[string]any{"type": "subscribe", "topics": []string{"city:ghent"}})
		if m := c.nextOf("error"); m.Code != "bad_topics" {
			t.Errorf("subscribing to topic 101 = %+v, want bad_topics", m)
		}
		c.unsubscribe("market:0")
		c.subscribe("city:ghent")
	})

	for _, tt := range []struct {
		name string
		msg  any
		code string
	}{
		{"no topics are bad topics", map[string]any{"type": "subscribe", "topics": []string{}}, "bad_topics"},
		{"an unknown topic kind is a bad topic", map[string]any{"type": "subscribe", "topics": []string{"planet:mars"}}, "bad_topics"},
		{"a topic without an id is a bad topic", map[string]any{"type": "subscribe", "topics": []string{"city:"}}, "bad_topics"},
		{"a topic without a kind is a bad topic", map[string]any{"type": "subscribe", "topics": []string{"ghent"}}, "bad_topics"},
		{"a topic over 80 characters is a bad topic", map[string]any{"type": "subscribe", "topics": []string{"city:" + strings.Repeat("x", 80)}}, "bad_topics"},
		{"over maxTopics topics are bad topics", map[string]any{"type": "subscribe", "topics": manyTopics(maxTopics + 1)}, "bad_topics"},
		{"bad topics to unsubscribe are bad topics", map[string]any{"type": "unsubscribe", "topics": []string{"nope"}}, "bad_topics"},
		{"an unknown type is refused", map[string]any{"type": "shout", "topics": []string{"city:ghent"}}, "unknown_type"},
		{"a frame that is not a JSON object is refused", "just a string", "bad_message"},
	} {
		t.Run(tt.name+" and the connection stays open", func(t *testing.T) {
			c := s.dial(t)
			c.send(tt.msg)
			if m := c.nextOf("error"); m.Code != tt.code || m.Message == "" {
				t.Errorf("got %+v, want error %s with a message", m, tt.code)
			}
			c.subscribe("city:ghent")
		})
	}

	t.Run("a frame over 4096 bytes closes the connection with 1009", func(t *testing.T) {
		c := s.dial(t)
		big := `{"type":"subscribe","topics":["city:ghent"],"pad":"` + strings.Repeat("x", maxFrameBytes) + `"}`
		if err := c.conn.WriteMessage(websocket.TextMessage, []byte(big)); err != nil {
			t.Fatal(err)
		}
		if code := c.closeCode(); code != websocket.CloseMessageTooBig {
			t.Errorf("close code = %d, want 1009", code)
		}
	})

	t.Run("a frame of exactly 4096 bytes is fine", func(t *testing.T) {
		c := s.dial(t)
		prefix, suffix := `{"type":"subscribe","topics":["city:ghent"],"pad":"`, `"}`
		msg := prefix + strings.Repeat("x", maxFrameBytes-len(prefix)-len(suffix)) + suffix
		if err := c.conn.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		c.nextOf("subscribed")
	})

	t.Run("a binary frame closes the connection with 1003", func(t *testing.T) {
		c := s.dial(t)
		if err := c.conn.WriteMessage(websocket.BinaryMessage, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
		if code := c.closeCode(); code != websocket.CloseUnsupportedData {
			t.Errorf("close code = %d, want 1003", code)
		}
	})

	t.Run("a closed connection is forgotten by the hub", func(t *testing.T) {
		// The earlier subtests' connections are closed; wait until the hub has let them go.
		eventually(t, "the hub forgets earlier connections", func() bool { return s.hub.clientCount() == 0 })
		c := dial(t, s.url(), nil)
		c.subscribe("city:ghent")
		if n := s.hub.clientCount(); n != 1 {
			t.Fatalf("hub counts %d connections, want 1", n)
		}
		c.conn.Close()
		eventually(t, "the hub forgets the connection", func() bool { return s.hub.clientCount() == 0 })
	})
}

func manyTopics(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("place:%d", i)
	}
	return out
}

// TestOrigin checks the upgrade's origin check, which protects browser users
// from other sites opening sockets in their name.
func TestOrigin(t *testing.T) {
	s := newHubServer(t, 0, nil)
	host := strings.TrimPrefix(s.srv.URL, "http://")
	for _, tt := range []struct {
		name, origin string
		ok           bool
	}{
		{"no Origin (a native app) is accepted", "", true},
		{"the server's own host is accepted", "http://" + host, true},
		{"the server's own host over https is accepted", "https://" + host, true},
		{"an allow-listed origin is accepted", allowedOrigin, true},
		{"an allow-listed origin in capitals is accepted", strings.ToUpper(allowedOrigin), true},
		{"a foreign origin is refused", "https://evil.example", false},
		{"a foreign origin that starts like the allowed one is refused", allowedOrigin + ".evil.example", false},
		{"an allow-listed host on another scheme is refused", "http://app.piazza.example", false},
		{"an opaque origin is refused", "null", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.origin != "" {
				h.Set("Origin", tt.origin)
			}
			conn, res, err := websocket.DefaultDialer.Dial(s.url(), h)
			if tt.ok {
				if err != nil {
					t.Fatalf("dial with Origin %q: %v", tt.origin, err)
				}
				conn.Close()
				return
			}
			if err == nil {
				conn.Close()
				t.Fatalf("dial with Origin %q succeeded, want 403", tt.origin)
			}
			if res == nil || res.StatusCode != http.StatusForbidden {
				t.Fatalf("dial with Origin %q: %v, want 403", tt.origin, err)
			}
			if ct := res.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type = %q, want application/problem+json", ct)
			}
			var p struct{ Status int }
			if err := json.NewDecoder(res.Body).Decode(&p); err != nil || p.Status != http.StatusForbidden {
				t.Errorf("problem body: %+v, %v", p, err)
			}
		})
	}
}

// tinyBuffers shrinks the socket send buffer of accepted connections, so a
// client that does not read blocks the server's writes after a few frames.
type tinyBuffers struct{ net.Listener }

func (l tinyBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(4096)
	}
	return c, err
}

func TestSlowClient(t *testing.T) {
	s := newHubServer(t, 0, func(l net.Listener) net.Listener { return tinyBuffers{l} })
	healthy := s.dial(t)
	healthy.subscribe("city:ghent")
	slowDialer := &websocket.Dialer{NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetReadBuffer(4096)
		}
		return c, err
	}}
	slow := dialWith(t, slowDialer, s.url(), nil)
	slow.subscribe("city:ghent")
	// From here on the slow client reads nothing until the end.

	received := make(chan uint64, 64)
	readErr := make(chan error, 1)
	_ = healthy.conn.SetReadDeadline(time.Now().Add(60 * time.Second))
	go func() {
		for {
			var m serverMsg
			if err := healthy.conn.ReadJSON(&m); err != nil {
				readErr <- err
				return
			}
			received <- m.Seq
		}
	}()

	body := notification(t, "city:ghent")
	// Dispatch never blocks, so the test paces itself on the healthy client:
	// it stays at most half a queue behind, and so is never dropped itself.
	var dispatched, got uint64
	awaitHealthy := func() {
		t.Helper()
		select {
		case seq := <-received:
			got++
			if seq != got {
				t.Fatalf("healthy client got seq %d, want %d: it must miss nothing", seq, got)
			}
		case err := <-readErr:
			t.Fatalf("healthy client: %v", err)
		}
	}
	dispatchPaced := func(until func() bool) {
		t.Helper()
		for !until() {
			if dispatched-got >= sendQueueLen/2 {
				awaitHealthy()
				continue
			}
			dispatched++
			if err := s.hub.Dispatch(dispatched, body); err != nil {
				t.Fatal(err)
			}
			if dispatched > 200_000 {
				t.Fatal("the slow client was never dropped")
			}
		}
	}
	slowClosed := func() bool { return counterValue(t, s.reg, "piazza_ws_slow_clients_closed_total") >= 1 }
	dispatchPaced(slowClosed)
	dropAt := dispatched
	total := dropAt + 2*sendQueueLen
	dispatchPaced(func() bool { return dispatched == total })
	for got < total {
		awaitHealthy()
	}
	t.Logf("slow client dropped at notification %d; the healthy one got all %d", dropAt, total)

	// Now the slow client reads: a gapless prefix, then close code 4001.
	_ = slow.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	var last uint64
	for {
		_, data, err := slow.conn.ReadMessage()
		if err != nil {
			ce, ok := err.(*websocket.CloseError)
			if !ok || ce.Code != closeSlow {
				t.Fatalf("slow client ended with %v after seq %d, want close code 4001", err, last)
			}
			break
		}
		var m serverMsg
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		if m.Seq != last+1 {
			t.Fatalf("slow client got seq %d after %d: a gap before its close", m.Seq, last)
		}
		last = m.Seq
	}
	if last >= dropAt {
		t.Errorf("slow client got up to %d though it was dropped at %d", last, dropAt)
	}
	eventually(t, "the slow client is forgotten", func() bool { return s.hub.clientCount() == 1 })
	if n := counterValue(t, s.reg, "piazza_ws_slow_clients_closed_total"); n != 1 {
		t.Errorf("slow clients closed = %v, want 1", n)
	}
}
