package listings

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/localeurope/piazza/pkg/web"
	"github.com/localeurope/piazza/pkg/zones"
)

// Store is the listings schema. Exported methods run one transaction each;
// unexported helpers take the transaction.
type Store struct {
	pool *pgxpool.Pool
	// statusPostInterval, when set, replaces DefaultStatusPostInterval
	// (Options); a Store made without it keeps the default.
	statusPostInterval *time.Duration
}

// NewStore is a Store over pool, whose connections must use the listings
// schema (postgres.Open with Schema). The service makes its own in Run; the
// load harness makes one to register stalls without HTTP.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

func newID() string { return uuid.Must(uuid.NewV7()).String() }

// Cities lists a page of cities, ordered by slug.
func (s *Store) Cities(ctx context.Context, p page) ([]City, *string, error) {
	rows, err := s.pool.Query(ctx, `SELECT slug, name, country, timezone, languages FROM cities
		WHERE slug > $1 ORDER BY slug LIMIT $2`, p.After, p.Limit+1)
	if err != nil {
		return nil, nil, fmt.Errorf("listings: cities: %w", err)
	}
	cities, err := pgx.CollectRows(rows, pgx.RowToStructByPos[City])
	if err != nil {
		return nil, nil, fmt.Errorf("listings: cities: %w", err)
	}
	cities, more := trim(p, cities)
	var last string
	if len(cities) > 0 {
		last = cities[len(cities)-1].Slug
	}
	return cities, p.next(more, last), nil
}

// City returns one city or ENotFound.
func (s *Store) City(ctx context.Context, slug string) (City, error) {
	return city(ctx, s.pool, slug)
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func city(ctx context.Context, q querier, slug string) (City, error) {
	// Not a slug (e.g. not UTF-8, which Postgres refuses): no such city.
	if !slugRE(slug) {
		return City{}, web.Errorf(web.ENotFound, "there is no city %q", slug)
	}
	rows, err := q.Query(ctx, `SELECT slug, name, country, timezone, languages FROM cities WHERE slug = $1`, slug)
	if err != nil {
		return City{}, fmt.Errorf("listings: city %s: %w", slug, err)
	}
	c, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByPos[City])
	if errors.Is(err, pgx.ErrNoRows) {
		return City{}, web.Errorf(web.ENotFound, "there is no city %q", slug)
	}
	return c, err
}

// MarketDays returns the market days of a city between two local dates
// (inclusive), with pitches and accepted stalls.
func (s *Store) MarketDays(ctx context.Context, citySlug string, from, to string) ([]MarketDay, error) {
	rows, err := s.pool.Query(ctx, marketDaySelect+` WHERE d.city = $1 AND d.date BETWEEN $2 AND $3 ORDER BY d.date, d.starts_at, m.name`,
		citySlug, from, to)
	if err != nil {
		return nil, fmt.Errorf("listings: market days: %w", err)
	}
	days, err := pgx.CollectRows(rows, scanMarketDay)
	if err != nil {
		return nil, fmt.Errorf("listings: market days: %w", err)
	}
	if err := s.fillPlans(ctx, days); err != nil {
		return nil, err
	}
	return days, nil
}

// MarketDay returns one market day with its plan and stalls.
func (s *Store) MarketDay(ctx context.Context, id string) (MarketDay, error) {
	rows, err := s.pool.Query(ctx, marketDaySelect+` WHERE d.id = $1`, id)
	if err != nil {
		return MarketDay{}, fmt.Errorf("listings: market day: %w", err)
	}
	d, err := pgx.CollectExactlyOneRow(rows, scanMarketDay)
	if errors.Is(err, pgx.ErrNoRows) {
		return MarketDay{}, web.Errorf(web.ENotFound, "there is no market day %s", id)
	}
	if err != nil {
		return MarketDay{}, fmt.Errorf("listings: market day: %w", err)
	}
	days := []MarketDay{d}
	if err := s.fillPlans(ctx, days); err != nil {
		return MarketDay{}, err
	}
	return days[0], nil
}

const marketDaySelect = `
	SELECT d.id::text, d.city, d.date::text, d.status, d.starts_at, d.ends_at, d.version,
	       m.id::text, m.name, p.id::text, p.name, p.lat, p.lon, p.plan_w, p.plan_h,
	       m.categories, c.timezone, d.hours_changed, coalesce(d.cancel_reason, ''), d.opened_at, d.closed_at, d.cancelled_at
	FROM market_days d
	JOIN markets m ON m.id = d.market_id
	JOIN places p ON p.id = m.place_id
	JOIN cities c ON c.slug = d.city`

func scanMarketDay(row pgx.CollectableRow) (MarketDay, error) {
	var d MarketDay
	var pw, ph float32
	err := row.Scan(&d.ID, &d.City, &d.Date, &d.Status, &d.StartsAt, &d.EndsAt, &d.Version,
		&d.Market.ID, &d.Market.Name, &d.Place.ID, &d.Place.Name, &d.Place.Lat, &d.Place.Lon, &pw, &ph,
		&d.Market.Categories, &d.Timezone, &d.HoursChanged, &d.CancelReason, &d.OpenedAt, &d.ClosedAt, &d.CancelledAt)
	d.PlanW, d.PlanH = float64(pw), float64(ph)
	if loc, lerr := zones.Load(d.Timezone); lerr == nil {
		d.Opens, d.Closes = d.StartsAt.In(loc).Format("15:04"), d.EndsAt.In(loc).Format("15:04")
	}
	return d, err
}

// fillPlans loads pitches per place and stalls per day in two queries.
func (s *Store) fillPlans(ctx context.Context, days []MarketDay) error {
	if len(days) == 0 {
		return nil
	}
	placeIDs, dayIDs := make([]string, 0, len(days)), make([]string, 0, len(days))
	for _, d := range days {
		placeIDs, dayIDs = append(placeIDs, d.Place.ID), append(dayIDs, d.ID)
	}
	pitches, err := loadPitches(ctx, s.pool, placeIDs)
	if err != nil {
		return err
	}
	stalls, err := loadStalls(ctx, s.pool, dayIDs)
	if err != nil {
		return err
	}
	for i := range days {
		days[i].Pitches = nonNil(pitches[days[i].Place.ID])
		days[i].Stalls = nonNil(stalls[days[i].ID])
	}
	return nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// Vendors are in vendors.go.

// Apply and the application lifecycle are in applications.go.
