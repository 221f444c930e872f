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
	host, _, err := net.SplitHostPort(*addr)
	if err != nil || !loopbackHost(host) {
		return fmt.Errorf("floor-server: -addr %q must be a loopback address", *addr)
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
	srv := &http.Server{Addr: *addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
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
	if rounds < 1 || rounds > 1_000_000 || burst < 1 || burst > 1000 || size < 64 || size > 64<<10 {
		http.Error(w, "rounds, burst and size out of range", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	conns := append([]*floorConn(nil), s.conns...)
	s.mu.Unlock()
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
			for _, c := range conns {
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

// measureFloor starts a floor server and o.n connections to it, broadcasts
// as the fanout scenario publishes, and returns the floor's CPU per delivery.
func measureFloor(ctx context.Context, o *options, c *cluster, out io.Writer) (deliveryCost, error) {
	self, err := os.Executable()
	if err != nil {
		return deliveryCost{}, err
	}
	port, err := freePort()
	if err != nil {
		return deliveryCost{}, err
	}
	// The floor runs with the notifiers' runtime settings: the ratio compares
	// their websocket work, not their garbage collectors.
	p, err := c.startProc(ctx, "floor", self, []string{"floor-server", "-addr=127.0.0.1:" + strconv.Itoa(port)}, notifierEnv(os.Getenv), port, "/readyz")
	if err != nil {
		return deliveryCost{}, err
	}
	f, err := startFleet(ctx, o.n, o.perProc, c.stderr)
	if err != nil {
		return deliveryCost{}, err
	}
	defer f.stop()
	st, _, err := f.open(openRequest{URLs: []string{"ws://127.0.0.1:" + strconv.Itoa(port) + "/ws"}, Sources: o.sourceAddrs,
		Topics: []string{"city:bench"}, Parallel: o.parallel, Contiguous: true})
	if err != nil {
		return deliveryCost{}, err
	}
	server := []watched{{name: "floor", pid: p.cmd.Process.Pid}}
	all := append(append(server, workerWatched(f)...), harnessSelf())
	time.Sleep(time.Second)
	before := takeSnapshot(ctx, all)
	rounds := max(int(o.duration.Seconds()*float64(o.rate))/o.burst, 1)
	interval := time.Duration(float64(time.Second) * float64(o.burst) / float64(o.rate))
	u := fmt.Sprintf("%s/broadcast?rounds=%d&burst=%d&size=%d&interval=%s", p.base, rounds, o.burst, o.size, interval)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return deliveryCost{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return deliveryCost{}, fmt.Errorf("floor broadcast: %w", err)
	}
	var res struct {
		Deliveries int64  `json:"deliveries"`
		Last       uint64 `json:"last"`
	}
	err = json.NewDecoder(resp.Body).Decode(&res)
	resp.Body.Close()
	if err != nil {
		return deliveryCost{}, fmt.Errorf("floor broadcast: %w", err)
	}
	st2, _, err := f.all(command{Cmd: "wait", Seq: res.Last, Timeout: time.Minute})
	if err != nil {
		return deliveryCost{}, err
	}
	after := takeSnapshot(ctx, all)
	printProcTable(out, fmt.Sprintf("bare floor: %d frames (bursts of %d) to %d connections", rounds*o.burst, o.burst, st.Open), all, before, after)
	printStats(out, "after the floor", st2)
	d := deliveryCost{Deliveries: st2.Received - st.Received, ServerCPU: cpu(server, before, after), Elapsed: after.at.Sub(before.at)}
	if d.Deliveries > 0 {
		d.PerDeliv = time.Duration(d.ServerCPU * 1e9 / float64(d.Deliveries))
	}
	if d.Deliveries != res.Deliveries {
		fmt.Fprintf(out, "note: the floor wrote %d frames, the clients counted %d\n", res.Deliveries, d.Deliveries)
	}
	return d, nil
}
