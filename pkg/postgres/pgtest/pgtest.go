// Package pgtest gives each test a fresh Postgres database, cloned from a
// template that is migrated once per migration fingerprint. Cloning a template
// takes about a tenth of a second; migrating from scratch for every test would not.
//
// The server comes from PIAZZA_TEST_DATABASE_URL or DATABASE_URL (default: the
// local piazza role). When it is unreachable the test is skipped, except under
// CI=true, where it fails: CI must never pass by skipping.
package pgtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultURL is where make test's scripts/dev-postgres.sh puts the test role.
const DefaultURL = "postgres://piazza:piazza@127.0.0.1:5432/piazza?sslmode=disable"

// BaseURL returns the admin URL tests create databases through.
func BaseURL(tb testing.TB) string {
	tb.Helper()
	for _, k := range []string{"PIAZZA_TEST_DATABASE_URL", "DATABASE_URL"} {
		if v := os.Getenv(k); v != "" {
			return v
		}
	}
	return DefaultURL
}

// Template describes a migrated database to clone.
type Template struct {
	// Name identifies the template, with Fingerprint changing whenever the
	// migrations do (see postgres.Fingerprint).
	Name, Fingerprint string
	// Migrate prepares a new, empty database at url.
	Migrate func(ctx context.Context, url string) error
}

// NewDatabase creates a database cloned from tmpl (building tmpl first if
// needed), drops it when the test ends, and returns its URL.
func NewDatabase(tb testing.TB, tmpl Template) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	base := BaseURL(tb)
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatalf("pgtest: Postgres is required under CI but unreachable at %s: %v", redact(base), err)
		}
		tb.Skipf("pgtest: Postgres unreachable (%v); run `make test`, which starts it", err)
	}
	defer admin.Close(context.Background())

	// Templates are per role: a clone of another role's template would hold
	// objects this role may not use.
	var role string
	if err := admin.QueryRow(ctx, "SELECT current_user").Scan(&role); err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	tplName := fmt.Sprintf("piazza_tpl_%s_%s_%s", tmpl.Name, tmpl.Fingerprint, shortHash(role))
	if err := ensureTemplate(ctx, admin, base, tplName, tmpl); err != nil {
		tb.Fatalf("pgtest: template %s: %v", tplName, err)
	}
	name := "piazza_test_" + randomHex(6)
	// FILE_COPY clones a small template about three times faster than
	// PostgreSQL 15's default WAL_LOG; older servers lack the option.
	if _, err := admin.Exec(ctx, fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s STRATEGY FILE_COPY", name, tplName)); err != nil {
		if _, err2 := admin.Exec(ctx, fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s", name, tplName)); err2 != nil {
			tb.Fatalf("pgtest: create database: %v", errors.Join(err, err2))
		}
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			tb.Logf("pgtest: drop %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			tb.Logf("pgtest: drop %s: %v", name, err)
		}
	})
	return withDatabase(base, name)
}

func ensureTemplate(ctx context.Context, admin *pgx.Conn, base, name string, tmpl Template) error {
	// Test binaries of several packages run at once: build each template once.
	if _, err := admin.Exec(ctx, `SELECT pg_advisory_lock(hashtextextended($1, 0))`, name); err != nil {
		return err
	}
	defer admin.Exec(context.Background(), `SELECT pg_advisory_unlock(hashtextextended($1, 0))`, name)
	var isTemplate bool
	err := admin.QueryRow(ctx, `SELECT datistemplate FROM pg_database WHERE datname = $1`, name).Scan(&isTemplate)
	if err == nil && isTemplate {
		return nil
	}
	if err == nil { // left half-built by a crashed run
		if _, err := admin.Exec(ctx, "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			return err
		}
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return err
	}
	if err := tmpl.Migrate(ctx, withDatabase(base, name)); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	_, err = admin.Exec(ctx, "ALTER DATABASE "+name+" IS_TEMPLATE true")
	return err
}

func withDatabase(base, db string) string {
	u, err := url.Parse(base)
	if err != nil {
		return base
	}
	u.Path = "/" + db
	return u.String()
}

func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Redacted()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// shortHash keeps identifiers short and safe whatever the role is called.
func shortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:3])
}
