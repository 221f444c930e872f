package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// A worker is a child process of the harness that holds load connections:
// one process may hold only about 19k open files, so N connections are split
// over several workers. It reads one JSON command per line on stdin and
// answers each with one JSON line on stdout.

type command struct {
	Cmd     string        `json:"cmd"`
	Open    *openRequest  `json:"open,omitempty"`
	Seq     uint64        `json:"seq,omitempty"`     // wait: until every open client is at seq
	Timeout time.Duration `json:"timeout,omitempty"` // wait, resume
	File    string        `json:"file,omitempty"`    // latency: the send times (writeSent)
}

type openRequest struct {
	URLs        []string `json:"urls"`    // websocket URLs, used round robin
	Sources     []string `json:"sources"` // source addresses, used round robin
	Topics      []string `json:"topics"`  // client i subscribes to Topics[(Offset+i) % len]
	N           int      `json:"n"`
	Offset      int      `json:"offset"` // this worker's first client's global index
	Parallel    int      `json:"parallel"`
	Contiguous  bool     `json:"contiguous"` // every notification matches: a skipped seq is a gap
	Record      bool     `json:"record"`     // keep status post receipts for the latency scenario
	MaxFileDesc int      `json:"max_fd"`
}

type reply struct {
	Err       string        `json:"err,omitempty"`
	Stats     workerStats   `json:"stats"`
	Elapsed   time.Duration `json:"elapsed"`
	Hist      *histogram    `json:"hist,omitempty"`
	Unmatched int64         `json:"unmatched,omitempty"` // latency: receipts with no send time
}

type workerStats struct {
	Clients, Open, Failed                       int
	Received, Bytes, Gaps, Dups, Resets, Missed int64
	Subscribed, ClosedByServer, BadFrames       int64
	Errors                                      int64
	Recorded                                    int64 // status post receipts kept (Record)
	MinSeq, MaxSeq                              uint64
}

func (s *workerStats) add(o workerStats) {
	if s.Clients == 0 || (o.Open > 0 && o.MinSeq < s.MinSeq) {
		s.MinSeq = o.MinSeq
	}
	s.MaxSeq = max(s.MaxSeq, o.MaxSeq)
	s.Clients += o.Clients
	s.Open += o.Open
	s.Failed += o.Failed
	s.Received += o.Received
	s.Bytes += o.Bytes
	s.Gaps += o.Gaps
	s.Dups += o.Dups
	s.Resets += o.Resets
	s.Missed += o.Missed
	s.Subscribed += o.Subscribed
	s.ClosedByServer += o.ClosedByServer
	s.BadFrames += o.BadFrames
	s.Errors += o.Errors
	s.Recorded += o.Recorded
}

type worker struct {
	clients    []*wsClient
	failed     int
	contiguous bool
	record     bool
	parallel   int

	received, bytes, gaps, dups, resets, missed atomic.Int64
	subscribed, closedByServer, badFrames       atomic.Int64
	errorsRecv, recorded                        atomic.Int64

	mu       sync.Mutex
	receipts map[string][]int64 // status post key → arrival times (unix nanos)
}

func (w *worker) stats() workerStats {
	s := workerStats{Clients: len(w.clients), Failed: w.failed,
		Received: w.received.Load(), Bytes: w.bytes.Load(), Gaps: w.gaps.Load(), Dups: w.dups.Load(),
		Resets: w.resets.Load(), Missed: w.missed.Load(), Subscribed: w.subscribed.Load(),
		ClosedByServer: w.closedByServer.Load(), BadFrames: w.badFrames.Load(), Errors: w.errorsRecv.Load(),
		Recorded: w.recorded.Load()}
	first := true
	for _, c := range w.clients {
		if !c.open.Load() {
			continue
		}
		s.Open++
		seq := c.lastSeq.Load()
		if first || seq < s.MinSeq {
			s.MinSeq = seq
		}
		first = false
		s.MaxSeq = max(s.MaxSeq, seq)
	}
	return s
}

// runWorker serves commands from in until "quit" or EOF.
func runWorker(ctx context.Context, in io.Reader, out io.Writer) error {
	w := &worker{}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	enc := json.NewEncoder(out)
	for sc.Scan() {
		var cmd command
		if err := json.Unmarshal(sc.Bytes(), &cmd); err != nil {
			return fmt.Errorf("worker: command: %w", err)
		}
		start := time.Now()
		r, quit := w.do(ctx, cmd)
		r.Elapsed = time.Since(start)
		r.Stats = w.stats()
		if err := enc.Encode(r); err != nil {
			return err
		}
		if quit {
			return nil
		}
	}
	return sc.Err()
}

func (w *worker) do(ctx context.Context, cmd command) (reply, bool) {
	var r reply
	switch cmd.Cmd {
	case "open":
		r.Err = w.open(ctx, cmd.Open)
	case "stats":
	case "wait":
		w.wait(ctx, cmd.Timeout, func() bool {
			s := w.stats()
			return s.Open == 0 || s.MinSeq >= cmd.Seq
		})
	case "drop":
		for _, c := range w.clients {
			c.drop()
		}
	case "resume":
		// Every client reconnects at once (bounded by the dial parallelism)
		// with its last seq; done when all are subscribed again.
		before := w.subscribed.Load()
		dctx, cancel := context.WithTimeout(ctx, cmd.Timeout)
		failed, err := dialAll(dctx, w.clients, w.parallel, true)
		cancel()
		w.failed = failed
		if err != nil {
			r.Err = fmt.Sprintf("%d reconnects failed, first: %v", failed, err)
		}
		want := int64(len(w.clients) - failed)
		w.wait(ctx, cmd.Timeout, func() bool { return w.subscribed.Load()-before >= want })
	case "latency":
		r.Hist, r.Unmatched, r.Err = w.latency(cmd.File)
	case "quit":
		for _, c := range w.clients {
			c.drop()
		}
		return r, true
	default:
		r.Err = "unknown command " + cmd.Cmd
	}
	return r, false
}

func (w *worker) open(ctx context.Context, o *openRequest) string {
	if o == nil || len(o.URLs) == 0 || len(o.Sources) == 0 || len(o.Topics) == 0 {
		return "open: urls, sources and topics are required"
	}
	for _, u := range o.URLs {
		if err := checkLoopbackURL(u); err != nil {
			return err.Error()
		}
	}
	for _, s := range o.Sources {
		if !loopbackHost(s) {
			return "open: source " + s + " is not loopback"
		}
	}
	w.contiguous, w.record, w.parallel = o.Contiguous, o.Record, max(o.Parallel, 1)
	before := w.subscribed.Load()
	start := len(w.clients)
	for i := range o.N {
		g := o.Offset + i
		w.clients = append(w.clients, &wsClient{w: w, url: o.URLs[g%len(o.URLs)],
			src: o.Sources[(g/len(o.URLs))%len(o.Sources)], topic: o.Topics[g%len(o.Topics)]})
	}
	failed, err := dialAll(ctx, w.clients[start:], w.parallel, false)
	w.failed += failed
	want := int64(o.N - failed)
	w.wait(ctx, time.Minute, func() bool { return w.subscribed.Load()-before >= want })
	if err != nil {
		return fmt.Sprintf("%d of %d connections failed, first: %v", failed, o.N, err)
	}
	return ""
}

func (w *worker) wait(ctx context.Context, timeout time.Duration, done func() bool) {
	deadline := time.Now().Add(max(timeout, time.Second))
	for !done() && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
}

// latency matches the receipts with the send times in file (writeSent)
// and returns their histogram and how many receipts had no send time.
func (w *worker) latency(file string) (*histogram, int64, string) {
	f, err := os.Open(file)
	if err != nil {
		return nil, 0, err.Error()
	}
	defer f.Close()
	sent, err := readSent(f)
	if err != nil {
		return nil, 0, err.Error()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	h, unmatched := matchReceipts(w.receipts, sent)
	return h, unmatched, ""
}
