// Package bustest starts a real, embedded nats-server with JetStream for
// tests, on a random loopback port with its store in the test's temp dir.
package bustest

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/localeurope/piazza/pkg/bus"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// NewServer starts a nats-server for the test and returns its URL.
func NewServer(tb testing.TB) string {
	tb.Helper()
	srv, err := bus.StartEmbedded(bus.EmbeddedOptions{StoreDir: tb.TempDir()}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		tb.Fatalf("bustest: %v", err)
	}
	tb.Cleanup(srv.Shutdown)
	return srv.URL()
}

// Connect starts a server and returns a connection and JetStream context to it.
func Connect(tb testing.TB) (*nats.Conn, jetstream.JetStream) {
	tb.Helper()
	url := NewServer(tb)
	nc, js, err := bus.Connect(context.Background(), url, tb.Name(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		tb.Fatalf("bustest: %v", err)
	}
	tb.Cleanup(nc.Close)
	return nc, js
}
