package web_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/localeurope/piazza/pkg/web"
	"github.com/prometheus/client_golang/prometheus"
)

func TestHealth(t *testing.T) {
	newMux := func(h *web.Health) *http.ServeMux {
		mux := http.NewServeMux()
		reg := prometheus.NewRegistry()
		reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "piazza_test_total", Help: "x"}))
		h.Routes(mux, reg)
		return mux
	}
	readyz := func(tb testing.TB, mux *http.ServeMux) (int, map[string]any) {
		tb.Helper()
		rec := serve(mux, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		var body map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			tb.Fatalf("readyz body %q: %v", rec.Body.String(), err)
		}
		return rec.Code, body
	}

	t.Run("healthz answers 200 while the process lives", func(t *testing.T) {
		h := web.NewHealth()
		h.AddCheck("postgres", func(context.Context) error { return errors.New("down") })
		h.Drain()
		if rec := serve(newMux(h), httptest.NewRequest(http.MethodGet, "/healthz", nil)); rec.Code != http.StatusOK {
			t.Errorf("healthz = %d, want 200", rec.Code)
		}
	})

	t.Run("readyz answers 200 when every check passes", func(t *testing.T) {
		h := web.NewHealth()
		h.AddCheck("postgres", func(context.Context) error { return nil })
		h.AddCheck("nats", func(context.Context) error { return nil })
		if code, body := readyz(t, newMux(h)); code != http.StatusOK || body["status"] != "ready" {
			t.Errorf("readyz = %d %v, want 200 ready", code, body)
		}
	})

	t.Run("readyz answers 503 naming the failing check", func(t *testing.T) {
		h := web.NewHealth()
		h.AddCheck("postgres", func(context.Context) error { return nil })
		h.AddCheck("nats", func(context.Context) error { return errors.New("no servers available") })
		code, body := readyz(t, newMux(h))
		if code != http.StatusServiceUnavailable || !slices.Equal(toStrings(body["failing"]), []string{"nats"}) {
			t.Errorf("readyz = %d %v, want 503 failing [nats]", code, body)
		}
	})

	t.Run("readyz answers 503 once the process drains", func(t *testing.T) {
		h := web.NewHealth()
		h.AddCheck("postgres", func(context.Context) error { return nil })
		mux := newMux(h)
		if code, _ := readyz(t, mux); code != http.StatusOK {
			t.Fatalf("readyz before Drain = %d", code)
		}
		h.Drain()
		code, body := readyz(t, mux)
		if code != http.StatusServiceUnavailable || !slices.Equal(toStrings(body["failing"]), []string{"draining"}) {
			t.Errorf("readyz after Drain = %d %v, want 503 draining", code, body)
		}
	})

	t.Run("metrics serves the gatherer", func(t *testing.T) {
		rec := serve(newMux(web.NewHealth()), httptest.NewRequest(http.MethodGet, "/metrics", nil))
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "piazza_test_total") {
			t.Errorf("metrics = %d %q", rec.Code, rec.Body.String())
		}
	})
}

func TestServer(t *testing.T) {
	t.Run("Run returns after cancel once the in-flight request completes", func(t *testing.T) {
		entered, release := make(chan struct{}), make(chan struct{})
		mux := http.NewServeMux()
		mux.HandleFunc("GET /slow", func(w http.ResponseWriter, _ *http.Request) {
			close(entered)
			<-release
			io.WriteString(w, "done")
		})
		srv, err := web.Listen("127.0.0.1:0", mux, (&logBuffer{}).logger())
		if err != nil {
			t.Fatal(err)
		}
		shuttingDown := make(chan struct{})
		srv.OnShutdown(func() { close(shuttingDown) })
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		ran := make(chan error, 1)
		go func() { ran <- srv.Run(ctx) }()

		url := "http://" + srv.Addr().String()
		type result struct {
			status int
			body   string
			err    error
		}
		got := make(chan result, 1)
		go func() {
			res, err := http.Get(url + "/slow")
			if err != nil {
				got <- result{err: err}
				return
			}
			defer res.Body.Close()
			b, err := io.ReadAll(res.Body)
			got <- result{res.StatusCode, string(b), err}
		}()
		<-entered
		cancel()
		<-shuttingDown
		select {
		case err := <-ran:
			t.Fatalf("Run returned (%v) while a request was in flight", err)
		default:
		}
		close(release)

		select {
		case err := <-ran:
			if err != nil {
				t.Errorf("Run returned %v, want nil", err)
			}
		case <-time.After(time.Minute):
			t.Fatal("Run did not return after the request completed")
		}
		if r := <-got; r.err != nil || r.status != http.StatusOK || r.body != "done" {
			t.Errorf("in-flight request got %d %q (err %v), want 200 done", r.status, r.body, r.err)
		}
		if res, err := http.Get(url + "/slow"); err == nil {
			res.Body.Close()
			t.Error("the server still accepts requests after Run returned")
		}
	})

	t.Run("Listen fails on an address in use", func(t *testing.T) {
		srv, err := web.Listen("127.0.0.1:0", http.NewServeMux(), (&logBuffer{}).logger())
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		ran := make(chan error, 1)
		go func() { ran <- srv.Run(ctx) }()
		defer func() { cancel(); <-ran }()
		if _, err := web.Listen(srv.Addr().String(), http.NewServeMux(), (&logBuffer{}).logger()); err == nil {
			t.Error("a second Listen on the same address succeeded")
		}
	})
}

func toStrings(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, x := range list {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}
