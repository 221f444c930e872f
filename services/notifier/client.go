package notifier

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// frame is one complete server websocket frame, header and payload. Server
// frames are neither masked nor compressed, so a notification's frame is the
// same bytes for every recipient: it is encoded once and shared, never
// modified after it is made.
type frame []byte

// textFrame frames payload as one final text frame.
func textFrame(payload []byte) frame {
	f := make(frame, 0, frameHeaderLen(len(payload))+len(payload))
	return append(appendTextHeader(f, len(payload)), payload...)
}

func frameHeaderLen(n int) int {
	switch {
	case n < 126:
		return 2
	case n <= 0xffff:
		return 4
	default:
		return 10
	}
}

// appendTextHeader appends the header of a final, unmasked text frame whose
// payload is n bytes (RFC 6455 §5.2).
func appendTextHeader(b []byte, n int) []byte {
	const finText = 0x81
	switch {
	case n < 126:
		return append(b, finText, byte(n))
	case n <= 0xffff:
		return binary.BigEndian.AppendUint16(append(b, finText, 126), uint16(n))
	default:
		return binary.BigEndian.AppendUint64(append(b, finText, 127), uint64(n))
	}
}

// writeBufSize bounds the bytes one write(2) carries; a frame larger than it
// is written on its own. A writer blocked on a client that does not read
// holds one such buffer until writeWait.
const writeBufSize = 16 << 10

// client is one websocket connection. Frames are queued by the hub and the
// reader, and written by at most one writer goroutine at a time, which runs
// only while there is something to write: an idle connection has its reader
// goroutine and no writer, no timer and no queue.
type client struct {
	conn *websocket.Conn // nil for a client of the hub's tests: frames stay queued
	hub  *Hub
	// write runs writeLoop: a func value made once, so that starting the
	// writer does not allocate.
	write func()
	// topics maps each held topic to its from: the seq after which every
	// notification on it has been sent to the connection (live or replayed),
	// or was seen by the client elsewhere by its own since. A later
	// subscribe replays nothing that those cover. Guarded by the hub's lock.
	topics map[string]uint64
	// private are the account topics the last hello subscribed; only the
	// reader uses them.
	private []string
	// lastSeq is the highest seq queued to the client: a notification is sent
	// once however many of its topics the client follows, and never again
	// after a resume. Written by Dispatch and, under the write lock, subscribe.
	lastSeq uint64
	// pingAt is when the hub's sweeper next pings the client (unix ns);
	// only the sweeper reads and writes it after add.
	pingAt int64
	// writingSince is when the write in progress began (unix ns), 0 when
	// none is: the hub's keepAlive closes a connection whose write has not
	// returned within writeWait. Frames carry no socket deadline: resetting
	// one per connection for every few writes kept the runtime's timer heap
	// busy (a tenth of the notifier's CPU with 17,000 connections).
	writingSince atomic.Int64
	// heardAt is when the client last sent anything, a pong included (unix
	// ns): the hub's keepAlive closes a connection silent for pongWait.
	// The reader sets no socket deadline for the same reason as the
	// writer: 17,000 read deadlines pushed back on every pong kept the
	// runtime's timer heap busy (a tenth of a notifier's CPU at 200 posts/s).
	heardAt atomic.Int64

	mu     sync.Mutex
	queue  []frame  // waiting for the writer, oldest first
	inline [4]frame // queue's backing array until more are waiting at once
	limit  int      // queued frames beyond which the client is closed
	// writing is set while a writer goroutine runs (and for good once it
	// has closed the connection): it is the only one that writes.
	writing bool
	ping    bool
	pong    []byte // payload of a ping to answer; nil: none
	// closing is set once a close is requested: nothing is queued after it,
	// so a client dropped for falling behind never receives a later
	// notification past the one it missed (a silent gap).
	closing   bool
	closeWith closeReq
}

type closeReq struct {
	code   int
	reason string
}

func newClient(conn *websocket.Conn, h *Hub) *client {
	c := &client{conn: conn, hub: h, topics: map[string]uint64{}, limit: sendQueueLen}
	if conn != nil {
		c.write = c.writeLoop
	}
	return c
}

// send queues f without blocking; a full queue closes the client.
func (c *client) send(f frame) bool {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return false
	}
	if len(c.queue) >= c.limit {
		c.closeLocked(closeSlow, "send queue full; resume from your last seq")
		c.mu.Unlock()
		c.hub.metrics.dropped.Inc()
		return false
	}
	if c.queue == nil {
		c.queue = c.inline[:0]
	}
	c.queue = append(c.queue, f)
	c.wakeLocked()
	c.mu.Unlock()
	return true
}

// close asks the writer to send a close frame and hang up; frames still
// queued are dropped (the client resumes from its last seq). It reports
// whether this call was the one that closed c.
func (c *client) close(code int, reason string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return false
	}
	c.closeLocked(code, reason)
	return true
}

func (c *client) closeLocked(code int, reason string) {
	c.closing = true
	c.closeWith = closeReq{code, reason}
	c.wakeLocked()
}

// pingNow asks the writer to send a ping.
func (c *client) pingNow() {
	c.mu.Lock()
	c.ping = true
	c.wakeLocked()
	c.mu.Unlock()
}

// answerPing asks the writer to answer a client's ping.
func (c *client) answerPing(payload string) {
	c.mu.Lock()
	c.pong = append([]byte{}, payload...)
	c.wakeLocked()
	c.mu.Unlock()
}

// wakeLocked starts the writer unless it runs.
func (c *client) wakeLocked() {
	if !c.writing && c.write != nil {
		c.writing = true
		go c.write()
	}
}

// writeLoop writes what is queued until nothing is, then ends. Everything
// queued when it wakes goes out in one write (up to writeBufSize), so a
// burst of notifications costs one system call, not one each.
func (c *client) writeLoop() {
	for {
		c.mu.Lock()
		if c.closing {
			req := c.closeWith
			c.queue = nil
			c.mu.Unlock() // writing stays set: nothing is written after the close
			_ = c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(req.code, req.reason), time.Now().Add(time.Second))
			_ = c.conn.Close()
			return
		}
		ping, pong := c.ping, c.pong
		c.ping, c.pong = false, nil
		if len(c.queue) == 0 && !ping && pong == nil {
			c.writing = false
			c.mu.Unlock()
			return
		}
		var bp *[]byte
		var b []byte
		if len(c.queue) > 0 {
			bp, b = c.takeLocked()
			if bp != nil {
				b = *bp
			}
		}
		c.mu.Unlock()

		err := c.writeControls(ping, pong)
		if err == nil && len(b) > 0 {
			err = c.writeFrames(b)
		}
		if bp != nil {
			c.hub.putBuf(bp)
		}
		if err != nil {
			c.mu.Lock()
			c.closing, c.queue = true, nil
			c.mu.Unlock()
			_ = c.conn.Close() // the reader sees it and removes the client
			return
		}
	}
}

// takeLocked takes the queued frames that fit one buffer: a single frame
// (or one too large for a buffer) as it is, several copied into a pooled
// buffer, which the caller returns with putBuf.
func (c *client) takeLocked() (bp *[]byte, one frame) {
	k := 1
	if len(c.queue) == 1 || len(c.queue[0])+len(c.queue[1]) > writeBufSize {
		one = c.queue[0]
	} else {
		bp = c.hub.getBuf()
		b := (*bp)[:0]
		for k = 0; k < len(c.queue) && len(b)+len(c.queue[k]) <= cap(b); k++ {
			b = append(b, c.queue[k]...)
		}
		*bp = b
	}
	n := copy(c.queue, c.queue[k:])
	clear(c.queue[n:])
	c.queue = c.queue[:n]
	if n == 0 && cap(c.queue) > len(c.inline) {
		c.queue = nil // give back what a burst grew
	}
	return bp, one
}

func (c *client) writeControls(ping bool, pong []byte) error {
	if pong == nil && !ping {
		return nil
	}
	// Written like the data frames, framed here and without a socket
	// deadline (gorilla's WriteControl sets one, and a timer with it): the
	// keepAlive watchdog bounds the write. Server frames are not masked.
	var b [2 + 2 + maxControlPayload]byte
	f := b[:0]
	if pong != nil {
		f = append(f, 0x80|websocket.PongMessage, byte(len(pong)))
		f = append(f, pong...)
	}
	if ping {
		f = append(f, 0x80|websocket.PingMessage, 0)
	}
	return c.writeFrames(f)
}

// maxControlPayload is the largest payload of a control frame (RFC 6455
// 5.5); gorilla refuses a longer ping from a client before it gets here.
const maxControlPayload = 125

func (c *client) writeFrames(b []byte) error {
	c.writingSince.Store(time.Now().UnixNano())
	_, err := c.conn.NetConn().Write(b)
	c.writingSince.Store(0)
	return err
}

// writeBufs are the writers' buffers, shared by all connections: only a
// connection that is writing holds one.
type writeBufs struct{ pool sync.Pool }

func (h *Hub) getBuf() *[]byte {
	if bp, ok := h.bufs.pool.Get().(*[]byte); ok {
		return bp
	}
	b := make([]byte, 0, writeBufSize)
	return &b
}

func (h *Hub) putBuf(bp *[]byte) {
	*bp = (*bp)[:0]
	h.bufs.pool.Put(bp)
}

// heard records that the client sent something.
func (c *client) heard() { c.heardAt.Store(time.Now().UnixNano()) }
