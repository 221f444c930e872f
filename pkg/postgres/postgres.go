// Package postgres opens connection pools and applies embedded migrations for
// one service schema. Each service owns one schema; its pool's search_path is
// that schema, so its SQL names its own tables unqualified and cannot reach
// another service's tables by accident.
//
// It must never hold domain knowledge: no table of any service is named here.
package postgres

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
)

var identRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// ValidIdent reports whether s is a safe lower-case SQL identifier.
func ValidIdent(s string) bool { return identRE.MatchString(s) }

// Options tune a pool.
type Options struct {
	Schema   string // search_path of every connection; required
	AppName  string // application_name, shown in pg_stat_activity
	MaxConns int32  // 0: pool_max_conns from the URL, else DefaultMaxConns
	// AfterRelease, if set, is called with each connection given back to
	// the pool (pgxpool.Config.AfterRelease): outbox.Wake's, say.
	AfterRelease func(*pgx.Conn) bool
}

// DefaultMaxConns is a pool's size when neither Options nor the URL's
// pool_max_conns sets it. pgx's own default, max(4, CPUs), starves a service
// whose transactions wait on round trips and commits rather than on CPU:
// on two cores, four connections held the listings write path to a third of
// what Postgres does. Ten per service pool (and one for each outbox relay)
// keeps a whole split deployment (four services, several notifier replicas,
// pools filled only under load) within PostgreSQL's default max_connections
// of 100.
const DefaultMaxConns = 10

// Open connects a pool to url whose connections use opts.Schema as search_path,
// and checks that the server answers.
func Open(ctx context.Context, url string, opts Options) (*pgxpool.Pool, error) {
	if !ValidIdent(opts.Schema) {
		return nil, fmt.Errorf("postgres: invalid schema name %q", opts.Schema)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse DATABASE_URL: %w", err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = opts.Schema
	if opts.AppName != "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = opts.AppName
	}
	switch {
	case opts.MaxConns > 0:
		cfg.MaxConns = opts.MaxConns
	case !strings.Contains(url, "pool_max_conns"):
		cfg.MaxConns = DefaultMaxConns
	}
	cfg.AfterRelease = opts.AfterRelease
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: cannot reach %s: %w", redact(cfg.ConnConfig), err)
	}
	return pool, nil
}

func redact(c *pgx.ConnConfig) string {
	return fmt.Sprintf("%s@%s:%d/%s", c.User, c.Host, c.Port, c.Database)
}

// MigrationSet is one directory of goose SQL migrations. Sets are versioned
// independently: set Name keeps its versions in table goose_<Name> inside the
// schema, so a shared building block (the outbox, say) and the service's own
// migrations never compete for version numbers.
type MigrationSet struct {
	Name string
	FS   fs.FS
}

// Migrate applies every set to the pool's schema, creating the schema if
// needed. It holds a Postgres advisory lock for the schema throughout, so
// replicas that start together migrate one after another.
func Migrate(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger, sets ...MigrationSet) error {
	schema := pool.Config().ConnConfig.RuntimeParams["search_path"]
	if !ValidIdent(schema) {
		return fmt.Errorf("postgres: migrate: pool has no valid search_path schema (%q)", schema)
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("postgres: migrate %s: %w", schema, err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(hashtextextended('piazza.migrate.' || $1, 0))`, schema); err != nil {
		return fmt.Errorf("postgres: migrate %s: lock: %w", schema, err)
	}
	defer func() {
		// Unlock even if ctx is done; a broken connection releases the lock anyway.
		uctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, _ = conn.Exec(uctx, `SELECT pg_advisory_unlock(hashtextextended('piazza.migrate.' || $1, 0))`, schema)
	}()
	if _, err := conn.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{schema}.Sanitize()); err != nil {
		return fmt.Errorf("postgres: migrate %s: create schema: %w", schema, err)
	}
	db := stdlib.OpenDB(*pool.Config().ConnConfig.Copy())
	defer db.Close()
	db.SetMaxOpenConns(1)
	for _, set := range sets {
		if err := migrateSet(ctx, db, set, log); err != nil {
			return fmt.Errorf("postgres: migrate %s/%s: %w", schema, set.Name, err)
		}
	}
	return nil
}

func migrateSet(ctx context.Context, db *sql.DB, set MigrationSet, log *slog.Logger) error {
	if !ValidIdent(set.Name) {
		return fmt.Errorf("invalid migration set name %q", set.Name)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, set.FS,
		goose.WithTableName("goose_"+set.Name), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return err
	}
	results, err := p.Up(ctx)
	for _, r := range results {
		if r.Error == nil && !r.Empty {
			log.Info("migration applied", "set", set.Name, "version", r.Source.Version, "duration_ms", r.Duration.Milliseconds())
		}
	}
	if err != nil && !errors.Is(err, goose.ErrNoNextVersion) {
		return err
	}
	return nil
}

// Fingerprint hashes the contents of migration sets, so test templates can be
// rebuilt exactly when a migration changes.
func Fingerprint(sets ...MigrationSet) string {
	h := sha256.New()
	for _, set := range sets {
		var names []string
		_ = fs.WalkDir(set.FS, ".", func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				names = append(names, p)
			}
			return nil
		})
		sort.Strings(names)
		fmt.Fprintf(h, "set %s\n", set.Name)
		for _, n := range names {
			b, _ := fs.ReadFile(set.FS, n)
			fmt.Fprintf(h, "%s %d\n", n, len(b))
			h.Write(b)
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}
