package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

// ipBindAddressNoPort is IP_BIND_ADDRESS_NO_PORT (linux/in.h): binding a
// source address defers the port choice to connect, so ports are unique per
// (source, destination) pair rather than per source address.
const ipBindAddressNoPort = 24

// dialer returns a websocket dialer whose connections leave from src.
func dialer(src string) *websocket.Dialer {
	nd := &net.Dialer{
		LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)},
		Timeout:   30 * time.Second,
		Control: func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, ipBindAddressNoPort, 1)
			})
			return errors.Join(err, serr)
		},
	}
	return &websocket.Dialer{
		NetDialContext:   nd.DialContext,
		HandshakeTimeout: 30 * time.Second,
		// The notifier writes what is queued for a client in one write of
		// up to 16 KB (a resume's replay, a burst): a read buffer that takes
		// it in a few reads keeps the load side, which shares the machine,
		// from being what a storm measures.
		ReadBufferSize:  8192,
		WriteBufferSize: 512,
	}
}

// wsClient is one load connection. Its reader goroutine is the only writer
// of its counters; the worker reads them atomically.
type wsClient struct {
	url, src, topic string
	w               *worker

	conn      *websocket.Conn
	done      chan struct{} // closed when the reader exits
	lastSeq   atomic.Uint64
	open      atomic.Bool
	closeCode atomic.Int32
}

// connect dials, subscribes (resuming after since when resume is set) and
// starts the reader.
func (c *wsClient) connect(ctx context.Context, resume bool) error {
	conn, _, err := dialer(c.src).DialContext(ctx, c.url, nil)
	if err != nil {
		return err
	}
	msg := map[string]any{"type": "subscribe", "topics": []string{c.topic}}
	if resume {
		msg["since"] = c.lastSeq.Load()
	}
	if err := conn.WriteJSON(msg); err != nil {
		conn.Close()
		return err
	}
	c.conn = conn
	c.done = make(chan struct{})
	c.closeCode.Store(0)
	c.open.Store(true)
	go c.read(resume)
	return nil
}

var notificationPrefix = []byte(`{"type":"notification","seq":`)

func (c *wsClient) read(resume bool) {
	defer close(c.done)
	defer c.open.Store(false)
	w := c.w
	var buf bytes.Buffer // reused for every message of this connection
	for {
		data, err := c.next(&buf)
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				c.closeCode.Store(int32(ce.Code))
				w.closedByServer.Add(1)
			}
			return
		}
		if rest, ok := bytes.CutPrefix(data, notificationPrefix); ok {
			end := bytes.IndexByte(rest, ',')
			seq, err := strconv.ParseUint(string(rest[:max(end, 0)]), 10, 64)
			if err != nil {
				w.badFrames.Add(1)
				continue
			}
			c.notification(seq, data)
			continue
		}
		var m struct {
			Type   string `json:"type"`
			Seq    uint64 `json:"seq"`
			Missed int64  `json:"missed"`
		}
		if json.Unmarshal(data, &m) != nil {
			w.badFrames.Add(1)
			continue
		}
		switch m.Type {
		case "subscribed":
			// On a resume every missed notification comes before this: the
			// client must now be at seq, else something fell in between.
			if last := c.lastSeq.Load(); resume && w.contiguous && last < m.Seq {
				w.gaps.Add(int64(m.Seq - last))
			}
			c.lastSeq.Store(max(c.lastSeq.Load(), m.Seq))
			w.missed.Add(m.Missed)
			w.subscribed.Add(1)
		case "reset":
			w.resets.Add(1)
			c.lastSeq.Store(max(c.lastSeq.Load(), m.Seq))
		case "error":
			w.errorsRecv.Add(1)
		}
	}
}

// next reads the next message into buf, reusing its memory, and returns
// its bytes, valid until the next call.
func (c *wsClient) next(buf *bytes.Buffer) ([]byte, error) {
	_, r, err := c.conn.NextReader()
	if err != nil {
		return nil, err
	}
	buf.Reset()
	if _, err := buf.ReadFrom(r); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func (c *wsClient) notification(seq uint64, data []byte) {
	w := c.w
	now := time.Now()
	last := c.lastSeq.Load()
	switch {
	case seq <= last:
		w.dups.Add(1)
		return
	case w.contiguous && last > 0 && seq > last+1:
		w.gaps.Add(int64(seq - last - 1))
	}
	c.lastSeq.Store(seq)
	w.received.Add(1)
	w.bytes.Add(int64(len(data)))
	if w.record {
		w.recordReceipt(data, now)
	}
}

// drop closes the TCP connection without a close frame, as a network drop
// would, and waits for the reader.
func (c *wsClient) drop() {
	if c.conn == nil {
		return
	}
	_ = c.conn.UnderlyingConn().Close()
	<-c.done
	c.conn = nil
}

// recordReceipt keeps the arrival time of a status post notification, by
// its key (receiptKey), for the latency scenario.
func (w *worker) recordReceipt(data []byte, at time.Time) {
	key, ok := receiptKey(data)
	if !ok {
		return
	}
	w.mu.Lock()
	if w.receipts == nil {
		w.receipts = map[string][]int64{}
	}
	w.receipts[key] = append(w.receipts[key], at.UnixNano())
	w.mu.Unlock()
	w.recorded.Add(1)
}

// dialAll runs connect for every client with at most par dials at once and
// returns how many failed (and the first error).
func dialAll(ctx context.Context, clients []*wsClient, par int, resume bool) (int, error) {
	sem := make(chan struct{}, max(par, 1))
	var wg sync.WaitGroup
	var failed atomic.Int64
	var mu sync.Mutex
	var first error
	for _, c := range clients {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := c.connect(ctx, resume); err != nil {
				failed.Add(1)
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return int(failed.Load()), first
}
