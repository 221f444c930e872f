// Package app defines what the piazza binary hands to each service it runs
// (a target): the shared connections, the HTTP mux to register routes on, and
// the process's health and metrics. A target never creates these itself, so
// that "all in one process" and "one service per pod" run the same code.
package app

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/localeurope/piazza/pkg/auth"
	"github.com/localeurope/piazza/pkg/bus"
	"github.com/localeurope/piazza/pkg/outbox"
	"github.com/localeurope/piazza/pkg/web"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Deps are a target's dependencies.
type Deps struct {
	Log         *slog.Logger
	DatabaseURL string
	NATS        *nats.Conn
	JS          jetstream.JetStream
	// StreamReplicas is the replica count of streams this target owns.
	StreamReplicas int
	Mux            *http.ServeMux
	Health         *web.Health
	Metrics        prometheus.Registerer
	OutboxMetrics  *outbox.Metrics
	ConsumeMetrics *bus.ConsumeMetrics
	// DemoData seeds demo cities and markets into an empty database.
	DemoData bool
	// AllowedOrigins may open websockets (scheme://host[:port]); the
	// request's own host is always allowed.
	AllowedOrigins []string
	Now            func() time.Time
	// Ready marks the target as ready to serve; /readyz waits for all.
	Ready func()
	// Verifier checks access tokens (e.g. in a websocket hello).
	Verifier *auth.Verifier
	// SigningKey signs access tokens; only the accounts target uses it.
	SigningKey auth.Key
	// Stdout is for the few lines a person starting piazza should read.
	Stdout io.Writer
	// OnShutdown registers a function to run when the HTTP server starts
	// shutting down (websockets are not tracked by http.Server.Shutdown).
	OnShutdown func(func())
}

// Target runs one service until ctx is done.
type Target func(ctx context.Context, d Deps) error
