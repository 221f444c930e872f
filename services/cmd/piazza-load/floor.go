package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// The bare broadcast floor: a minimal gorilla websocket server whose only
// work is to write one frame to each of its connections in a loop, from one
// goroutine. Its server CPU per delivery is the least any websocket fan-out
// on this machine and kernel can cost; the notifier's is compared with it.

type floorServer struct {
	mu    sync.Mutex
	conns []*floorConn
	seq   uint64
}

type floorConn struct {
	mu   sync.Mutex // the reader answers subscribe while a broadcast may write
	conn *websocket.Conn
}

func runFloorServer(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("floor-server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:0", "listen address (loopback)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	s := &floorServer{}
	up := websocket.Upgrader{ReadBufferSize: 1024, WriteBufferSize: 1024, WriteBufferPool: &sync.Pool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", func(http.ResponseWriter, *http.Request) {})
	mux.HandleFunc("GET /ws", func(w http.ResponseWriter, r *http.Request) {
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		fc := &floorConn{conn: conn}
		s.mu.Lock()
		s.conns = append(s.conns, fc)
		s.mu.Unlock()
		s.read(fc)
	})
	mux.HandleFunc("POST /broadcast", s.handleBroadcast)
	return serveLoopback(ctx, "floor-server", *addr, mux)
}

// serveLoopback serves mux on addr, which must be a loopback address, until
// ctx is done.
func serveLoopback(ctx context.Context, name, addr string, mux http.Handler) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || !loopbackHost(host) {
		return fmt.Errorf("%s: -addr %q must be a loopback address", name, addr)
	}
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// drive runs k clients, each repeating the step newStep(i) returns until d
// has passed (or ctx is done), and counts the steps that reported done. A
// step's error stops its client; the first errors are returned joined.
func drive(ctx context.Context, k int, d time.Duration, newStep func(i int) func(context.Context) (bool, error)) (int64, error) {
	wctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var n atomic.Int64
	errs := make([]error, k)
	var wg sync.WaitGroup
	for i := range k {
		step := newStep(i)
		wg.Go(func() {
			for wctx.Err() == nil {
				done, err := step(wctx)
				if err != nil {
					if wctx.Err() == nil {
						errs[i] = err
					}
					return
				}
				if done {
					n.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return n.Load(), errors.Join(errs...)
}

// read answers each client frame (a subscribe) with subscribed at the
// current seq, as the notifier does.
func (s *floorServer) read(fc *floorConn) {
	defer fc.conn.Close()
	fc.conn.SetReadLimit(4096)
	for {
		if _, _, err := fc.conn.ReadMessage(); err != nil {
			s.mu.Lock()
			defer s.mu.Unlock()
			for i, c := range s.conns {
				if c == fc {
					s.conns = append(s.conns[:i], s.conns[i+1:]...)
					break
				}
			}
			return
		}
		s.mu.Lock()
		seq := s.seq
		s.mu.Unlock()
		fc.mu.Lock()
		_ = fc.conn.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, `{"type":"subscribed","topics":[],"seq":%d,"missed":0}`, seq))
		fc.mu.Unlock()
	}
}

// floorFrame is a notification frame of exactly size bytes (or the least
// possible) with sequence seq.
func floorFrame(seq uint64, size int) []byte {
	head := fmt.Appendf(nil, `{"type":"notification","seq":%d,"notification":{"pad":"`, seq)
	pad := max(size-len(head)-3, 0)
	return append(append(head, strings.Repeat("x", pad)...), `"}}`...)
}

func (s *floorServer) handleBroadcast(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	rounds, _ := strconv.Atoi(q.Get("rounds"))
	burst, _ := strconv.Atoi(q.Get("burst"))
	size, _ := strconv.Atoi(q.Get("size"))
	interval, _ := time.ParseDuration(q.Get("interval"))
	to, _ := strconv.Atoi(q.Get("to"))
	if rounds < 1 || rounds > 1_000_000 || burst < 1 || burst > 1000 || size < 64 || size > 64<<10 || to < 0 {
		http.Error(w, "rounds, burst, size and to out of range", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	conns := append([]*floorConn(nil), s.conns...)
	s.mu.Unlock()
	// Each frame goes to every connection, or with to to the next to of
	// them, round the list: the sparse fan-out of a stall's followers.
	if to == 0 || to > len(conns) {
		to = len(conns)
	}
	next := 0
	var delivered int64
	t := time.NewTicker(max(interval, time.Microsecond))
	defer t.Stop()
	for range rounds {
		for range burst {
			s.mu.Lock()
			s.seq++
			seq := s.seq
			s.mu.Unlock()
			pm, err := websocket.NewPreparedMessage(websocket.TextMessage, floorFrame(seq, size))
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			for range to {
				c := conns[next]
				next = (next + 1) % len(conns)
				c.mu.Lock()
				if c.conn.WritePreparedMessage(pm) == nil {
					delivered++
				}
				c.mu.Unlock()
			}
		}
		if interval > 0 {
			select {
			case <-r.Context().Done():
				return
			case <-t.C:
			}
		}
	}
	s.mu.Lock()
	seq := s.seq
	s.mu.Unlock()
	_ = json.NewEncoder(w).Encode(map[string]any{"deliveries": delivered, "last": seq})
}

// floorSpec is what the floor broadcasts: rate frames a second in bursts,
// from servers processes (the connections split between them as between
// notifier replicas), each frame to every connection of its server, or to
// the next to of them (a sparse fan-out).
type floorSpec struct {
	servers, rate, burst, to int
}

// measureFloor starts the floor servers and o.n connections to them,
// broadcasts as fs says for o.duration, and returns the floor's CPU per
// delivery (and the clients').
func measureFloor(ctx context.Context, o *options, c *cluster, out io.Writer, fs floorSpec) (deliveryCost, error) {
	self, err := os.Executable()
	if err != nil {
		return deliveryCost{}, err
	}
	fs.servers = max(fs.servers, 1)
	var servers []watched
	var bases, urls []string
	for i := range fs.servers {
		port, err := freePort()
		if err != nil {
			return deliveryCost{}, err
		}
		// The floor runs with the notifiers' runtime settings: the ratio
		// compares their websocket work, not their garbage collectors.
		name := "floor"
		if fs.servers > 1 {
			name = fmt.Sprintf("floor-%d", i+1)
		}
		p, err := c.startProc(ctx, name, self, []string{"floor-server", "-addr=127.0.0.1:" + strconv.Itoa(port)}, notifierEnv(os.Getenv), port, "/readyz")
		if err != nil {
			return deliveryCost{}, err
		}
		servers = append(servers, watched{name: name, pid: p.cmd.Process.Pid})
		bases = append(bases, p.base)
		urls = append(urls, "ws://127.0.0.1:"+strconv.Itoa(port)+"/ws")
	}
	f, err := startFleet(ctx, o.n, o.perProc, c.stderr)
	if err != nil {
		return deliveryCost{}, err
	}
	defer f.stop()
	st, _, err := f.open(openRequest{URLs: urls, Sources: o.sourceAddrs,
		Topics: []string{"city:bench"}, Parallel: o.parallel, Contiguous: fs.to == 0})
	if err != nil {
		return deliveryCost{}, err
	}
	all := append(append(append([]watched(nil), servers...), workerWatched(f)...), harnessSelf())
	time.Sleep(time.Second)
	before := takeSnapshot(ctx, all)
	rounds := max(int(o.duration.Seconds()*float64(fs.rate))/fs.burst, 1)
	interval := time.Duration(float64(time.Second) * float64(fs.burst) / float64(fs.rate))
	type result struct {
		Deliveries int64  `json:"deliveries"`
		Last       uint64 `json:"last"`
	}
	results := make([]result, len(bases))
	errs := make([]error, len(bases))
	var wg sync.WaitGroup
	for i, base := range bases {
		to := share(fs.to, i, len(bases))
		wg.Go(func() {
			u := fmt.Sprintf("%s/broadcast?rounds=%d&burst=%d&size=%d&interval=%s&to=%d", base, rounds, fs.burst, o.size, interval, to)
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
			if err != nil {
				errs[i] = err
				return
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				errs[i] = fmt.Errorf("floor broadcast: %w", err)
				return
			}
			defer resp.Body.Close()
			if err := json.NewDecoder(resp.Body).Decode(&results[i]); err != nil {
				errs[i] = fmt.Errorf("floor broadcast: %w", err)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return deliveryCost{}, err
	}
	var written int64
	for _, r := range results {
		written += r.Deliveries
	}
	var st2 workerStats
	if fs.to == 0 {
		// Every server wrote the same number of frames, so every client
		// ends at the same seq.
		st2, _, err = f.all(command{Cmd: "wait", Seq: results[0].Last, Timeout: time.Minute})
	} else {
		// A sparse broadcast leaves most clients short of the last seq:
		// wait until the clients have counted every frame written.
		st2, err = waitReceived(ctx, f, st.Received+written, time.Minute)
	}
	if err != nil {
		return deliveryCost{}, err
	}
	after := takeSnapshot(ctx, all)
	each := "every one of"
	if fs.to > 0 {
		each = fmt.Sprintf("%d in all of", fs.to)
	}
	printProcTable(out, fmt.Sprintf("bare floor: %d frames/s (bursts of %d) for %s from %d servers, each frame to %s %d connections",
		fs.rate, fs.burst, o.duration, fs.servers, each, st.Open), all, before, after)
	printStats(out, "after the floor", st2)
	d := deliveryCost{Deliveries: st2.Received - st.Received, ServerCPU: cpu(servers, before, after), Elapsed: after.at.Sub(before.at)}
	if d.Deliveries > 0 {
		d.PerDeliv = time.Duration(d.ServerCPU * 1e9 / float64(d.Deliveries))
		d.ClientPerDeliv = time.Duration(cpu(workerWatched(f), before, after) * 1e9 / float64(d.Deliveries))
	}
	if d.Deliveries != written {
		fmt.Fprintf(out, "note: the floor wrote %d frames, the clients counted %d\n", written, d.Deliveries)
	}
	return d, nil
}

// waitReceived polls the fleet until its clients have received want
// notifications in all, or timeout passes.
func waitReceived(ctx context.Context, f *fleet, want int64, timeout time.Duration) (workerStats, error) {
	deadline := time.Now().Add(timeout)
	for {
		st, _, err := f.all(command{Cmd: "stats"})
		if err != nil || st.Received >= want {
			return st, err
		}
		if time.Now().After(deadline) {
			return st, fmt.Errorf("the clients received %d of %d frames in %s", st.Received, want, timeout)
		}
		select {
		case <-ctx.Done():
			return st, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// share is server i's part of total frames' recipients split between n
// servers as a stall's followers are between notifier replicas (at least
// one each, so that a server never falls back to writing to all); 0 stays
// 0 (every connection).
func share(total, i, n int) int {
	if total == 0 {
		return 0
	}
	return max(total*(i+1)/n-total*i/n, 1)
}
