package calendar

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/localeurope/piazza/pkg/bus"
	"github.com/localeurope/piazza/services/contract"
)

// consumerName is the calendar's durable consumer on LISTINGS.
const consumerName = "calendar-listings"

// applyListingsEvent puts a listings event on the calendar. Stale versions
// (an older update arriving after a newer one) change nothing.
func applyListingsEvent(ctx context.Context, tx pgx.Tx, ev bus.Event, _ bus.Delivery) error {
	switch ev.Type {
	case contract.TypeCityUpserted:
		var c contract.CityV1
		if err := ev.Unmarshal(&c); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `
			INSERT INTO cities (slug, name, timezone, version) VALUES ($1, $2, $3, $4)
			ON CONFLICT (slug) DO UPDATE SET name = excluded.name, timezone = excluded.timezone, version = excluded.version
			WHERE cities.version < excluded.version`, c.Slug, c.Name, c.Timezone, c.Version)
		return err
	case contract.TypeMarketDayScheduled:
		var d contract.MarketDayV1
		if err := ev.Unmarshal(&d); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `
			INSERT INTO entries (id, city, kind, title, place_id, place_name, starts_at, ends_at, status, source, version)
			VALUES ($1, $2, 'market_day', $3, $4, $5, $6, $7, $8, 'listings', $9)
			ON CONFLICT (id) DO UPDATE SET title = excluded.title, place_name = excluded.place_name,
				starts_at = excluded.starts_at, ends_at = excluded.ends_at, status = excluded.status,
				version = excluded.version, updated_at = now()
			WHERE entries.version < excluded.version`,
			d.ID, d.City, d.MarketName, d.PlaceID, d.PlaceName, d.StartsAt, d.EndsAt, d.Status, d.Version)
		if err != nil {
			return fmt.Errorf("calendar: market day %s: %w", d.ID, err)
		}
		return nil
	default:
		return nil // not for the calendar
	}
}
