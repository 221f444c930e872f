package idempotency_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/localeurope/piazza/pkg/idempotency"
	"github.com/localeurope/piazza/pkg/postgres"
	"github.com/localeurope/piazza/pkg/postgres/pgtest"
)

func newPool(tb testing.TB) *pgxpool.Pool {
	tb.Helper()
	url := pgtest.NewDatabase(tb, pgtest.Template{
		Name:        "idem",
		Fingerprint: postgres.Fingerprint(idempotency.Migrations()),
		Migrate: func(ctx context.Context, url string) error {
			pool, err := postgres.Open(ctx, url, postgres.Options{Schema: "idem"})
			if err != nil {
				return err
			}
			defer pool.Close()
			return postgres.Migrate(ctx, pool, slog.New(slog.DiscardHandler), idempotency.Migrations())
		},
	})
	pool, err := postgres.Open(context.Background(), url, postgres.Options{Schema: "idem"})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(pool.Close)
	return pool
}

// counter is a handler that counts the requests it served and answers with
// status, a Location and a body naming the request's number.
type counter struct {
	n       atomic.Int64
	status  int
	release chan struct{} // when set, each request waits for it
}

func (c *counter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if c.release != nil {
		<-c.release
	}
	io.Copy(io.Discard, r.Body)
	n := c.n.Add(1)
	w.Header().Set("Location", fmt.Sprintf("/things/%d", n))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(c.status)
	fmt.Fprintf(w, `{"n":%d}`, n)
}

type harness struct {
	url  string
	pool *pgxpool.Pool
	h    *counter
}

func newHarness(tb testing.TB, status int) *harness {
	tb.Helper()
	pool := newPool(tb)
	h := &counter{status: status}
	keys := &idempotency.Keys{Pool: pool, Log: slog.New(slog.DiscardHandler), Scope: func(r *http.Request) string { return r.Header.Get("X-Account") }}
	srv := httptest.NewServer(keys.Wrap(h))
	tb.Cleanup(srv.Close)
	return &harness{url: srv.URL, pool: pool, h: h}
}

type result struct {
	status   int
	body     string
	location string
	replayed string
}

func (h *harness) post(tb testing.TB, path, account, key, body string) result {
	tb.Helper()
	req, _ := http.NewRequest(http.MethodPost, h.url+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if account != "" {
		req.Header.Set("X-Account", account)
	}
	if key != "" {
		req.Header.Set(idempotency.KeyHeader, key)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return result{res.StatusCode, string(b), res.Header.Get("Location"), res.Header.Get(idempotency.ReplayedHeader)}
}

func TestKeys(t *testing.T) {
	t.Run("a retry with the same key and body replays the first response", func(t *testing.T) {
		h := newHarness(t, http.StatusCreated)
		first := h.post(t, "/things", "acc-1", "k1", `{"a":1}`)
		again := h.post(t, "/things", "acc-1", "k1", `{"a":1}`)
		if first.status != 201 || first.replayed != "" {
			t.Fatalf("first = %+v, want a fresh 201", first)
		}
		if again.status != 201 || again.body != first.body || again.location != first.location || again.replayed != "true" {
			t.Errorf("retry = %+v, want the first response %+v replayed", again, first)
		}
		if n := h.h.n.Load(); n != 1 {
			t.Errorf("the handler ran %d times, want 1", n)
		}
	})

	t.Run("the same key with another body is a 422 naming the header", func(t *testing.T) {
		h := newHarness(t, http.StatusCreated)
		h.post(t, "/things", "acc-1", "k1", `{"a":1}`)
		res := h.post(t, "/things", "acc-1", "k1", `{"a":2}`)
		if res.status != http.StatusUnprocessableEntity || !strings.Contains(res.body, `"field":"Idempotency-Key"`) {
			t.Errorf("mismatch = %+v, want 422 on Idempotency-Key", res)
		}
		if n := h.h.n.Load(); n != 1 {
			t.Errorf("the handler ran %d times, want 1", n)
		}
	})

	t.Run("keys are scoped to the caller and the operation", func(t *testing.T) {
		h := newHarness(t, http.StatusCreated)
		h.post(t, "/things", "acc-1", "k1", `{}`)
		h.post(t, "/things", "acc-2", "k1", `{}`)
		h.post(t, "/other", "acc-1", "k1", `{}`)
		if n := h.h.n.Load(); n != 3 {
			t.Errorf("the handler ran %d times, want 3", n)
		}
	})

	t.Run("requests without a key or a caller are passed on", func(t *testing.T) {
		h := newHarness(t, http.StatusCreated)
		h.post(t, "/things", "acc-1", "", `{}`)
		h.post(t, "/things", "acc-1", "", `{}`)
		h.post(t, "/things", "", "k1", `{}`)
		h.post(t, "/things", "", "k1", `{}`)
		if n := h.h.n.Load(); n != 4 {
			t.Errorf("the handler ran %d times, want 4", n)
		}
	})

	t.Run("an invalid key is a 422", func(t *testing.T) {
		h := newHarness(t, http.StatusCreated)
		for _, key := range []string{"with space", strings.Repeat("k", 201), "tab\tkey"} {
			if res := h.post(t, "/things", "acc-1", key, `{}`); res.status != http.StatusUnprocessableEntity {
				t.Errorf("key %q: %d, want 422", key, res.status)
			}
		}
	})

	for _, status := range []int{401, 413, 415, 429, 500, 503} {
		t.Run(fmt.Sprintf("a %d is never stored", status), func(t *testing.T) {
			h := newHarness(t, status)
			h.post(t, "/things", "acc-1", "k1", `{}`)
			res := h.post(t, "/things", "acc-1", "k1", `{}`)
			if res.replayed != "" || h.h.n.Load() != 2 {
				t.Errorf("retry = %+v after %d runs, want a second run", res, h.h.n.Load())
			}
		})
	}

	for _, status := range []int{200, 404, 409, 422} {
		t.Run(fmt.Sprintf("a %d is replayed", status), func(t *testing.T) {
			h := newHarness(t, status)
			h.post(t, "/things", "acc-1", "k1", `{}`)
			res := h.post(t, "/things", "acc-1", "k1", `{}`)
			if res.replayed != "true" || res.status != status || h.h.n.Load() != 1 {
				t.Errorf("retry = %+v after %d runs, want the %d replayed", res, h.h.n.Load(), status)
			}
		})
	}

	t.Run("a retry while the first is in flight is a 409, and only one runs", func(t *testing.T) {
		h := newHarness(t, http.StatusCreated)
		h.h.release = make(chan struct{})
		first := make(chan result)
		go func() { first <- h.post(t, "/things", "acc-1", "k1", `{}`) }()
		// Wait for the claim to be written, then race 10 retries against it.
		deadline := time.Now().Add(10 * time.Second)
		for {
			var n int
			if err := h.pool.QueryRow(context.Background(), `SELECT count(*) FROM idempotency_keys`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the first request never claimed its key")
			}
			time.Sleep(5 * time.Millisecond)
		}
		var wg sync.WaitGroup
		results := make([]result, 10)
		for i := range results {
			wg.Go(func() { results[i] = h.post(t, "/things", "acc-1", "k1", `{}`) })
		}
		wg.Wait()
		for _, res := range results {
			if res.status != http.StatusConflict {
				t.Errorf("retry in flight = %+v, want 409", res)
			}
		}
		close(h.h.release)
		if res := <-first; res.status != 201 {
			t.Errorf("first = %+v, want 201", res)
		}
		if res := h.post(t, "/things", "acc-1", "k1", `{}`); res.replayed != "true" {
			t.Errorf("retry after the first finished = %+v, want the replay", res)
		}
		if n := h.h.n.Load(); n != 1 {
			t.Errorf("the handler ran %d times, want 1", n)
		}
	})

	t.Run("an expired response and an abandoned claim are taken over", func(t *testing.T) {
		h := newHarness(t, http.StatusCreated)
		h.post(t, "/things", "acc-1", "k1", `{}`)
		if _, err := h.pool.Exec(context.Background(), `UPDATE idempotency_keys SET created_at = now() - interval '25 hours'`); err != nil {
			t.Fatal(err)
		}
		if res := h.post(t, "/things", "acc-1", "k1", `{"other":true}`); res.replayed != "" || res.status != 201 {
			t.Errorf("after expiry = %+v, want a fresh run", res)
		}
		if _, err := h.pool.Exec(context.Background(), `UPDATE idempotency_keys SET status = NULL, created_at = now() - interval '2 minutes'`); err != nil {
			t.Fatal(err)
		}
		if res := h.post(t, "/things", "acc-1", "k1", `{"other":true}`); res.replayed != "" || res.status != 201 {
			t.Errorf("after an abandoned claim = %+v, want a fresh run", res)
		}
		keys := &idempotency.Keys{Pool: h.pool}
		if _, err := h.pool.Exec(context.Background(), `UPDATE idempotency_keys SET created_at = now() - interval '25 hours'`); err != nil {
			t.Fatal(err)
		}
		if n, err := keys.Prune(context.Background()); err != nil || n != 1 {
			t.Errorf("Prune = %d, %v; want 1", n, err)
		}
	})
}
