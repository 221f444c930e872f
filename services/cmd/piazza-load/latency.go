package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// The latency scenario measures goal 3 (issue 6): from an HTTP stall update
// being accepted to its websocket delivery. The updates are status posts
// (POST /applications/{id}/status-posts → stall.status_posted to the
// vendor's followers), on stalls checked in on today's market days that the
// scenario makes itself; the listings process runs with
// -status-post-interval=0 so that a stall may post as often as the rate asks.

const (
	// pitchesPerPlace bounds the stalls of one market day: a status post
	// locks its day's row, and a city's 1,000 stalls stand on many
	// markets, not one (a plan holds at most 500 pitches anyway).
	pitchesPerPlace = 100
	// latencyAccounts is how many vendor accounts own the stalls: sign-ups
	// are limited per address (10 at once), and the accounts do not limit
	// the rate, since every posting client has a connection of its own.
	latencyAccounts = 8
)

// liveStall is a checked-in stall of the run, and who may post for it.
type liveStall struct {
	owner  *apiClient
	vendor string
	app    string
}

func runLatency(ctx context.Context, o *options, stdout, stderr io.Writer) error {
	header(stdout, "latency", o)
	p, err := newPipeline(ctx, o, stdout, stderr)
	if err != nil {
		return tolerate(err, stdout, "latency")
	}
	defer p.close()
	nv := max(o.n/o.subscribers, 1)
	start := time.Now()
	stalls, err := p.openStalls(ctx, nv)
	if errors.Is(err, errNoAPI) {
		return tolerate(err, stdout, "latency")
	}
	if err != nil {
		return fmt.Errorf("setting up stalls: %w", err)
	}
	fmt.Fprintf(stdout, "set up %d checked-in stalls on %d places/markets open today in %.1f s\n",
		len(stalls), len(placeSizes(nv, pitchesPerPlace)), time.Since(start).Seconds())

	// Each stall has about o.subscribers followers among the o.n
	// connections (connection g follows stall g mod nv), which connect now:
	// the setup's notifications are not theirs.
	topics := make([]string, nv)
	for i, s := range stalls {
		topics[i] = "vendor:" + s.vendor
	}
	f, err := startFleet(ctx, o.n, o.perProc, stderr)
	if err != nil {
		return err
	}
	p.fleet = f
	st, _, err := f.open(openRequest{URLs: p.wsURLs, Sources: o.sourceAddrs, Topics: topics, Parallel: o.parallel, Record: true})
	printStats(stdout, "connected", st)
	if err != nil {
		return err
	}
	before := takeSnapshot(ctx, p.all())
	sent, res, err := p.driveStatusPosts(ctx, stalls)
	if err != nil {
		return tolerate(err, stdout, "latency")
	}
	var want int64
	for k := range sent {
		want += int64(followers(o.n, nv, k.stall))
	}
	if st, err = waitRecorded(ctx, f, want, 30*time.Second); err != nil {
		return err
	}
	after := takeSnapshot(ctx, p.all())
	printProcTable(stdout, fmt.Sprintf("status posts at %d/s to %d stalls, %d connections", o.writeRate, nv, st.Open), p.all(), before, after)
	file := filepath.Join(p.c.dir, "sent.txt")
	if err := writeSent(file, sent); err != nil {
		return err
	}
	replies, err := f.call(func(int, int, *workerProc) command { return command{Cmd: "latency", File: file} })
	if err != nil {
		return err
	}
	h := newHistogram()
	var unmatched int64
	for _, r := range replies {
		if r.Hist != nil {
			h.merge(r.Hist)
		}
		unmatched += r.Unmatched
	}
	secs := res.Elapsed.Seconds()
	fmt.Fprintf(stdout, "status posts: offered %d/s (%d in %s), sent %d in %.1f s (%.0f/s), accepted %d (%.0f/s); failures by HTTP status %v, other errors %d; HTTP round trip p50 %s p99 %s max %s\n",
		o.writeRate, res.Offered, o.duration, res.Sent, secs, float64(res.Sent)/secs, len(sent), float64(len(sent))/secs, res.Failures, res.Errors,
		res.RoundTrip.quantile(0.5), res.RoundTrip.quantile(0.99), res.RoundTrip.Max)
	fmt.Fprintf(stdout, "deliveries: %d expected (%d accepted posts × their stall's followers), %d received and matched, %d missing, %d unmatched\n",
		want, len(sent), h.N, want-h.N, unmatched)
	fmt.Fprintf(stdout, "RESULT latency (stall status post: HTTP 201 -> websocket receipt of stall.status_posted, %d deliveries to %d connections, %d stalls × %d followers, %.0f posts/s accepted of %d/s offered, %d missing): p50 %s p99 %s max %s (goal p50 <= 10ms, p99 <= 50ms at 50k connections, 1,000/s × 50)\n",
		h.N, st.Open, nv, o.subscribers, float64(len(sent))/secs, o.writeRate, want-h.N, h.quantile(0.5), h.quantile(0.99), h.Max)
	if !o.floor || h.N == 0 {
		return nil
	}
	run := pipelineCost{posts: len(sent), deliveries: h.N, machine: after.host.busy - before.host.busy,
		notifiers: cpu(notifiersOf(p.servers), before, after), clients: cpu(workerWatched(f), before, after)}
	f.stop()
	p.fleet = nil
	rate := max(int(math.Round(float64(len(sent))/secs)), 1)
	fl, err := measureFloor(ctx, o, p.c, stdout, floorSpec{servers: o.replicas, rate: rate, burst: 1, to: o.subscribers})
	if err != nil {
		return err
	}
	run.report(stdout, fl, o)
	return nil
}

// notifiersOf picks the notifier replicas from a session's servers.
func notifiersOf(ws []watched) []watched {
	var ns []watched
	for _, w := range ws {
		if strings.HasPrefix(w.name, "notifier-") {
			ns = append(ns, w)
		}
	}
	return ns
}

// pipelineCost is what a latency run's deliveries cost, to set against the
// floor's for the same pattern.
type pipelineCost struct {
	posts      int
	deliveries int64
	machine    float64 // CPU seconds of the whole machine
	notifiers  float64 // CPU seconds of the notifier replicas
	clients    float64 // CPU seconds of the load workers (receiving)
}

func (r pipelineCost) report(w io.Writer, fl deliveryCost, o *options) {
	us := func(sec float64, n int64) float64 { return sec * 1e6 / float64(max(n, 1)) }
	floorUS := float64(fl.PerDeliv.Nanoseconds()) / 1000
	clientUS := float64(fl.ClientPerDeliv.Nanoseconds()) / 1000
	fmt.Fprintf(w, "RESULT floor for this pattern: %s\n", fl)
	fmt.Fprintf(w, "RESULT pipeline per delivery: notifiers %.1f µs (%.1f × the floor's), load workers %.1f µs (%.1f × the floor's clients'); machine %.2f ms per accepted post\n",
		us(r.notifiers, r.deliveries), us(r.notifiers, r.deliveries)/max(floorUS, 1e-9),
		us(r.clients, r.deliveries), us(r.clients, r.deliveries)/max(clientUS, 1e-9), r.machine*1e3/float64(max(r.posts, 1)))
}

// waitRecorded polls the workers until they have recorded want status post
// receipts, or for at most timeout (late deliveries then count as missing).
func waitRecorded(ctx context.Context, f *fleet, want int64, timeout time.Duration) (workerStats, error) {
	deadline := time.Now().Add(timeout)
	for {
		st, _, err := f.all(command{Cmd: "stats"})
		if err != nil || st.Recorded >= want || time.Now().After(deadline) {
			return st, err
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return st, err
		}
	}
}

// followers is how many of n connections follow stall i of nv (connection
// g follows stall g mod nv).
func followers(n, nv, i int) int {
	k := n / nv
	if i < n%nv {
		k++
	}
	return k
}

// openStalls makes nv stalls open today: as the demo admin, places of at
// most pitchesPerPlace pitches, each with an auto-accept market held all
// day every day, today's days opened; then vendors (owned by a few
// accounts) apply for them, are accepted on a pitch and check in.
func (p *pipeline) openStalls(ctx context.Context, nv int) ([]liveStall, error) {
	admin := p.newAPI()
	if err := admin.signIn(ctx, demoAdmin, demoPassword); err != nil {
		return nil, err
	}
	run := strconv.FormatInt(time.Now().Unix(), 36)
	var markets []string
	for i, size := range placeSizes(nv, pitchesPerPlace) {
		w, h, pitches := pitchPlan(size)
		place, err := admin.createPlace(ctx, city, placeSpec{Name: fmt.Sprintf("Load square %s-%d", run, i+1),
			Lat: 51.05 + float64(i)/1000, Lon: 3.72, PlanW: w, PlanH: h, Pitches: pitches})
		if err != nil {
			return nil, err
		}
		market, err := admin.createMarket(ctx, city, loadMarket(place, fmt.Sprintf("Load market %s-%d", run, i+1), time.Now()))
		if err != nil {
			return nil, err
		}
		markets = append(markets, market)
	}
	today, err := admin.todaysDays(ctx, city)
	if err != nil {
		return nil, err
	}
	days := make([]string, len(markets))
	for i, m := range markets {
		d, ok := today[m]
		if !ok {
			return nil, fmt.Errorf("market %s has no market day today in %s (its schedule is every day, all day)", m, city)
		}
		if d.Status != "open" {
			if err := admin.openDay(ctx, d.ID); err != nil {
				return nil, err
			}
		}
		days[i] = d.ID
	}
	agents, err := p.agents(ctx, min(latencyAccounts, nv))
	if err != nil {
		return nil, err
	}
	stalls := make([]liveStall, nv)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(p.o.clients)
	hcs := make(chan *http.Client, p.o.clients) // one connection pool per concurrent setup call
	for range p.o.clients {
		hcs <- newHTTPClient()
	}
	for i := range stalls {
		owner := agents[i%len(agents)].api
		g.Go(func() error {
			hc := <-hcs
			defer func() { hcs <- hc }()
			a := owner.via(hc)
			vendor, err := a.createVendor(gctx, city)
			if err != nil {
				return err
			}
			app, err := a.apply(gctx, days[i/pitchesPerPlace], vendor)
			if err != nil {
				return fmt.Errorf("apply: %w", err)
			}
			if app.Status != "accepted" {
				return fmt.Errorf("application %s is %s, want accepted (auto-accept market with a free pitch)", app.ID, app.Status)
			}
			if err := a.checkIn(gctx, app.ID); err != nil {
				return err
			}
			stalls[i] = liveStall{owner: owner, vendor: vendor, app: app.ID}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return stalls, nil
}

func newHTTPClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 2
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// updateKey identifies one status post in the notifications it causes: the
// stall (application id) and its text, which is unique within a run.
type updateKey struct {
	stall int    // index into the stalls; not part of the key's text
	app   string // application id
	text  string
}

func (k updateKey) String() string { return k.app + "/" + k.text }

// statusText is the text of the run's k-th status post: a counter makes each
// post's notifications distinguishable from any other's.
func statusText(k int) string { return fmt.Sprintf("Fresh bread until noon, update #%d", k) }

// postResult counts what the drive loop did.
type postResult struct {
	Offered   int         // -write-rate × -duration
	Sent      int         // requests made
	Failures  map[int]int // HTTP status → count
	Errors    int         // not an HTTP answer (timeout, connection)
	Elapsed   time.Duration
	RoundTrip *histogram // request → 2xx response
}

// driveStatusPosts posts o.writeRate status updates a second for
// o.duration, round robin over the stalls, from o.clients goroutines (each
// with a connection of its own, posting as the stall's owner), and returns
// the time each accepted post's response came back.
func (p *pipeline) driveStatusPosts(ctx context.Context, stalls []liveStall) (map[updateKey]int64, postResult, error) {
	o := p.o
	total := int(o.duration.Seconds() * float64(o.writeRate))
	sent := make(map[updateKey]int64, total)
	res := postResult{Failures: map[int]int{}, RoundTrip: newHistogram()}
	var mu sync.Mutex
	var firstErr error
	jobs := make(chan int, o.clients)
	var wg sync.WaitGroup
	for range o.clients {
		hc := newHTTPClient()
		wg.Go(func() {
			for k := range jobs {
				i := k % len(stalls)
				key := updateKey{stall: i, app: stalls[i].app, text: statusText(k)}
				t0 := time.Now()
				err := stalls[i].owner.via(hc).postStatus(ctx, key.app, key.text)
				at := time.Now()
				mu.Lock()
				res.Sent++
				var ae *apiError
				switch {
				case err == nil:
					sent[key] = at.UnixNano()
					res.RoundTrip.add(at.Sub(t0))
				case errors.As(err, &ae):
					res.Failures[ae.Status]++
				default:
					res.Errors++
					if firstErr == nil {
						firstErr = err
					}
				}
				mu.Unlock()
			}
		})
	}
	start := time.Now()
	// Posts stop being handed out a second after -duration even if the
	// clients fell behind: the run is bounded in time, and the achieved
	// rate says by how much they fell behind.
	pctx, cancel := context.WithDeadline(ctx, start.Add(o.duration+time.Second))
	issued := pace(pctx, start, o.writeRate, total, jobs)
	cancel()
	close(jobs)
	wg.Wait()
	res.Elapsed = time.Since(start)
	res.Offered = total
	if issued < total && ctx.Err() != nil {
		return nil, res, ctx.Err()
	}
	if firstErr != nil && len(sent) == 0 {
		return nil, res, firstErr
	}
	return sent, res, nil
}

// pace hands out job numbers 0…total-1 on jobs at rate a second from start,
// checking every millisecond (or every 1/rate if longer) how many are due;
// when the clients fall behind, the handing out blocks and the achieved
// rate drops below the offered one. It returns how many it handed out.
func pace(ctx context.Context, start time.Time, rate, total int, jobs chan<- int) int {
	t := time.NewTicker(max(time.Second/time.Duration(rate), time.Millisecond))
	defer t.Stop()
	issued := 0
	for issued < total {
		for n := due(time.Since(start), rate, total); issued < n; issued++ {
			select {
			case jobs <- issued:
			case <-ctx.Done():
				return issued
			}
		}
		if issued >= total {
			break
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return issued
		}
	}
	return issued
}

// due is how many of total jobs at rate a second are due after elapsed: the
// first at once, then one every 1/rate.
func due(elapsed time.Duration, rate, total int) int {
	if elapsed < 0 {
		return 0
	}
	n := int(elapsed.Seconds()*float64(rate)) + 1
	return min(n, total)
}

// writeSent writes the send times as lines "key unix_nanos" (the key may
// hold spaces; the time is after the last one).
func writeSent(file string, sent map[updateKey]int64) error {
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	for k, t := range sent {
		fmt.Fprintf(w, "%s %d\n", k, t)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// readSent reads what writeSent wrote.
func readSent(r io.Reader) (map[string]int64, error) {
	sent := map[string]int64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i <= 0 {
			return nil, fmt.Errorf("sent times: bad line %q", line)
		}
		t, err := strconv.ParseInt(line[i+1:], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("sent times: bad line %q", line)
		}
		sent[line[:i]] = t
	}
	return sent, sc.Err()
}

// matchReceipts gives each receipt (arrival times by key) its latency from
// the key's send time; receipts whose key was never sent are unmatched. A
// receipt before its response came back counts as 0.
func matchReceipts(receipts map[string][]int64, sent map[string]int64) (*histogram, int64) {
	h := newHistogram()
	var unmatched int64
	for k, ats := range receipts {
		t, ok := sent[k]
		if !ok {
			unmatched += int64(len(ats))
			continue
		}
		for _, at := range ats {
			h.add(time.Duration(max(at-t, 0)))
		}
	}
	return h, unmatched
}

// receiptKey returns the key of a websocket notification frame if it is a
// stall.status_posted (the only notifications the scenario times): the
// application id and status text its data carries, as updateKey prints
// them. Every delivery of a run passes here, on the load side of the
// machine, so it finds the three fields by their quoted keys (which JSON
// cannot hold unescaped inside a string) and decodes the frame only when a
// value holds an escape or a field is not found: 7 µs a frame decoded, a
// fraction of that scanned (BenchmarkReceiptKey).
func receiptKey(frame []byte) (string, bool) {
	kind, ok1 := stringField(frame, `"kind":"`)
	app, ok2 := stringField(frame, `"application_id":"`)
	text, ok3 := stringField(frame, `"status_text":"`)
	if ok1 && ok2 && ok3 {
		if kind != "stall.status_posted" || app == "" {
			return "", false
		}
		return updateKey{app: app, text: text}.String(), true
	}
	var f struct {
		Notification struct {
			Kind string `json:"kind"`
			Data struct {
				ApplicationID string `json:"application_id"`
				StatusText    string `json:"status_text"`
			} `json:"data"`
		} `json:"notification"`
	}
	if json.Unmarshal(frame, &f) != nil || f.Notification.Kind != "stall.status_posted" || f.Notification.Data.ApplicationID == "" {
		return "", false
	}
	return updateKey{app: f.Notification.Data.ApplicationID, text: f.Notification.Data.StatusText}.String(), true
}

// stringField returns the string value after the first key (`"name":"`) in
// a JSON document, if it has one and the value holds no escape.
func stringField(doc []byte, key string) (string, bool) {
	i := bytes.Index(doc, []byte(key))
	if i < 0 {
		return "", false
	}
	v := doc[i+len(key):]
	end := bytes.IndexByte(v, '"')
	if end < 0 || bytes.IndexByte(v[:end], '\\') >= 0 {
		return "", false
	}
	return string(v[:end]), true
}
