package listings

import (
	"context"
	"github.com/localeurope/piazza/pkg/auth"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
	_ "time/tzdata" // DST tests must not depend on the machine's zoneinfo

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/localeurope/piazza/pkg/app"
	"github.com/localeurope/piazza/pkg/bus/bustest"
	"github.com/localeurope/piazza/pkg/postgres"
	"github.com/localeurope/piazza/pkg/postgres/pgtest"
	"github.com/localeurope/piazza/pkg/web"
	"github.com/nats-io/nats.go/jetstream"
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

// newDatabase returns the URL of a fresh, migrated listings database.
func newDatabase(tb testing.TB) string {
	tb.Helper()
	return pgtest.NewDatabase(tb, pgtest.Template{
		Name:        "listings",
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
	pool, err := postgres.Open(context.Background(), url, postgres.Options{Schema: Schema, MaxConns: 16})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(pool.Close)
	return pool
}

// newStore returns a store on a fresh database.
func newStore(tb testing.TB) *Store {
	tb.Helper()
	return NewStore(openPool(tb, newDatabase(tb)))
}

func mustLoad(tb testing.TB, name string) *time.Location {
	tb.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		tb.Fatal(err)
	}
	return loc
}

func mustExec(tb testing.TB, s *Store, sql string, args ...any) {
	tb.Helper()
	if _, err := s.pool.Exec(context.Background(), sql, args...); err != nil {
		tb.Fatalf("%s: %v", sql, err)
	}
}

func count(tb testing.TB, s *Store, sql string, args ...any) int {
	tb.Helper()
	var n int
	if err := s.pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		tb.Fatalf("%s: %v", sql, err)
	}
	return n
}

func addCity(tb testing.TB, s *Store, slug, tz string) {
	tb.Helper()
	mustExec(tb, s, `INSERT INTO cities (slug, name, country, timezone, languages) VALUES ($1, $1, 'BE', $2, '{en}')`, slug, tz)
}

// addPlace adds a square with one pitch per code.
func addPlace(tb testing.TB, s *Store, city string, codes ...string) string {
	tb.Helper()
	id := newID()
	mustExec(tb, s, `INSERT INTO places (id, city, name, lat, lon, plan_w, plan_h) VALUES ($1, $2, $3, 51, 3.7, 30, 10)`, id, city, "Square "+id)
	for i, code := range codes {
		mustExec(tb, s, `INSERT INTO pitches (id, city, place_id, code, x, y, w, h) VALUES ($1, $2, $3, $4, $5, 1, 3, 3)`,
			newID(), city, id, code, float64(i)*4)
	}
	return id
}

type marketSpec struct {
	Name                   string
	Weekdays               []int16
	Opens, Closes          string
	SeasonStart, SeasonEnd string // SeasonEnd may be empty
	Exceptions             []string
	AutoAccept             bool
}

func addMarket(tb testing.TB, s *Store, city, placeID string, m marketSpec) string {
	tb.Helper()
	id := newID()
	var end *string
	if m.SeasonEnd != "" {
		end = &m.SeasonEnd
	}
	mustExec(tb, s, `
		INSERT INTO markets (id, city, place_id, name, season_start, season_end, exceptions, auto_accept)
		VALUES ($1, $2, $3, $4, $5, $6, $7::date[], $8)`, id, city, placeID, m.Name, m.SeasonStart, end, nonNil(m.Exceptions), m.AutoAccept)
	for _, wd := range m.Weekdays {
		mustExec(tb, s, `INSERT INTO market_schedule (market_id, city, weekday, opens, closes) VALUES ($1, $2, $3, $4, $5)`,
			id, city, wd, m.Opens, m.Closes)
	}
	return id
}

// marketDay is a fixture: one market day on a square with the given pitches.
type marketDay struct {
	ID, City, MarketID, MarketName, PlaceID, PlaceName, Date string
	StartsAt, EndsAt                                         time.Time
}

// addMarketDay creates a city (if needed), a square with the pitches, a market
// and one market day on date, 07:00–13:00 in Europe/Brussels. The market
// auto-accepts, as every market did before markets had the setting.
func addMarketDay(tb testing.TB, s *Store, city, date string, codes ...string) marketDay {
	tb.Helper()
	if count(tb, s, `SELECT count(*) FROM cities WHERE slug = $1`, city) == 0 {
		addCity(tb, s, city, "Europe/Brussels")
	}
	placeID := addPlace(tb, s, city, codes...)
	name := "Market " + placeID[len(placeID)-6:]
	marketID := addMarket(tb, s, city, placeID, marketSpec{Name: name, Weekdays: []int16{1, 2, 3, 4, 5, 6, 7},
		Opens: "07:00", Closes: "13:00", SeasonStart: "2026-01-01", AutoAccept: true})
	d, err := time.Parse(time.DateOnly, date)
	if err != nil {
		tb.Fatal(err)
	}
	loc := mustLoad(tb, "Europe/Brussels")
	md := marketDay{ID: newID(), City: city, MarketID: marketID, MarketName: name, PlaceID: placeID,
		PlaceName: "Square " + placeID, Date: date,
		StartsAt: LocalTime(d, 7*time.Hour, loc), EndsAt: LocalTime(d, 13*time.Hour, loc)}
	mustExec(tb, s, `INSERT INTO market_days (id, city, market_id, date, starts_at, ends_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		md.ID, city, marketID, date, md.StartsAt, md.EndsAt)
	return md
}

func addVendor(tb testing.TB, s *Store, city, name string) Vendor {
	tb.Helper()
	v, err := s.CreateVendor(context.Background(), NewVendor{City: city, Name: name, Kind: "farmer"})
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

// service is market-listings started with Run, behind the process's
// middleware, as the piazza binary serves it.
type service struct {
	URL   string
	Store *Store // a second pool on the service's database, for assertions
	JS    jetstream.JetStream
}

func startService(tb testing.TB, now time.Time) *service {
	tb.Helper()
	log := testLog(tb)
	dbURL := newDatabase(tb)
	nc, js := bustest.Connect(tb)
	mux := http.NewServeMux()
	verifier := auth.NewVerifier(nil)
	verifier.SetKey(testKey.ID, testKey.Public())
	srv := httptest.NewServer(web.Middleware{Log: log}.Wrap(mux, func(h http.Handler) http.Handler { return verifier.Wrap(h, log) }))
	tb.Cleanup(srv.Close)

	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	var once sync.Once
	var runErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		runErr = Run(ctx, app.Deps{
			Log: log, DatabaseURL: dbURL, NATS: nc, JS: js, StreamReplicas: 1,
			Mux: mux, Health: web.NewHealth(), DemoData: true,
			Now:        func() time.Time { return now },
			Ready:      func() { once.Do(func() { close(ready) }) },
			OnShutdown: func(func()) {},
		})
	}()
	tb.Cleanup(func() {
		cancel()
		select {
		case <-done:
			if runErr != nil {
				tb.Errorf("listings.Run: %v", runErr)
			}
		case <-time.After(30 * time.Second):
			tb.Errorf("listings.Run did not return after cancel")
		}
	})
	select {
	case <-ready:
	case <-done:
		tb.Fatalf("listings.Run returned before ready: %v", runErr)
	case <-time.After(60 * time.Second):
		tb.Fatal("listings.Run not ready after 60s")
	}
	return &service{URL: srv.URL, Store: &Store{pool: openPool(tb, dbURL)}, JS: js}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
