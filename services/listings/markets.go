package listings

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/localeurope/piazza/pkg/auth"
	"github.com/localeurope/piazza/pkg/web"
	"github.com/localeurope/piazza/services/contract"
)

// ScheduleEntry is one weekday of a market's weekly schedule.
type ScheduleEntry struct {
	Weekday int    `json:"weekday"` // ISO, 1 = Monday
	Opens   string `json:"opens"`   // local HH:MM
	Closes  string `json:"closes"`
}

// Market is a market held on a square on a weekly schedule.
type Market struct {
	ID          string          `json:"id"`
	City        string          `json:"city"`
	Place       Place           `json:"place"`
	Name        string          `json:"name"`
	Categories  []string        `json:"categories"`
	Schedule    []ScheduleEntry `json:"schedule"`
	SeasonStart string          `json:"season_start"`
	SeasonEnd   *string         `json:"season_end"`
	Exceptions  []string        `json:"exceptions"`
	AutoAccept  bool            `json:"auto_accept"`
	OfferHours  int             `json:"offer_hours"`
	Description string          `json:"description"`
	Version     int64           `json:"version"`
	CreatedAt   time.Time       `json:"created_at"`
	UpdatedAt   *time.Time      `json:"updated_at,omitempty"`
}

// optionalDate is a date field that may be absent, null or a date.
type optionalDate struct {
	Set   bool
	Value *string
}

func (o *optionalDate) UnmarshalJSON(b []byte) error {
	o.Set = true
	if bytes.Equal(b, []byte("null")) {
		o.Value = nil
		return nil
	}
	return json.Unmarshal(b, &o.Value)
}

// NewMarket is the body of POST /cities/{city}/markets.
type NewMarket struct {
	PlaceID     string          `json:"place_id"`
	Name        string          `json:"name"`
	Categories  []string        `json:"categories"`
	Schedule    []ScheduleEntry `json:"schedule"`
	SeasonStart string          `json:"season_start"`
	SeasonEnd   *string         `json:"season_end"`
	Exceptions  []string        `json:"exceptions"`
	AutoAccept  bool            `json:"auto_accept"`
	OfferHours  *int            `json:"offer_hours"`
	Description string          `json:"description"`
}

// Validate checks a new market.
func (m *NewMarket) Validate() error {
	var f web.Fields
	if !isUUID(m.PlaceID) {
		f.Add("place_id", "must be a place id (UUID)")
	}
	checkName(&f, "name", &m.Name)
	checkCategories(&f, "categories", m.Categories)
	checkSchedule(&f, m.Schedule)
	checkSeason(&f, m.SeasonStart, m.SeasonEnd, true)
	checkExceptions(&f, m.Exceptions)
	checkOfferHours(&f, m.OfferHours)
	checkText(&f, "description", m.Description, 2000)
	return f.Err()
}

func checkSchedule(f *web.Fields, s []ScheduleEntry) {
	if len(s) == 0 || len(s) > 7 {
		f.Add("schedule", "must hold 1 to 7 entries, one per weekday")
		return
	}
	seen := map[int]bool{}
	for i, e := range s {
		at := fmt.Sprintf("schedule[%d].", i)
		if e.Weekday < 1 || e.Weekday > 7 {
			f.Add(at+"weekday", "must be an ISO weekday, 1 (Monday) to 7 (Sunday)")
		} else if seen[e.Weekday] {
			f.Add(at+"weekday", "repeats weekday %d", e.Weekday)
		}
		seen[e.Weekday] = true
		opens, ok1 := parseClock(e.Opens)
		closes, ok2 := parseClock(e.Closes)
		if !ok1 {
			f.Add(at+"opens", "must be a local time like 07:30")
		}
		if !ok2 {
			f.Add(at+"closes", "must be a local time like 13:00")
		}
		if ok1 && ok2 && closes <= opens {
			f.Add(at+"closes", "must be after opens (%s)", e.Opens)
		}
	}
}

func checkSeason(f *web.Fields, start string, end *string, required bool) {
	s, ok := parseDate(start)
	if start == "" && !required {
		ok = true
	} else if !ok {
		f.Add("season_start", "must be a date like 2026-03-01")
	}
	if end != nil {
		e, ok2 := parseDate(*end)
		if !ok2 {
			f.Add("season_end", "must be a date like 2026-10-31, or null")
		} else if ok && start != "" && e.Before(s) {
			f.Add("season_end", "must not be before season_start")
		}
	}
}

func checkExceptions(f *web.Fields, dates []string) {
	if len(dates) > 366 {
		f.Add("exceptions", "must hold at most 366 dates")
		return
	}
	seen := map[string]bool{}
	for i, d := range dates {
		if _, ok := parseDate(d); !ok {
			f.Add(fmt.Sprintf("exceptions[%d]", i), "must be a date like 2026-05-01")
		} else if seen[d] {
			f.Add(fmt.Sprintf("exceptions[%d]", i), "repeats %s", d)
		}
		seen[d] = true
	}
}

func checkOfferHours(f *web.Fields, h *int) {
	if h != nil && (*h < 1 || *h > 168) {
		f.Add("offer_hours", "must be from 1 to 168 hours")
	}
}

// MarketUpdate is the body of PATCH /markets/{id}.
type MarketUpdate struct {
	Name        *string          `json:"name"`
	Categories  *[]string        `json:"categories"`
	Schedule    *[]ScheduleEntry `json:"schedule"`
	SeasonStart *string          `json:"season_start"`
	SeasonEnd   optionalDate     `json:"season_end"`
	Exceptions  *[]string        `json:"exceptions"`
	AutoAccept  *bool            `json:"auto_accept"`
	OfferHours  *int             `json:"offer_hours"`
	Description *string          `json:"description"`
	Version     *int64           `json:"version"`
}

// Validate checks the fields present; the season is checked again against the
// stored market by the store.
func (u *MarketUpdate) Validate() error {
	var f web.Fields
	if u.Name == nil && u.Categories == nil && u.Schedule == nil && u.SeasonStart == nil && !u.SeasonEnd.Set &&
		u.Exceptions == nil && u.AutoAccept == nil && u.OfferHours == nil && u.Description == nil && u.Version == nil {
		return noChange()
	}
	if u.Name != nil {
		checkName(&f, "name", u.Name)
	}
	if u.Categories != nil {
		checkCategories(&f, "categories", *u.Categories)
	}
	if u.Schedule != nil {
		checkSchedule(&f, *u.Schedule)
	}
	start := ""
	if u.SeasonStart != nil {
		start = *u.SeasonStart
		if start == "" {
			f.Add("season_start", "must be a date like 2026-03-01")
		}
	}
	checkSeason(&f, start, u.SeasonEnd.Value, false)
	if u.Exceptions != nil {
		checkExceptions(&f, *u.Exceptions)
	}
	checkOfferHours(&f, u.OfferHours)
	if u.Description != nil {
		checkText(&f, "description", *u.Description, 2000)
	}
	checkVersion(&f, u.Version)
	return f.Err()
}

// changesDays reports whether the update touches what market days are made of.
func (u MarketUpdate) changesDays() bool {
	return u.Schedule != nil || u.SeasonStart != nil || u.SeasonEnd.Set || u.Exceptions != nil
}

// ── store ──

const marketSelect = `
	SELECT m.id::text, m.city, p.id::text, p.name, p.lat, p.lon, m.name, m.categories, m.season_start::text,
	       m.season_end::text, m.exceptions::text[], m.auto_accept, m.offer_hours, m.description, m.version,
	       m.created_at, m.updated_at
	FROM markets m JOIN places p ON p.id = m.place_id`

func scanMarket(row pgx.CollectableRow) (Market, error) {
	var m Market
	err := row.Scan(&m.ID, &m.City, &m.Place.ID, &m.Place.Name, &m.Place.Lat, &m.Place.Lon, &m.Name, &m.Categories,
		&m.SeasonStart, &m.SeasonEnd, &m.Exceptions, &m.AutoAccept, &m.OfferHours, &m.Description, &m.Version,
		&m.CreatedAt, &m.UpdatedAt)
	m.Categories, m.Exceptions = nonNil(m.Categories), nonNil(m.Exceptions)
	slices.Sort(m.Exceptions)
	return m, err
}

// fillSchedules loads the weekly schedules of markets in one query.
func fillSchedules(ctx context.Context, q querier, markets []Market) error {
	ids := make([]string, len(markets))
	for i, m := range markets {
		ids[i] = m.ID
	}
	rows, err := q.Query(ctx, `
		SELECT market_id::text, weekday, to_char(opens, 'HH24:MI'), to_char(closes, 'HH24:MI') FROM market_schedule
		WHERE market_id = ANY($1::uuid[]) ORDER BY market_id, weekday`, ids)
	if err != nil {
		return fmt.Errorf("listings: schedules: %w", err)
	}
	byMarket := map[string][]ScheduleEntry{}
	var id string
	var e ScheduleEntry
	if _, err := pgx.ForEachRow(rows, []any{&id, &e.Weekday, &e.Opens, &e.Closes}, func() error {
		byMarket[id] = append(byMarket[id], e)
		return nil
	}); err != nil {
		return fmt.Errorf("listings: schedules: %w", err)
	}
	for i := range markets {
		markets[i].Schedule = nonNil(byMarket[markets[i].ID])
	}
	return nil
}

func market(ctx context.Context, q querier, id string, forUpdate bool) (Market, error) {
	if !isUUID(id) {
		return Market{}, web.Errorf(web.ENotFound, "there is no market %q", id)
	}
	sql := marketSelect + ` WHERE m.id = $1`
	if forUpdate {
		sql += ` FOR NO KEY UPDATE OF m`
	}
	rows, err := q.Query(ctx, sql, id)
	if err != nil {
		return Market{}, fmt.Errorf("listings: market %s: %w", id, err)
	}
	m, err := pgx.CollectExactlyOneRow(rows, scanMarket)
	if errors.Is(err, pgx.ErrNoRows) {
		return Market{}, web.Errorf(web.ENotFound, "there is no market %s", id)
	}
	if err != nil {
		return Market{}, fmt.Errorf("listings: market %s: %w", id, err)
	}
	ms := []Market{m}
	if err := fillSchedules(ctx, q, ms); err != nil {
		return Market{}, err
	}
	return ms[0], nil
}

// Market returns one market or ENotFound.
func (s *Store) Market(ctx context.Context, id string) (Market, error) {
	return market(ctx, s.pool, id, false)
}

// Markets lists a page of a city's markets, ordered by name, optionally only
// those on one place or listing one category.
func (s *Store) Markets(ctx context.Context, city, placeID, category string, p page) ([]Market, *string, error) {
	if p.After != "" {
		if err := s.pool.QueryRow(ctx, `SELECT 1 FROM markets WHERE city = $1 AND id = $2`, city, p.After).Scan(new(int)); err != nil {
			if errors.Is(err, pgx.ErrNoRows) || !isUUID(p.After) {
				return nil, nil, staleCursor()
			}
			return nil, nil, fmt.Errorf("listings: markets: %w", err)
		}
	}
	rows, err := s.pool.Query(ctx, marketSelect+`
		WHERE m.city = $1 AND ($2 = '' OR m.place_id = NULLIF($2, '')::uuid) AND ($3 = '' OR $3 = ANY(m.categories))
		  AND ($4 = '' OR (m.name, m.id) > (SELECT name, id FROM markets WHERE city = $1 AND id = NULLIF($4, '')::uuid))
		ORDER BY m.name, m.id LIMIT $5`, city, placeID, category, p.After, p.Limit+1)
	if err != nil {
		return nil, nil, fmt.Errorf("listings: markets: %w", err)
	}
	markets, err := pgx.CollectRows(rows, scanMarket)
	if err != nil {
		return nil, nil, fmt.Errorf("listings: markets: %w", err)
	}
	markets, more := trim(p, markets)
	if err := fillSchedules(ctx, s.pool, markets); err != nil {
		return nil, nil, err
	}
	var last string
	if len(markets) > 0 {
		last = markets[len(markets)-1].ID
	}
	return markets, p.next(more, last), nil
}

// CreateMarket stores a market and generates its days over the horizon, in
// one transaction with market.upserted and each day's market_day.scheduled.
func (s *Store) CreateMarket(ctx context.Context, city string, nm NewMarket, now time.Time) (Market, error) {
	var m Market
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var placeCity string
		err := tx.QueryRow(ctx, `SELECT city FROM places WHERE id = $1 AND city = $2`, nm.PlaceID, city).Scan(&placeCity)
		if errors.Is(err, pgx.ErrNoRows) {
			return &web.Error{Code: web.EInvalid, Message: "the request has invalid fields",
				Fields: []web.FieldError{{Field: "place_id", Message: fmt.Sprintf("there is no place %s in %s", nm.PlaceID, city)}}}
		}
		if err != nil {
			return fmt.Errorf("listings: create market: %w", err)
		}
		offer := 24
		if nm.OfferHours != nil {
			offer = *nm.OfferHours
		}
		id := newID()
		if _, err := tx.Exec(ctx, `
			INSERT INTO markets (id, city, place_id, name, categories, season_start, season_end, exceptions,
			                     auto_accept, offer_hours, description)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8::date[], $9, $10, $11)`,
			id, city, nm.PlaceID, nm.Name, nonNil(nm.Categories), nm.SeasonStart, nm.SeasonEnd, nonNil(nm.Exceptions),
			nm.AutoAccept, offer, nm.Description); err != nil {
			return fmt.Errorf("listings: create market: %w", err)
		}
		if err := replaceSchedule(ctx, tx, city, id, nm.Schedule); err != nil {
			return err
		}
		if m, err = announceMarket(ctx, tx, id); err != nil {
			return err
		}
		ms, err := loadSchedules(ctx, tx, id)
		if err != nil {
			return err
		}
		for _, sch := range ms {
			if _, err := s.generateForMarket(ctx, tx, sch, now, Horizon); err != nil {
				return fmt.Errorf("listings: create market: generate days: %w", err)
			}
		}
		return nil
	})
	return m, err
}

func replaceSchedule(ctx context.Context, tx pgx.Tx, city, marketID string, entries []ScheduleEntry) error {
	if _, err := tx.Exec(ctx, `DELETE FROM market_schedule WHERE market_id = $1 AND city = $2`, marketID, city); err != nil {
		return fmt.Errorf("listings: schedule: %w", err)
	}
	for _, e := range entries {
		if _, err := tx.Exec(ctx, `INSERT INTO market_schedule (market_id, city, weekday, opens, closes) VALUES ($1, $2, $3, $4, $5)`,
			marketID, city, e.Weekday, e.Opens, e.Closes); err != nil {
			return fmt.Errorf("listings: schedule: %w", err)
		}
	}
	return nil
}

// announceMarket reloads a market and writes market.upserted.
func announceMarket(ctx context.Context, tx pgx.Tx, id string) (Market, error) {
	m, err := market(ctx, tx, id, false)
	if err != nil {
		return Market{}, err
	}
	var tz string
	if err := tx.QueryRow(ctx, `SELECT timezone FROM cities WHERE slug = $1`, m.City).Scan(&tz); err != nil {
		return Market{}, fmt.Errorf("listings: market %s: %w", id, err)
	}
	sched := make([]contract.ScheduleEntryV1, len(m.Schedule))
	for i, e := range m.Schedule {
		sched[i] = contract.ScheduleEntryV1(e)
	}
	err = recordEvent(ctx, tx, contract.TypeMarketUpserted, m.City, "market", "upserted", "markets/"+m.ID, contract.MarketV1{
		ID: m.ID, City: m.City, PlaceID: m.Place.ID, PlaceName: m.Place.Name, Name: m.Name, Categories: m.Categories,
		Schedule: sched, SeasonStart: m.SeasonStart, SeasonEnd: m.SeasonEnd, Exceptions: m.Exceptions,
		AutoAccept: m.AutoAccept, OfferHours: m.OfferHours, Description: m.Description, Timezone: tz, Version: m.Version,
	})
	return m, err
}

// UpdateMarket changes a market. A change to what its days are made of is
// carried to the scheduled days of the horizon in the same transaction.
func (s *Store) UpdateMarket(ctx context.Context, id string, u MarketUpdate, now time.Time) (Market, error) {
	var m Market
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		cur, err := market(ctx, tx, id, true)
		if err != nil {
			return err
		}
		if _, err := auth.RequireManager(ctx, cur.City); err != nil {
			return err
		}
		if u.Version != nil && *u.Version != cur.Version {
			return staleVersion("market", *u.Version, cur.Version)
		}
		next := cur
		if u.Name != nil {
			next.Name = *u.Name
		}
		if u.Categories != nil {
			next.Categories = nonNil(*u.Categories)
		}
		if u.SeasonStart != nil {
			next.SeasonStart = *u.SeasonStart
		}
		if u.SeasonEnd.Set {
			next.SeasonEnd = u.SeasonEnd.Value
		}
		if u.Exceptions != nil {
			next.Exceptions = nonNil(*u.Exceptions)
		}
		if u.AutoAccept != nil {
			next.AutoAccept = *u.AutoAccept
		}
		if u.OfferHours != nil {
			next.OfferHours = *u.OfferHours
		}
		if u.Description != nil {
			next.Description = *u.Description
		}
		var f web.Fields
		checkSeason(&f, next.SeasonStart, next.SeasonEnd, true)
		if err := f.Err(); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `
			UPDATE markets SET name = $3, categories = $4, season_start = $5, season_end = $6, exceptions = $7::date[],
			       auto_accept = $8, offer_hours = $9, description = $10, version = version + 1, updated_at = now()
			WHERE id = $1 AND city = $2`, id, cur.City, next.Name, next.Categories, next.SeasonStart, next.SeasonEnd,
			next.Exceptions, next.AutoAccept, next.OfferHours, next.Description); err != nil {
			return fmt.Errorf("listings: update market %s: %w", id, err)
		}
		if u.Schedule != nil {
			sched := slices.Clone(*u.Schedule)
			sort.Slice(sched, func(i, j int) bool { return sched[i].Weekday < sched[j].Weekday })
			if err := replaceSchedule(ctx, tx, cur.City, id, sched); err != nil {
				return err
			}
		}
		if m, err = announceMarket(ctx, tx, id); err != nil {
			return err
		}
		if !u.changesDays() {
			return nil
		}
		ms, err := loadSchedules(ctx, tx, id)
		if err != nil {
			return err
		}
		for _, sch := range ms {
			if err := s.reconcileDays(ctx, tx, sch, now); err != nil {
				return err
			}
			if _, err := s.generateForMarket(ctx, tx, sch, now, Horizon); err != nil {
				return fmt.Errorf("listings: update market %s: generate days: %w", id, err)
			}
		}
		return nil
	})
	return m, err
}

// ── http ──

func handleMarkets(store *Store, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := store.City(r.Context(), r.PathValue("city"))
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		q := r.URL.Query()
		placeID, category := q.Get("place_id"), q.Get("category")
		var f web.Fields
		if placeID != "" && !isUUID(placeID) {
			f.Add("place_id", "must be a place id (UUID)")
		}
		if category != "" && !categoryRE.MatchString(category) {
			f.Add("category", "must be a category slug such as cheese")
		}
		if err := f.Err(); err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		p, err := readPage(r, "markets", c.Slug, placeID, category)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		markets, next, err := store.Markets(r.Context(), c.Slug, placeID, category, p)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		web.JSON(w, http.StatusOK, pageOf[Market]{Items: markets, NextCursor: next})
	})
}

func handleMarket(store *Store, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m, err := store.Market(r.Context(), r.PathValue("id"))
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		web.JSON(w, http.StatusOK, m)
	})
}

func handleCreateMarket(store *Store, log *slog.Logger, now func() time.Time) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := managedCity(r, store)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		nm, err := web.Decode[NewMarket](w, r)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		m, err := store.CreateMarket(r.Context(), c.Slug, nm, now())
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		w.Header().Set("Location", "/api/v1/listings/markets/"+m.ID)
		web.JSON(w, http.StatusCreated, m)
	})
}

func handleUpdateMarket(store *Store, log *slog.Logger, now func() time.Time) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !requireSignedIn(w, r, log) {
			return
		}
		u, err := web.Decode[MarketUpdate](w, r)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		m, err := store.UpdateMarket(r.Context(), r.PathValue("id"), u, now())
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		web.JSON(w, http.StatusOK, m)
	})
}
