package calendar

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/localeurope/piazza/pkg/bus"
	"github.com/localeurope/piazza/services/contract"
)

// consumerName is the calendar's durable consumer on LISTINGS.
const consumerName = "calendar-listings"

// consumerSubjects are the listings subjects the calendar reads.
var consumerSubjects = []string{"listings.*.city.>", "listings.*.market_day.>", "listings.*.place.>"}

// applyListingsEvent puts a listings event on the calendar. Every market-day
// type is an upsert by version, so a cancellation or new hours replace the
// day, and stale versions (an older update arriving after a newer one)
// change nothing.
func applyListingsEvent(ctx context.Context, tx pgx.Tx, ev bus.Event, _ bus.Delivery) error {
	switch {
	case ev.Type == contract.TypeCityUpserted:
		var c contract.CityV1
		if err := ev.Unmarshal(&c); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `
			INSERT INTO cities (slug, name, timezone, version) VALUES ($1, $2, $3, $4)
			ON CONFLICT (slug) DO UPDATE SET name = excluded.name, timezone = excluded.timezone, version = excluded.version
			WHERE cities.version < excluded.version`, c.Slug, c.Name, c.Timezone, c.Version)
		return err
	case ev.Type == contract.TypePlaceUpserted:
		var p contract.PlaceV1
		if err := ev.Unmarshal(&p); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `
			INSERT INTO places (id, city, name, version) VALUES ($1, $2, $3, $4)
			ON CONFLICT (id) DO UPDATE SET name = excluded.name, version = excluded.version
			WHERE places.version < excluded.version`, p.ID, p.City, p.Name, p.Version)
		if err != nil {
			return fmt.Errorf("calendar: place %s: %w", p.ID, err)
		}
		return nil
	case slices.Contains(contract.MarketDayTypes, ev.Type):
		var d contract.MarketDayV1
		if err := ev.Unmarshal(&d); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `
			INSERT INTO entries (id, city, kind, title, place_id, place_name, starts_at, ends_at, status, source, version, cancel_reason, market_id)
			VALUES ($1, $2, 'market_day', $3, $4, $5, $6, $7, $8, 'listings', $9, $10, $11)
			ON CONFLICT (id) DO UPDATE SET title = excluded.title, place_name = excluded.place_name,
				starts_at = excluded.starts_at, ends_at = excluded.ends_at, status = excluded.status,
				version = excluded.version, cancel_reason = excluded.cancel_reason, updated_at = now()
			WHERE entries.version < excluded.version`,
			d.ID, d.City, d.MarketName, d.PlaceID, d.PlaceName, d.StartsAt, d.EndsAt, d.Status, d.Version, d.CancelReason, nilIfEmpty(d.MarketID))
		if err != nil {
			return fmt.Errorf("calendar: market day %s: %w", d.ID, err)
		}
		// A market day names its square: the calendar learns places from it
		// too (version 0, so that a place.upserted always wins).
		if d.PlaceID != "" {
			if _, err := tx.Exec(ctx, `INSERT INTO places (id, city, name, version) VALUES ($1, $2, $3, 0) ON CONFLICT (id) DO NOTHING`,
				d.PlaceID, d.City, d.PlaceName); err != nil {
				return fmt.Errorf("calendar: place of market day %s: %w", d.ID, err)
			}
		}
		return nil
	default:
		return nil // not for the calendar
	}
}

func nilIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
