package postgres_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/localeurope/piazza/pkg/postgres"
	"github.com/localeurope/piazza/pkg/postgres/pgtest"
)

// Two sets that both start at version 1: each keeps its own version table.
func stallSet() postgres.MigrationSet {
	return postgres.MigrationSet{Name: "stalls", FS: fstest.MapFS{
		"00001_stalls.sql": {Data: []byte(`-- +goose Up
CREATE TABLE stalls (id int PRIMARY KEY, name text NOT NULL);
-- +goose Down
DROP TABLE stalls;
`)},
		// Fails on a second run: proves each migration is applied once.
		"00002_seed.sql": {Data: []byte(`-- +goose Up
INSERT INTO stalls VALUES (1, 'Kaas Van Gent');
-- +goose Down
DELETE FROM stalls;
`)},
	}}
}

func pitchSet() postgres.MigrationSet {
	return postgres.MigrationSet{Name: "pitches", FS: fstest.MapFS{
		"00001_pitches.sql": {Data: []byte(`-- +goose Up
CREATE TABLE pitches (id int PRIMARY KEY);
-- +goose Down
DROP TABLE pitches;
`)},
	}}
}

func TestMigrate(t *testing.T) {
	t.Run("applies every set into the pool's schema, and a second run changes nothing", func(t *testing.T) {
		pool := openPool(t, freshDatabase(t), "svc")
		ctx := testContext(t)
		for run := 1; run <= 2; run++ {
			if err := postgres.Migrate(ctx, pool, discardLog(), stallSet(), pitchSet()); err != nil {
				t.Fatalf("Migrate, run %d: %v", run, err)
			}
		}
		for _, table := range []string{"svc.stalls", "svc.pitches", "svc.goose_stalls", "svc.goose_pitches"} {
			if !tableExists(t, pool, table) {
				t.Errorf("table %s does not exist", table)
			}
		}
		for _, table := range []string{"public.stalls", "public.goose_stalls", "public.goose_db_version", "svc.goose_db_version"} {
			if tableExists(t, pool, table) {
				t.Errorf("table %s exists; everything belongs in svc's own version tables", table)
			}
		}
		if n := count(t, pool, "SELECT count(*) FROM stalls"); n != 1 {
			t.Errorf("stalls holds %d rows, want the one seeded row", n)
		}
		assertAppliedOnce(t, pool, "goose_stalls", 2)
		assertAppliedOnce(t, pool, "goose_pitches", 1)
	})

	t.Run("a migration added later is applied on the next run, alone", func(t *testing.T) {
		pool := openPool(t, freshDatabase(t), "svc")
		ctx := testContext(t)
		set := stallSet()
		if err := postgres.Migrate(ctx, pool, discardLog(), set); err != nil {
			t.Fatal(err)
		}
		set.FS.(fstest.MapFS)["00003_city.sql"] = &fstest.MapFile{Data: []byte(`-- +goose Up
ALTER TABLE stalls ADD COLUMN city text NOT NULL DEFAULT 'ghent';
`)}
		if err := postgres.Migrate(ctx, pool, discardLog(), set); err != nil {
			t.Fatalf("Migrate with a new migration: %v", err)
		}
		if n := count(t, pool, "SELECT count(*) FROM stalls WHERE city = 'ghent'"); n != 1 {
			t.Errorf("%d stalls have the new column set, want 1", n)
		}
		assertAppliedOnce(t, pool, "goose_stalls", 3)
	})

	t.Run("five replicas migrating a fresh database at once all succeed and apply each migration once", func(t *testing.T) {
		url := freshDatabase(t)
		pools := make([]*pgxpool.Pool, 5)
		for i := range pools {
			pools[i] = openPool(t, url, "svc")
		}
		ctx := testContext(t)
		errs := make([]error, len(pools))
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i, pool := range pools {
			wg.Go(func() {
				<-start
				errs[i] = postgres.Migrate(ctx, pool, discardLog(), stallSet(), pitchSet())
			})
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("replica %d: %v", i, err)
			}
		}
		if n := count(t, pools[0], "SELECT count(*) FROM stalls"); n != 1 {
			t.Errorf("stalls holds %d rows, want 1", n)
		}
		assertAppliedOnce(t, pools[0], "goose_stalls", 2)
		assertAppliedOnce(t, pools[0], "goose_pitches", 1)
	})

	t.Run("a failing migration is reported with its schema and set, and rolled back", func(t *testing.T) {
		pool := openPool(t, freshDatabase(t), "svc")
		bad := postgres.MigrationSet{Name: "broken", FS: fstest.MapFS{
			"00001_broken.sql": {Data: []byte(`-- +goose Up
CREATE TABLE half (id int);
INSERT INTO no_such_table VALUES (1);
`)},
		}}
		err := postgres.Migrate(testContext(t), pool, discardLog(), bad)
		if err == nil {
			t.Fatal("Migrate succeeded")
		}
		if !strings.Contains(err.Error(), "svc/broken") {
			t.Errorf("error %q does not name svc/broken", err)
		}
		if tableExists(t, pool, "svc.half") {
			t.Error("the failed migration's first statement was kept")
		}
	})

	t.Run("rejects a set whose name is not a safe identifier", func(t *testing.T) {
		pool := openPool(t, freshDatabase(t), "svc")
		set := pitchSet()
		set.Name = "pitches; DROP TABLE x"
		if err := postgres.Migrate(testContext(t), pool, discardLog(), set); err == nil {
			t.Fatal("Migrate accepted an unsafe set name")
		}
	})

	t.Run("rejects a pool that was not opened with a schema", func(t *testing.T) {
		pool, err := pgxpool.New(testContext(t), freshDatabase(t))
		if err != nil {
			t.Fatal(err)
		}
		defer pool.Close()
		if err := postgres.Migrate(testContext(t), pool, discardLog(), pitchSet()); err == nil {
			t.Fatal("Migrate ran on a pool without a search_path schema")
		}
	})
}

func TestOpen(t *testing.T) {
	t.Run("rejects a schema name that is not a safe identifier, before connecting", func(t *testing.T) {
		for _, schema := range []string{"", "Listings", "list-ings", "1listings", `listings"; DROP SCHEMA public; --`, strings.Repeat("a", 64)} {
			// Nothing listens on port 1: an error about the schema proves it
			// was checked first.
			_, err := postgres.Open(testContext(t), "postgres://nobody@127.0.0.1:1/none?connect_timeout=1", postgres.Options{Schema: schema})
			if err == nil || !strings.Contains(err.Error(), "invalid schema name") {
				t.Errorf("Open with schema %q: err = %v, want an invalid schema name error", schema, err)
			}
		}
	})

	t.Run("connections use the schema as search_path and carry the application name", func(t *testing.T) {
		pool, err := postgres.Open(testContext(t), freshDatabase(t), postgres.Options{Schema: "listings", AppName: "piazza-listings", MaxConns: 3})
		if err != nil {
			t.Fatal(err)
		}
		defer pool.Close()
		var searchPath, appName string
		if err := pool.QueryRow(testContext(t), "SELECT current_setting('search_path'), current_setting('application_name')").Scan(&searchPath, &appName); err != nil {
			t.Fatal(err)
		}
		if searchPath != "listings" || appName != "piazza-listings" {
			t.Errorf("search_path = %q, application_name = %q", searchPath, appName)
		}
		if got := pool.Config().MaxConns; got != 3 {
			t.Errorf("MaxConns = %d, want 3", got)
		}
	})

	t.Run("a pool has DefaultMaxConns unless the URL's pool_max_conns says otherwise", func(t *testing.T) {
		url := freshDatabase(t)
		sep := "?"
		if strings.Contains(url, "?") {
			sep = "&"
		}
		for _, tc := range []struct {
			url  string
			want int32
		}{{url, postgres.DefaultMaxConns}, {url + sep + "pool_max_conns=7", 7}} {
			pool, err := postgres.Open(testContext(t), tc.url, postgres.Options{Schema: "svc"})
			if err != nil {
				t.Fatal(err)
			}
			if got := pool.Config().MaxConns; got != tc.want {
				t.Errorf("MaxConns = %d with %q, want %d", got, tc.url, tc.want)
			}
			pool.Close()
		}
	})

	t.Run("an unreachable server is an error that does not reveal the password", func(t *testing.T) {
		_, err := postgres.Open(testContext(t), "postgres://piazza:s3cret@127.0.0.1:1/piazza?connect_timeout=1", postgres.Options{Schema: "svc"})
		if err == nil {
			t.Fatal("Open succeeded against a closed port")
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("error reveals the password: %v", err)
		}
	})
}

func TestFingerprint(t *testing.T) {
	base := postgres.Fingerprint(stallSet(), pitchSet())
	if again := postgres.Fingerprint(stallSet(), pitchSet()); again != base {
		t.Fatalf("fingerprint is not stable: %s then %s", base, again)
	}
	changed := func(name string, mutate func(s, p *postgres.MigrationSet)) {
		t.Run(name, func(t *testing.T) {
			s, p := stallSet(), pitchSet()
			mutate(&s, &p)
			if got := postgres.Fingerprint(s, p); got == base {
				t.Errorf("fingerprint stayed %s", got)
			}
		})
	}
	changed("changes when a file's content changes", func(s, _ *postgres.MigrationSet) {
		s.FS.(fstest.MapFS)["00002_seed.sql"].Data = []byte("-- +goose Up\nINSERT INTO stalls VALUES (2, 'Bakkerij');\n")
	})
	changed("changes when a file is added", func(_, p *postgres.MigrationSet) {
		p.FS.(fstest.MapFS)["00002_more.sql"] = &fstest.MapFile{Data: []byte("-- +goose Up\nSELECT 1;\n")}
	})
	changed("changes when a file is renamed", func(_, p *postgres.MigrationSet) {
		m := p.FS.(fstest.MapFS)
		m["00002_pitches.sql"] = m["00001_pitches.sql"]
		delete(m, "00001_pitches.sql")
	})
	changed("changes when a set is renamed", func(s, _ *postgres.MigrationSet) { s.Name = "booths" })
}

func TestValidIdent(t *testing.T) {
	for s, want := range map[string]bool{
		"listings": true, "_x": true, "svc_2": true, strings.Repeat("a", 63): true,
		"": false, "Listings": false, "2svc": false, "a-b": false, "a.b": false, strings.Repeat("a", 64): false,
	} {
		if got := postgres.ValidIdent(s); got != want {
			t.Errorf("ValidIdent(%q) = %v, want %v", s, got, want)
		}
	}
}

// freshDatabase returns the URL of a new, empty database.
func freshDatabase(tb testing.TB) string {
	tb.Helper()
	return pgtest.NewDatabase(tb, pgtest.Template{Name: "empty", Fingerprint: "v1",
		Migrate: func(context.Context, string) error { return nil }})
}

func openPool(tb testing.TB, url, schema string) *pgxpool.Pool {
	tb.Helper()
	pool, err := postgres.Open(testContext(tb), url, postgres.Options{Schema: schema})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(pool.Close)
	return pool
}

func tableExists(tb testing.TB, pool *pgxpool.Pool, qualified string) bool {
	tb.Helper()
	var ok bool
	if err := pool.QueryRow(testContext(tb), "SELECT to_regclass($1) IS NOT NULL", qualified).Scan(&ok); err != nil {
		tb.Fatal(err)
	}
	return ok
}

func count(tb testing.TB, pool *pgxpool.Pool, query string) int {
	tb.Helper()
	var n int
	if err := pool.QueryRow(testContext(tb), query).Scan(&n); err != nil {
		tb.Fatalf("%s: %v", query, err)
	}
	return n
}

// assertAppliedOnce checks that goose recorded versions 1..n exactly once each.
func assertAppliedOnce(tb testing.TB, pool *pgxpool.Pool, table string, n int) {
	tb.Helper()
	rows, err := pool.Query(testContext(tb), "SELECT version_id, count(*) FROM "+table+" WHERE version_id > 0 AND is_applied GROUP BY version_id ORDER BY version_id")
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	var versions []int64
	for rows.Next() {
		var v, c int64
		if err := rows.Scan(&v, &c); err != nil {
			tb.Fatal(err)
		}
		if c != 1 {
			tb.Errorf("%s: version %d recorded %d times", table, v, c)
		}
		versions = append(versions, v)
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	if len(versions) != n || (n > 0 && versions[n-1] != int64(n)) {
		tb.Errorf("%s: applied versions %v, want 1..%d", table, versions, n)
	}
}

func testContext(tb testing.TB) context.Context {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	tb.Cleanup(cancel)
	return ctx
}

func discardLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
