package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"
)

// watched is a process whose CPU and memory the harness reads.
type watched struct {
	name string
	pid  int
	base string // http base for /metrics, or ""
}

type snapshot struct {
	at    time.Time
	procs map[int]procSample
	mets  map[int]metrics
	pg    map[int]float64 // CPU seconds of each postgres process
	host  hostCPU
}

func takeSnapshot(ctx context.Context, ws []watched) snapshot {
	s := snapshot{at: time.Now(), procs: map[int]procSample{}, mets: map[int]metrics{}, pg: postgresCPU()}
	s.host, _ = readHostCPU()
	for _, w := range ws {
		if p, err := readProc(w.pid); err == nil {
			s.procs[w.pid] = p
		}
		if w.base != "" {
			if m, err := scrapeMetrics(ctx, w.base); err == nil {
				s.mets[w.pid] = m
			}
		}
	}
	return s
}

// cpu is the CPU seconds the processes in ws used between two snapshots.
func cpu(ws []watched, before, after snapshot) float64 {
	var s float64
	for _, w := range ws {
		s += after.procs[w.pid].CPUSeconds - before.procs[w.pid].CPUSeconds
	}
	return s
}

func rss(ws []watched, s snapshot) int64 {
	var n int64
	for _, w := range ws {
		n += s.procs[w.pid].RSSBytes
	}
	return n
}

// goMem is heap in use plus goroutine stacks, from go_memstats.
func goMem(ws []watched, s snapshot) float64 {
	var n float64
	for _, w := range ws {
		m := s.mets[w.pid]
		n += m.sum("go_memstats_heap_inuse_bytes") + m.sum("go_memstats_stack_inuse_bytes")
	}
	return n
}

const mib = 1 << 20

func printProcTable(w io.Writer, title string, ws []watched, before, after snapshot) {
	secs := after.at.Sub(before.at).Seconds()
	fmt.Fprintf(w, "\n%s (%.1f s)\n", title, secs)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "process\tpid\tCPU s\t% of a core\tRSS before MiB\tRSS after MiB\theap+stacks MiB\t")
	for _, p := range ws {
		b, a := before.procs[p.pid], after.procs[p.pid]
		heap := "-"
		if m, ok := after.mets[p.pid]; ok {
			heap = fmt.Sprintf("%.1f", (m.sum("go_memstats_heap_inuse_bytes")+m.sum("go_memstats_stack_inuse_bytes"))/mib)
		}
		d := a.CPUSeconds - b.CPUSeconds
		fmt.Fprintf(tw, "%s\t%d\t%.2f\t%.1f\t%.1f\t%.1f\t%s\t\n", p.name, p.pid, d, 100*d/max(secs, 1e-9),
			float64(b.RSSBytes)/mib, float64(a.RSSBytes)/mib, heap)
	}
	// PostgreSQL and the whole machine, so that the kernel's and other
	// processes' share is the rest. A backend started during the phase (a
	// pool growing under load) counts whole; one that ended is missed.
	var pg float64
	for pid, c := range after.pg {
		pg += c - before.pg[pid]
	}
	fmt.Fprintf(tw, "postgres\t%d→%d procs\t%.2f\t%.1f\t-\t-\t-\t\n", len(before.pg), len(after.pg), pg, 100*pg/max(secs, 1e-9))
	if busy, total := after.host.busy-before.host.busy, after.host.total-before.host.total; total > 0 {
		fmt.Fprintf(tw, "machine (busy)\t-\t%.2f\t%.1f\t-\t-\t-\t\n", busy, 100*busy/max(secs, 1e-9))
		steal := after.host.steal - before.host.steal
		fmt.Fprintf(tw, "stolen by the host\t-\t%.2f\t%.1f\t-\t-\t-\t\n", steal, 100*steal/max(secs, 1e-9))
	}
	_ = tw.Flush()
}

// harnessSelf is this process (the embedded nats-server and the publisher).
func harnessSelf() watched { return watched{name: "harness+nats", pid: os.Getpid()} }

func serverWatched(ps []*serverProc) []watched {
	var ws []watched
	for _, p := range ps {
		ws = append(ws, watched{name: p.name, pid: p.cmd.Process.Pid, base: p.base})
	}
	return ws
}

func workerWatched(f *fleet) []watched {
	var ws []watched
	for i, pid := range f.pids() {
		ws = append(ws, watched{name: fmt.Sprintf("load-worker-%d", i+1), pid: pid})
	}
	return ws
}

func printStats(w io.Writer, label string, s workerStats) {
	fmt.Fprintf(w, "%s: clients %d open %d failed %d | notifications %d (%d B) | seq %d..%d | gaps %d dups %d resets %d | closed by server %d | errors %d bad frames %d\n",
		label, s.Clients, s.Open, s.Failed, s.Received, s.Bytes, s.MinSeq, s.MaxSeq, s.Gaps, s.Dups, s.Resets,
		s.ClosedByServer, s.Errors, s.BadFrames)
}
