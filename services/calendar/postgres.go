package calendar

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/localeurope/piazza/pkg/web"
	"github.com/localeurope/piazza/pkg/zones"
)

// Store is the calendar schema.
type Store struct {
	pool *pgxpool.Pool
}

// Timezone returns a known city's location or ENotFound.
func (s *Store) Timezone(ctx context.Context, city string) (*time.Location, error) {
	if !utf8.ValidString(city) || strings.ContainsRune(city, 0) { // Postgres text refuses these
		return nil, web.Errorf(web.ENotFound, "there is no city %q on the calendar", city)
	}
	var tz string
	err := s.pool.QueryRow(ctx, `SELECT timezone FROM cities WHERE slug = $1`, city).Scan(&tz)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, web.Errorf(web.ENotFound, "there is no city %q on the calendar", city)
	}
	if err != nil {
		return nil, fmt.Errorf("calendar: city %s: %w", city, err)
	}
	return zones.Load(tz)
}

// Filter narrows a calendar query or a feed.
type Filter struct {
	Place    string // a place id
	Category string // a category slug; "market" is the market days
	Text     string // words, each matched as a prefix
}

// tsquery turns free text into a prefix query on the 'simple' configuration
// (no stemming: a city speaks several languages): "jazz fest" → jazz:* & fest:*.
func tsquery(text string) string {
	words := strings.FieldsFunc(strings.ToLower(text), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
	if len(words) > 8 {
		words = words[:8]
	}
	for i, w := range words {
		words[i] = w + ":*"
	}
	return strings.Join(words, " & ")
}

// likePattern escapes text for ILIKE.
func likePattern(text string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(strings.TrimSpace(text)) + "%"
}

// MarketDays lists a city's market days that overlap [from, to).
func (s *Store) MarketDays(ctx context.Context, city string, from, to time.Time, f Filter) ([]Entry, error) {
	if f.Category != "" && f.Category != marketCategory {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `
		SELECT id::text, city, title, place_id::text, place_name, starts_at, ends_at, status, version, cancel_reason, updated_at
		FROM entries WHERE city = $1 AND starts_at < $3 AND ends_at > $2
			AND ($4 = '' OR place_id::text = $4)
			AND ($5 = '' OR title ILIKE $6 OR place_name ILIKE $6)
		ORDER BY starts_at, title LIMIT $7`, city, from, to, f.Place, strings.TrimSpace(f.Text), likePattern(f.Text), maxOccurrences+1)
	if err != nil {
		return nil, fmt.Errorf("calendar: market days: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Entry, error) {
		e := Entry{Kind: "market_day", Source: "listings", Category: marketCategory}
		err := row.Scan(&e.ID, &e.City, &e.Title, &e.PlaceID, &e.PlaceName, &e.StartsAt, &e.EndsAt, &e.Status, &e.Version,
			&e.CancelReason, &e.updatedAt)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("calendar: market days: %w", err)
	}
	if len(out) > maxOccurrences {
		return nil, errTooMany
	}
	return out, nil
}

// Series lists a city's public event series that may have occurrences in
// [from, to) (from and to may be zero: unbounded), with their overrides.
func (s *Store) Series(ctx context.Context, city string, from, to time.Time, f Filter, limit int) ([]*Event, error) {
	if f.Category == marketCategory {
		return nil, nil
	}
	var fromArg, toArg *time.Time
	if !from.IsZero() {
		fromArg = &from
	}
	if !to.IsZero() {
		toArg = &to
	}
	rows, err := s.pool.Query(ctx, `
		SELECT `+eventColumns+` FROM events
		WHERE city = $1 AND status IN ('confirmed', 'tentative', 'cancelled')
			AND ($3::timestamptz IS NULL OR window_start < $3)
			AND ($2::timestamptz IS NULL OR window_end IS NULL OR window_end > $2)
			AND ($4 = '' OR place_id::text = $4)
			AND ($5 = '' OR category = $5)
			AND ($6 = '' OR search @@ to_tsquery('simple', $6))
		ORDER BY start_local, id LIMIT $7`, city, fromArg, toArg, f.Place, f.Category, tsquery(f.Text), limit+1)
	if err != nil {
		return nil, fmt.Errorf("calendar: series: %w", err)
	}
	events, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*Event, error) { return scanEvent(row) })
	if err != nil {
		return nil, fmt.Errorf("calendar: series: %w", err)
	}
	if len(events) > limit {
		return nil, errTooMany
	}
	if err := loadOverrides(ctx, s.pool, events); err != nil {
		return nil, err
	}
	return events, nil
}

// Calendar lists everything on a city's calendar that overlaps [from, to):
// market days and the occurrences of events, expanded now (never stored),
// in start order.
func (s *Store) Calendar(ctx context.Context, city string, loc *time.Location, from, to time.Time, f Filter) ([]Entry, error) {
	entries, err := s.MarketDays(ctx, city, from, to, f)
	if err != nil {
		return nil, err
	}
	for i := range entries {
		entries[i].Start = entries[i].StartsAt.In(loc).Format(localLayout)
		entries[i].End = entries[i].EndsAt.In(loc).Format(localLayout)
	}
	events, err := s.Series(ctx, city, from, to, f, maxOccurrences)
	if err != nil {
		return nil, err
	}
	for _, e := range events {
		loc, err := zones.Load(e.Timezone)
		if err != nil {
			return nil, fmt.Errorf("calendar: event %s: %w", e.ID, err)
		}
		sr, err := e.series(loc)
		if err != nil {
			return nil, err
		}
		occs, err := sr.between(from, to, maxOccurrences-len(entries))
		if err != nil {
			return nil, err
		}
		for _, o := range occs {
			entries = append(entries, e.entry(o, loc))
		}
		if len(entries) > maxOccurrences {
			return nil, errTooMany
		}
	}
	slices.SortFunc(entries, compareEntries)
	return entries, nil
}

func compareEntries(a, b Entry) int {
	if c := a.StartsAt.Compare(b.StartsAt); c != 0 {
		return c
	}
	if c := strings.Compare(a.Title, b.Title); c != 0 {
		return c
	}
	return strings.Compare(a.ID, b.ID)
}

// entry is the list item of one occurrence.
func (e *Event) entry(o occurrence, loc *time.Location) Entry {
	recurring := e.RRule != "" || len(e.RDates) > 0
	id := e.ID
	var recur *string
	if recurring {
		r := formatLocal(o.Recur, e.AllDay)
		recur = &r
		id = e.ID + "/" + r
	}
	end := o.End
	endLocal := naive(end.In(loc))
	if e.AllDay {
		endLocal = endLocal.AddDate(0, 0, -1)
	}
	return Entry{
		ID: id, City: e.City, Kind: "event", Title: o.Title, PlaceID: e.PlaceID, PlaceName: e.PlaceName,
		StartsAt: o.Start.UTC(), EndsAt: end.UTC(), Status: o.Status, Source: "calendar", Version: e.Version,
		EventID: e.ID, RecurrenceID: recur, AllDay: e.AllDay, Start: formatLocal(naive(o.Start.In(loc)), e.AllDay),
		End: formatLocal(endLocal, e.AllDay), Category: e.Category, Address: e.Address, Description: e.Description,
		Organiser: e.Organiser, ImageURL: e.ImageURL, Sequence: o.Sequence, Overridden: o.Overridden,
		CancelReason: map[bool]string{true: e.Reason}[e.Status == StatusCancelled], Editable: true,
	}
}

// Pending lists a city's submissions waiting for review, oldest first,
// after the id after (a cursor).
func (s *Store) Pending(ctx context.Context, city, after string, limit int) ([]*Event, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT `+eventColumns+` FROM events
		WHERE city = $1 AND status = 'pending_review' AND ($2 = '' OR id > $2::uuid)
		ORDER BY id LIMIT $3`, city, after, limit)
	if err != nil {
		return nil, fmt.Errorf("calendar: pending: %w", err)
	}
	events, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*Event, error) { return scanEvent(row) })
	if err != nil {
		return nil, fmt.Errorf("calendar: pending: %w", err)
	}
	return events, loadOverrides(ctx, s.pool, events)
}

// Recent lists a city's public events, most recently changed first (the
// Atom feed).
func (s *Store) Recent(ctx context.Context, city string, limit int) ([]*Event, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT `+eventColumns+` FROM events
		WHERE city = $1 AND status IN ('confirmed', 'tentative', 'cancelled')
		ORDER BY updated_at DESC, id DESC LIMIT $2`, city, limit)
	if err != nil {
		return nil, fmt.Errorf("calendar: recent: %w", err)
	}
	events, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*Event, error) { return scanEvent(row) })
	if err != nil {
		return nil, fmt.Errorf("calendar: recent: %w", err)
	}
	return events, loadOverrides(ctx, s.pool, events)
}

// CityName returns a city's display name.
func (s *Store) CityName(ctx context.Context, city string) string {
	var name string
	if err := s.pool.QueryRow(ctx, `SELECT name FROM cities WHERE slug = $1`, city).Scan(&name); err != nil {
		return city
	}
	return name
}
