package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// The write path and end-to-end latency need the listings and accounts
// services (one piazza process, -target=accounts,listings, with demo data)
// besides the notifier replicas.

const city = "ghent"

type pipeline struct {
	*session
	api  *serverProc
	days []marketDay
}

func newPipeline(ctx context.Context, o *options, stdout, stderr io.Writer) (*pipeline, error) {
	if len(o.attach) > 0 {
		return nil, errors.New("latency and writes start their own services; -attach is for conns, fanout and storm")
	}
	s, err := newSession(ctx, o, stdout, stderr)
	if err != nil {
		return nil, err
	}
	p := &pipeline{session: s}
	// The latency scenario posts statuses as often as its rate asks: no
	// per-stall interval.
	if p.api, err = s.c.startPiazza(ctx, "api", "accounts,listings", true, "-status-post-interval=0"); err != nil {
		s.close()
		return nil, err
	}
	s.servers = append(s.servers, watched{name: p.api.name, pid: p.api.cmd.Process.Pid, base: p.api.base})
	probe := p.newAPI()
	if p.days, err = probe.marketDays(ctx, city); err != nil {
		s.close()
		return nil, err
	}
	return p, nil
}

// newAPI returns a client of its own (connection pool), leaving from one of
// the loopback source addresses.
func (p *pipeline) newAPI() *apiClient {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 4
	return &apiClient{base: p.api.base, http: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// agents signs up k vendor accounts. Each goes through the market days in
// the same order from its own starting point, spread evenly: vendors of a
// city network apply for many markets and dates at once, not all for the same
// day in lockstep (which would measure one market day's row lock).
func (p *pipeline) agents(ctx context.Context, k int) ([]*vendorAgent, error) {
	var as []*vendorAgent
	for i := range k {
		a := &vendorAgent{api: p.newAPI(), city: city, days: rotate(p.days, i*len(p.days)/k)}
		if err := a.api.signUp(ctx); err != nil {
			return nil, err
		}
		as = append(as, a)
	}
	return as, nil
}

// rotate returns days starting at days[k], wrapping around.
func rotate(days []marketDay, k int) []marketDay {
	if len(days) == 0 {
		return nil
	}
	k %= len(days)
	return append(append(make([]marketDay, 0, len(days)), days[k:]...), days[:k]...)
}

func tolerate(err error, out io.Writer, what string) error {
	if errors.Is(err, errNoAPI) {
		fmt.Fprintf(out, "SKIPPED %s: %v — the API this scenario drives (docs/api.md) is not in the piazza binary under test yet\n", what, err)
		return nil
	}
	var ae *apiError
	if errors.As(err, &ae) && (ae.Status == http.StatusUnauthorized || ae.Status == http.StatusForbidden) {
		fmt.Fprintf(out, "SKIPPED %s: %v — vendor tokens are not accepted by this build yet\n", what, err)
		return nil
	}
	return err
}

// writeResult counts what the write path did.
type writeResult struct {
	Created  map[string]int // application status → count
	Vendors  int
	Failures map[int]int // HTTP status → count
	Elapsed  time.Duration
}

func (w writeResult) total() int {
	n := 0
	for _, c := range w.Created {
		n += c
	}
	return n
}

func runWrites(ctx context.Context, o *options, stdout, stderr io.Writer) error {
	o.n = 0 // the write path opens no websockets
	header(stdout, "writes", o)
	p, err := newPipeline(ctx, o, stdout, stderr)
	if err != nil {
		return tolerate(err, stdout, "writes")
	}
	defer p.close()
	agents, err := p.agents(ctx, o.clients)
	if err != nil {
		return tolerate(err, stdout, "writes")
	}
	metBefore, _ := scrapeMetrics(ctx, p.api.base)
	before := takeSnapshot(ctx, p.all())
	res := writeResult{Created: map[string]int{}, Failures: map[int]int{}}
	var mu sync.Mutex
	var firstErr error
	wctx, cancel := context.WithTimeout(ctx, o.duration)
	start := time.Now()
	var wg sync.WaitGroup
	for _, a := range agents {
		wg.Go(func() {
			for wctx.Err() == nil {
				app, _, _, err := a.applyNext(wctx)
				mu.Lock()
				var ae *apiError
				switch {
				case err == nil:
					res.Created[app.Status]++
				case errors.As(err, &ae):
					res.Failures[ae.Status]++
				case wctx.Err() == nil && firstErr == nil:
					firstErr = err
				}
				mu.Unlock()
				if err != nil && !errors.As(err, &ae) {
					return
				}
			}
		})
	}
	wg.Wait()
	cancel()
	res.Elapsed = time.Since(start)
	time.Sleep(time.Second) // let the relay drain
	after := takeSnapshot(ctx, p.all())
	metAfter, _ := scrapeMetrics(ctx, p.api.base)
	printProcTable(stdout, fmt.Sprintf("write path: %d HTTP clients", o.clients), p.all(), before, after)
	if firstErr != nil && res.total() == 0 {
		return tolerate(firstErr, stdout, "writes")
	}
	tps := float64(res.total()) / res.Elapsed.Seconds()
	fmt.Fprintf(stdout, "applications created: %v; failures by HTTP status: %v; %.0f applications/s\n", res.Created, res.Failures, tps)
	if metBefore != nil && metAfter != nil {
		d := metAfter.diff(metBefore)
		p50, n := d.histQuantile("piazza_outbox_relay_lag_seconds", 0.5)
		p99, _ := d.histQuantile("piazza_outbox_relay_lag_seconds", 0.99)
		fmt.Fprintf(stdout, "RESULT relay lag (listings outbox, %d events): p50 <= %gs, p99 <= %gs (bucket bounds; goal p99 <= 0.05 s)\n", n, p50, p99)
	}
	pg, err := runPgbench(ctx, o, p.c, stdout)
	if err != nil {
		fmt.Fprintf(stdout, "pgbench baseline failed: %v\n", err)
		return err
	}
	fmt.Fprintf(stdout, "RESULT writes: HTTP+Postgres+outbox %.0f tx/s; pgbench (same two inserts, %d clients) %.0f tx/s; ratio %.2f (goal >= 0.60)\n",
		tps, o.clients, pg, tps/pg)
	var sample []byte
	for _, a := range agents {
		if a.api.lastApplication != nil {
			sample = a.api.lastApplication
			break
		}
	}
	if sample == nil {
		return nil
	}
	hf, err := measureHTTPFloor(ctx, o, p.c, sample, stdout)
	if err != nil {
		fmt.Fprintf(stdout, "HTTP floor failed: %v\n", err)
		return err
	}
	top := ceiling(hf.perSecond(), pg)
	fmt.Fprintf(stdout, "RESULT HTTP floor: %.0f registrations/s with JSON in and out and no database (%.1f µs of the machine each; server %.1f µs, clients %.1f µs); with pgbench's transaction at pgbench's cost on top, at most %.0f/s: ratio %.2f\n",
		hf.perSecond(), hf.Machine*1e6/float64(max(hf.Requests, 1)), hf.ServerCPU*1e6/float64(max(hf.Requests, 1)),
		hf.ClientCPU*1e6/float64(max(hf.Requests, 1)), top, top/pg)
	sw, err := measureStoreWrites(ctx, o, p.c, p.days, stdout)
	if err != nil {
		fmt.Fprintf(stdout, "registrations without HTTP failed: %v\n", err)
		return err
	}
	fmt.Fprintf(stdout, "RESULT registrations without HTTP (listings.Store.Apply, the API's own code, %d goroutines on the same database): %.0f/s (%.1f µs of the machine each): ratio %.2f to pgbench\n",
		o.clients, sw.perSecond(), sw.Machine*1e6/float64(max(sw.Registrations, 1)), sw.perSecond()/pg)
	return nil
}

// pgbenchScript is one stall registration's two inserts: the application
// row and its outbox event, in tables with the same columns and the outbox's
// indexes (listings has no NOTIFY trigger since 2026-11-27: see outbox.Wake).
const pgbenchSetup = `
CREATE SCHEMA loadbench;
CREATE TABLE loadbench.applications (
    id uuid PRIMARY KEY, city text NOT NULL, market_day_id uuid NOT NULL, vendor_id uuid NOT NULL,
    pitch_id uuid, status text NOT NULL, preferred_pitch text, note text, batch_id uuid,
    waitlisted_at timestamptz, live_state text, decided_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(), UNIQUE (market_day_id, vendor_id));
CREATE TABLE loadbench.outbox (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, event_id uuid NOT NULL UNIQUE,
    subject text NOT NULL, source text NOT NULL, type text NOT NULL, ce_subject text NOT NULL DEFAULT '',
    event_time timestamptz NOT NULL, content_type text NOT NULL DEFAULT 'application/json',
    traceparent text NOT NULL DEFAULT '', data bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(), published_at timestamptz);
CREATE INDEX ON loadbench.outbox (seq) WHERE published_at IS NULL;
`

const pgbenchScript = `BEGIN;
INSERT INTO loadbench.applications (id, city, market_day_id, vendor_id, status, live_state, decided_at)
  VALUES (gen_random_uuid(), 'ghent', gen_random_uuid(), gen_random_uuid(), 'accepted', 'expected', now());
INSERT INTO loadbench.outbox (event_id, subject, source, type, ce_subject, event_time, data)
  VALUES (gen_random_uuid(), 'listings.ghent.stall.registered', '/piazza/listings', 'eu.piazza.listings.stall.registered.v1',
          'market-days/x', now(), convert_to('{"application_id":"01a218ba-dab3-7356-96d5-2a55ee090e07","vendor_name":"Hoeve De Vlier","market_name":"Boerenmarkt Groentenmarkt","pitch":"A1","date":"2026-11-26"}', 'UTF8'));
END;
`

var tpsLine = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)

// runPgbench runs pgbench with the two inserts against the run's database
// for o.duration with o.clients clients and returns its tps.
func runPgbench(ctx context.Context, o *options, c *cluster, stdout io.Writer) (float64, error) {
	conn, err := pgx.Connect(ctx, c.dbURL)
	if err != nil {
		return 0, err
	}
	_, err = conn.Exec(ctx, pgbenchSetup)
	conn.Close(ctx)
	if err != nil {
		return 0, fmt.Errorf("pgbench tables: %w", err)
	}
	script := filepath.Join(c.dir, "stall.sql")
	if err := os.WriteFile(script, []byte(pgbenchScript), 0o600); err != nil {
		return 0, err
	}
	secs := strconv.Itoa(max(int(o.duration.Seconds()), 1))
	cmd := exec.CommandContext(ctx, o.pgbench, "-n", "-c", strconv.Itoa(o.clients), "-j", "2", "-T", secs, "-f", script, c.dbURL)
	before := takeSnapshot(ctx, nil)
	out, err := cmd.CombinedOutput()
	after := takeSnapshot(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("pgbench: %w: %s", err, out)
	}
	m := tpsLine.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("pgbench: no tps in its output: %s", out)
	}
	busy := after.host.busy - before.host.busy
	fmt.Fprintf(stdout, "pgbench: %s -n -c %d -j 2 -T %s -f stall.sql <fresh db>: %s tps; machine %.0f%% busy\n", o.pgbench, o.clients, secs, m[1],
		100*busy/max(after.at.Sub(before.at).Seconds(), 1e-9))
	return strconv.ParseFloat(string(m[1]), 64)
}
