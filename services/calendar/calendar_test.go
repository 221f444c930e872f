package calendar

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"
	_ "time/tzdata" // DST tests must not depend on the machine's zoneinfo

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/localeurope/piazza/pkg/bus"
	"github.com/localeurope/piazza/pkg/postgres"
	"github.com/localeurope/piazza/pkg/postgres/pgtest"
	"github.com/localeurope/piazza/services/contract"
)

// testLog writes to the test's output until the test ends, and nowhere after.
func testLog(tb testing.TB) *slog.Logger {
	tb.Helper()
	w := &testWriter{w: tb.Output()}
	tb.Cleanup(w.stop)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct {
	mu   sync.Mutex
	w    io.Writer
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return len(p), nil
	}
	return w.w.Write(p)
}

func (w *testWriter) stop() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}

func newDatabase(tb testing.TB) string {
	tb.Helper()
	return pgtest.NewDatabase(tb, pgtest.Template{
		Name:        "calendar",
		Fingerprint: postgres.Fingerprint(Migrations()...),
		Migrate: func(ctx context.Context, url string) error {
			pool, err := postgres.Open(ctx, url, postgres.Options{Schema: Schema})
			if err != nil {
				return err
			}
			defer pool.Close()
			return postgres.Migrate(ctx, pool, slog.New(slog.DiscardHandler), Migrations()...)
		},
	})
}

func openPool(tb testing.TB, url string) *pgxpool.Pool {
	tb.Helper()
	pool, err := postgres.Open(context.Background(), url, postgres.Options{Schema: Schema})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(pool.Close)
	return pool
}

func count(tb testing.TB, pool *pgxpool.Pool, sql string, args ...any) int {
	tb.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		tb.Fatalf("%s: %v", sql, err)
	}
	return n
}

func mustLoad(tb testing.TB, name string) *time.Location {
	tb.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		tb.Fatal(err)
	}
	return loc
}

// at is a wall-clock time in loc.
func at(tb testing.TB, loc *time.Location, s string) time.Time {
	tb.Helper()
	t, err := time.ParseInLocation("2006-01-02 15:04", s, loc)
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

func newEvent(tb testing.TB, typ, subject string, payload any) bus.Event {
	tb.Helper()
	ev, err := bus.NewEvent(contract.SourceListings, typ, subject, payload)
	if err != nil {
		tb.Fatal(err)
	}
	return ev
}

func cityEvent(tb testing.TB, slug, tz string, version int64) bus.Event {
	tb.Helper()
	return newEvent(tb, contract.TypeCityUpserted, "cities/"+slug, contract.CityV1{
		Slug: slug, Name: slug, Country: "DE", Timezone: tz, Languages: []string{"de"}, Version: version})
}

// marketDay is a market day payload in city from starts to ends.
func marketDay(city, name string, starts, ends time.Time, version int64) contract.MarketDayV1 {
	return contract.MarketDayV1{
		ID: uuid.NewString(), City: city, MarketID: uuid.NewString(), MarketName: name,
		PlaceID: uuid.NewString(), PlaceName: "Marktplatz", Date: starts.Format(time.DateOnly),
		StartsAt: starts, EndsAt: ends, Timezone: starts.Location().String(), Status: "scheduled", Version: version,
	}
}

func marketDayEvent(tb testing.TB, d contract.MarketDayV1) bus.Event {
	tb.Helper()
	return newEvent(tb, contract.TypeMarketDayScheduled, "market-days/"+d.ID, d)
}

// entry reads one calendar entry with its last update time.
func entry(tb testing.TB, pool *pgxpool.Pool, id string) (Entry, time.Time) {
	tb.Helper()
	var e Entry
	var updated time.Time
	err := pool.QueryRow(context.Background(), `
		SELECT id::text, city, kind, title, place_id::text, place_name, starts_at, ends_at, status, source, version, updated_at
		FROM entries WHERE id = $1`, id).Scan(&e.ID, &e.City, &e.Kind, &e.Title, &e.PlaceID, &e.PlaceName,
		&e.StartsAt, &e.EndsAt, &e.Status, &e.Source, &e.Version, &updated)
	if err != nil {
		tb.Fatalf("entry %s: %v", id, err)
	}
	return e, updated
}

func mustJSON(tb testing.TB, v any) string {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}
