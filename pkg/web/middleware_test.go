package web_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/localeurope/piazza/pkg/web"
	"github.com/prometheus/client_golang/prometheus"
)

func TestMiddleware(t *testing.T) {
	t.Run("a panicking handler yields a 500 problem and the server keeps serving", func(t *testing.T) {
		log := &logBuffer{}
		mux := http.NewServeMux()
		mux.HandleFunc("GET /panic", func(http.ResponseWriter, *http.Request) { panic("nil map in handler") })
		mux.HandleFunc("GET /ok", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })
		srv := httptest.NewServer(web.Middleware{Log: log.logger()}.Wrap(mux))
		defer srv.Close()

		res := get(t, srv.URL+"/panic", nil)
		body := readBody(t, res)
		if res.StatusCode != http.StatusInternalServerError || res.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("panic answered %d %q, want a 500 problem", res.StatusCode, res.Header.Get("Content-Type"))
		}
		if strings.Contains(body, "nil map") || strings.Contains(body, "goroutine") {
			t.Errorf("the panic reached the client: %s", body)
		}
		if !strings.Contains(log.String(), "nil map in handler") {
			t.Error("the panic was not logged")
		}
		if res := get(t, srv.URL+"/ok", nil); res.StatusCode != http.StatusOK || readBody(t, res) != "ok" {
			t.Errorf("after a panic, /ok answered %d", res.StatusCode)
		}
	})

	t.Run("a panic after the response started leaves the response alone", func(t *testing.T) {
		h := web.Middleware{Log: (&logBuffer{}).logger()}.Wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusAccepted)
			panic("late")
		}))
		rec := serve(h, httptest.NewRequest(http.MethodGet, "/", nil))
		if rec.Code != http.StatusAccepted || rec.Body.Len() != 0 {
			t.Errorf("got %d %q, want the 202 the handler began", rec.Code, rec.Body.String())
		}
	})

	t.Run("http.ErrAbortHandler still aborts the response", func(t *testing.T) {
		mux := http.NewServeMux()
		mux.HandleFunc("GET /abort", func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) })
		srv := httptest.NewServer(web.Middleware{Log: (&logBuffer{}).logger()}.Wrap(mux))
		defer srv.Close()
		res, err := http.Get(srv.URL + "/abort")
		if err == nil {
			res.Body.Close()
			t.Fatalf("got a %d response, want the connection aborted", res.StatusCode)
		}
	})

	t.Run("request ids", func(t *testing.T) {
		var seen string
		h := web.Middleware{Log: (&logBuffer{}).logger()}.Wrap(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
			seen = web.RequestID(r.Context())
		}))
		tests := []struct {
			name, incoming string
			echoed         bool
		}{
			{"one is generated when none comes in", "", false},
			{"a valid incoming one is echoed", "lb-7f3a9c21/2", true},
			{"one of 64 characters is echoed", strings.Repeat("a", 64), true},
			{"one that is too long is replaced", strings.Repeat("a", 65), false},
			{"one with a space is replaced", "two words", false},
			{"one with non-ASCII is replaced", "ü-123", false},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				req := httptest.NewRequest(http.MethodGet, "/", nil)
				if tc.incoming != "" {
					req.Header.Set("X-Request-ID", tc.incoming)
				}
				rec := serve(h, req)
				id := rec.Header().Get("X-Request-ID")
				if seen != id {
					t.Errorf("handler saw %q, response says %q", seen, id)
				}
				if tc.echoed {
					if id != tc.incoming {
						t.Errorf("X-Request-ID = %q, want %q echoed", id, tc.incoming)
					}
					return
				}
				if id == tc.incoming || len(id) != 24 || strings.Trim(id, "0123456789abcdef") != "" {
					t.Errorf("X-Request-ID = %q, want a fresh 24-hex-digit id", id)
				}
			})
		}
		t.Run("two requests get different ids", func(t *testing.T) {
			a := serve(h, httptest.NewRequest(http.MethodGet, "/", nil)).Header().Get("X-Request-ID")
			b := serve(h, httptest.NewRequest(http.MethodGet, "/", nil)).Header().Get("X-Request-ID")
			if a == b {
				t.Errorf("both requests got %q", a)
			}
		})
	})

	t.Run("a well-formed traceparent reaches the handler, a malformed one does not", func(t *testing.T) {
		var seen string
		h := web.Middleware{Log: (&logBuffer{}).logger()}.Wrap(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
			seen = web.TraceParent(r.Context())
		}))
		for tp, want := range map[string]string{
			"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
			"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01": "",
			"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7":    "",
			"hello": "",
		} {
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.Header.Set("traceparent", tp)
			serve(h, req)
			if seen != want {
				t.Errorf("traceparent %q: handler saw %q, want %q", tp, seen, want)
			}
		}
	})

	t.Run("metrics are labelled by the route pattern, never the raw path", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		mux := http.NewServeMux()
		mux.HandleFunc("GET /api/v1/markets/{id}", func(http.ResponseWriter, *http.Request) {})
		mux.HandleFunc("POST /api/v1/markets/{id}/stalls", func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusCreated)
		})
		h := web.Middleware{Log: (&logBuffer{}).logger(), Metrics: web.NewMetrics(reg)}.Wrap(mux)
		for _, r := range []*http.Request{
			httptest.NewRequest(http.MethodGet, "/api/v1/markets/41", nil),
			httptest.NewRequest(http.MethodGet, "/api/v1/markets/42", nil),
			httptest.NewRequest(http.MethodPost, "/api/v1/markets/42/stalls", nil),
			httptest.NewRequest(http.MethodGet, "/wp-admin/login.php", nil),
		} {
			serve(h, r)
		}

		got := requestCounts(t, reg)
		want := map[string]float64{
			"GET /api/v1/markets/{id} GET 200":          2,
			"POST /api/v1/markets/{id}/stalls POST 201": 1,
			"unmatched GET 404":                         1,
		}
		if len(got) != len(want) {
			t.Errorf("requests by route, method, status = %v, want %v", got, want)
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("requests{%s} = %v, want %v (all: %v)", k, got[k], v, got)
			}
		}
		for k := range got {
			if strings.Contains(k, "/41") || strings.Contains(k, "/42") || strings.Contains(k, "wp-admin") {
				t.Errorf("a raw path became a label: %s", k)
			}
		}
		routes := durationRoutes(t, reg)
		if !slices.Equal(routes, []string{"GET /api/v1/markets/{id}", "POST /api/v1/markets/{id}/stalls", "unmatched"}) {
			t.Errorf("duration routes = %v", routes)
		}
	})
}

// requestCounts returns piazza_http_requests_total as "route method status" → count.
func requestCounts(tb testing.TB, reg *prometheus.Registry) map[string]float64 {
	tb.Helper()
	families, err := reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "piazza_http_requests_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			out[l["route"]+" "+l["method"]+" "+l["status"]] = m.GetCounter().GetValue()
		}
	}
	return out
}

func durationRoutes(tb testing.TB, reg *prometheus.Registry) []string {
	tb.Helper()
	families, err := reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	var routes []string
	for _, f := range families {
		if f.GetName() != "piazza_http_request_duration_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, p := range m.GetLabel() {
				if p.GetName() == "route" {
					routes = append(routes, p.GetValue())
				}
			}
		}
	}
	slices.Sort(routes)
	return routes
}

func get(tb testing.TB, url string, header http.Header) *http.Response {
	tb.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		tb.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("GET %s: %v", url, err)
	}
	tb.Cleanup(func() { res.Body.Close() })
	return res
}

func readBody(tb testing.TB, res *http.Response) string {
	tb.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}
