package calendar

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/localeurope/piazza/pkg/app"
	"github.com/localeurope/piazza/pkg/auth"
	"github.com/localeurope/piazza/pkg/bus"
	"github.com/localeurope/piazza/pkg/bus/bustest"
	"github.com/localeurope/piazza/pkg/inbox"
	"github.com/localeurope/piazza/pkg/web"
	"github.com/localeurope/piazza/services/contract"
	"github.com/nats-io/nats.go/jetstream"
)

type service struct {
	URL  string
	Pool *pgxpool.Pool
	JS   jetstream.JetStream
	// Place is a place of berlin, known from place.upserted.
	Place string
}

// startService runs the calendar as the piazza binary does, with a verifier
// that trusts testKey, and Berlin (with one place) and Lisbon known.
func startService(tb testing.TB, now time.Time) *service {
	tb.Helper()
	log := testLog(tb)
	dbURL := newDatabase(tb)
	nc, js := bustest.Connect(tb)
	mux := http.NewServeMux()
	verifier := auth.NewVerifier(nil)
	verifier.SetKey(testKey.ID, testKey.Public())
	srv := httptest.NewServer(web.Middleware{Log: log}.Wrap(mux, func(h http.Handler) http.Handler { return verifier.Wrap(h, log) }))
	tb.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	var once sync.Once
	var runErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		runErr = Run(ctx, app.Deps{
			Log: log, DatabaseURL: dbURL, NATS: nc, JS: js, StreamReplicas: 1, Mux: mux, Health: web.NewHealth(),
			Now:        func() time.Time { return now },
			Ready:      func() { once.Do(func() { close(ready) }) },
			OnShutdown: func(func()) {},
		})
	}()
	tb.Cleanup(func() {
		cancel()
		select {
		case <-done:
			if runErr != nil {
				tb.Errorf("calendar.Run: %v", runErr)
			}
		case <-time.After(40 * time.Second):
			tb.Errorf("calendar.Run did not return after cancel")
		}
	})
	select {
	case <-ready:
	case <-done:
		tb.Fatalf("calendar.Run returned before ready: %v", runErr)
	case <-time.After(60 * time.Second):
		tb.Fatal("calendar.Run not ready after 60s")
	}
	s := &service{URL: srv.URL, Pool: openPool(tb, dbURL), JS: js, Place: uuid.NewString()}
	h := inbox.Handler(s.Pool, consumerName, applyListingsEvent)
	for _, ev := range []bus.Event{
		cityEvent(tb, "berlin", "Europe/Berlin", 1),
		cityEvent(tb, "lisbon", "Europe/Lisbon", 1),
		newEvent(tb, contract.TypePlaceUpserted, "places/"+s.Place, contract.PlaceV1{ID: s.Place, City: "berlin", Name: "Marktplatz", Version: 1}),
	} {
		if err := h(ctx, ev, bus.Delivery{}); err != nil {
			tb.Fatal(err)
		}
	}
	return s
}

var (
	berlinManager = auth.Principal{AccountID: "m-berlin", Roles: []string{auth.RoleManager}, Cities: []string{"berlin"}}
	lisbonManager = auth.Principal{AccountID: "m-lisbon", Roles: []string{auth.RoleManager}, Cities: []string{"lisbon"}}
	admin         = auth.Principal{AccountID: "admin", Roles: []string{auth.RoleAdmin}}
	vendor        = auth.Principal{AccountID: "v", Roles: []string{auth.RoleVendor}}
)

// call makes a request through the spec-validating client; who may be nil
// (anonymous). It returns the status, headers and body.
func call(tb testing.TB, c *http.Client, method, url string, who *auth.Principal, body any) (int, http.Header, []byte) {
	tb.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			tb.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		tb.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if who != nil {
		req.Header.Set("Authorization", "Bearer "+token(tb, *who))
	}
	res, err := c.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return res.StatusCode, res.Header, b
}

// must decodes a successful answer into T.
func must[T any](tb testing.TB, want int) func(int, http.Header, []byte) T {
	return func(status int, _ http.Header, body []byte) T {
		tb.Helper()
		var v T
		if status != want {
			tb.Fatalf("status %d, want %d: %s", status, want, body)
		}
		if err := json.Unmarshal(body, &v); err != nil {
			tb.Fatal(err)
		}
		return v
	}
}

func problemFields(tb testing.TB, body []byte) []string {
	tb.Helper()
	var p web.Problem
	if err := json.Unmarshal(body, &p); err != nil {
		tb.Fatalf("not a problem: %s", body)
	}
	var out []string
	for _, f := range p.Errors {
		out = append(out, f.Field)
	}
	return out
}
