// Command piazza-load is Piazza's load harness: it starts notifier replicas
// (and, for the write path, the listings and accounts services) against a
// fresh database and an embedded nats-server, opens many websocket
// connections from several loopback source addresses over several worker
// processes, and measures connections, fan-out against a bare broadcast
// floor, end-to-end latency, the write path against pgbench, and reconnect
// storms. It only ever sends traffic to loopback addresses.
//
// Usage: piazza-load <scenario> [flags]; piazza-load help.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "piazza-load:", err)
		os.Exit(1)
	}
}

const usage = `Usage: piazza-load <scenario> [flags]

Scenarios (each starts what it needs and tears it down):
  conns    N idle connections over -replicas notifier processes: memory per connection, idle CPU
  fanout   one notification to N subscribers, repeated: server CPU per delivery vs the bare floor
  floor    the bare broadcast floor alone (minimal gorilla websocket servers); -to N: each frame to N connections
  storm    N clients drop, miss notifications, reconnect at once with their last seq: time, gaps
  latency  HTTP stall status post accepted -> websocket delivery, p50/p99
  writes   HTTP stall registrations at max rate vs pgbench with the same two inserts; relay lag
  bench    conns, fanout (with floor) and storm in one short run (make bench)

Run "piazza-load <scenario> -h" for the flags.
`

// run dispatches to a scenario. Workers and the floor server are this same
// binary re-executed with a hidden subcommand.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("name a scenario")
	}
	name, rest := args[0], args[1:]
	switch name {
	case "worker":
		return runWorker(ctx, stdin, stdout)
	case "floor-server":
		return runFloorServer(ctx, rest, stderr)
	case "http-floor-server":
		return runHTTPFloorServer(ctx, rest, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	scenario, ok := scenarios[name]
	if !ok {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown scenario %q", name)
	}
	o, err := parseOptions(name, rest, getenv, stderr)
	if err != nil {
		return err
	}
	return scenario(ctx, o, stdout, stderr)
}

type scenarioFunc func(ctx context.Context, o *options, stdout, stderr io.Writer) error

var scenarios = map[string]scenarioFunc{
	"conns":   runConns,
	"fanout":  runFanout,
	"floor":   runFloor,
	"storm":   runStorm,
	"latency": runLatency,
	"writes":  runWrites,
	"bench":   runBench,
}
