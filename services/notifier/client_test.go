package notifier

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"
	"github.com/localeurope/piazza/services/contract"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestTextFrame(t *testing.T) {
	// A server that writes our frames straight to the socket, read by
	// gorilla's client: the frames must be valid websocket text messages.
	sizes := []int{0, 1, 125, 126, 127, 0xffff, 0x10000, 100_000}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer conn.Close()
		var all []byte
		for _, n := range sizes {
			all = append(all, textFrame(bytes.Repeat([]byte{'x'}, n))...)
		}
		_, _ = conn.NetConn().Write(all) // every frame in one write, as the writer batches them
		_, _, _ = conn.ReadMessage()     // until the client hangs up
	}))
	defer srv.Close()
	c := dial(t, wsURL(srv.URL, "/"), nil)
	_ = c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for _, n := range sizes {
		typ, data, err := c.conn.ReadMessage()
		if err != nil {
			t.Fatalf("reading the frame of %d bytes: %v", n, err)
		}
		if typ != websocket.TextMessage || len(data) != n || bytes.Count(data, []byte{'x'}) != n {
			t.Fatalf("frame of %d bytes read as type %d with %d bytes", n, typ, len(data))
		}
	}
}

func TestNotificationFrame(t *testing.T) {
	body := notification(t, "city:ghent")
	f := notificationFrame(1234567, body)
	want := textFrame([]byte(`{"type":"notification","seq":1234567,"notification":` + string(body) + `}`))
	if !bytes.Equal(f, want) || len(f) != cap(f) {
		t.Errorf("notificationFrame = %q (cap %d), want %q", f, cap(f), want)
	}
}

// gatedConn holds the server's writes while its gate is shut, and counts them.
type gatedConn struct {
	net.Conn
	mu     sync.Mutex
	gate   chan struct{} // nil: open
	writes int
}

func (c *gatedConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	gate := c.gate
	c.mu.Unlock()
	if gate != nil {
		<-gate
	}
	c.mu.Lock()
	c.writes++
	c.mu.Unlock()
	return c.Conn.Write(b)
}

func (c *gatedConn) shut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gate = make(chan struct{})
}

func (c *gatedConn) open() (writes int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	close(c.gate)
	c.gate = nil
	return c.writes
}

func (c *gatedConn) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writes
}

type gatedListener struct {
	net.Listener
	conns chan *gatedConn
}

func (l gatedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	g := &gatedConn{Conn: c}
	l.conns <- g
	return g, nil
}

func TestWriter(t *testing.T) {
	t.Run("notifications queued while the writer is busy go out in one write", func(t *testing.T) {
		conns := make(chan *gatedConn, 1)
		s := newHubServer(t, 0, func(l net.Listener) net.Listener { return gatedListener{l, conns} })
		c := s.dial(t)
		c.subscribe("city:ghent")
		server := <-conns
		server.shut()
		before := server.count()
		for seq := uint64(1); seq <= 10; seq++ {
			if err := s.hub.Dispatch(seq, notification(t, "city:ghent")); err != nil {
				t.Fatal(err)
			}
		}
		server.open()
		for seq := uint64(1); seq <= 10; seq++ {
			if m := c.nextOf("notification"); m.Seq != seq {
				t.Fatalf("got seq %d, want %d", m.Seq, seq)
			}
		}
		// The writer may have taken the first before the others came.
		if n := server.count() - before; n < 1 || n > 2 {
			t.Errorf("10 notifications took %d writes, want at most 2", n)
		}
	})

	t.Run("an idle connection has no writer goroutine and no queue", func(t *testing.T) {
		s := newHubServer(t, 0, nil)
		c := s.dial(t)
		c.subscribe("city:ghent")
		var sc *client
		s.hub.mu.RLock()
		for k := range s.hub.clients {
			sc = k
		}
		s.hub.mu.RUnlock()
		eventually(t, "the writer ends", func() bool {
			sc.mu.Lock()
			defer sc.mu.Unlock()
			return !sc.writing && len(sc.queue) == 0 && cap(sc.queue) <= len(sc.inline)
		})
	})

	t.Run("a ping from the client is answered with its payload", func(t *testing.T) {
		s := newHubServer(t, 0, nil)
		c := s.dial(t)
		pong := make(chan string, 1)
		c.conn.SetPongHandler(func(data string) error { pong <- data; return nil })
		if err := c.conn.WriteControl(websocket.PingMessage, []byte(strings.Repeat("are you there? ", 9)[:125]), time.Now().Add(time.Second)); err != nil { // the longest a control frame carries
			t.Fatal(err)
		}
		go func() { _, _, _ = c.conn.ReadMessage() }() // control frames are handled while reading
		select {
		case got := <-pong:
			if got != strings.Repeat("are you there? ", 9)[:125] {
				t.Errorf("pong %q, want the ping's payload", got)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no pong")
		}
	})

	t.Run("a client's close is echoed with its code", func(t *testing.T) {
		s := newHubServer(t, 0, nil)
		c := s.dial(t)
		c.subscribe("city:ghent")
		msg := websocket.FormatCloseMessage(websocket.CloseGoingAway, "bye")
		if err := c.conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		if code := c.closeCode(); code != websocket.CloseGoingAway {
			t.Errorf("close code %d, want 1001 echoed", code)
		}
		eventually(t, "the hub forgets the client", func() bool { return s.hub.clientCount() == 0 })
	})
}

func TestKeepAlive(t *testing.T) {
	hub := NewHub(0, newHubMetrics(nil))
	hub.pingEvery = 50 * time.Millisecond
	srv := httptest.NewServer(newWSHandler(hub, nil, testLog(t)))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() { _ = hub.keepAlive(ctx) }()

	c := dial(t, wsURL(srv.URL, "/"), nil)
	pings := make(chan struct{}, 16)
	c.conn.SetPingHandler(func(string) error {
		select {
		case pings <- struct{}{}:
		default:
		}
		return nil
	})
	go func() { _, _, _ = c.conn.ReadMessage() }()
	for i := 0; i < 2; i++ {
		select {
		case <-pings:
		case <-time.After(10 * time.Second):
			t.Fatalf("got %d pings, want one every 50 ms", i)
		}
	}
}

func TestTakeQueued(t *testing.T) {
	h := NewHub(0, newHubMetrics(nil))
	c := queueClient(h, 16)
	small, huge := textFrame([]byte("s")), textFrame(make([]byte, writeBufSize))
	for _, f := range []frame{small, huge, small, small, small} {
		c.send(f)
	}
	var writes [][]byte
	for {
		c.mu.Lock()
		if len(c.queue) == 0 {
			c.mu.Unlock()
			break
		}
		bp, one := c.takeLocked()
		c.mu.Unlock()
		if bp != nil {
			writes = append(writes, append([]byte(nil), *bp...))
			h.putBuf(bp)
		} else {
			writes = append(writes, one)
		}
	}
	want := [][]byte{small, huge, bytes.Repeat(small, 3)}
	if len(writes) != len(want) {
		t.Fatalf("%d writes, want %d: a small frame, the huge one alone, the last three together", len(writes), len(want))
	}
	for i := range want {
		if !bytes.Equal(writes[i], want[i]) {
			t.Errorf("write %d is %d bytes, want %d", i, len(writes[i]), len(want[i]))
		}
	}
	if c.queue != nil && cap(c.queue) > len(c.inline) {
		t.Errorf("an emptied queue keeps %d slots", cap(c.queue))
	}
}

// TestStuckWriter: a client that stops reading leaves the server's write
// hanging once the socket's buffers are full; keepAlive closes it after
// writeWait, though its send queue never filled.
func TestStuckWriter(t *testing.T) {
	reg := prometheus.NewRegistry()
	hub := NewHub(0, newHubMetrics(reg))
	hub.writeWait = 200 * time.Millisecond
	srv := httptest.NewServer(newWSHandler(hub, nil, testLog(t)))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() { _ = hub.keepAlive(ctx) }()

	// A small receive buffer, so that a few hundred KB fill the path.
	nd := &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return errors.Join(err, serr)
	}}
	c := dialWith(t, &websocket.Dialer{NetDialContext: nd.DialContext}, wsURL(srv.URL, "/"), nil)
	c.send(map[string]any{"type": "subscribe", "topics": []string{"city:ghent"}})
	c.nextOf("subscribed") // and from here on, never read again

	pad := strings.Repeat("x", 16<<10)
	for seq := uint64(1); seq <= 200; seq++ { // 3.2 MB, within the 256-frame queue
		body, err := json.Marshal(contract.NotificationV1{ID: uuid.NewString(), Kind: "stall.status_posted", City: "ghent",
			Topics: []string{"city:ghent"}, Data: json.RawMessage(`{"pad":"` + pad + `"}`)})
		if err != nil {
			t.Fatal(err)
		}
		if err := hub.Dispatch(seq, body); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "the hub drops the client whose write hangs", func() bool { return hub.clientCount() == 0 })
	if n := testutil.ToFloat64(hub.metrics.dropped); n != 0 {
		t.Errorf("%v clients closed for a full queue; the write watchdog should have closed this one", n)
	}
}

// TestSilentClient: a client that sends nothing, not even a pong, is closed
// after pongWait; one that answers the pings stays.
func TestSilentClient(t *testing.T) {
	hub := NewHub(0, newHubMetrics(nil))
	hub.pingEvery, hub.pongWait = 50*time.Millisecond, 300*time.Millisecond
	srv := httptest.NewServer(newWSHandler(hub, nil, testLog(t)))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() { _ = hub.keepAlive(ctx) }()

	answering := dial(t, wsURL(srv.URL, "/"), nil) // gorilla's default ping handler answers
	answered := make(chan error, 1)
	go func() {
		_, _, err := answering.conn.ReadMessage()
		answered <- err
	}()
	silent := dial(t, wsURL(srv.URL, "/"), nil)
	silent.conn.SetPingHandler(func(string) error { return nil }) // reads, never answers
	gone := make(chan error, 1)
	go func() {
		_, _, err := silent.conn.ReadMessage()
		gone <- err
	}()

	select {
	case <-gone:
	case <-time.After(10 * time.Second):
		t.Fatal("the silent client was not closed")
	}
	eventually(t, "the hub forgets the silent client", func() bool { return hub.clientCount() == 1 })
	time.Sleep(3 * hub.pongWait) // several pongWaits, answered
	select {
	case err := <-answered:
		t.Fatalf("the client that answers pings was closed: %v", err)
	default:
	}
	if n := hub.clientCount(); n != 1 {
		t.Errorf("%d clients, want the answering one", n)
	}
}
