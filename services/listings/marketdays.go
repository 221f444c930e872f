package listings

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/localeurope/piazza/pkg/auth"
	"github.com/localeurope/piazza/pkg/web"
	"github.com/localeurope/piazza/pkg/zones"
	"github.com/localeurope/piazza/services/contract"
)

// Market days move scheduled → open → closed, or scheduled/open → cancelled.
// Every transition is one UPDATE … WHERE status IN (…): of two racing
// requests only one finds the state it starts from.

var marketDayStatuses = []string{"scheduled", "open", "closed", "cancelled"}

// dayFilter narrows a range of market days.
type dayFilter struct {
	MarketID string   // "" for every market
	Statuses []string // nil for every status
}

// MarketDayRange lists a page of a city's market days between two local dates
// (inclusive), ordered by date, start time, market name.
func (s *Store) MarketDayRange(ctx context.Context, city, from, to string, f dayFilter, p page) ([]MarketDay, *string, error) {
	if p.After != "" {
		if err := s.pool.QueryRow(ctx, `SELECT 1 FROM market_days WHERE city = $1 AND id = $2`, city, p.After).Scan(new(int)); err != nil {
			if errors.Is(err, pgx.ErrNoRows) || !isUUID(p.After) {
				return nil, nil, staleCursor()
			}
			return nil, nil, fmt.Errorf("listings: market days: %w", err)
		}
	}
	rows, err := s.pool.Query(ctx, marketDaySelect+`
		WHERE d.city = $1 AND d.date BETWEEN $2 AND $3
		  AND ($4 = '' OR d.market_id = NULLIF($4, '')::uuid)
		  AND (cardinality($5::text[]) = 0 OR d.status = ANY($5::text[]))
		  AND ($6 = '' OR (d.date, d.starts_at, m.name, d.id) > (
		       SELECT a.date, a.starts_at, am.name, a.id FROM market_days a JOIN markets am ON am.id = a.market_id
		       WHERE a.city = $1 AND a.id = NULLIF($6, '')::uuid))
		ORDER BY d.date, d.starts_at, m.name, d.id LIMIT $7`,
		city, from, to, f.MarketID, nonNil(f.Statuses), p.After, p.Limit+1)
	if err != nil {
		return nil, nil, fmt.Errorf("listings: market days: %w", err)
	}
	days, err := pgx.CollectRows(rows, scanMarketDay)
	if err != nil {
		return nil, nil, fmt.Errorf("listings: market days: %w", err)
	}
	days, more := trim(p, days)
	if err := s.fillPlans(ctx, days); err != nil {
		return nil, nil, err
	}
	var last string
	if len(days) > 0 {
		last = days[len(days)-1].ID
	}
	return days, p.next(more, last), nil
}

// dayState is what a transition needs to know of a market day.
type dayState struct {
	ID, City, Date, Status, Timezone string
	StartsAt, EndsAt                 time.Time
	Version                          int64
}

// dayForChange loads a market day the caller may run: ENotFound when it does
// not exist, EForbidden when the caller does not manage its city (market
// days are public).
func dayForChange(ctx context.Context, q querier, id string) (dayState, error) {
	var d dayState
	if !isUUID(id) {
		return d, web.Errorf(web.ENotFound, "there is no market day %q", id)
	}
	err := q.QueryRow(ctx, `
		SELECT d.id::text, d.city, d.date::text, d.status, c.timezone, d.starts_at, d.ends_at, d.version
		FROM market_days d JOIN cities c ON c.slug = d.city WHERE d.id = $1`, id).
		Scan(&d.ID, &d.City, &d.Date, &d.Status, &d.Timezone, &d.StartsAt, &d.EndsAt, &d.Version)
	if errors.Is(err, pgx.ErrNoRows) {
		return d, web.Errorf(web.ENotFound, "there is no market day %s", id)
	}
	if err != nil {
		return d, fmt.Errorf("listings: market day %s: %w", id, err)
	}
	if _, err := auth.RequireManager(ctx, d.City); err != nil {
		return d, err
	}
	return d, nil
}

// announceDay writes a market-day event carrying the day as it now is.
func announceDay(ctx context.Context, tx pgx.Tx, id, typ, verb string) error {
	var d contract.MarketDayV1
	var reason *string
	err := tx.QueryRow(ctx, `
		SELECT d.id::text, d.city, m.id::text, m.name, p.id::text, p.name, d.date::text, d.starts_at, d.ends_at,
		       c.timezone, d.status, d.version, d.cancel_reason
		FROM market_days d JOIN markets m ON m.id = d.market_id JOIN places p ON p.id = m.place_id
		JOIN cities c ON c.slug = d.city WHERE d.id = $1`, id).
		Scan(&d.ID, &d.City, &d.MarketID, &d.MarketName, &d.PlaceID, &d.PlaceName, &d.Date, &d.StartsAt, &d.EndsAt,
			&d.Timezone, &d.Status, &d.Version, &reason)
	if err != nil {
		return fmt.Errorf("listings: announce market day %s: %w", id, err)
	}
	if reason != nil {
		d.CancelReason = *reason
	}
	d.StartsAt, d.EndsAt = d.StartsAt.UTC(), d.EndsAt.UTC()
	return recordEvent(ctx, tx, typ, d.City, "market_day", verb, "market-days/"+d.ID, d)
}

// transition moves a day from one of the states in from, at version when
// given, in one UPDATE; set names the other columns to change (its
// parameters start at $5). When the day was not in one of those states (or
// at that version) nothing changes and the error says why.
func transition(ctx context.Context, tx pgx.Tx, d dayState, from []string, version *int64, action, set string, args ...any) error {
	tag, err := tx.Exec(ctx, `UPDATE market_days SET `+set+`, version = version + 1, updated_at = now()
		WHERE id = $1 AND city = $2 AND status = ANY($3::text[]) AND ($4::bigint IS NULL OR version = $4)`,
		append([]any{d.ID, d.City, from, version}, args...)...)
	if err != nil {
		return fmt.Errorf("listings: market day %s: %w", d.ID, err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	// Read the state again: the one loaded before the UPDATE may have moved on.
	status, v := d.Status, d.Version
	_ = tx.QueryRow(ctx, `SELECT status, version FROM market_days WHERE id = $1`, d.ID).Scan(&status, &v)
	if slices.Contains(from, status) && version != nil {
		return staleVersion("market day", *version, v)
	}
	return web.Errorf(web.EConflict, "the market day %s is %s; it cannot be %s", d.Date, status, action)
}

// OpenDay opens a scheduled market day on its local date.
func (s *Store) OpenDay(ctx context.Context, id string, now time.Time) (MarketDay, error) {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		d, err := dayForChange(ctx, tx, id)
		if err != nil {
			return err
		}
		loc, err := zones.Load(d.Timezone)
		if err != nil {
			return err
		}
		today := Today(now, loc)
		if err := transition(ctx, tx, d, []string{"scheduled"}, nil, "opened", `status = 'open', opened_at = $5`, now); err != nil {
			return err
		}
		if d.Date != today {
			// Undone by the rollback; checked after the UPDATE so that the
			// state wins the explanation.
			return web.Errorf(web.EConflict, "the market day is on %s; it can only be opened on that date (today is %s in %s)", d.Date, today, d.City)
		}
		return announceDay(ctx, tx, d.ID, contract.TypeMarketDayOpened, "opened")
	})
	if err != nil {
		return MarketDay{}, err
	}
	return s.MarketDay(ctx, id)
}

// CloseDay closes an open market day.
func (s *Store) CloseDay(ctx context.Context, id string, now time.Time) (MarketDay, error) {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		d, err := dayForChange(ctx, tx, id)
		if err != nil {
			return err
		}
		if err := transition(ctx, tx, d, []string{"open"}, nil, "closed", `status = 'closed', closed_at = $5`, now); err != nil {
			return err
		}
		if err := s.onDayEnded(ctx, tx, marketDayEnded{ID: d.ID, City: d.City, Status: "closed"}); err != nil {
			return err
		}
		return announceDay(ctx, tx, d.ID, contract.TypeMarketDayClosed, "closed")
	})
	if err != nil {
		return MarketDay{}, err
	}
	return s.MarketDay(ctx, id)
}

// CancelDay cancels a scheduled or open market day with a reason.
func (s *Store) CancelDay(ctx context.Context, id, reason string, now time.Time) (MarketDay, error) {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		d, err := dayForChange(ctx, tx, id)
		if err != nil {
			return err
		}
		if err := transition(ctx, tx, d, []string{"scheduled", "open"}, nil, "cancelled",
			`status = 'cancelled', cancel_reason = $5, cancelled_at = $6`, reason, now); err != nil {
			return err
		}
		if err := s.onDayEnded(ctx, tx, marketDayEnded{ID: d.ID, City: d.City, Status: "cancelled"}); err != nil {
			return err
		}
		return announceDay(ctx, tx, d.ID, contract.TypeMarketDayCancelled, "cancelled")
	})
	if err != nil {
		return MarketDay{}, err
	}
	return s.MarketDay(ctx, id)
}

// HoursUpdate is the body of PATCH /market-days/{id}.
type HoursUpdate struct {
	Opens   *string `json:"opens"`
	Closes  *string `json:"closes"`
	Version *int64  `json:"version"`
}

// Validate checks the times present.
func (u *HoursUpdate) Validate() error {
	var f web.Fields
	if u.Opens == nil && u.Closes == nil {
		f.Add("closes", "opens or closes is required")
	}
	if u.Opens != nil {
		if _, ok := parseClock(*u.Opens); !ok {
			f.Add("opens", "must be a local time like 07:30")
		}
	}
	if u.Closes != nil {
		if _, ok := parseClock(*u.Closes); !ok {
			f.Add("closes", "must be a local time like 13:00")
		}
	}
	checkVersion(&f, u.Version)
	return f.Err()
}

// ChangeHours changes a day's hours: opening and closing while it is
// scheduled, closing only while it is open.
func (s *Store) ChangeHours(ctx context.Context, id string, u HoursUpdate) (MarketDay, error) {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		d, err := dayForChange(ctx, tx, id)
		if err != nil {
			return err
		}
		loc, err := zones.Load(d.Timezone)
		if err != nil {
			return err
		}
		date, _ := parseDate(d.Date)
		opens, closes := d.StartsAt.In(loc).Format("15:04"), d.EndsAt.In(loc).Format("15:04")
		if u.Opens != nil {
			opens = *u.Opens
		}
		if u.Closes != nil {
			closes = *u.Closes
		}
		o, _ := parseClock(opens)
		c, _ := parseClock(closes)
		if c <= o {
			field := "closes"
			if u.Closes == nil {
				field = "opens"
			}
			return &web.Error{Code: web.EInvalid, Message: "the request has invalid fields",
				Fields: []web.FieldError{{Field: field, Message: fmt.Sprintf("closes (%s) must be after opens (%s)", closes, opens)}}}
		}
		from := []string{"scheduled", "open"}
		if u.Opens != nil && opens != d.StartsAt.In(loc).Format("15:04") {
			from = []string{"scheduled"} // an open day keeps its opening time
		}
		starts, ends := LocalTime(date, o, loc), LocalTime(date, c, loc)
		if err := transition(ctx, tx, d, from, u.Version, "given other hours",
			`starts_at = $5, ends_at = $6, hours_changed = true`, starts, ends); err != nil {
			if d.Status == "open" && len(from) == 1 && web.ErrorCode(err) == web.EConflict {
				return web.Errorf(web.EConflict, "the market day %s is open; only its closing time can change", d.Date)
			}
			return err
		}
		return announceDay(ctx, tx, d.ID, contract.TypeMarketDayHoursChanged, "hours_changed")
	})
	if err != nil {
		return MarketDay{}, err
	}
	return s.MarketDay(ctx, id)
}

// CancelRequest is the body of POST /market-days/{id}/cancel.
type CancelRequest struct {
	Reason string `json:"reason"`
}

// Validate checks the reason.
func (c *CancelRequest) Validate() error {
	var f web.Fields
	c.Reason = strings.TrimSpace(c.Reason)
	if c.Reason == "" {
		f.Add("reason", "is required: vendors and residents see it")
	} else {
		checkText(&f, "reason", c.Reason, 500)
	}
	return f.Err()
}

// ── http ──

func handleMarketDayRange(store *Store, log *slog.Logger, now func() time.Time) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := store.City(r.Context(), r.PathValue("city"))
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		loc, err := c.Location()
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		from, to, err := dateRange(r, Today(now(), loc))
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		filter, err := readDayFilter(r)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		p, err := readPage(r, "market-days", c.Slug, from, to, filter.MarketID, strings.Join(filter.Statuses, ","))
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		days, next, err := store.MarketDayRange(r.Context(), c.Slug, from, to, filter, p)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		web.JSON(w, http.StatusOK, map[string]any{"city": c.Slug, "from": from, "to": to, "items": days, "next_cursor": next})
	})
}

func readDayFilter(r *http.Request) (dayFilter, error) {
	var f web.Fields
	var filter dayFilter
	q := r.URL.Query()
	if v := q.Get("market_id"); v != "" {
		if !isUUID(v) {
			f.Add("market_id", "must be a market id (UUID)")
		}
		filter.MarketID = v
	}
	if v := q.Get("status"); v != "" {
		for _, st := range strings.Split(v, ",") {
			if !slices.Contains(marketDayStatuses, st) {
				f.Add("status", "must be a comma-separated list of scheduled, open, closed, cancelled")
				break
			}
			if !slices.Contains(filter.Statuses, st) {
				filter.Statuses = append(filter.Statuses, st)
			}
		}
		slices.Sort(filter.Statuses)
	}
	return filter, f.Err()
}

// decodeNoBody accepts an absent body or an empty JSON object.
func decodeNoBody(w http.ResponseWriter, r *http.Request) error {
	if r.Body == nil || r.ContentLength == 0 {
		return nil
	}
	_, err := web.Decode[struct{}](w, r)
	return err
}

func handleOpenDay(store *Store, log *slog.Logger, now func() time.Time) http.Handler {
	return dayAction(store, log, func(r *http.Request, w http.ResponseWriter, id string) (MarketDay, error) {
		if err := decodeNoBody(w, r); err != nil {
			return MarketDay{}, err
		}
		return store.OpenDay(r.Context(), id, now())
	})
}

func handleCloseDay(store *Store, log *slog.Logger, now func() time.Time) http.Handler {
	return dayAction(store, log, func(r *http.Request, w http.ResponseWriter, id string) (MarketDay, error) {
		if err := decodeNoBody(w, r); err != nil {
			return MarketDay{}, err
		}
		return store.CloseDay(r.Context(), id, now())
	})
}

func handleCancelDay(store *Store, log *slog.Logger, now func() time.Time) http.Handler {
	return dayAction(store, log, func(r *http.Request, w http.ResponseWriter, id string) (MarketDay, error) {
		c, err := web.Decode[CancelRequest](w, r)
		if err != nil {
			return MarketDay{}, err
		}
		return store.CancelDay(r.Context(), id, c.Reason, now())
	})
}

func handleChangeHours(store *Store, log *slog.Logger) http.Handler {
	return dayAction(store, log, func(r *http.Request, w http.ResponseWriter, id string) (MarketDay, error) {
		u, err := web.Decode[HoursUpdate](w, r)
		if err != nil {
			return MarketDay{}, err
		}
		return store.ChangeHours(r.Context(), id, u)
	})
}

// dayAction is a manager's action on a market day: 401 without a token
// before anything else, then the action.
func dayAction(store *Store, log *slog.Logger, act func(*http.Request, http.ResponseWriter, string) (MarketDay, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !requireSignedIn(w, r, log) {
			return
		}
		d, err := act(r, w, r.PathValue("id"))
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		web.JSON(w, http.StatusOK, d)
	})
}
