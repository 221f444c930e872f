package web

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Check reports whether one dependency is ready.
type Check func(ctx context.Context) error

// Health serves /healthz (the process is alive) and /readyz (every check
// passes and the process is not draining).
type Health struct {
	draining atomic.Bool
	mu       sync.Mutex
	checks   map[string]Check
}

// NewHealth returns a Health with no checks.
func NewHealth() *Health { return &Health{checks: map[string]Check{}} }

// AddCheck registers a named readiness check.
func (h *Health) AddCheck(name string, c Check) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.checks[name] = c
}

// Drain marks the process as not ready; load balancers stop sending traffic.
func (h *Health) Drain() { h.draining.Store(true) }

// Routes registers /healthz, /readyz and /metrics on mux.
func (h *Health) Routes(mux *http.ServeMux, gatherer prometheus.Gatherer) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		JSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		status, failing := h.ready(r.Context())
		body := map[string]any{"status": "ready"}
		if status != http.StatusOK {
			body = map[string]any{"status": "not ready", "failing": failing}
		}
		JSON(w, status, body)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
}

func (h *Health) ready(ctx context.Context) (int, []string) {
	if h.draining.Load() {
		return http.StatusServiceUnavailable, []string{"draining"}
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	h.mu.Lock()
	checks := make(map[string]Check, len(h.checks))
	for k, v := range h.checks {
		checks[k] = v
	}
	h.mu.Unlock()
	var failing []string
	for name, c := range checks {
		if err := c(ctx); err != nil {
			failing = append(failing, name)
		}
	}
	if len(failing) > 0 {
		return http.StatusServiceUnavailable, failing
	}
	return http.StatusOK, nil
}

// Server is an http.Server with sane timeouts whose Run blocks until ctx is
// done and then shuts down gracefully.
type Server struct {
	srv *http.Server
	ln  net.Listener
	log *slog.Logger
	// ShutdownTimeout bounds the drain of in-flight requests.
	ShutdownTimeout time.Duration
}

// Listen binds addr and returns a Server for h. Binding early lets callers
// learn the port (addr ":0") before Run.
func Listen(addr string, h http.Handler, log *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &Server{
		ln:  ln,
		log: log,
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       30 * time.Second,
			// No WriteTimeout: it would cut websocket upgrades and long feeds;
			// handlers bound their own work with the request context.
			IdleTimeout:    120 * time.Second,
			MaxHeaderBytes: 64 << 10,
			ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		},
		ShutdownTimeout: 8 * time.Second,
	}, nil
}

// Addr is the bound address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// OnShutdown registers f to run when shutdown starts, e.g. to close
// hijacked websocket connections, which Shutdown does not track.
func (s *Server) OnShutdown(f func()) { s.srv.RegisterOnShutdown(f) }

// Run serves until ctx is done, then stops accepting, waits for in-flight
// requests up to ShutdownTimeout and returns.
func (s *Server) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.ShutdownTimeout)
	defer cancel()
	err := s.srv.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		s.log.Warn("http shutdown timed out; closing remaining connections")
		err = s.srv.Close()
	}
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		return serr
	}
	return err
}
