package main

import (
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/localeurope/piazza/pkg/app"
	"github.com/localeurope/piazza/pkg/auth"
	"github.com/localeurope/piazza/pkg/bus"
	"github.com/localeurope/piazza/pkg/outbox"
	"github.com/localeurope/piazza/pkg/web"
	"github.com/localeurope/piazza/services/accounts"
	"github.com/localeurope/piazza/services/calendar"
	"github.com/localeurope/piazza/services/listings"
	"github.com/localeurope/piazza/services/notifier"
	webclient "github.com/localeurope/piazza/services/web"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"
)

// targets are the services piazza can run, with their settings from cfg.
func targets(cfg Config) map[string]app.Target {
	return map[string]app.Target{
		"accounts": accounts.Run,
		"listings": listings.Options{StatusPostInterval: cfg.StatusPostInterval}.Run,
		"calendar": calendar.Run,
		"notifier": notifier.Run,
	}
}

// run is piazza's whole life: configure, connect, serve until SIGINT/SIGTERM
// or ctx ends, then shut down in order — fail /readyz, drain HTTP and
// websockets, stop the services' consumers and relays, drain NATS, close the
// pools (each service closes its own) and stop the embedded NATS.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return runWithClock(ctx, args, getenv, stdout, stderr, time.Now)
}

// runWithClock is run with the services' clock as a parameter, so that tests
// can hold "now" inside today's market hours whatever the time of day.
func runWithClock(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, now func() time.Time) error {
	cfg, err := parseConfig(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	natsURL := cfg.NATSURL
	if natsURL == "" {
		dir := filepath.Join(cfg.DataDir, "nats")
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return fmt.Errorf("data dir: %w", err)
		}
		emb, err := bus.StartEmbedded(bus.EmbeddedOptions{StoreDir: dir, Port: cfg.NATSPort}, log)
		if err != nil {
			return err
		}
		defer emb.Shutdown()
		natsURL = emb.URL()
	}
	nc, js, err := bus.Connect(ctx, natsURL, "piazza", log)
	if err != nil {
		return err
	}
	defer nc.Close()

	if cfg.DebugAddr != "" {
		_, stopDebug, err := serveDebug(cfg.DebugAddr, log)
		if err != nil {
			return err
		}
		defer stopDebug()
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	health := web.NewHealth()
	health.Routes(mux, reg)
	health.AddCheck("nats", func(context.Context) error {
		if !nc.IsConnected() {
			return errors.New("nats not connected")
		}
		return nil
	})
	var pending atomic.Int32
	pending.Store(int32(len(cfg.Targets)))
	health.AddCheck("services", func(context.Context) error {
		if n := pending.Load(); n > 0 {
			return fmt.Errorf("%d services starting", n)
		}
		return nil
	})
	mux.Handle("GET /", webclient.Handler())

	// Every process verifies access tokens with the keys accounts publishes.
	verifier := auth.NewVerifier(now)
	if err := auth.WatchKeys(ctx, js, verifier, cfg.StreamReplicas, log); err != nil {
		return err
	}
	var signingKey auth.Key
	if slices.Contains(cfg.Targets, "accounts") {
		if signingKey, err = loadSigningKey(cfg); err != nil {
			return err
		}
	}
	if slices.Contains(cfg.Targets, "accounts") {
		// Tokens this process issues must verify here before it says ready.
		health.AddCheck("token_keys", func(context.Context) error {
			if !verifier.HasKeys() {
				return errors.New("no token key yet")
			}
			return nil
		})
	}
	authenticate := func(h http.Handler) http.Handler { return verifier.Wrap(h, log) }
	srv, err := web.Listen(cfg.HTTPAddr, web.Middleware{Log: log, Metrics: web.NewMetrics(reg)}.Wrap(mux, authenticate), log)
	if err != nil {
		return fmt.Errorf("http: %w", err)
	}
	log.Info("piazza listening", "addr", srv.Addr().String(), "targets", cfg.Targets, "nats", natsURL)
	fmt.Fprintf(stdout, "piazza: serving %v at http://%s\n", cfg.Targets, displayAddr(srv.Addr().String()))

	deps := app.Deps{
		Log: log, DatabaseURL: cfg.DatabaseURL, NATS: nc, JS: js, StreamReplicas: cfg.StreamReplicas,
		Mux: mux, Health: health, Metrics: reg,
		OutboxMetrics: outbox.NewMetrics(reg), ConsumeMetrics: bus.NewConsumeMetrics(reg),
		DemoData: cfg.DemoData, AllowedOrigins: cfg.AllowedOrigins, Now: now,
		OnShutdown: srv.OnShutdown, SigningKey: signingKey, Stdout: stdout, Verifier: verifier,
	}
	targetsCtx, cancelTargets := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelTargets()
	g, gctx := errgroup.WithContext(targetsCtx)
	runners := targets(cfg)
	for _, name := range cfg.Targets {
		d := deps
		d.Log = log.With("target", name)
		var once atomic.Bool
		d.Ready = func() {
			if once.CompareAndSwap(false, true) && pending.Add(-1) == 0 {
				log.Info("piazza ready")
			}
		}
		run := runners[name]
		g.Go(func() error {
			if err := run(gctx, d); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			return nil
		})
	}

	// Serve until a signal, or until a service fails.
	srvCtx, cancelSrv := context.WithCancel(context.Background())
	defer cancelSrv()
	go func() {
		select {
		case <-ctx.Done():
			log.Info("shutting down")
		case <-gctx.Done():
			log.Error("a service stopped; shutting down")
		}
		health.Drain()
		if cfg.DrainDelay > 0 {
			time.Sleep(cfg.DrainDelay)
		}
		cancelSrv()
	}()
	srvErr := srv.Run(srvCtx)
	cancelTargets()
	targetErr := g.Wait()
	if err := nc.Drain(); err == nil {
		waitClosed(nc.IsClosed, 5*time.Second)
	}
	log.Info("piazza stopped")
	return errors.Join(targetErr, srvErr)
}

// serveDebug serves net/http/pprof on its own listener, apart from the API
// (whose middleware, auth and routes it must not share), until stop.
// parseConfig has checked that addr is a loopback address.
func serveDebug(addr string, log *slog.Logger) (bound net.Addr, stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("debug listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	log.Info("pprof listening", "addr", ln.Addr().String())
	return ln.Addr(), func() { _ = srv.Close() }, nil
}

func waitClosed(closed func() bool, max time.Duration) {
	deadline := time.Now().Add(max)
	for !closed() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
}

func displayAddr(addr string) string {
	if len(addr) > 0 && addr[0] == ':' {
		return "localhost" + addr
	}
	if host := addr; len(host) > 5 && host[:5] == "[::]:" {
		return "localhost:" + host[5:]
	}
	return addr
}

func newLogger(cfg Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// loadSigningKey returns the configured signing key, or the one kept in the
// data dir, creating it on first start.
func loadSigningKey(cfg Config) (auth.Key, error) {
	if cfg.SigningKey != "" {
		seed, _ := base64.StdEncoding.DecodeString(cfg.SigningKey) // checked by parseConfig
		return auth.KeyFromSeed(seed)
	}
	path := filepath.Join(cfg.DataDir, "signing.key")
	b, err := os.ReadFile(path)
	if err == nil {
		seed, derr := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
		if derr != nil {
			return auth.Key{}, fmt.Errorf("signing key %s: %w", path, derr)
		}
		return auth.KeyFromSeed(seed)
	}
	if !errors.Is(err, os.ErrNotExist) {
		return auth.Key{}, fmt.Errorf("signing key: %w", err)
	}
	k, err := auth.NewKey()
	if err != nil {
		return auth.Key{}, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return auth.Key{}, fmt.Errorf("signing key: %w", err)
	}
	if err := os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(k.Private.Seed())+"\n"), 0o600); err != nil {
		return auth.Key{}, fmt.Errorf("signing key: %w", err)
	}
	return k, nil
}
