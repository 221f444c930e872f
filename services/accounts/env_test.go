package accounts

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/localeurope/piazza/pkg/app"
	"github.com/localeurope/piazza/pkg/auth"
	"github.com/localeurope/piazza/pkg/bus/bustest"
	"github.com/localeurope/piazza/pkg/postgres"
	"github.com/localeurope/piazza/pkg/postgres/pgtest"
	"github.com/localeurope/piazza/pkg/web"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// testLog writes warnings to the test's output until the test ends.
func testLog(tb testing.TB) *slog.Logger {
	tb.Helper()
	w := &testWriter{w: tb.Output()}
	tb.Cleanup(w.stop)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct {
	mu   sync.Mutex
	w    io.Writer
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return len(p), nil
	}
	return w.w.Write(p)
}

func (w *testWriter) stop() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}

// newDatabase returns the URL of a fresh database with the accounts schema migrated.
func newDatabase(tb testing.TB) string {
	tb.Helper()
	return pgtest.NewDatabase(tb, pgtest.Template{
		Name:        "accounts",
		Fingerprint: postgres.Fingerprint(Migrations()...),
		Migrate: func(ctx context.Context, url string) error {
			pool, err := postgres.Open(ctx, url, postgres.Options{Schema: Schema})
			if err != nil {
				return err
			}
			defer pool.Close()
			return postgres.Migrate(ctx, pool, slog.New(slog.DiscardHandler), Migrations()...)
		},
	})
}

func newStore(tb testing.TB, url string) *Store {
	tb.Helper()
	pool, err := postgres.Open(context.Background(), url, postgres.Options{Schema: Schema, MaxConns: 16})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(pool.Close)
	return &Store{pool: pool}
}

// clock is the service's and the verifier's time; tests move it on to
// refill the rate limiters or expire tokens, never by sleeping.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now().UTC().Truncate(time.Second)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is the accounts service started with Run, behind the process's
// middleware and a verifier fed from the NATS key bucket, as the piazza
// binary serves it.
type env struct {
	URL      string
	DBURL    string
	Store    *Store // a second pool on the service's database, for assertions
	Verifier *auth.Verifier
	Clock    *clock
	NC       *nats.Conn
	JS       jetstream.JetStream
	Stdout   string // what Run printed before it was ready
}

type envOptions struct {
	demo bool
	// Reuse another env's database and NATS server (a second replica).
	shared *env
}

func startService(tb testing.TB, opts envOptions) *env {
	tb.Helper()
	log := testLog(tb)
	e := &env{Clock: newClock()}
	if opts.shared != nil {
		e.DBURL, e.NC, e.JS = opts.shared.DBURL, opts.shared.NC, opts.shared.JS
	} else {
		e.DBURL = newDatabase(tb)
		e.NC, e.JS = bustest.Connect(tb)
	}
	key, err := auth.NewKey()
	if err != nil {
		tb.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	e.Verifier = auth.NewVerifier(e.Clock.Now)
	if err := auth.WatchKeys(ctx, e.JS, e.Verifier, 1, log); err != nil {
		cancel()
		tb.Fatalf("WatchKeys: %v", err)
	}
	mux := http.NewServeMux()
	ready := make(chan struct{})
	var once sync.Once
	var runErr error
	var stdout bytes.Buffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		runErr = Run(ctx, app.Deps{
			Log: log, DatabaseURL: e.DBURL, NATS: e.NC, JS: e.JS, StreamReplicas: 1,
			Mux: mux, Health: web.NewHealth(), DemoData: opts.demo, Now: e.Clock.Now,
			Ready:      func() { once.Do(func() { close(ready) }) },
			SigningKey: key, Stdout: &stdout, OnShutdown: func(func()) {},
		})
	}()
	tb.Cleanup(func() {
		cancel()
		select {
		case <-done:
			if runErr != nil {
				tb.Errorf("accounts.Run: %v", runErr)
			}
		case <-time.After(30 * time.Second):
			tb.Errorf("accounts.Run did not return after cancel")
		}
	})
	select {
	case <-ready:
	case <-done:
		tb.Fatalf("accounts.Run returned before ready: %v", runErr)
	case <-time.After(60 * time.Second):
		tb.Fatal("accounts.Run not ready after 60s")
	}
	e.Stdout = stdout.String() // written before Ready, read after it

	srv := httptest.NewServer(web.Middleware{Log: log}.Wrap(mux, func(h http.Handler) http.Handler {
		return e.Verifier.Wrap(h, log)
	}))
	tb.Cleanup(srv.Close)
	e.URL = srv.URL
	// Run published its key; the watch delivers it asynchronously.
	eventually(tb, "the verifier learns the service's signing key", func() bool {
		_, err := e.Verifier.Verify(mustSign(tb, key))
		return err == nil
	})
	e.Store = newStore(tb, e.DBURL)
	return e
}

func mustSign(tb testing.TB, k auth.Key) string {
	tb.Helper()
	tok, _, err := k.Sign(auth.Principal{AccountID: "probe"}, time.Now(), auth.AccessTTL)
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

// eventually polls cond until it holds or the deadline passes.
func eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// rawBody is a request body sent as is, with its content type.
type rawBody struct {
	contentType string
	data        []byte
}

func jsonBody(s string) rawBody { return rawBody{"application/json", []byte(s)} }

type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// call sends a request; body is marshalled to JSON unless it is a rawBody
// (or nil, for no body). token, when set, is sent as a bearer token.
func (e *env) call(tb testing.TB, method, path, token string, body any) response {
	tb.Helper()
	var rd io.Reader
	contentType := ""
	switch b := body.(type) {
	case nil:
	case rawBody:
		rd, contentType = bytes.NewReader(b.data), b.contentType
	default:
		data, err := json.Marshal(b)
		if err != nil {
			tb.Fatal(err)
		}
		rd, contentType = bytes.NewReader(data), "application/json"
	}
	req, err := http.NewRequest(method, e.URL+path, rd)
	if err != nil {
		tb.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return response{Status: res.StatusCode, Header: res.Header, Body: data}
}

func (e *env) post(tb testing.TB, path string, body any) response {
	tb.Helper()
	return e.call(tb, http.MethodPost, path, "", body)
}

// decode checks the status and decodes a JSON response.
func decode[T any](tb testing.TB, r response, status int) T {
	tb.Helper()
	var v T
	if r.Status != status {
		tb.Fatalf("status %d, want %d; body %s", r.Status, status, r.Body)
	}
	if err := json.Unmarshal(r.Body, &v); err != nil {
		tb.Fatalf("decode %s: %v", r.Body, err)
	}
	return v
}

// problem checks that r is a problem+json response with status and decodes it.
func problem(tb testing.TB, r response, status int) web.Problem {
	tb.Helper()
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		tb.Fatalf("status %d with content type %q, want a %d problem; body %s", r.Status, ct, status, r.Body)
	}
	p := decode[web.Problem](tb, r, status)
	if p.Status != status {
		tb.Errorf("problem status %d, HTTP status %d", p.Status, status)
	}
	return p
}

// fields returns the names of a problem's field errors.
func fields(p web.Problem) []string {
	var names []string
	for _, f := range p.Errors {
		names = append(names, f.Field)
	}
	return names
}

const password = "a long enough passphrase"

func (e *env) signUp(tb testing.TB, email, name string) Tokens {
	tb.Helper()
	return decode[Tokens](tb, e.post(tb, "/api/v1/accounts/signup", SignUp{Email: email, Password: password, Name: name}), http.StatusCreated)
}

func (e *env) signIn(tb testing.TB, email, pw string) Tokens {
	tb.Helper()
	return decode[Tokens](tb, e.post(tb, "/api/v1/accounts/signin", SignIn{Email: email, Password: pw}), http.StatusOK)
}

func (e *env) refresh(tb testing.TB, refreshToken string) response {
	tb.Helper()
	return e.post(tb, "/api/v1/accounts/refresh", Refresh{RefreshToken: refreshToken})
}

func (e *env) me(tb testing.TB, accessToken string) response {
	tb.Helper()
	return e.call(tb, http.MethodGet, "/api/v1/accounts/me", accessToken, nil)
}

// principal verifies an access token as every service would.
func (e *env) principal(tb testing.TB, accessToken string) auth.Principal {
	tb.Helper()
	p, err := e.Verifier.Verify(accessToken)
	if err != nil {
		tb.Fatalf("access token does not verify: %v", err)
	}
	return p
}

// restLimiters moves the clock on far enough that every rate-limit bucket
// is full again.
func (e *env) restLimiters() { e.Clock.Advance(2 * time.Minute) }
