package main

import (
	"context"
	"fmt"
	"io"
	"time"
)

// session is a run against notifier replicas: the cluster, the replicas
// (started or attached) and the load workers holding the connections.
type session struct {
	o       *options
	c       *cluster
	servers []watched
	wsURLs  []string
	fleet   *fleet
	out     io.Writer
}

func newSession(ctx context.Context, o *options, stdout, stderr io.Writer) (*session, error) {
	c, err := newCluster(ctx, o, stderr)
	if err != nil {
		return nil, err
	}
	s := &session{o: o, c: c, out: stdout}
	if len(o.attach) > 0 {
		for i, base := range o.attach {
			p := &serverProc{name: fmt.Sprintf("notifier-%d", i+1), base: base}
			s.wsURLs = append(s.wsURLs, p.wsURL())
			if i < len(o.attachPIDs) {
				s.servers = append(s.servers, watched{name: p.name, pid: o.attachPIDs[i], base: base})
			}
		}
		return s, nil
	}
	ps, err := c.startNotifiers(ctx, o.replicas)
	if err != nil {
		c.close()
		return nil, err
	}
	s.servers = serverWatched(ps)
	for _, p := range ps {
		s.wsURLs = append(s.wsURLs, p.wsURL())
	}
	return s, nil
}

func (s *session) close() {
	if s.fleet != nil {
		s.fleet.stop()
	}
	s.c.close()
}

// connect opens o.n connections over the replicas, each subscribed to topic.
func (s *session) connect(ctx context.Context, topic string) (workerStats, time.Duration, error) {
	f, err := startFleet(ctx, s.o.n, s.o.perProc, s.c.stderr)
	if err != nil {
		return workerStats{}, 0, err
	}
	s.fleet = f
	start := time.Now()
	st, _, err := f.open(openRequest{URLs: s.wsURLs, Sources: s.o.sourceAddrs, Topics: []string{topic},
		Parallel: s.o.parallel, Contiguous: true})
	return st, time.Since(start), err
}

func (s *session) all() []watched {
	ws := append([]watched{}, s.servers...)
	if s.fleet != nil {
		ws = append(ws, workerWatched(s.fleet)...)
	}
	return append(ws, harnessSelf())
}

// connsResult is what the conns scenario measured.
type connsResult struct {
	N            int
	OpenTime     time.Duration
	RSSPerConn   float64 // bytes
	GoMemPerConn float64 // bytes of heap in use + stacks
	IdleCPU      float64 // % of one core, all replicas together
}

// measureConns opens the connections and watches them idle for o.duration.
func (s *session) measureConns(ctx context.Context, topic string) (connsResult, error) {
	base := takeSnapshot(ctx, s.servers)
	st, took, err := s.connect(ctx, topic)
	printStats(s.out, "connected", st)
	if err != nil {
		return connsResult{}, err
	}
	fmt.Fprintf(s.out, "opened %d connections over %d replicas and %d load processes in %.1f s\n",
		st.Open, len(s.wsURLs), len(s.fleet.workers), took.Seconds())
	time.Sleep(2 * time.Second) // let the servers settle (GC, first buffers)
	before := takeSnapshot(ctx, s.all())
	if err := sleepCtx(ctx, s.o.duration); err != nil {
		return connsResult{}, err
	}
	after := takeSnapshot(ctx, s.all())
	printProcTable(s.out, fmt.Sprintf("idle with %d connections", st.Open), s.all(), before, after)
	r := connsResult{N: st.Open, OpenTime: took}
	if st.Open > 0 {
		r.RSSPerConn = float64(rss(s.servers, after)-rss(s.servers, base)) / float64(st.Open)
		r.GoMemPerConn = (goMem(s.servers, after) - goMem(s.servers, base)) / float64(st.Open)
	}
	r.IdleCPU = 100 * cpu(s.servers, before, after) / after.at.Sub(before.at).Seconds()
	fmt.Fprintf(s.out, "RESULT conns: %d connections; server memory per connection %.1f KB RSS, %.1f KB heap+stacks; idle CPU %.2f%% of one core (all replicas; goal: <= 10 KB, < 2%%)\n",
		r.N, r.RSSPerConn/1000, r.GoMemPerConn/1000, r.IdleCPU)
	return r, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// deliveryCost is a fan-out measurement.
type deliveryCost struct {
	Deliveries int64
	ServerCPU  float64 // seconds
	PerDeliv   time.Duration
	Elapsed    time.Duration
	// ClientPerDeliv is the load workers' CPU per delivery (the floor
	// only): what receiving costs on the same machine.
	ClientPerDeliv time.Duration
	Dropped        int64 // clients the server closed for falling behind
}

func (d deliveryCost) String() string {
	str := fmt.Sprintf("%d deliveries, server CPU %.2f s, %.2f µs per delivery, %.0f deliveries/s per core-second",
		d.Deliveries, d.ServerCPU, float64(d.PerDeliv.Nanoseconds())/1000, float64(d.Deliveries)/max(d.ServerCPU, 1e-9))
	if d.Elapsed > 0 {
		str += fmt.Sprintf(" (%.0f deliveries/s achieved)", float64(d.Deliveries)/d.Elapsed.Seconds())
	}
	if d.ClientPerDeliv > 0 {
		str += fmt.Sprintf("; clients %.2f µs per delivery", float64(d.ClientPerDeliv.Nanoseconds())/1000)
	}
	return str
}

// measureFanout publishes o.rate notifications a second (in bursts of
// o.burst) for o.duration to every connection and measures the servers'
// CPU per delivery.
func (s *session) measureFanout(ctx context.Context, topic string) (deliveryCost, error) {
	st0, _, err := s.fleet.all(command{Cmd: "stats"})
	if err != nil {
		return deliveryCost{}, err
	}
	before := takeSnapshot(ctx, s.all())
	rounds := max(int(s.o.duration.Seconds()*float64(s.o.rate))/s.o.burst, 1)
	tick := time.Duration(float64(time.Second) * float64(s.o.burst) / float64(s.o.rate))
	var last uint64
	t := time.NewTicker(tick)
	for range rounds {
		if last, err = s.c.publishBurst(ctx, topic, s.o.size, s.o.burst); err != nil {
			t.Stop()
			return deliveryCost{}, err
		}
		select {
		case <-ctx.Done():
			t.Stop()
			return deliveryCost{}, ctx.Err()
		case <-t.C:
		}
	}
	t.Stop()
	st, _, err := s.fleet.all(command{Cmd: "wait", Seq: last, Timeout: time.Minute})
	if err != nil {
		return deliveryCost{}, err
	}
	after := takeSnapshot(ctx, s.all())
	printProcTable(s.out, fmt.Sprintf("notifier fan-out: %d notifications (bursts of %d) to %d connections", rounds*s.o.burst, s.o.burst, st.Open), s.all(), before, after)
	printStats(s.out, "after fan-out", st)
	d := deliveryCost{Deliveries: st.Received - st0.Received, ServerCPU: cpu(s.servers, before, after), Elapsed: after.at.Sub(before.at),
		Dropped: st.ClosedByServer - st0.ClosedByServer}
	if d.Deliveries > 0 {
		d.PerDeliv = time.Duration(d.ServerCPU * 1e9 / float64(d.Deliveries))
	}
	if st.Gaps > 0 || st.ClosedByServer > 0 {
		fmt.Fprintf(s.out, "WARNING: %d gaps, %d connections closed by the server (4001: slow client)\n", st.Gaps, st.ClosedByServer)
	}
	return d, nil
}

// stormResult is what a reconnect storm measured.
type stormResult struct {
	Clients                     int
	Took                        time.Duration
	Gaps, Dups, Resets, Replays int64
	Failed                      int
}

// measureStorm drops every connection, publishes o.missed notifications,
// reconnects everyone at once with their last seq and waits until all are
// resumed.
func (s *session) measureStorm(ctx context.Context, topic string) (stormResult, error) {
	// Everyone is at the stream's end first.
	last, err := s.c.publishBurst(ctx, topic, s.o.size, 10)
	if err != nil {
		return stormResult{}, err
	}
	if _, _, err := s.fleet.all(command{Cmd: "wait", Seq: last, Timeout: time.Minute}); err != nil {
		return stormResult{}, err
	}
	st0, _, err := s.fleet.all(command{Cmd: "drop"})
	if err != nil {
		return stormResult{}, err
	}
	time.Sleep(time.Second) // let the servers notice the drops
	if last, err = s.c.publishBurst(ctx, topic, s.o.size, s.o.missed); err != nil {
		return stormResult{}, err
	}
	before := takeSnapshot(ctx, s.all())
	start := time.Now()
	_, _, rerr := s.fleet.all(command{Cmd: "resume", Timeout: 2 * time.Minute})
	took := time.Since(start)
	after := takeSnapshot(ctx, s.all())
	st, _, werr := s.fleet.all(command{Cmd: "wait", Seq: last, Timeout: 10 * time.Second})
	printProcTable(s.out, fmt.Sprintf("reconnect storm: %d clients resuming %d missed notifications", st0.Clients, s.o.missed), s.all(), before, after)
	printStats(s.out, "after the storm", st)
	r := stormResult{Clients: st.Clients, Took: took, Gaps: st.Gaps - st0.Gaps, Dups: st.Dups - st0.Dups,
		Resets: st.Resets - st0.Resets, Replays: st.Missed - st0.Missed, Failed: st.Failed}
	fmt.Fprintf(s.out, "RESULT storm: %d clients reconnected and resumed in %.2f s; %d replayed notifications (want %d); gaps %d, duplicates %d, resets %d, failed %d, behind after 10 s: %v (goal: all resumed, 0 gaps, <= 15 s for 50k)\n",
		r.Clients, took.Seconds(), r.Replays, int64(r.Clients)*int64(s.o.missed), r.Gaps, r.Dups, r.Resets, r.Failed, st.MinSeq < last)
	if rerr != nil {
		return r, rerr
	}
	return r, werr
}
