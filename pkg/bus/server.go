package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// EmbeddedOptions configure an in-process nats-server.
type EmbeddedOptions struct {
	StoreDir string // JetStream file store; required
	Host     string // default 127.0.0.1: never reachable from outside
	// Port to listen on. If it is taken (a system NATS on 4222, another
	// piazza), a free port is chosen instead and logged.
	Port int
}

// Embedded is a running in-process nats-server.
type Embedded struct {
	srv *server.Server
}

// StartEmbedded starts a real nats-server in this process with JetStream on a
// file store that syncs every write (sync_interval: always), so an
// acknowledged publish survives a crash of the machine.
func StartEmbedded(opts EmbeddedOptions, log *slog.Logger) (*Embedded, error) {
	if opts.StoreDir == "" {
		return nil, errors.New("bus: embedded NATS needs a store directory")
	}
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	port := opts.Port
	if port <= 0 || !portFree(opts.Host, port) {
		if port > 0 {
			log.Warn("embedded NATS port taken; choosing a free one", "port", port)
		}
		port = server.RANDOM_PORT
	}
	srv, err := server.NewServer(&server.Options{
		ServerName: "piazza-embedded",
		Host:       opts.Host,
		Port:       port,
		JetStream:  true,
		StoreDir:   opts.StoreDir,
		SyncAlways: true,
		NoSigs:     true, // the piazza process owns signal handling
		NoLog:      true,
	})
	if err != nil {
		return nil, fmt.Errorf("bus: embedded NATS: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(15 * time.Second) {
		srv.Shutdown()
		return nil, errors.New("bus: embedded NATS did not become ready in 15s")
	}
	log.Info("embedded NATS started", "url", srv.ClientURL(), "store_dir", opts.StoreDir)
	return &Embedded{srv: srv}, nil
}

func portFree(host string, port int) bool {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

// URL is the client URL of the embedded server.
func (e *Embedded) URL() string { return e.srv.ClientURL() }

// Shutdown stops the server and waits until it has.
func (e *Embedded) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}

// Connect connects to url and returns the connection and its JetStream
// context. It retries the first connection until ctx is done or 10 s pass,
// then reconnects forever.
func Connect(ctx context.Context, url, name string, log *slog.Logger) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := nats.Connect(url,
		nats.Name(name),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500*time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info("nats reconnected", "url", c.ConnectedUrlRedacted()) }),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			log.Warn("nats async error", "err", err, "subject", subj)
		}),
	)
	if err != nil {
		return nil, nil, fmt.Errorf("bus: connect %s: %w", url, err)
	}
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for !nc.IsConnected() {
		select {
		case <-ctx.Done():
			nc.Close()
			return nil, nil, ctx.Err()
		case <-deadline.C:
			nc.Close()
			return nil, nil, fmt.Errorf("bus: cannot reach NATS at %s (is it running? set NATS_URL, or unset it to embed one)", url)
		case <-time.After(50 * time.Millisecond):
		}
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("bus: jetstream: %w", err)
	}
	return nc, js, nil
}
