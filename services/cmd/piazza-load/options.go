package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"
)

// options are every scenario's flags; each scenario uses some of them.
type options struct {
	n           int
	replicas    int
	perProc     int
	sources     int
	parallel    int
	duration    time.Duration
	piazza      string
	databaseURL string
	size        int
	rate        int
	burst       int
	missed      int
	subscribers int
	to          int
	floor       bool
	clients     int
	writeRate   int
	pgbench     string
	attach      []string // http base URLs of running notifiers (no spawning)
	attachNATS  string
	attachPIDs  []int

	sourceAddrs []string
}

const defaultDatabaseURL = "postgres://piazza:piazza@127.0.0.1:5432/piazza?sslmode=disable"

func parseOptions(name string, args []string, getenv func(string) string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("piazza-load "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.n, "n", 2000, "websocket connections")
	fs.IntVar(&o.replicas, "replicas", 1, "notifier processes to start")
	fs.IntVar(&o.perProc, "per-proc", 19000, "connections per load worker process (each may hold 20,000 files)")
	fs.IntVar(&o.sources, "sources", 8, "loopback source addresses (127.0.0.2 onwards)")
	fs.IntVar(&o.parallel, "parallel", 128, "concurrent dials per worker")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "measuring time of the scenario (bounded to 10m)")
	fs.StringVar(&o.piazza, "piazza", "bin/piazza", "path of the built piazza binary (make build)")
	dbDef := getenv("DATABASE_URL")
	if dbDef == "" {
		dbDef = defaultDatabaseURL
	}
	fs.StringVar(&o.databaseURL, "database-url", dbDef, "PostgreSQL admin URL (env DATABASE_URL); a fresh database is created per run and dropped after")
	fs.IntVar(&o.size, "size", 512, "websocket frame size of a notification, bytes")
	fs.IntVar(&o.rate, "rate", 20, "fanout: notifications per second")
	fs.IntVar(&o.burst, "burst", 1, "fanout: notifications published together")
	fs.IntVar(&o.missed, "missed", 100, "storm: notifications published while the clients are away (<= 240 resumes, more resets)")
	fs.IntVar(&o.to, "to", 0, "floor: write each frame to this many connections in all (split between the -replicas servers, each in turn), not to every one (0): a sparse fan-out like latency's")
	fs.BoolVar(&o.floor, "floor", false, "latency: then measure the bare floor with the same connections, servers, accepted rate and followers per post")
	fs.IntVar(&o.subscribers, "subscribers", 50, "latency: connections following each stall (n/subscribers stalls)")
	fs.IntVar(&o.clients, "clients", 8, "latency: concurrent posting HTTP clients; writes: concurrent HTTP clients (and pgbench clients)")
	fs.IntVar(&o.writeRate, "write-rate", 100, "latency: stall status posts per second offered")
	fs.StringVar(&o.pgbench, "pgbench", "pgbench", "writes: pgbench binary")
	attach := fs.String("attach", "", "comma list of running notifiers' http base URLs to use instead of starting any (needs -attach-nats)")
	fs.StringVar(&o.attachNATS, "attach-nats", "", "NATS URL of the attached notifiers")
	pids := fs.String("attach-pids", "", "comma list of the attached notifiers' pids, to read their CPU and memory")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	var errs []error
	if o.n < 1 || o.n > 200_000 {
		errs = append(errs, fmt.Errorf("-n %d: must be 1 to 200000", o.n))
	}
	if o.replicas < 1 || o.replicas > 16 {
		errs = append(errs, fmt.Errorf("-replicas %d: must be 1 to 16", o.replicas))
	}
	if o.perProc < 1 || o.perProc > 19_500 {
		errs = append(errs, fmt.Errorf("-per-proc %d: must be 1 to 19500 (the file limit is 20,000)", o.perProc))
	}
	if o.duration <= 0 || o.duration > 10*time.Minute {
		errs = append(errs, fmt.Errorf("-duration %v: must be up to 10m", o.duration))
	}
	if o.rate < 1 || o.rate > 10_000 || o.burst < 1 || o.burst > 1000 {
		errs = append(errs, errors.New("-rate must be 1 to 10000 and -burst 1 to 1000"))
	}
	if o.size < 128 || o.size > 64<<10 {
		errs = append(errs, fmt.Errorf("-size %d: must be 128 to 65536", o.size))
	}
	if o.to < 0 || o.to > o.n {
		errs = append(errs, fmt.Errorf("-to %d: must be 0 (all) to -n", o.to))
	}
	if o.clients < 1 || o.clients > 256 || o.subscribers < 1 || o.writeRate < 1 || o.writeRate > 10_000 {
		errs = append(errs, errors.New("-clients must be 1 to 256, -subscribers at least 1, -write-rate 1 to 10000"))
	}
	var err error
	if o.sourceAddrs, err = sourceAddrs(o.sources); err != nil {
		errs = append(errs, err)
	}
	for _, a := range strings.Split(*attach, ",") {
		if a = strings.TrimRight(strings.TrimSpace(a), "/"); a != "" {
			if err := checkLoopbackURL(a); err != nil {
				errs = append(errs, err)
			}
			o.attach = append(o.attach, a)
		}
	}
	if len(o.attach) > 0 {
		if o.attachNATS == "" {
			errs = append(errs, errors.New("-attach needs -attach-nats"))
		} else if err := checkLoopbackURL(o.attachNATS); err != nil {
			errs = append(errs, err)
		}
	}
	for _, p := range strings.Split(*pids, ",") {
		if p = strings.TrimSpace(p); p != "" {
			var pid int
			if _, err := fmt.Sscan(p, &pid); err != nil || pid <= 0 {
				errs = append(errs, fmt.Errorf("-attach-pids: %q", p))
			}
			o.attachPIDs = append(o.attachPIDs, pid)
		}
	}
	if err := checkLoopbackDB(o.databaseURL); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return o, nil
}
