package pgtest_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/localeurope/piazza/pkg/postgres/pgtest"
)

func TestNewDatabase(t *testing.T) {
	tmpl := pgtest.Template{Name: "pgtest_self", Fingerprint: "v1", Migrate: func(ctx context.Context, url string) error {
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, `CREATE TABLE marker (n int); INSERT INTO marker VALUES (1)`)
		return err
	}}
	var firstName string

	t.Run("a test's database is a copy of the migrated template", func(t *testing.T) {
		dbURL := pgtest.NewDatabase(t, tmpl)
		firstName = dbName(t, dbURL)
		if !strings.HasPrefix(firstName, "piazza_test_") {
			t.Errorf("database %q is not named as a test database", firstName)
		}
		conn := connect(t, dbURL)
		if n := markers(t, conn); n != 1 {
			t.Errorf("marker holds %d rows, want the template's 1", n)
		}
		if _, err := conn.Exec(testContext(t), `INSERT INTO marker VALUES (2)`); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("another test gets its own copy, untouched by the first", func(t *testing.T) {
		dbURL := pgtest.NewDatabase(t, tmpl)
		if dbName(t, dbURL) == firstName {
			t.Fatal("both tests got the same database")
		}
		if n := markers(t, connect(t, dbURL)); n != 1 {
			t.Errorf("marker holds %d rows, want 1", n)
		}
	})

	t.Run("a test's database is dropped when the test ends", func(t *testing.T) {
		conn := connect(t, pgtest.BaseURL(t))
		var exists bool
		if err := conn.QueryRow(testContext(t), `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, firstName).Scan(&exists); err != nil {
			t.Fatal(err)
		}
		if exists {
			t.Errorf("database %s outlived its test", firstName)
		}
	})
}

func dbName(tb testing.TB, raw string) string {
	tb.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		tb.Fatal(err)
	}
	return strings.TrimPrefix(u.Path, "/")
}

func connect(tb testing.TB, url string) *pgx.Conn {
	tb.Helper()
	conn, err := pgx.Connect(testContext(tb), url)
	if err != nil {
		tb.Skipf("Postgres unreachable: %v", err)
	}
	tb.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func markers(tb testing.TB, conn *pgx.Conn) int {
	tb.Helper()
	var n int
	if err := conn.QueryRow(testContext(tb), `SELECT count(*) FROM marker`).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

func testContext(tb testing.TB) context.Context {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	tb.Cleanup(cancel)
	return ctx
}
