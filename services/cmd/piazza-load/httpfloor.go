package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/localeurope/piazza/services/listings"
)

// The HTTP floor: a minimal Go HTTP server that answers a registration's
// request as the API does on the wire (it reads and decodes the JSON body
// and encodes a real application of the run as its 201), with no token to
// verify, no database and no events. What HTTP and JSON alone cost, client
// and server on one machine, is set against pgbench's transaction to give
// the most any HTTP service doing pgbench's work per request could reach.

func runHTTPFloorServer(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("http-floor-server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:0", "listen address (loopback)")
	sample := fs.String("response", "", "file holding a registration's response body, the application it encodes")
	if err := fs.Parse(args); err != nil {
		return err
	}
	raw, err := os.ReadFile(*sample)
	if err != nil {
		return fmt.Errorf("http-floor-server: %w", err)
	}
	var app listings.Application
	if err := json.Unmarshal(raw, &app); err != nil {
		return fmt.Errorf("http-floor-server: %s: %w", *sample, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", func(http.ResponseWriter, *http.Request) {})
	mux.HandleFunc("POST /api/v1/listings/market-days/{id}/applications", func(w http.ResponseWriter, r *http.Request) {
		var na listings.NewApplication
		if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&na); err != nil || na.VendorID == "" {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		out := app
		out.MarketDayID, out.VendorID = r.PathValue("id"), na.VendorID
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(out)
	})
	return serveLoopback(ctx, "http-floor-server", *addr, mux)
}

// httpFloor is what the HTTP floor measured.
type httpFloor struct {
	Requests  int64
	Elapsed   time.Duration
	ServerCPU float64 // seconds
	ClientCPU float64 // seconds: the harness, whose goroutines post
	Machine   float64 // seconds the machine was busy
}

func (h httpFloor) perSecond() float64 { return float64(h.Requests) / h.Elapsed.Seconds() }

// measureHTTPFloor starts the HTTP floor server answering with sample (a
// registration's response body of the run) and posts registrations to it
// from o.clients clients, as writes does, for at most 20 s.
func measureHTTPFloor(ctx context.Context, o *options, c *cluster, sample []byte, out io.Writer) (httpFloor, error) {
	self, err := os.Executable()
	if err != nil {
		return httpFloor{}, err
	}
	file := filepath.Join(c.dir, "application.json")
	if err := os.WriteFile(file, sample, 0o600); err != nil {
		return httpFloor{}, err
	}
	port, err := freePort()
	if err != nil {
		return httpFloor{}, err
	}
	p, err := c.startProc(ctx, "http-floor", self, []string{"http-floor-server", "-addr=127.0.0.1:" + strconv.Itoa(port), "-response=" + file}, nil, port, "/readyz")
	if err != nil {
		return httpFloor{}, err
	}
	server := []watched{{name: "http-floor", pid: p.cmd.Process.Pid}}
	all := append(append([]watched(nil), server...), harnessSelf())
	// Backends that ended just before (pgbench's) would be charged to
	// PostgreSQL in this phase when the postmaster reaps them.
	time.Sleep(time.Second)
	before := takeSnapshot(ctx, all)
	n, err := drive(ctx, o.clients, min(o.duration, 20*time.Second), func(i int) func(context.Context) (bool, error) {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 4
		a := &apiClient{base: p.base, http: &http.Client{Transport: tr, Timeout: 30 * time.Second}, token: "floor"}
		k := 0
		return func(ctx context.Context) (bool, error) {
			k++
			_, err := a.apply(ctx, "day-"+strconv.Itoa(k), "vendor-"+strconv.Itoa(i))
			return err == nil, err
		}
	})
	after := takeSnapshot(ctx, all)
	if err != nil {
		return httpFloor{}, fmt.Errorf("http floor: %w", err)
	}
	printProcTable(out, fmt.Sprintf("HTTP floor: %d clients posting registrations to a bare Go HTTP server (JSON in and out, no database)", o.clients), all, before, after)
	return httpFloor{Requests: n, Elapsed: after.at.Sub(before.at), ServerCPU: cpu(server, before, after),
		ClientCPU: cpu([]watched{harnessSelf()}, before, after), Machine: after.host.busy - before.host.busy}, nil
}

// ceiling is the most requests a second an HTTP service doing pgbench's
// transaction for each request could answer on this machine, if both run
// the machine flat out: their costs per request add up, so the rates add
// as resistances in series.
func ceiling(httpPerSec, pgbenchPerSec float64) float64 {
	if httpPerSec <= 0 || pgbenchPerSec <= 0 {
		return 0
	}
	return 1 / (1/httpPerSec + 1/pgbenchPerSec)
}
