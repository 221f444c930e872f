package calendar

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/localeurope/piazza/pkg/web"
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
	return time.LoadLocation(tz)
}

// Entries lists a city's entries that overlap [from, to).
func (s *Store) Entries(ctx context.Context, city string, from, to time.Time) ([]Entry, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT id::text, city, kind, title, place_id::text, place_name, starts_at, ends_at, status, source, version
		FROM entries WHERE city = $1 AND starts_at < $3 AND ends_at > $2
		ORDER BY starts_at, title LIMIT 2000`, city, from, to)
	if err != nil {
		return nil, fmt.Errorf("calendar: entries: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[Entry])
}
