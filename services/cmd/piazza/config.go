package main

import (
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Targets piazza can run.
var knownTargets = []string{"accounts", "listings", "calendar", "notifier"}

// Config is every setting of the piazza process.
type Config struct {
	Targets        []string
	HTTPAddr       string
	DatabaseURL    string
	NATSURL        string
	DataDir        string
	NATSPort       int
	StreamReplicas int
	LogLevel       slog.Level
	LogFormat      string
	DemoData       bool
	AllowedOrigins []string
	DrainDelay     time.Duration
	// SigningKey is the base64 Ed25519 seed that signs access tokens (the
	// accounts target only); empty keeps one in the data dir.
	SigningKey string
	// DebugAddr is a loopback address serving net/http/pprof, apart from
	// the API; empty: off.
	DebugAddr string
	// StatusPostInterval is the least time between two status posts of a
	// stall (the listings target); 0: no limit.
	StatusPostInterval time.Duration
}

// DefaultDatabaseURL is the role and database scripts/dev-postgres.sh makes.
const DefaultDatabaseURL = "postgres://piazza:piazza@127.0.0.1:5432/piazza?sslmode=disable"

// setting is one configuration value: an environment variable with a flag
// that overrides it.
type setting struct {
	flag, env, def, help string
}

var settings = []setting{
	{"target", "PIAZZA_TARGET", "all", "services to run: all, or a comma list of " + strings.Join(knownTargets, ", ")},
	{"http-addr", "HTTP_ADDR", ":8080", "HTTP listen address"},
	{"database-url", "DATABASE_URL", DefaultDatabaseURL, "PostgreSQL connection URL"},
	{"nats-url", "NATS_URL", "", "NATS server URL; empty starts an embedded nats-server with JetStream"},
	{"data-dir", "PIAZZA_DATA_DIR", "data", "directory for the embedded NATS file store"},
	{"nats-port", "PIAZZA_NATS_PORT", "4223", "loopback port of the embedded NATS (a free one is used if taken)"},
	{"stream-replicas", "PIAZZA_STREAM_REPLICAS", "1", "JetStream replicas of the streams (3 on a NATS cluster)"},
	{"log-level", "LOG_LEVEL", "info", "debug, info, warn or error"},
	{"log-format", "LOG_FORMAT", "json", "json or text"},
	{"demo-data", "PIAZZA_DEMO_DATA", "true", "seed demo cities and markets into an empty database"},
	{"allowed-origins", "PIAZZA_ALLOWED_ORIGINS", "", "comma list of extra origins (https://example.org) allowed to open websockets"},
	{"drain-delay", "PIAZZA_DRAIN_DELAY", "0s", "time between failing /readyz and closing the listener on shutdown"},
	{"signing-key", "PIAZZA_SIGNING_KEY", "", "base64 Ed25519 seed signing access tokens (accounts target); empty: generated once and kept in <data-dir>/signing.key"},
	{"debug-addr", "PIAZZA_DEBUG_ADDR", "", "loopback address (127.0.0.1:6060) of a separate listener serving /debug/pprof; empty: off"},
	{"status-post-interval", "PIAZZA_STATUS_POST_INTERVAL", "30s", "least time between two status posts of one stall (listings target); 0: no limit"},
}

// parseConfig reads the environment through getenv, then flags from args,
// which override it.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (Config, error) {
	fs := flag.NewFlagSet("piazza", flag.ContinueOnError)
	fs.SetOutput(stderr)
	vals := map[string]*string{}
	for _, s := range settings {
		def := s.def
		if v := getenv(s.env); v != "" {
			def = v
		}
		vals[s.flag] = fs.String(s.flag, def, fmt.Sprintf("%s (env %s)", s.help, s.env))
	}
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: piazza [flags]\n\nRuns Piazza's services. Every flag can also be set by its environment variable;\na flag wins over the variable.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q (settings are flags such as -target=all)", fs.Arg(0))
	}
	var cfg Config
	var errs []error
	cfg.Targets, errs = parseTargets(*vals["target"], errs)
	cfg.HTTPAddr = *vals["http-addr"]
	if _, _, err := net.SplitHostPort(cfg.HTTPAddr); err != nil {
		errs = append(errs, fmt.Errorf("-http-addr %q: must be host:port or :port", cfg.HTTPAddr))
	}
	cfg.DatabaseURL = *vals["database-url"]
	if !strings.HasPrefix(cfg.DatabaseURL, "postgres://") && !strings.HasPrefix(cfg.DatabaseURL, "postgresql://") {
		errs = append(errs, errors.New("-database-url: must be a postgres:// URL"))
	}
	cfg.NATSURL = *vals["nats-url"]
	cfg.DataDir = filepath.Clean(*vals["data-dir"])
	var err error
	if cfg.NATSPort, err = strconv.Atoi(*vals["nats-port"]); err != nil || cfg.NATSPort < 0 || cfg.NATSPort > 65535 {
		errs = append(errs, fmt.Errorf("-nats-port %q: must be a port number", *vals["nats-port"]))
	}
	if cfg.StreamReplicas, err = strconv.Atoi(*vals["stream-replicas"]); err != nil || cfg.StreamReplicas < 1 || cfg.StreamReplicas > 5 {
		errs = append(errs, fmt.Errorf("-stream-replicas %q: must be 1 to 5", *vals["stream-replicas"]))
	}
	if err := cfg.LogLevel.UnmarshalText([]byte(*vals["log-level"])); err != nil {
		errs = append(errs, fmt.Errorf("-log-level %q: must be debug, info, warn or error", *vals["log-level"]))
	}
	cfg.LogFormat = *vals["log-format"]
	if cfg.LogFormat != "json" && cfg.LogFormat != "text" {
		errs = append(errs, fmt.Errorf("-log-format %q: must be json or text", cfg.LogFormat))
	}
	if cfg.DemoData, err = strconv.ParseBool(*vals["demo-data"]); err != nil {
		errs = append(errs, fmt.Errorf("-demo-data %q: must be true or false", *vals["demo-data"]))
	}
	for _, o := range strings.Split(*vals["allowed-origins"], ",") {
		if o = strings.TrimSpace(o); o != "" {
			if !strings.HasPrefix(o, "http://") && !strings.HasPrefix(o, "https://") {
				errs = append(errs, fmt.Errorf("-allowed-origins: %q must start with http:// or https://", o))
			}
			cfg.AllowedOrigins = append(cfg.AllowedOrigins, o)
		}
	}
	if cfg.DrainDelay, err = time.ParseDuration(*vals["drain-delay"]); err != nil || cfg.DrainDelay < 0 {
		errs = append(errs, fmt.Errorf("-drain-delay %q: must be a duration such as 5s", *vals["drain-delay"]))
	}
	cfg.SigningKey = *vals["signing-key"]
	if cfg.SigningKey != "" {
		if b, err := base64.StdEncoding.DecodeString(cfg.SigningKey); err != nil || len(b) != 32 {
			errs = append(errs, errors.New("-signing-key: must be 32 bytes in base64 (openssl rand -base64 32)"))
		}
	}
	cfg.DebugAddr = *vals["debug-addr"]
	if cfg.DebugAddr != "" && !isLoopback(cfg.DebugAddr) {
		errs = append(errs, fmt.Errorf("-debug-addr %q: must be a loopback host:port such as 127.0.0.1:6060 (profiles are not for the network)", cfg.DebugAddr))
	}
	if cfg.StatusPostInterval, err = time.ParseDuration(*vals["status-post-interval"]); err != nil || cfg.StatusPostInterval < 0 {
		errs = append(errs, fmt.Errorf("-status-post-interval %q: must be a duration such as 30s, or 0 for no limit", *vals["status-post-interval"]))
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, fmt.Errorf("invalid configuration:\n%w", err)
	}
	return cfg, nil
}

func parseTargets(s string, errs []error) ([]string, []error) {
	if strings.TrimSpace(s) == "all" {
		return slices.Clone(knownTargets), errs
	}
	var out []string
	for _, t := range strings.Split(s, ",") {
		t = strings.TrimSpace(t)
		switch {
		case t == "":
		case !slices.Contains(knownTargets, t):
			errs = append(errs, fmt.Errorf("-target: unknown target %q (known: all, %s)", t, strings.Join(knownTargets, ", ")))
		case !slices.Contains(out, t):
			out = append(out, t)
		}
	}
	if len(out) == 0 && len(errs) == 0 {
		errs = append(errs, errors.New("-target: name at least one target"))
	}
	return out, errs
}

// isLoopback reports whether addr is host:port with a loopback host.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
