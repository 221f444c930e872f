package calendar

// The calendar's filters come from its data: the categories in use on a
// city's calendar and the city's places, each with how much is coming up, so
// that a client never keeps its own list of them.

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/localeurope/piazza/pkg/web"
)

// maxFilterItems bounds a list of categories or places: a filter with more
// choices than this is no longer a filter.
const maxFilterItems = 500

// CategoryCount is a category in use on a city's calendar. Upcoming counts
// the public event series (not cancelled) with an occurrence still to come,
// and for "market" the markets with a market day still to come.
type CategoryCount struct {
	Slug     string `json:"slug"`
	Upcoming int    `json:"upcoming"`
}

// PlaceCount is one of a city's places, with its upcoming event series and
// markets counted as for categories.
type PlaceCount struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Upcoming int    `json:"upcoming"`
}

// Categories lists the categories with something coming up after now, the
// busiest first.
func (s *Store) Categories(ctx context.Context, city string, now time.Time) ([]CategoryCount, error) {
	// An event may itself be filed under "market": it counts with the
	// market days under the one slug.
	rows, err := s.pool.Query(ctx, `
		SELECT slug, sum(n)::int FROM (
			SELECT category AS slug, count(*) AS n FROM events
			WHERE city = $1 AND status IN ('confirmed', 'tentative') AND (window_end IS NULL OR window_end > $2)
			GROUP BY category
			UNION ALL
			SELECT $4::text, count(DISTINCT coalesce(market_id::text, title)) FROM entries
			WHERE city = $1 AND status <> 'cancelled' AND ends_at > $2
		) c
		GROUP BY slug HAVING sum(n) > 0
		ORDER BY 2 DESC, 1 LIMIT $3`, city, now, maxFilterItems, marketCategory)
	if err != nil {
		return nil, fmt.Errorf("calendar: categories of %s: %w", city, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[CategoryCount])
	if err != nil {
		return nil, fmt.Errorf("calendar: categories of %s: %w", city, err)
	}
	return out, nil
}

// Places lists the city's places (the calendar's copy), by name, each with
// what is coming up there after now.
func (s *Store) Places(ctx context.Context, city string, now time.Time) ([]PlaceCount, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT p.id::text, p.name,
			(SELECT count(*) FROM events e
				WHERE e.city = p.city AND e.place_id = p.id AND e.status IN ('confirmed', 'tentative')
					AND (e.window_end IS NULL OR e.window_end > $2))::int
			+ (SELECT count(DISTINCT coalesce(m.market_id::text, m.title)) FROM entries m
				WHERE m.city = p.city AND m.place_id = p.id AND m.status <> 'cancelled' AND m.ends_at > $2)::int
		FROM places p WHERE p.city = $1
		ORDER BY p.name, p.id LIMIT $3`, city, now, maxFilterItems)
	if err != nil {
		return nil, fmt.Errorf("calendar: places of %s: %w", city, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[PlaceCount])
	if err != nil {
		return nil, fmt.Errorf("calendar: places of %s: %w", city, err)
	}
	return out, nil
}

type categoryList struct {
	City  string          `json:"city"`
	Items []CategoryCount `json:"items"`
}

type placeList struct {
	City  string       `json:"city"`
	Items []PlaceCount `json:"items"`
}

// handleCategories lists a city's categories for the calendar's filter.
func handleCategories(store *Store, log *slog.Logger, now func() time.Time) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		city := r.PathValue("city")
		if _, err := store.Timezone(r.Context(), city); err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		items, err := store.Categories(r.Context(), city, now())
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		if items == nil {
			items = []CategoryCount{}
		}
		web.JSON(w, http.StatusOK, categoryList{City: city, Items: items})
	})
}

// handlePlaces lists a city's places for the calendar's filter and for
// choosing an event's place.
func handlePlaces(store *Store, log *slog.Logger, now func() time.Time) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		city := r.PathValue("city")
		if _, err := store.Timezone(r.Context(), city); err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		items, err := store.Places(r.Context(), city, now())
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		if items == nil {
			items = []PlaceCount{}
		}
		web.JSON(w, http.StatusOK, placeList{City: city, Items: items})
	})
}
