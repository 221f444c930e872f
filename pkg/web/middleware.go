package web

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type ctxKey int

const (
	requestIDKey ctxKey = iota + 1
	traceParentKey
)

// TraceParent returns the caller's W3C traceparent header when it was well
// formed, so that events caused by the request carry it on.
func TraceParent(ctx context.Context) string {
	s, _ := ctx.Value(traceParentKey).(string)
	return s
}

// validTraceParent checks the version-00 shape: 00-<32 hex>-<16 hex>-<2 hex>.
func validTraceParent(s string) bool {
	if len(s) != 55 || s[2] != '-' || s[35] != '-' || s[52] != '-' {
		return false
	}
	for i, c := range s {
		if i == 2 || i == 35 || i == 52 {
			continue
		}
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// RequestID returns the request id stored by the RequestID middleware, or "".
func RequestID(ctx context.Context) string {
	s, _ := ctx.Value(requestIDKey).(string)
	return s
}

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// validRequestID accepts a caller's X-Request-ID only when it is short and
// printable, so that it can go into logs as is.
func validRequestID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}

// Middleware wraps every request of a process: request id, access log,
// metrics per route pattern and panic recovery.
type Middleware struct {
	Log     *slog.Logger
	Metrics *Metrics
}

// routeKey holds a *string where the innermost handler leaves the matched
// pattern: wrappers between the middleware and the mux (authentication, say)
// pass a copy of the request on, and the mux sets Pattern on that copy.
type routeKey struct{}

// Wrap returns h with the middleware around it, and the inner wrappers (outer
// first) between the middleware and h. h is normally a ServeMux: the pattern
// it matches is the metrics' route label.
func (m Middleware) Wrap(h http.Handler, inner ...func(http.Handler) http.Handler) http.Handler {
	var base http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p, ok := r.Context().Value(routeKey{}).(*string); ok {
			defer func() { *p = r.Pattern }() // also when h panics
		}
		h.ServeHTTP(w, r)
	})
	for i := len(inner) - 1; i >= 0; i-- {
		base = inner[i](base)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-ID")
		if !validRequestID(id) {
			id = newRequestID()
		}
		w.Header().Set("X-Request-ID", id)
		var pattern string
		ctx := context.WithValue(r.Context(), requestIDKey, id)
		ctx = context.WithValue(ctx, routeKey{}, &pattern)
		if tp := r.Header.Get("traceparent"); validTraceParent(tp) {
			ctx = context.WithValue(ctx, traceParentKey, tp)
		}
		r = r.WithContext(ctx)
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				m.Log.ErrorContext(r.Context(), "panic serving request", "panic", fmt.Sprint(v),
					"method", r.Method, "path", r.URL.Path, "request_id", id, "stack", string(debug.Stack()))
				if !rec.wrote {
					WriteError(rec, r, m.Log, Errorf(EInternal, "something went wrong on our side; please try again"))
				}
			}
			route := pattern
			if route == "" {
				route = r.Pattern
			}
			if route == "" {
				route = "unmatched"
			}
			d := time.Since(start)
			if m.Metrics != nil {
				m.Metrics.requests.WithLabelValues(route, r.Method, strconv.Itoa(rec.status)).Inc()
				m.Metrics.duration.WithLabelValues(route, r.Method).Observe(d.Seconds())
			}
			level := slog.LevelInfo
			switch {
			case route == "GET /healthz" || route == "GET /readyz" || route == "GET /metrics":
				level = slog.LevelDebug // probes; a 503 while starting or draining is expected
			case rec.status >= 500:
				level = slog.LevelError
			}
			m.Log.Log(r.Context(), level, "http request", "method", r.Method, "route", route, "path", r.URL.Path,
				"status", rec.status, "bytes", rec.bytes, "duration_ms", float64(d.Microseconds())/1000, "request_id", id)
		}()
		base.ServeHTTP(rec, r)
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int
	wrote  bool
}

func (s *statusRecorder) WriteHeader(code int) {
	if !s.wrote {
		s.status, s.wrote = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	s.wrote = true
	n, err := s.ResponseWriter.Write(b)
	s.bytes += n
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// Hijack supports websocket upgrades through the middleware.
func (s *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := s.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("web: response writer does not support hijacking")
	}
	s.wrote, s.status = true, http.StatusSwitchingProtocols
	return h.Hijack()
}

// Flush supports streaming responses.
func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Metrics are the HTTP metrics of one process.
type Metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewMetrics registers the HTTP metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "piazza_http_requests_total", Help: "HTTP requests by route pattern, method and status.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "piazza_http_request_duration_seconds", Help: "HTTP request duration by route pattern.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route", "method"}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}
