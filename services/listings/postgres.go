package listings

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/localeurope/piazza/pkg/bus"
	"github.com/localeurope/piazza/pkg/outbox"
	"github.com/localeurope/piazza/pkg/web"
	"github.com/localeurope/piazza/services/contract"
)

// Store is the listings schema. Exported methods run one transaction each;
// unexported helpers take the transaction.
type Store struct {
	pool *pgxpool.Pool
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }

// Cities lists all cities.
func (s *Store) Cities(ctx context.Context) ([]City, error) {
	rows, err := s.pool.Query(ctx, `SELECT slug, name, country, timezone, languages FROM cities ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("listings: cities: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[City])
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
	       m.id::text, m.name, p.id::text, p.name, p.lat, p.lon, p.plan_w, p.plan_h
	FROM market_days d
	JOIN markets m ON m.id = d.market_id
	JOIN places p ON p.id = m.place_id`

func scanMarketDay(row pgx.CollectableRow) (MarketDay, error) {
	var d MarketDay
	var pw, ph float32
	err := row.Scan(&d.ID, &d.City, &d.Date, &d.Status, &d.StartsAt, &d.EndsAt, &d.Version,
		&d.Market.ID, &d.Market.Name, &d.Place.ID, &d.Place.Name, &d.Place.Lat, &d.Place.Lon, &pw, &ph)
	d.PlanW, d.PlanH = float64(pw), float64(ph)
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
	rows, err := s.pool.Query(ctx, `
		SELECT place_id::text, code, x, y, w, h, power, water, cover FROM pitches
		WHERE place_id = ANY($1::uuid[]) ORDER BY place_id, code`, placeIDs)
	if err != nil {
		return fmt.Errorf("listings: pitches: %w", err)
	}
	pitches := map[string][]Pitch{}
	var place string
	var p Pitch
	var x, y, w, h float32
	_, err = pgx.ForEachRow(rows, []any{&place, &p.Code, &x, &y, &w, &h, &p.Power, &p.Water, &p.Cover}, func() error {
		p.X, p.Y, p.W, p.H = float64(x), float64(y), float64(w), float64(h)
		pitches[place] = append(pitches[place], p)
		return nil
	})
	if err != nil {
		return fmt.Errorf("listings: pitches: %w", err)
	}
	rows, err = s.pool.Query(ctx, `
		SELECT a.market_day_id::text, a.id::text, v.id::text, v.name, v.kind, pi.code, a.status, a.created_at
		FROM applications a JOIN vendors v ON v.id = a.vendor_id JOIN pitches pi ON pi.id = a.pitch_id
		WHERE a.market_day_id = ANY($1::uuid[]) AND a.status = 'accepted'
		ORDER BY pi.code`, dayIDs)
	if err != nil {
		return fmt.Errorf("listings: stalls: %w", err)
	}
	stalls := map[string][]Stall{}
	var day string
	var st Stall
	_, err = pgx.ForEachRow(rows, []any{&day, &st.ApplicationID, &st.Vendor.ID, &st.Vendor.Name, &st.Vendor.Kind, &st.Pitch, &st.Status, &st.CreatedAt}, func() error {
		stalls[day] = append(stalls[day], st)
		return nil
	})
	if err != nil {
		return fmt.Errorf("listings: stalls: %w", err)
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

// CreateVendor stores a vendor.
func (s *Store) CreateVendor(ctx context.Context, nv NewVendor) (Vendor, error) {
	v := Vendor{ID: newID(), City: nv.City, Name: nv.Name, Kind: nv.Kind, Description: nv.Description}
	err := s.pool.QueryRow(ctx, `
		INSERT INTO vendors (id, city, name, kind, description) VALUES ($1, $2, $3, $4, $5) RETURNING created_at`,
		v.ID, v.City, v.Name, v.Kind, v.Description).Scan(&v.CreatedAt)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23503" {
		return Vendor{}, &web.Error{Code: web.EInvalid, Message: "the request has invalid fields",
			Fields: []web.FieldError{{Field: "city", Message: fmt.Sprintf("there is no city %q", nv.City)}}}
	}
	if err != nil {
		return Vendor{}, fmt.Errorf("listings: create vendor: %w", err)
	}
	return v, nil
}

// Vendor returns one vendor or ENotFound.
func (s *Store) Vendor(ctx context.Context, id string) (Vendor, error) {
	rows, err := s.pool.Query(ctx, `SELECT id::text, city, name, kind, description, created_at FROM vendors WHERE id = $1`, id)
	if err != nil {
		return Vendor{}, fmt.Errorf("listings: vendor: %w", err)
	}
	v, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByPos[Vendor])
	if errors.Is(err, pgx.ErrNoRows) {
		return Vendor{}, web.Errorf(web.ENotFound, "there is no vendor %s", id)
	}
	return v, err
}

// Apply registers a vendor for a market day. With a free pitch (the preferred
// one if given) the application is accepted and a stall.registered event is
// written with it; with none it is waitlisted. The unique indexes make a
// double booking of a pitch, or a second application of a vendor for the same
// day, impossible however many requests race.
func (s *Store) Apply(ctx context.Context, dayID string, na NewApplication, now time.Time) (Application, error) {
	var app Application
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		app, err = s.apply(ctx, tx, dayID, na, now)
		return err
	})
	return app, err
}

func (s *Store) apply(ctx context.Context, tx pgx.Tx, dayID string, na NewApplication, now time.Time) (Application, error) {
	var (
		day                   MarketDay
		placeID, marketID, tz string
		vendor                Vendor
	)
	err := tx.QueryRow(ctx, `
		SELECT d.id::text, d.city, d.date::text, d.status, d.ends_at, m.id::text, m.name, p.id::text, p.name, c.timezone
		FROM market_days d JOIN markets m ON m.id = d.market_id JOIN places p ON p.id = m.place_id JOIN cities c ON c.slug = d.city
		WHERE d.id = $1
		FOR NO KEY UPDATE OF d`, dayID).Scan(&day.ID, &day.City, &day.Date, &day.Status, &day.EndsAt, &marketID, &day.Market.Name, &placeID, &day.Place.Name, &tz)
	if errors.Is(err, pgx.ErrNoRows) {
		return Application{}, web.Errorf(web.ENotFound, "there is no market day %s", dayID)
	}
	if err != nil {
		return Application{}, fmt.Errorf("listings: apply: market day: %w", err)
	}
	if day.Status == "cancelled" || day.Status == "closed" || !now.Before(day.EndsAt) {
		return Application{}, web.Errorf(web.EConflict, "the market day %s is %s; it takes no more stalls", day.Date, closedWord(day.Status))
	}
	err = tx.QueryRow(ctx, `SELECT id::text, city, name, kind, description, created_at FROM vendors WHERE id = $1 AND city = $2`, na.VendorID, day.City).
		Scan(&vendor.ID, &vendor.City, &vendor.Name, &vendor.Kind, &vendor.Description, &vendor.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Application{}, &web.Error{Code: web.EInvalid, Message: "the request has invalid fields",
			Fields: []web.FieldError{{Field: "vendor_id", Message: "there is no such vendor"}}}
	}
	if err != nil {
		return Application{}, fmt.Errorf("listings: apply: vendor: %w", err)
	}

	app := Application{ID: newID(), City: day.City, MarketDayID: day.ID, VendorID: vendor.ID}
	// Applications for one market day take turns on the day's row lock
	// (above), so the free pitch we find stays free. The unique indexes are
	// the guarantee regardless; should one fire, try the next pitch.
	for attempt := 0; attempt < 8; attempt++ {
		pitchID, code, err := freePitch(ctx, tx, placeID, day.ID, na.Pitch)
		if err != nil {
			return Application{}, err
		}
		status := "accepted"
		if pitchID == nil {
			if na.Pitch != "" {
				return Application{}, web.Errorf(web.EConflict, "pitch %s is taken on %s", na.Pitch, day.Date)
			}
			status = "waitlisted"
		}
		tag, err := tx.Exec(ctx, `
			INSERT INTO applications (id, city, market_day_id, vendor_id, pitch_id, status)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`,
			app.ID, app.City, app.MarketDayID, app.VendorID, pitchID, status)
		if err != nil {
			return Application{}, fmt.Errorf("listings: apply: insert: %w", err)
		}
		if tag.RowsAffected() == 1 {
			app.Status, app.Pitch = status, code
			break
		}
		var existing string
		err = tx.QueryRow(ctx, `SELECT id::text FROM applications WHERE market_day_id = $1 AND vendor_id = $2`, day.ID, vendor.ID).Scan(&existing)
		if err == nil {
			return Application{}, web.Errorf(web.EConflict, "vendor %s has already applied for this market day (application %s)", vendor.ID, existing)
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return Application{}, fmt.Errorf("listings: apply: %w", err)
		}
		if na.Pitch != "" {
			return Application{}, web.Errorf(web.EConflict, "pitch %s is taken on %s", na.Pitch, day.Date)
		}
	}
	if app.Status == "" {
		return Application{}, web.Errorf(web.EConflict, "the market day is busy; please try again")
	}
	if err := tx.QueryRow(ctx, `SELECT created_at FROM applications WHERE id = $1`, app.ID).Scan(&app.CreatedAt); err != nil {
		return Application{}, fmt.Errorf("listings: apply: %w", err)
	}
	if app.Status != "accepted" {
		return app, nil
	}
	ev, err := bus.NewEvent(contract.SourceListings, contract.TypeStallRegistered, "applications/"+app.ID, contract.StallRegisteredV1{
		ApplicationID: app.ID, City: day.City, MarketDayID: day.ID, MarketID: marketID, MarketName: day.Market.Name,
		PlaceID: placeID, PlaceName: day.Place.Name, Date: day.Date, VendorID: vendor.ID, VendorName: vendor.Name,
		VendorKind: vendor.Kind, Pitch: app.Pitch, RegisteredAt: app.CreatedAt, Version: 1,
	})
	if err != nil {
		return Application{}, err
	}
	ev.TraceParent = web.TraceParent(ctx)
	if err := outbox.Add(ctx, tx, contract.ListingsSubject(day.City, "stall", "registered"), ev); err != nil {
		return Application{}, err
	}
	return app, nil
}

func closedWord(status string) string {
	if status == "scheduled" || status == "open" {
		return "over"
	}
	return status
}

// freePitch returns the preferred pitch if it is free, or the first free one
// by code, or nil when none is free.
func freePitch(ctx context.Context, tx pgx.Tx, placeID, dayID, preferred string) (*string, string, error) {
	var id, code string
	err := tx.QueryRow(ctx, `
		SELECT p.id::text, p.code FROM pitches p
		WHERE p.place_id = $1 AND ($3 = '' OR p.code = $3)
		  AND NOT EXISTS (SELECT 1 FROM applications a WHERE a.market_day_id = $2 AND a.pitch_id = p.id AND a.status = 'accepted')
		ORDER BY p.code LIMIT 1`, placeID, dayID, preferred).Scan(&id, &code)
	if errors.Is(err, pgx.ErrNoRows) {
		if preferred != "" {
			var exists bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pitches WHERE place_id = $1 AND code = $2)`, placeID, preferred).Scan(&exists); err != nil {
				return nil, "", fmt.Errorf("listings: pitch: %w", err)
			}
			if !exists {
				return nil, "", &web.Error{Code: web.EInvalid, Message: "the request has invalid fields",
					Fields: []web.FieldError{{Field: "pitch", Message: fmt.Sprintf("there is no pitch %q on this square", preferred)}}}
			}
		}
		return nil, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("listings: free pitch: %w", err)
	}
	return &id, code, nil
}
