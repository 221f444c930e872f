package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"time"
)

// fleet is the harness's side of its worker processes.
type fleet struct {
	workers []*workerProc
}

type workerProc struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
	n   int // clients it holds
}

// startFleet re-executes this binary as enough workers to hold n clients at
// perProc each.
func startFleet(ctx context.Context, n, perProc int, stderr io.Writer) (*fleet, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	count := max((n+perProc-1)/perProc, 1)
	f := &fleet{}
	for i := range count {
		cmd := exec.CommandContext(ctx, self, "worker")
		cmd.Stderr = stderr
		in, err := cmd.StdinPipe()
		if err != nil {
			f.stop()
			return nil, err
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			f.stop()
			return nil, err
		}
		if err := cmd.Start(); err != nil {
			f.stop()
			return nil, fmt.Errorf("worker %d: %w", i, err)
		}
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 256<<20)
		share := n / count
		if i < n%count {
			share++
		}
		f.workers = append(f.workers, &workerProc{cmd: cmd, in: in, out: sc, n: share})
	}
	return f, nil
}

// call sends one command to every worker at once (mk builds each worker's
// command, given its index and its first client's global index) and returns
// the replies.
func (f *fleet) call(mk func(i, offset int, w *workerProc) command) ([]reply, error) {
	replies := make([]reply, len(f.workers))
	errs := make([]error, len(f.workers))
	var wg sync.WaitGroup
	offset := 0
	for i, w := range f.workers {
		cmd := mk(i, offset, w)
		offset += w.n
		wg.Go(func() {
			b, err := json.Marshal(cmd)
			if err != nil {
				errs[i] = err
				return
			}
			if _, err := w.in.Write(append(b, '\n')); err != nil {
				errs[i] = fmt.Errorf("worker %d: %w", i, err)
				return
			}
			if !w.out.Scan() {
				errs[i] = fmt.Errorf("worker %d: no reply (exited?): %v", i, w.out.Err())
				return
			}
			if err := json.Unmarshal(w.out.Bytes(), &replies[i]); err != nil {
				errs[i] = fmt.Errorf("worker %d: %w", i, err)
				return
			}
			if replies[i].Err != "" {
				errs[i] = fmt.Errorf("worker %d: %s", i, replies[i].Err)
			}
		})
	}
	wg.Wait()
	return replies, errors.Join(errs...)
}

// all sends the same command to every worker.
func (f *fleet) all(cmd command) (workerStats, time.Duration, error) {
	replies, err := f.call(func(int, int, *workerProc) command { return cmd })
	s, el := sumReplies(replies)
	return s, el, err
}

func sumReplies(replies []reply) (workerStats, time.Duration) {
	var s workerStats
	var el time.Duration
	for _, r := range replies {
		s.add(r.Stats)
		el = max(el, r.Elapsed)
	}
	return s, el
}

// open connects each worker's share of the clients.
func (f *fleet) open(base openRequest) (workerStats, time.Duration, error) {
	replies, err := f.call(func(_, offset int, w *workerProc) command {
		o := base
		o.N, o.Offset = w.n, offset
		return command{Cmd: "open", Open: &o}
	})
	s, el := sumReplies(replies)
	return s, el, err
}

func (f *fleet) pids() []int {
	var p []int
	for _, w := range f.workers {
		p = append(p, w.cmd.Process.Pid)
	}
	return p
}

// stop asks every worker to quit and waits for it (killing it after 10 s).
func (f *fleet) stop() {
	for _, w := range f.workers {
		_, _ = w.in.Write([]byte(`{"cmd":"quit"}` + "\n"))
		_ = w.in.Close()
	}
	for _, w := range f.workers {
		done := make(chan struct{})
		go func() { _ = w.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = w.cmd.Process.Kill()
			<-done
		}
	}
}
