package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/localeurope/piazza/pkg/bus"
	"github.com/localeurope/piazza/services/contract"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// cluster is what one harness run starts and tears down: a temporary
// directory, one embedded nats-server, a fresh PostgreSQL database and the
// piazza processes under test.
type cluster struct {
	dir      string
	stderr   io.Writer
	nats     *bus.Embedded
	natsURL  string
	nc       *nats.Conn
	js       jetstream.JetStream
	adminURL string
	dbURL    string
	dbName   string
	procs    []*serverProc
	piazza   string
}

// serverProc is one piazza (or floor server) child process.
type serverProc struct {
	name string
	cmd  *exec.Cmd
	base string // http://127.0.0.1:port
}

func (p *serverProc) wsURL() string {
	return "ws" + strings.TrimPrefix(p.base, "http") + "/api/v1/notifier/ws"
}

func newCluster(ctx context.Context, o *options, stderr io.Writer) (*cluster, error) {
	if err := checkLoopbackDB(o.databaseURL); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "piazza-load-")
	if err != nil {
		return nil, err
	}
	c := &cluster{dir: dir, stderr: stderr, adminURL: o.databaseURL, piazza: o.piazza}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	c.natsURL = o.attachNATS
	if c.natsURL == "" {
		if c.nats, err = bus.StartEmbedded(bus.EmbeddedOptions{StoreDir: filepath.Join(dir, "nats")}, quiet); err != nil {
			c.close()
			return nil, err
		}
		c.natsURL = c.nats.URL()
	}
	if c.nc, c.js, err = bus.Connect(ctx, c.natsURL, "piazza-load", quiet); err != nil {
		c.close()
		return nil, err
	}
	if err := bus.EnsureStream(ctx, c.js, contract.StreamConfig(contract.StreamNotifications, 1), true); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

func (c *cluster) createDB(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, c.adminURL)
	if err != nil {
		return fmt.Errorf("postgres (set DATABASE_URL; make run prints one): %w", err)
	}
	defer conn.Close(ctx)
	name := fmt.Sprintf("piazza_load_%d", time.Now().UnixNano())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return fmt.Errorf("create database: %w", err)
	}
	u, err := url.Parse(c.adminURL)
	if err != nil {
		return err
	}
	u.Path = "/" + name
	c.dbName, c.dbURL = name, u.String()
	return nil
}

func (c *cluster) dropDB() {
	if c.dbName == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.adminURL)
	if err != nil {
		fmt.Fprintf(c.stderr, "piazza-load: drop database %s: %v\n", c.dbName, err)
		return
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+c.dbName+" WITH (FORCE)"); err != nil {
		fmt.Fprintf(c.stderr, "piazza-load: drop database %s: %v\n", c.dbName, err)
	}
}

// freePort returns a loopback port that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// startPiazza starts `piazza -target=targets [extra flags]` on a free
// loopback port and waits until it is ready.
func (c *cluster) startPiazza(ctx context.Context, name, targets string, demo bool, extra ...string) (*serverProc, error) {
	if _, err := os.Stat(c.piazza); err != nil {
		return nil, fmt.Errorf("piazza binary %q: %w (build it: make build, or pass -piazza)", c.piazza, err)
	}
	if c.dbURL == "" {
		if err := c.createDB(ctx); err != nil {
			return nil, err
		}
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	data := filepath.Join(c.dir, name)
	args := []string{"-target=" + targets, "-http-addr=127.0.0.1:" + strconv.Itoa(port),
		"-database-url=" + c.dbURL, "-nats-url=" + c.natsURL, "-data-dir=" + data,
		"-demo-data=" + strconv.FormatBool(demo), "-log-level=warn", "-log-format=text"}
	args = append(args, extra...)
	if addr := os.Getenv("PIAZZA_LOAD_API_DEBUG_ADDR"); addr != "" && name == "api" {
		// Profiles of the API process (latency, writes), apart from the
		// notifiers' PIAZZA_DEBUG_ADDR.
		args = append(args, "-debug-addr="+addr)
	}
	if addr := os.Getenv("PIAZZA_LOAD_NOTIFIER_DEBUG_ADDR"); addr != "" && strings.HasPrefix(name, "notifier-") {
		// Profiles of every notifier replica: notifier-i listens on the
		// given port + i - 1.
		host, p, err := net.SplitHostPort(addr)
		base, perr := strconv.Atoi(p)
		i, ierr := strconv.Atoi(strings.TrimPrefix(name, "notifier-"))
		if err != nil || perr != nil || ierr != nil {
			return nil, fmt.Errorf("PIAZZA_LOAD_NOTIFIER_DEBUG_ADDR %q: want host:port", addr)
		}
		args = append(args, "-debug-addr="+net.JoinHostPort(host, strconv.Itoa(base+i-1)))
	}
	var env []string
	if strings.HasPrefix(name, "notifier-") {
		env = notifierEnv(os.Getenv)
	}
	return c.startProc(ctx, name, c.piazza, args, env, port, "/readyz")
}

// notifierEnv is the environment of a notifier replica: the harness's, with
// the Go runtime settings that deploy/ gives notifier pods (see "Notifier
// pods" in docs/operations.md) unless the harness's environment sets them.
func notifierEnv(getenv func(string) string) []string {
	env := os.Environ()
	if getenv("GOGC") == "" {
		env = append(env, "GOGC=50")
	}
	if getenv("GODEBUG") == "" {
		env = append(env, "GODEBUG=adaptivestackstart=0")
	}
	return env
}

// startProc starts bin with args and env (nil: the harness's) and waits
// until its ready path answers on port.
func (c *cluster) startProc(ctx context.Context, name, bin string, args, env []string, port int, ready string) (*serverProc, error) {
	logf, err := os.Create(filepath.Join(c.dir, name+".log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr, cmd.Env = logf, logf, env
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	p := &serverProc{name: name, cmd: cmd, base: "http://127.0.0.1:" + strconv.Itoa(port)}
	c.procs = append(c.procs, p)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			exited <- err
			return nil, fmt.Errorf("%s exited: %v (log: %s)", name, err, logf.Name())
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if resp, err := http.Get(p.base + ready); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				go func() { <-exited }()
				return p, nil
			}
		}
	}
	return nil, fmt.Errorf("%s not ready in 90 s (log: %s)", name, logf.Name())
}

// startNotifiers starts n notifier replicas, one after the other (the first
// migrates the schema).
func (c *cluster) startNotifiers(ctx context.Context, n int) ([]*serverProc, error) {
	var ps []*serverProc
	for i := range n {
		p, err := c.startPiazza(ctx, fmt.Sprintf("notifier-%d", i+1), "notifier", false)
		if err != nil {
			return nil, err
		}
		ps = append(ps, p)
	}
	return ps, nil
}

func (c *cluster) close() {
	for _, p := range c.procs {
		if p.cmd.Process != nil {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	for _, p := range c.procs {
		deadline := time.Now().Add(15 * time.Second)
		for p.cmd.Process != nil && p.cmd.Process.Signal(syscall.Signal(0)) == nil && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if p.cmd.Process != nil && p.cmd.Process.Signal(syscall.Signal(0)) == nil {
			_ = p.cmd.Process.Kill()
		}
	}
	if c.nc != nil {
		c.nc.Close()
	}
	if c.nats != nil {
		c.nats.Shutdown()
	}
	c.dropDB()
	if c.dir != "" {
		_ = os.RemoveAll(c.dir)
	}
}

// notification builds a NotificationV1 body on topic whose websocket frame
// is about frameSize bytes, carrying its send time in data.sent_at.
func notification(topic string, frameSize int) ([]byte, error) {
	n := contract.NotificationV1{ID: uuid.NewString(), Kind: "stall.status_posted", City: "bench",
		Topics: []string{topic}, Time: time.Now().UTC()}
	data := map[string]any{"status_text": "", "sent_at": time.Now().UnixNano()}
	n.Data, _ = json.Marshal(data)
	b, err := json.Marshal(n)
	if err != nil {
		return nil, err
	}
	// frame = {"type":"notification","seq":NNNNNN,"notification":BODY}
	if pad := frameSize - (len(notificationPrefix) + 6 + len(`,"notification":`) + len(b) + 1); pad > 0 {
		data["status_text"] = strings.Repeat("x", pad)
		n.Data, _ = json.Marshal(data)
		b, err = json.Marshal(n)
	}
	return b, err
}

// publishBurst appends count notifications without waiting for each PubAck
// in turn (a burst) and returns the last sequence.
func (c *cluster) publishBurst(ctx context.Context, topic string, frameSize, count int) (uint64, error) {
	var futures []jetstream.PubAckFuture
	for range count {
		body, err := notification(topic, frameSize)
		if err != nil {
			return 0, err
		}
		f, err := c.js.PublishAsync(contract.NotifySubject("bench", "stall.status_posted"), body)
		if err != nil {
			return 0, fmt.Errorf("publish: %w", err)
		}
		futures = append(futures, f)
	}
	var last uint64
	for _, f := range futures {
		select {
		case ack := <-f.Ok():
			last = max(last, ack.Sequence)
		case err := <-f.Err():
			return 0, fmt.Errorf("publish: %w", err)
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	return last, nil
}
