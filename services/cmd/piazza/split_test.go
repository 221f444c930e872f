package main

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/localeurope/piazza/pkg/bus/bustest"
)

// shutdownBound is how long piazza may take to exit after SIGTERM: the one
// timing the system promises ("SIGTERM shuts piazza down cleanly within 10 s").
const shutdownBound = 10 * time.Second

// TestSplitTargets runs listings, calendar and notifier as three piazza
// processes that share only a NATS server and a Postgres server, and follows
// one change across them. Then it stops them with SIGTERM.
func TestSplitTargets(t *testing.T) {
	bin := buildPiazza(t)
	natsURL := bustest.NewServer(t)
	db := newDatabase(t)

	// Start all three at once, as pods would.
	procs := map[string]*process{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, target := range knownTargets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := startProcess(t, bin, target, db, natsURL)
			mu.Lock()
			procs[target] = p
			mu.Unlock()
		}()
	}
	wg.Wait()
	for _, target := range knownTargets {
		p := procs[target]
		if p.base == "" {
			t.Fatalf("%s did not start: %v", target, p.startErr)
		}
		waitReady(t, p.base, p.exited)
	}
	listings, cal, notifier := procs["listings"], procs["calendar"], procs["notifier"]

	t.Run("each process serves only its own API", func(t *testing.T) {
		for _, c := range []struct {
			p    *process
			path string
		}{
			{listings, "/api/v1/calendar/cities/ghent/events"},
			{cal, "/api/v1/listings/cities"},
			{notifier, "/api/v1/listings/cities"},
		} {
			if status, _, _ := request(t, http.MethodGet, c.p.base+c.path, "", nil); status != http.StatusNotFound {
				t.Errorf("%s: GET %s = %d, want 404", c.p.target, c.path, status)
			}
		}
		for _, p := range procs {
			for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
				if status, _, _ := request(t, http.MethodGet, p.base+path, "", nil); status != http.StatusOK {
					t.Errorf("%s: GET %s = %d, want 200", p.target, path, status)
				}
			}
		}
	})

	day, _ := openMarketDay(t, listings.base, time.Now())
	ws := dialWS(t, notifier.base)
	since := ws.subscribe(t, "city:ghent")
	s := registerStallVia(t, procs["accounts"].base, listings.base, day.ID, "Brouwerij Gruut")
	if seq := ws.nextNotification(t, s); seq <= since {
		t.Errorf("notification seq %d, want more than %d", seq, since)
	}
	eventually(t, eventTimeout, func() string { return calendarHas(t, cal.base, day) })

	// Stop every process while the websocket client is still connected.
	for _, p := range procs {
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatalf("SIGTERM %s: %v", p.target, err)
		}
	}
	signalled := time.Now()
	for _, target := range knownTargets {
		p := procs[target]
		select {
		case <-p.exited:
			if p.waitErr != nil {
				t.Errorf("%s exited with %v after SIGTERM, want status 0", target, p.waitErr)
			}
			t.Logf("%s exited within %v of SIGTERM", target, time.Since(signalled).Round(time.Millisecond))
		case <-time.After(shutdownBound - time.Since(signalled)):
			t.Errorf("%s still running %v after SIGTERM", target, shutdownBound)
		}
	}
	select {
	case <-ws.closed:
		var ce *websocket.CloseError
		if !errors.As(ws.err, &ce) || ce.Code != websocket.CloseGoingAway {
			t.Errorf("websocket ended with %v, want a close frame with code 1001 (going away)", ws.err)
		}
	case m := <-ws.msgs:
		t.Errorf("got %s while the notifier shut down, want a close frame", m.raw)
	case <-time.After(shutdownBound):
		t.Error("the websocket client got no close frame from the stopped notifier")
	}
}

// process is piazza running as a child process.
type process struct {
	target   string
	base     string
	cmd      *exec.Cmd
	logs     *syncBuffer
	startErr error
	exited   chan struct{} // closed when the process has exited
	waitErr  error         // cmd.Wait's result, once exited is closed
}

// startProcess starts bin with one target and a free port. It returns once
// the process prints its address (base stays empty and startErr says why
// when it does not). Its environment is the test's, minus every piazza
// setting, plus the database and NATS URLs.
func startProcess(t *testing.T, bin, target, databaseURL, natsURL string) *process {
	env := []string{"DATABASE_URL=" + databaseURL, "NATS_URL=" + natsURL}
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if !isSetting(name) {
			env = append(env, kv)
		}
	}
	stdout := newAddrWatcher()
	p := &process{target: target, logs: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(bin, "-target="+target, "-http-addr=127.0.0.1:0", "-log-format=text", "-data-dir="+t.TempDir())
	p.cmd.Env, p.cmd.Stdout, p.cmd.Stderr = env, stdout, p.logs
	if err := p.cmd.Start(); err != nil {
		p.startErr = err
		return p
	}
	go func() {
		defer close(p.exited)
		p.waitErr = p.cmd.Wait()
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("piazza -target=%s logs:\n%s", target, p.logs.String())
		}
	})
	select {
	case addr := <-stdout.found:
		p.base = "http://" + addr
	case <-p.exited:
		p.startErr = fmt.Errorf("exited: %v", p.waitErr)
	case <-time.After(startTimeout):
		p.startErr = fmt.Errorf("printed no address within %v", startTimeout)
	}
	return p
}

func isSetting(env string) bool {
	for _, s := range settings {
		if s.env == env {
			return true
		}
	}
	return false
}

// buildPiazza builds the binary once per test run, with -race when the test
// binary has it (the compiled packages are then in the build cache already).
var buildPiazza = func() func(testing.TB) string {
	var once sync.Once
	var bin string
	var err error
	return func(tb testing.TB) string {
		tb.Helper()
		once.Do(func() {
			dir, derr := os.MkdirTemp("", "piazza-bin-")
			if derr != nil {
				err = derr
				return
			}
			binDir = dir
			bin = filepath.Join(dir, "piazza")
			args := []string{"build", "-o", bin}
			if raceEnabled() {
				args = append(args, "-race")
			}
			cmd := exec.Command("go", append(args, ".")...)
			if out, berr := cmd.CombinedOutput(); berr != nil {
				err = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), berr, out)
			}
		})
		if err != nil {
			tb.Fatal(err)
		}
		return bin
	}
}()

// binDir holds the built binary; TestMain removes it.
var binDir string

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func raceEnabled() bool {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range info.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}
