package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"time"
)

const benchTopic = "city:bench"

func header(w io.Writer, name string, o *options) {
	fmt.Fprintf(w, "== piazza-load %s: n=%d replicas=%d per-proc=%d sources=%d duration=%s size=%d rate=%d burst=%d (%s, %d CPUs, %s)\n",
		name, o.n, o.replicas, o.perProc, o.sources, o.duration, o.size, o.rate, o.burst, runtime.Version(), runtime.NumCPU(), time.Now().Format(time.RFC3339))
}

func runConns(ctx context.Context, o *options, stdout, stderr io.Writer) error {
	header(stdout, "conns", o)
	s, err := newSession(ctx, o, stdout, stderr)
	if err != nil {
		return err
	}
	defer s.close()
	_, err = s.measureConns(ctx, benchTopic)
	return err
}

func runStorm(ctx context.Context, o *options, stdout, stderr io.Writer) error {
	header(stdout, "storm", o)
	s, err := newSession(ctx, o, stdout, stderr)
	if err != nil {
		return err
	}
	defer s.close()
	st, took, err := s.connect(ctx, benchTopic)
	printStats(stdout, "connected", st)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "opened %d connections in %.1f s\n", st.Open, took.Seconds())
	_, err = s.measureStorm(ctx, benchTopic)
	return err
}

func runFloor(ctx context.Context, o *options, stdout, stderr io.Writer) error {
	header(stdout, "floor", o)
	c, err := newCluster(ctx, o, stderr)
	if err != nil {
		return err
	}
	defer c.close()
	d, err := measureFloor(ctx, o, c, stdout, floorSpec{servers: o.replicas, rate: o.rate, burst: o.burst, to: o.to})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "RESULT floor: %s\n", d)
	return nil
}

func runFanout(ctx context.Context, o *options, stdout, stderr io.Writer) error {
	header(stdout, "fanout", o)
	s, err := newSession(ctx, o, stdout, stderr)
	if err != nil {
		return err
	}
	defer s.close()
	st, took, err := s.connect(ctx, benchTopic)
	printStats(stdout, "connected", st)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "opened %d connections in %.1f s\n", st.Open, took.Seconds())
	return fanoutVsFloor(ctx, s, stdout)
}

// fanoutVsFloor measures the notifier's fan-out on the session's open
// connections, then closes them and measures the floor with as many.
func fanoutVsFloor(ctx context.Context, s *session, stdout io.Writer) error {
	time.Sleep(time.Second)
	n, err := s.measureFanout(ctx, benchTopic)
	if err != nil {
		return err
	}
	s.fleet.stop()
	s.fleet = nil
	fl, err := measureFloor(ctx, s.o, s.c, stdout, floorSpec{servers: 1, rate: s.o.rate, burst: s.o.burst})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "RESULT fanout: notifier %s\n", n)
	fmt.Fprintf(stdout, "RESULT floor:  %s\n", fl)
	if n.Dropped > 0 {
		fmt.Fprintf(stdout, "RESULT ratio: not comparable — the notifier closed %d slow clients (4001): the offered load (%d/s × %d connections) is above what this machine delivers; lower -rate or -n\n",
			n.Dropped, s.o.rate, s.o.n)
		return nil
	}
	if fl.PerDeliv > 0 {
		fmt.Fprintf(stdout, "RESULT ratio notifier/floor CPU per delivery: %.2f (goal <= 1.2; n=%d, frame %d B, %d/s in bursts of %d)\n",
			float64(n.PerDeliv)/float64(fl.PerDeliv), s.o.n, s.o.size, s.o.rate, s.o.burst)
	}
	return nil
}

// runBench is the short run of make bench: connections, then a storm, then
// fan-out against the floor, on one set of processes.
func runBench(ctx context.Context, o *options, stdout, stderr io.Writer) error {
	header(stdout, "bench", o)
	s, err := newSession(ctx, o, stdout, stderr)
	if err != nil {
		return err
	}
	defer s.close()
	if _, err := s.measureConns(ctx, benchTopic); err != nil {
		return err
	}
	if _, err := s.measureStorm(ctx, benchTopic); err != nil {
		return err
	}
	return fanoutVsFloor(ctx, s, stdout)
}
