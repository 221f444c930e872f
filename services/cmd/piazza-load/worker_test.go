package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The worker protocol end to end, against the bare floor server, in this
// process: open, broadcast, wait, drop, resume, quit.
func TestWorkerAgainstFloorServer(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	floorDone := make(chan error, 1)
	go func() {
		floorDone <- runFloorServer(ctx, []string{fmt.Sprintf("-addr=127.0.0.1:%d", port)}, io.Discard)
	}()
	waitReady(t, base+"/readyz")

	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	workerDone := make(chan error, 1)
	go func() { workerDone <- runWorker(ctx, inR, outW); outW.Close() }()
	replies := bufio.NewScanner(outR)
	call := func(cmd command) reply {
		t.Helper()
		b, _ := json.Marshal(cmd)
		if _, err := inW.Write(append(b, '\n')); err != nil {
			t.Fatal(err)
		}
		if !replies.Scan() {
			t.Fatalf("%s: no reply: %v", cmd.Cmd, replies.Err())
		}
		var r reply
		if err := json.Unmarshal(replies.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		return r
	}

	const n = 20
	r := call(command{Cmd: "open", Open: &openRequest{URLs: []string{fmt.Sprintf("ws://127.0.0.1:%d/ws", port)},
		Sources: []string{"127.0.0.2", "127.0.0.3"}, Topics: []string{"city:bench"}, N: n, Parallel: 4, Contiguous: true}})
	if r.Err != "" || r.Stats.Open != n || r.Stats.Subscribed != n {
		t.Fatalf("open: %+v", r)
	}
	broadcast(t, base, 5, 2)
	r = call(command{Cmd: "wait", Seq: 10, Timeout: 10 * time.Second})
	if r.Stats.Received != 10*n || r.Stats.MinSeq != 10 || r.Stats.Gaps != 0 || r.Stats.Dups != 0 {
		t.Fatalf("after 10 frames: %+v", r.Stats)
	}
	if r = call(command{Cmd: "drop"}); r.Stats.Open != 0 {
		t.Fatalf("drop: %+v", r.Stats)
	}
	r = call(command{Cmd: "resume", Timeout: 10 * time.Second})
	if r.Err != "" || r.Stats.Open != n || r.Stats.Subscribed != 2*n || r.Stats.Gaps != 0 {
		t.Fatalf("resume: %+v", r)
	}
	t.Run("a sparse broadcast writes each frame to the next few connections", func(t *testing.T) {
		before := call(command{Cmd: "stats"}).Stats
		// 9 frames to 7 of the 20 connections each: 63 deliveries, the
		// window going round the list (connections 0-6, 7-13, 14-19 and 0, …).
		if got := broadcastTo(t, base, 9, 7); got != 63 {
			t.Fatalf("the floor wrote %d frames, want 63", got)
		}
		deadline := time.Now().Add(10 * time.Second)
		var st workerStats
		for time.Now().Before(deadline) {
			if st = call(command{Cmd: "stats"}).Stats; st.Received-before.Received >= 63 {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(100 * time.Millisecond) // nothing more arrives
		if st = call(command{Cmd: "stats"}).Stats; st.Received-before.Received != 63 || st.MaxSeq != 19 {
			t.Fatalf("after a sparse broadcast: received %d (want 63), last seq %d (want 19)", st.Received-before.Received, st.MaxSeq)
		}
		if st.MinSeq != 17 {
			// The windows were 0-6, 7-13, 14-0, 1-7, 8-14, 15-1, 2-8, 9-15
			// and 16-2 (seqs 11 to 19): connections 3 to 8 last had seq 17.
			t.Fatalf("after a sparse broadcast: the least last seq is %d, want 17", st.MinSeq)
		}
	})
	t.Run("a skipped seq is counted as a gap", func(t *testing.T) {
		c := &wsClient{w: &worker{contiguous: true}}
		c.lastSeq.Store(10)
		c.notification(11, nil)
		c.notification(14, nil)
		c.notification(12, nil)
		if g, d := c.w.gaps.Load(), c.w.dups.Load(); g != 2 || d != 1 {
			t.Errorf("gaps %d dups %d, want 2 and 1", g, d)
		}
	})
	call(command{Cmd: "quit"})
	if err := <-workerDone; err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-floorDone; err != nil {
		t.Fatal(err)
	}
}

func waitReady(t *testing.T, url string) {
	t.Helper()
	for range 100 {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s not ready", url)
}

// broadcastTo writes rounds frames, each to the next to connections, and
// returns how many were written.
func broadcastTo(t *testing.T, base string, rounds, to int) int64 {
	t.Helper()
	resp, err := http.Post(fmt.Sprintf("%s/broadcast?rounds=%d&burst=1&size=200&interval=1ms&to=%d", base, rounds, to), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var res struct {
		Deliveries int64 `json:"deliveries"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&res) != nil {
		t.Fatalf("broadcast: %s", resp.Status)
	}
	return res.Deliveries
}

func broadcast(t *testing.T, base string, rounds, burst int) {
	t.Helper()
	resp, err := http.Post(fmt.Sprintf("%s/broadcast?rounds=%d&burst=%d&size=200&interval=1ms", base, rounds, burst), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("broadcast: %s", resp.Status)
	}
}

func TestNotifierEnv(t *testing.T) {
	has := func(env []string, kv string) bool {
		for _, e := range env {
			if e == kv {
				return true
			}
		}
		return false
	}
	t.Run("the deployment's runtime settings by default", func(t *testing.T) {
		env := notifierEnv(func(string) string { return "" })
		if !has(env, "GOGC=50") || !has(env, "GODEBUG=adaptivestackstart=0") {
			t.Errorf("env lacks the notifier's runtime settings: %v", env[max(len(env)-2, 0):])
		}
	})
	t.Run("the harness's own settings win", func(t *testing.T) {
		env := notifierEnv(func(k string) string { return map[string]string{"GOGC": "100", "GODEBUG": "x=1"}[k] })
		if has(env, "GOGC=50") || has(env, "GODEBUG=adaptivestackstart=0") {
			t.Error("notifierEnv overrode the harness's GOGC or GODEBUG")
		}
	})
}

func TestShare(t *testing.T) {
	for _, c := range []struct {
		total, n int
		want     []int
	}{
		{50, 3, []int{16, 17, 17}},
		{50, 1, []int{50}},
		{2, 3, []int{1, 1, 1}},
		{0, 3, []int{0, 0, 0}},
	} {
		for i, w := range c.want {
			if got := share(c.total, i, c.n); got != w {
				t.Errorf("share(%d, %d, %d) = %d, want %d", c.total, i, c.n, got, w)
			}
		}
	}
}

func TestCeiling(t *testing.T) {
	// 10,000 requests/s of HTTP alone and 5,000 transactions/s of pgbench:
	// 100 µs + 200 µs of the machine per request, 3,333/s.
	if got := ceiling(10_000, 5_000); got < 3333 || got > 3334 {
		t.Errorf("ceiling(10000, 5000) = %.1f, want 3333.3", got)
	}
	if got := ceiling(0, 5_000); got != 0 {
		t.Errorf("ceiling without an HTTP figure = %.1f, want 0", got)
	}
}

func TestDrive(t *testing.T) {
	// Three clients; client 1 fails on its third step, the others count
	// every second step as done until the time is up.
	var steps [3]atomic.Int64
	n, err := drive(context.Background(), 3, 200*time.Millisecond, func(i int) func(context.Context) (bool, error) {
		return func(context.Context) (bool, error) {
			k := steps[i].Add(1)
			if i == 1 && k == 3 {
				return false, errors.New("client 1 broke")
			}
			time.Sleep(time.Millisecond)
			return k%2 == 0, nil
		}
	})
	if err == nil || !strings.Contains(err.Error(), "client 1 broke") {
		t.Fatalf("error %v, want client 1's", err)
	}
	if steps[1].Load() != 3 {
		t.Errorf("client 1 took %d steps after its error, want it stopped at 3", steps[1].Load())
	}
	want := steps[0].Load()/2 + steps[2].Load()/2 + 1 // client 1's second step was done
	if n != want || steps[0].Load() < 10 {
		t.Errorf("counted %d done steps, want %d (steps %d, %d, %d)", n, want, steps[0].Load(), steps[1].Load(), steps[2].Load())
	}
}
