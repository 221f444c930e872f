package main

// The harness the end-to-end, split-process and browser tests share: a fresh
// database, piazza started in-process through run, and small clients for the
// HTTP API and the notifier's websocket.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/localeurope/piazza/pkg/postgres/pgtest"
)

// Bounds for waiting on the system; none of them is asserted as a latency.
const (
	startTimeout = 90 * time.Second // migrations under -race on a small machine
	eventTimeout = 30 * time.Second // outbox -> NATS -> consumer -> websocket
)

// newDatabase returns the URL of a fresh, empty database: run migrates it.
func newDatabase(tb testing.TB) string {
	tb.Helper()
	return pgtest.NewDatabase(tb, pgtest.Template{Name: "empty", Fingerprint: "v1",
		Migrate: func(context.Context, string) error { return nil }})
}

// syncBuffer collects a process's log output written from many goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// servingRE matches the line piazza prints on stdout once it listens.
var servingRE = regexp.MustCompile(`piazza: serving \[[^\]]*\] at http://(\S+)\n`)

// addrWatcher is piazza's stdout: it hands over the listen address from the
// "piazza: serving ..." line.
type addrWatcher struct {
	mu    sync.Mutex
	buf   []byte
	sent  bool
	found chan string
}

func newAddrWatcher() *addrWatcher { return &addrWatcher{found: make(chan string, 1)} }

func (w *addrWatcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	if m := servingRE.FindSubmatch(w.buf); m != nil && !w.sent {
		w.sent = true
		w.found <- string(m[1])
	}
	return len(p), nil
}

// waitAddr returns the address piazza listens on, or fails the test when it
// exits (exited is closed) or does not get there in time.
func (w *addrWatcher) waitAddr(tb testing.TB, exited <-chan struct{}, why func() string) string {
	tb.Helper()
	select {
	case addr := <-w.found:
		return addr
	case <-exited:
		tb.Fatalf("piazza exited before listening: %s", why())
	case <-time.After(startTimeout):
		tb.Fatalf("piazza did not print its address within %v", startTimeout)
	}
	return ""
}

// instance is piazza running in this process through run.
type instance struct {
	base   string // http://host:port
	logs   *syncBuffer
	cancel context.CancelFunc
	exited chan struct{}    // closed when run has returned
	err    error            // run's result, once exited is closed
	now    func() time.Time // the services' clock
}

// startPiazza runs piazza (all targets unless args say otherwise) on a free
// port, with an embedded NATS storing under dataDir, against databaseURL. The
// environment it sees holds DATABASE_URL and nothing else.
func startPiazza(tb testing.TB, databaseURL, dataDir string, args ...string) *instance {
	tb.Helper()
	return startPiazzaWithClock(tb, time.Now, databaseURL, dataDir, args...)
}

// startPiazzaWithClock is startPiazza with the services' clock given.
func startPiazzaWithClock(tb testing.TB, now func() time.Time, databaseURL, dataDir string, args ...string) *instance {
	tb.Helper()
	args = append([]string{"-target=all", "-http-addr=127.0.0.1:0", "-data-dir=" + dataDir,
		"-nats-port=0", "-log-format=text"}, args...)
	getenv := func(k string) string {
		if k == "DATABASE_URL" {
			return databaseURL
		}
		return ""
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &instance{logs: &syncBuffer{}, cancel: cancel, exited: make(chan struct{}), now: now}
	stdout := newAddrWatcher()
	go func() {
		defer close(p.exited)
		p.err = runWithClock(ctx, args, getenv, stdout, p.logs, now)
	}()
	tb.Cleanup(func() {
		if err := p.stop(); err != nil {
			tb.Errorf("run returned %v", err)
		}
		if tb.Failed() {
			tb.Logf("piazza logs (%s):\n%s", strings.Join(args, " "), p.logs.String())
		}
	})
	p.base = "http://" + stdout.waitAddr(tb, p.exited, func() string { return fmt.Sprint(p.err) })
	waitReady(tb, p.base, p.exited)
	return p
}

// stop cancels run's context and returns what run returned. It may be called
// more than once.
func (p *instance) stop() error {
	p.cancel()
	select {
	case <-p.exited:
		return p.err
	case <-time.After(60 * time.Second):
		return fmt.Errorf("run did not return within 60s of cancel")
	}
}

var httpClient = &http.Client{Timeout: 30 * time.Second}

// waitReady polls /readyz until it answers 200.
func waitReady(tb testing.TB, base string, exited <-chan struct{}) {
	tb.Helper()
	deadline := time.Now().Add(startTimeout)
	last := "no answer"
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			tb.Fatalf("%s exited before it was ready", base)
		default:
		}
		res, err := httpClient.Get(base + "/readyz")
		if err == nil {
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
			last = fmt.Sprintf("%d %s", res.StatusCode, b)
		} else {
			last = err.Error()
		}
		time.Sleep(50 * time.Millisecond)
	}
	tb.Fatalf("%s/readyz not ready within %v; last answer: %s", base, startTimeout, last)
}

// request sends a request and returns the status, the headers and the body.
func request(tb testing.TB, method, url, contentType string, body []byte) (int, http.Header, []byte) {
	tb.Helper()
	return requestAs(tb, "", method, url, contentType, body)
}

// requestAs is request with an access token ("" for none).
func requestAs(tb testing.TB, token, method, url, contentType string, body []byte) (int, http.Header, []byte) {
	tb.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := httpClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return res.StatusCode, res.Header, b
}

// getJSON GETs url, requires want and decodes the body into out.
func getJSON(tb testing.TB, url string, want int, out any) {
	tb.Helper()
	status, _, b := request(tb, http.MethodGet, url, "", nil)
	if status != want {
		tb.Fatalf("GET %s = %d, want %d; body: %s", url, status, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			tb.Fatalf("GET %s: decoding %s: %v", url, b, err)
		}
	}
}

// postJSON POSTs v as JSON, requires want and decodes the body into out.
func postJSON(tb testing.TB, url string, v any, want int, out any) {
	tb.Helper()
	body, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	status, _, b := request(tb, http.MethodPost, url, "application/json", body)
	if status != want {
		tb.Fatalf("POST %s = %d, want %d; body: %s", url, status, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			tb.Fatalf("POST %s: decoding %s: %v", url, b, err)
		}
	}
}

// postJSONAs is postJSON with an access token.
func postJSONAs(tb testing.TB, token, url string, v any, want int, out any) {
	tb.Helper()
	body, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	status, _, b := requestAs(tb, token, http.MethodPost, url, "application/json", body)
	if status != want {
		tb.Fatalf("POST %s = %d, want %d; body: %s", url, status, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			tb.Fatalf("POST %s: decoding %s: %v", url, b, err)
		}
	}
}

// signUpVendor signs up a new account (a vendor) and returns its access token.
func signUpVendor(tb testing.TB, base string) string {
	tb.Helper()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	email := "vendor-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "@piazza.example"
	postJSON(tb, base+"/api/v1/accounts/signup", map[string]string{
		"email": email, "password": "a long enough password", "name": "Test Vendor"}, http.StatusCreated, &tok)
	return tok.AccessToken
}

// The parts of the listings API the tests read.
type (
	marketDay struct {
		ID     string    `json:"id"`
		City   string    `json:"city"`
		Date   string    `json:"date"`
		Status string    `json:"status"`
		EndsAt time.Time `json:"ends_at"`
		Market struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"market"`
		Stalls []struct {
			ApplicationID string `json:"application_id"`
			Vendor        struct {
				ID   string `json:"id"`
				Name string `json:"name"`
			} `json:"vendor"`
			Pitch  string `json:"pitch"`
			Status string `json:"status"`
		} `json:"stalls"`
	}
	todayBody struct {
		Date       string      `json:"date"`
		MarketDays []marketDay `json:"market_days"`
	}
	stall struct {
		VendorID, VendorName, ApplicationID, Pitch string
	}
)

// openMarketDay returns a Ghent market day that still takes stalls: one of
// today's (the demo data has daily markets) when one has not ended yet, else
// the next one. today tells which. now is the services' time.
func openMarketDay(tb testing.TB, base string, now time.Time) (day marketDay, today bool) {
	tb.Helper()
	var td todayBody
	getJSON(tb, base+"/api/v1/listings/cities/ghent/today", http.StatusOK, &td)
	if len(td.MarketDays) == 0 {
		tb.Fatalf("no market day today (%s) in Ghent, which has daily markets", td.Date)
	}
	// Leave the test a few minutes to use the day before it closes.
	soon := now.Add(5 * time.Minute)
	for _, d := range td.MarketDays {
		if d.EndsAt.After(soon) {
			return d, true
		}
	}
	var week struct {
		Items []marketDay `json:"items"`
	}
	getJSON(tb, base+"/api/v1/listings/cities/ghent/market-days", http.StatusOK, &week)
	for _, d := range week.Items {
		if d.EndsAt.After(soon) {
			return d, false
		}
	}
	tb.Fatalf("no Ghent market day open for stalls this week: %+v", week.Items)
	return marketDay{}, false
}

// registerStall signs up a vendor account through the accounts service on
// base, creates its vendor profile and its application for day, and requires
// it to be accepted on a pitch.
func registerStall(tb testing.TB, base, dayID, vendorName string) stall {
	tb.Helper()
	return registerStallVia(tb, base, base, dayID, vendorName)
}

// registerStallVia is registerStall with the accounts and listings services
// on different bases (split mode).
func registerStallVia(tb testing.TB, accountsBase, listingsBase, dayID, vendorName string) stall {
	tb.Helper()
	token := signUpVendor(tb, accountsBase)
	var v struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	}
	postJSONAs(tb, token, listingsBase+"/api/v1/listings/vendors", map[string]string{
		"city": "ghent", "name": vendorName, "kind": "farmer", "description": "Vegetables from the Leie valley",
	}, http.StatusCreated, &v)
	var app struct {
		ID     string `json:"id"`
		Status string `json:"status"`
		Pitch  string `json:"pitch"`
	}
	postJSONAs(tb, token, listingsBase+"/api/v1/listings/market-days/"+dayID+"/applications",
		map[string]string{"vendor_id": v.ID}, http.StatusCreated, &app)
	if app.Status != "accepted" || app.Pitch == "" {
		tb.Fatalf("application %+v: want accepted on a pitch", app)
	}
	return stall{VendorID: v.ID, VendorName: v.Name, ApplicationID: app.ID, Pitch: app.Pitch}
}

// eventually polls check until it returns "" (success) or the deadline
// passes, then fails with check's last complaint.
func eventually(tb testing.TB, timeout time.Duration, check func() string) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msg := check()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("not within %v: %s", timeout, msg)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// wsMsg is any frame the notifier sends.
type wsMsg struct {
	Type         string   `json:"type"`
	Topics       []string `json:"topics"`
	Seq          *uint64  `json:"seq"`
	Code         string   `json:"code"`
	Message      string   `json:"message"`
	Notification *struct {
		ID     string   `json:"id"`
		Kind   string   `json:"kind"`
		City   string   `json:"city"`
		Topics []string `json:"topics"`
		Data   struct {
			VendorID    string `json:"vendor_id"`
			VendorName  string `json:"vendor_name"`
			MarketDayID string `json:"market_day_id"`
			Pitch       string `json:"pitch"`
		} `json:"data"`
	} `json:"notification"`
	raw string
}

// wsClient is a websocket client whose frames a goroutine reads into msgs, so
// that a test can wait for the next one with a bound and still use the
// connection afterwards.
type wsClient struct {
	conn   *websocket.Conn
	msgs   chan wsMsg
	quit   chan struct{}
	closed chan struct{} // closed when reading fails; err says why
	err    error
}

func dialWS(tb testing.TB, base string) *wsClient {
	tb.Helper()
	url := "ws" + strings.TrimPrefix(base, "http") + "/api/v1/notifier/ws"
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	conn, res, err := d.Dial(url, nil)
	if err != nil {
		status := 0
		if res != nil {
			status = res.StatusCode
		}
		tb.Fatalf("dial %s: %v (status %d)", url, err, status)
	}
	c := &wsClient{conn: conn, msgs: make(chan wsMsg), quit: make(chan struct{}), closed: make(chan struct{})}
	go func() {
		defer close(c.closed)
		for {
			_, data, err := conn.ReadMessage()
			if err != nil {
				c.err = err
				return
			}
			var m wsMsg
			if err := json.Unmarshal(data, &m); err != nil {
				m.Type = "(not JSON)"
			}
			m.raw = string(data)
			select {
			case c.msgs <- m:
			case <-c.quit:
				return
			}
		}
	}()
	tb.Cleanup(func() {
		close(c.quit)
		conn.Close()
		<-c.closed
	})
	return c
}

// next returns the next frame, failing the test if none comes in time or the
// connection ends.
func (c *wsClient) next(tb testing.TB, timeout time.Duration) wsMsg {
	tb.Helper()
	select {
	case m := <-c.msgs:
		return m
	case <-c.closed:
		tb.Fatalf("websocket ended while waiting for a frame: %v", c.err)
	case <-time.After(timeout):
		tb.Fatalf("no websocket frame within %v", timeout)
	}
	return wsMsg{}
}

// subscribe subscribes to topics and returns the position the server
// reported.
func (c *wsClient) subscribe(tb testing.TB, topics ...string) uint64 {
	tb.Helper()
	if err := c.conn.WriteJSON(map[string]any{"type": "subscribe", "topics": topics}); err != nil {
		tb.Fatalf("websocket write: %v", err)
	}
	m := c.next(tb, eventTimeout)
	if m.Type != "subscribed" || m.Seq == nil {
		tb.Fatalf("after subscribe got %s, want a subscribed frame with a seq", m.raw)
	}
	return *m.Seq
}

// nextNotification requires the next frame to be the stall.registered
// notification of s and returns its seq.
func (c *wsClient) nextNotification(tb testing.TB, s stall) uint64 {
	tb.Helper()
	m := c.next(tb, eventTimeout)
	if m.Type != "notification" || m.Seq == nil || m.Notification == nil {
		tb.Fatalf("got %s, want a notification", m.raw)
	}
	n := m.Notification
	if n.Kind != "stall.registered" || n.City != "ghent" || n.Data.VendorName != s.VendorName ||
		n.Data.VendorID != s.VendorID || n.Data.Pitch != s.Pitch {
		tb.Fatalf("got notification %s, want stall.registered for %+v", m.raw, s)
	}
	return *m.Seq
}
