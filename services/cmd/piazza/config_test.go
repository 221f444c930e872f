package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

// envOf returns a getenv that reads env and nothing else.
func envOf(env map[string]string) func(string) string {
	return func(k string) string { return env[k] }
}

func TestParseConfig(t *testing.T) {
	defaults := Config{
		Targets:        []string{"accounts", "listings", "calendar", "notifier"},
		HTTPAddr:       ":8080",
		DatabaseURL:    DefaultDatabaseURL,
		DataDir:        "data",
		NATSPort:       4223,
		StreamReplicas: 1,
		LogLevel:       slog.LevelInfo,
		LogFormat:      "json",
		DemoData:       true,

		StatusPostInterval: 30 * time.Second,
	}
	with := func(change func(*Config)) Config {
		c := defaults
		c.Targets = append([]string(nil), defaults.Targets...)
		change(&c)
		return c
	}
	fullEnv := map[string]string{
		"PIAZZA_TARGET":          "calendar",
		"HTTP_ADDR":              "127.0.0.1:9000",
		"DATABASE_URL":           "postgresql://u:p@db:5432/piazza",
		"NATS_URL":               "nats://nats:4222",
		"PIAZZA_DATA_DIR":        "/var/lib/piazza/",
		"PIAZZA_NATS_PORT":       "0",
		"PIAZZA_STREAM_REPLICAS": "3",
		"LOG_LEVEL":              "debug",
		"LOG_FORMAT":             "text",
		"PIAZZA_DEMO_DATA":       "false",
		"PIAZZA_ALLOWED_ORIGINS": "https://gent.be, http://localhost:5173",
		"PIAZZA_DRAIN_DELAY":     "5s",
		"PIAZZA_DEBUG_ADDR":      "127.0.0.1:6060",

		"PIAZZA_STATUS_POST_INTERVAL": "10s",
	}
	fromFullEnv := Config{
		Targets:        []string{"calendar"},
		HTTPAddr:       "127.0.0.1:9000",
		DatabaseURL:    "postgresql://u:p@db:5432/piazza",
		NATSURL:        "nats://nats:4222",
		DataDir:        "/var/lib/piazza",
		NATSPort:       0,
		StreamReplicas: 3,
		LogLevel:       slog.LevelDebug,
		LogFormat:      "text",
		DemoData:       false,
		AllowedOrigins: []string{"https://gent.be", "http://localhost:5173"},
		DrainDelay:     5 * time.Second,
		DebugAddr:      "127.0.0.1:6060",

		StatusPostInterval: 10 * time.Second,
	}

	tests := []struct {
		name string
		env  map[string]string
		args []string
		want Config
	}{
		{name: "defaults with no environment and no flags", want: defaults},
		{name: "environment sets every setting", env: fullEnv, want: fromFullEnv},
		{name: "flags set every setting", args: []string{
			"-target=calendar", "-http-addr=127.0.0.1:9000", "-database-url=postgresql://u:p@db:5432/piazza",
			"-nats-url=nats://nats:4222", "-data-dir=/var/lib/piazza/", "-nats-port=0", "-stream-replicas=3",
			"-log-level=debug", "-log-format=text", "-demo-data=false",
			"-allowed-origins=https://gent.be, http://localhost:5173", "-drain-delay=5s", "-debug-addr=127.0.0.1:6060",
			"-status-post-interval=10s",
		}, want: fromFullEnv},
		{name: "a flag overrides the environment", env: fullEnv,
			args: []string{"-target=notifier", "-http-addr=:0", "-log-level=warn", "-demo-data=true", "-nats-url="},
			want: func() Config {
				c := fromFullEnv
				c.Targets, c.HTTPAddr, c.LogLevel, c.DemoData, c.NATSURL = []string{"notifier"}, ":0", slog.LevelWarn, true, ""
				return c
			}()},
		{name: "an empty variable counts as unset", env: map[string]string{"HTTP_ADDR": "", "PIAZZA_DEMO_DATA": ""}, want: defaults},
		{name: "a comma list of targets", args: []string{"-target=listings,notifier"},
			want: with(func(c *Config) { c.Targets = []string{"listings", "notifier"} })},
		{name: "duplicate targets and spaces are folded", args: []string{"-target= notifier, listings ,notifier,,"},
			want: with(func(c *Config) { c.Targets = []string{"notifier", "listings"} })},
		{name: "all is every target", env: map[string]string{"PIAZZA_TARGET": "listings"}, args: []string{"-target=all"}, want: defaults},
		{name: "log levels", args: []string{"-log-level=error"}, want: with(func(c *Config) { c.LogLevel = slog.LevelError })},
		{name: "postgres:// URLs", args: []string{"-database-url=postgres://localhost/x"},
			want: with(func(c *Config) { c.DatabaseURL = "postgres://localhost/x" })},
		{name: "a debug address on IPv6 loopback", args: []string{"-debug-addr=[::1]:0"},
			want: with(func(c *Config) { c.DebugAddr = "[::1]:0" })},
		{name: "a debug address on localhost", args: []string{"-debug-addr=localhost:6060"},
			want: with(func(c *Config) { c.DebugAddr = "localhost:6060" })},
		{name: "a status post interval of 0 lifts the limit", args: []string{"-status-post-interval=0"},
			want: with(func(c *Config) { c.StatusPostInterval = 0 })},
		{name: "a status post interval of 0 from the environment", env: map[string]string{"PIAZZA_STATUS_POST_INTERVAL": "0s"},
			want: with(func(c *Config) { c.StatusPostInterval = 0 })},
		{name: "a flag overrides the environment's status post interval", env: map[string]string{"PIAZZA_STATUS_POST_INTERVAL": "0"},
			args: []string{"-status-post-interval=1m"}, want: with(func(c *Config) { c.StatusPostInterval = time.Minute })},
		{name: "go-style flags with two dashes and a space", args: []string{"--target", "listings", "--nats-port", "65535"},
			want: with(func(c *Config) { c.Targets, c.NATSPort = []string{"listings"}, 65535 })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			got, err := parseConfig(tt.args, envOf(tt.env), &stderr)
			if err != nil {
				t.Fatalf("parseConfig(%q) error: %v", tt.args, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseConfig(%q)\n got %+v\nwant %+v", tt.args, got, tt.want)
			}
			if stderr.Len() > 0 {
				t.Errorf("parseConfig wrote to stderr: %s", stderr.String())
			}
		})
	}
}

func TestParseConfigRejects(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want []string // every string must be in the error
	}{
		{name: "an unknown target", args: []string{"-target=listings,payments"}, want: []string{"-target", `"payments"`, "listings, calendar, notifier"}},
		{name: "all inside a list", args: []string{"-target=all,listings"}, want: []string{"-target", `"all"`}},
		{name: "no target at all", args: []string{"-target=, ,"}, want: []string{"-target", "at least one"}},
		{name: "an http address without a port", args: []string{"-http-addr=localhost"}, want: []string{"-http-addr", `"localhost"`}},
		{name: "a bare port number", args: []string{"-http-addr=8080"}, want: []string{"-http-addr"}},
		{name: "a database URL of another kind", args: []string{"-database-url=mysql://db/piazza"}, want: []string{"-database-url"}},
		{name: "a NATS port out of range", args: []string{"-nats-port=70000"}, want: []string{"-nats-port", "70000"}},
		{name: "a negative NATS port", args: []string{"-nats-port=-1"}, want: []string{"-nats-port"}},
		{name: "zero replicas", args: []string{"-stream-replicas=0"}, want: []string{"-stream-replicas", "1 to 5"}},
		{name: "too many replicas", args: []string{"-stream-replicas=7"}, want: []string{"-stream-replicas"}},
		{name: "replicas that are not a number", args: []string{"-stream-replicas=three"}, want: []string{"-stream-replicas", "three"}},
		{name: "an unknown log level", args: []string{"-log-level=loud"}, want: []string{"-log-level", `"loud"`}},
		{name: "an unknown log format", args: []string{"-log-format=xml"}, want: []string{"-log-format", "xml"}},
		{name: "demo data that is not a boolean", args: []string{"-demo-data=maybe"}, want: []string{"-demo-data", "maybe"}},
		{name: "an origin without a scheme", args: []string{"-allowed-origins=https://gent.be,gent.be"}, want: []string{"-allowed-origins", `"gent.be"`}},
		{name: "a websocket origin", args: []string{"-allowed-origins=ws://gent.be"}, want: []string{"-allowed-origins"}},
		{name: "a drain delay that is not a duration", args: []string{"-drain-delay=5"}, want: []string{"-drain-delay"}},
		{name: "a negative drain delay", args: []string{"-drain-delay=-1s"}, want: []string{"-drain-delay"}},
		{name: "a debug address on every interface", args: []string{"-debug-addr=:6060"}, want: []string{"-debug-addr", "loopback"}},
		{name: "a debug address on a public interface", args: []string{"-debug-addr=0.0.0.0:6060"}, want: []string{"-debug-addr", "loopback"}},
		{name: "a debug address naming another host", args: []string{"-debug-addr=example.org:6060"}, want: []string{"-debug-addr"}},
		{name: "a debug address without a port", args: []string{"-debug-addr=127.0.0.1"}, want: []string{"-debug-addr"}},
		{name: "a status post interval without a unit", args: []string{"-status-post-interval=30"}, want: []string{"-status-post-interval", `"30"`}},
		{name: "a negative status post interval", args: []string{"-status-post-interval=-1s"}, want: []string{"-status-post-interval", "-1s"}},
		{name: "a status post interval that is not a duration", env: map[string]string{"PIAZZA_STATUS_POST_INTERVAL": "often"},
			want: []string{"-status-post-interval", "often"}},
		{name: "a stray positional argument", args: []string{"-target=all", "serve"}, want: []string{`"serve"`}},
		{name: "an unknown flag", args: []string{"-port=80"}, want: []string{"port"}},
		{name: "a bad value from the environment", env: map[string]string{"LOG_LEVEL": "chatty"}, want: []string{"log-level", "chatty"}},
		{name: "every bad setting at once", args: []string{"-target=x", "-http-addr=y", "-log-level=z", "-stream-replicas=0"},
			want: []string{"-target", "-http-addr", "-log-level", "-stream-replicas"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseConfig(tt.args, envOf(tt.env), io.Discard)
			if err == nil {
				t.Fatalf("parseConfig(%q) = %+v, want an error", tt.args, cfg)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestUsage(t *testing.T) {
	for _, arg := range []string{"-h", "-help", "--help"} {
		t.Run(arg, func(t *testing.T) {
			var stderr bytes.Buffer
			_, err := parseConfig([]string{arg}, envOf(nil), &stderr)
			if !errors.Is(err, flag.ErrHelp) {
				t.Fatalf("parseConfig(%s) error = %v, want flag.ErrHelp", arg, err)
			}
			usage := stderr.String()
			if !strings.Contains(usage, "Usage: piazza") {
				t.Errorf("usage does not start with a synopsis:\n%s", usage)
			}
			for _, s := range settings {
				if !strings.Contains(usage, "(env "+s.env+")") {
					t.Errorf("usage does not name the variable %s", s.env)
				}
				if !strings.Contains(usage, "-"+s.flag+" ") {
					t.Errorf("usage does not name the flag -%s", s.flag)
				}
			}
		})
	}
	t.Run("an environment value shows as the flag's default", func(t *testing.T) {
		var stderr bytes.Buffer
		_, _ = parseConfig([]string{"-h"}, envOf(map[string]string{"HTTP_ADDR": "127.0.0.1:7777"}), &stderr)
		if !strings.Contains(stderr.String(), `(default "127.0.0.1:7777")`) {
			t.Errorf("usage does not show the value from HTTP_ADDR:\n%s", stderr.String())
		}
	})
}

func TestSettingsAreDistinct(t *testing.T) {
	flags, envs := map[string]bool{}, map[string]bool{}
	for _, s := range settings {
		if flags[s.flag] || envs[s.env] {
			t.Errorf("setting %s/%s is listed twice", s.flag, s.env)
		}
		flags[s.flag], envs[s.env] = true, true
		if s.help == "" {
			t.Errorf("setting -%s has no help", s.flag)
		}
	}
}

func TestRunStopsOnHelpAndBadConfig(t *testing.T) {
	t.Run("-h prints usage and returns nil", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		if err := run(context.Background(), []string{"-h"}, envOf(nil), &stdout, &stderr); err != nil {
			t.Fatalf("run -h = %v, want nil", err)
		}
		if !strings.Contains(stderr.String(), "DATABASE_URL") {
			t.Errorf("run -h printed no usage: %q", stderr.String())
		}
	})
	t.Run("invalid configuration fails before connecting to anything", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		// An unreachable database and NATS would make run hang or fail
		// differently if it got past the configuration.
		err := run(context.Background(), []string{"-target=nope", "-nats-url=nats://127.0.0.1:1"},
			envOf(map[string]string{"DATABASE_URL": "postgres://127.0.0.1:1/x"}), &stdout, &stderr)
		if err == nil || !strings.Contains(err.Error(), "invalid configuration") || !strings.Contains(err.Error(), `"nope"`) {
			t.Fatalf("run = %v, want an invalid configuration error naming the target", err)
		}
		if stdout.Len() > 0 {
			t.Errorf("run printed %q on stdout", stdout.String())
		}
	})
}

func TestServeDebug(t *testing.T) {
	addr, stop, err := serveDebug("127.0.0.1:0", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/goroutine?debug=1"} {
		res, err := http.Get("http://" + addr.String() + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Errorf("GET %s = %d, want 200", path, res.StatusCode)
		}
	}
	res, err := http.Get("http://" + addr.String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("GET /healthz on the debug listener = %d, want 404: it serves profiles only", res.StatusCode)
	}
}
