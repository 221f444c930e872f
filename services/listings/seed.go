package listings

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/localeurope/piazza/pkg/bus"
	"github.com/localeurope/piazza/pkg/outbox"
	"github.com/localeurope/piazza/services/contract"
)

type demoPlace struct {
	Name       string
	Lat, Lon   float64
	Rows, Cols int
	Markets    []demoMarket
}

type demoMarket struct {
	Name          string
	Weekdays      []int16
	Opens, Closes string
	Categories    []string
	// AutoAccept: the daily markets take stalls at once; the weekly ones
	// leave applications for a manager to review.
	AutoAccept bool
}

type demoCity struct {
	City
	Places []demoPlace
}

// demoCities are real squares with markets like the ones held there. The
// daily markets make sure the demo always has something on today.
var demoCities = []demoCity{
	{
		City: City{Slug: "ghent", Name: "Gent", Country: "BE", Timezone: "Europe/Brussels", Languages: []string{"nl", "en"}},
		Places: []demoPlace{
			{Name: "Vrijdagmarkt", Lat: 51.0571, Lon: 3.7262, Rows: 3, Cols: 6, Markets: []demoMarket{
				{Name: "Vrijdagmarkt", Weekdays: []int16{5}, Opens: "07:00", Closes: "13:00", Categories: []string{"vegetables", "fruit", "cheese", "flowers"}},
				{Name: "Dagmarkt Vrijdagmarkt", Weekdays: []int16{1, 2, 3, 4, 6, 7}, Opens: "08:00", Closes: "20:00", Categories: []string{"crafts", "street-food"}, AutoAccept: true},
			}},
			{Name: "Groentenmarkt", Lat: 51.0555, Lon: 3.7217, Rows: 2, Cols: 5, Markets: []demoMarket{
				{Name: "Boerenmarkt Groentenmarkt", Weekdays: []int16{1, 2, 3, 4, 5, 6, 7}, Opens: "07:00", Closes: "19:00", Categories: []string{"vegetables", "fruit", "bread"}, AutoAccept: true},
			}},
		},
	},
	{
		City: City{Slug: "bologna", Name: "Bologna", Country: "IT", Timezone: "Europe/Rome", Languages: []string{"it", "en"}},
		Places: []demoPlace{
			{Name: "Piazza VIII Agosto", Lat: 44.5007, Lon: 11.3446, Rows: 4, Cols: 6, Markets: []demoMarket{
				{Name: "La Piazzola", Weekdays: []int16{5, 6}, Opens: "07:30", Closes: "18:00", Categories: []string{"crafts", "clothing"}},
			}},
			{Name: "Piazza Santo Stefano", Lat: 44.4918, Lon: 11.3484, Rows: 2, Cols: 6, Markets: []demoMarket{
				{Name: "Mercato di Santo Stefano", Weekdays: []int16{1, 2, 3, 4, 5, 6, 7}, Opens: "08:00", Closes: "20:00", Categories: []string{"vegetables", "cheese", "crafts"}, AutoAccept: true},
			}},
		},
	},
}

// SeedDemo inserts the demo cities, squares, pitch plans and markets when the
// city table is empty, and announces the cities. Replicas starting together
// serialise on the table lock; the loser finds the data there.
func (s *Store) SeedDemo(ctx context.Context, now time.Time) (bool, error) {
	seeded := false
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `LOCK TABLE cities IN SHARE ROW EXCLUSIVE MODE`); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM cities`).Scan(&n); err != nil || n > 0 {
			return err
		}
		seeded = true
		for _, dc := range demoCities {
			if err := seedCity(ctx, tx, dc, now); err != nil {
				return fmt.Errorf("%s: %w", dc.Slug, err)
			}
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("listings: seed demo data: %w", err)
	}
	return seeded, nil
}

func seedCity(ctx context.Context, tx pgx.Tx, dc demoCity, now time.Time) error {
	c := dc.City
	if _, err := tx.Exec(ctx, `INSERT INTO cities (slug, name, country, timezone, languages) VALUES ($1, $2, $3, $4, $5)`,
		c.Slug, c.Name, c.Country, c.Timezone, c.Languages); err != nil {
		return err
	}
	ev, err := bus.NewEvent(contract.SourceListings, contract.TypeCityUpserted, "cities/"+c.Slug, contract.CityV1{
		Slug: c.Slug, Name: c.Name, Country: c.Country, Timezone: c.Timezone, Languages: c.Languages, Version: 1})
	if err != nil {
		return err
	}
	if err := outbox.Add(ctx, tx, contract.ListingsSubject(c.Slug, "city", "upserted"), ev); err != nil {
		return err
	}
	loc, err := c.Location()
	if err != nil {
		return err
	}
	season := now.In(loc).AddDate(0, 0, -7).Format(time.DateOnly)
	const pitchW, pitchH, gap = 3.0, 3.0, 1.5
	for _, dp := range dc.Places {
		placeID := newID()
		planW := float64(dp.Cols)*(pitchW+gap) + gap
		planH := float64(dp.Rows)*(pitchH+gap*2) + gap
		if _, err := tx.Exec(ctx, `INSERT INTO places (id, city, name, lat, lon, plan_w, plan_h) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			placeID, c.Slug, dp.Name, dp.Lat, dp.Lon, planW, planH); err != nil {
			return err
		}
		for r := 0; r < dp.Rows; r++ {
			for col := 0; col < dp.Cols; col++ {
				code := fmt.Sprintf("%c%d", 'A'+r, col+1)
				x := gap + float64(col)*(pitchW+gap)
				y := gap + float64(r)*(pitchH+gap*2)
				if _, err := tx.Exec(ctx, `
					INSERT INTO pitches (id, city, place_id, code, x, y, w, h, power, water, cover)
					VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
					newID(), c.Slug, placeID, code, x, y, pitchW, pitchH, col%2 == 0, col == 0, r == 0); err != nil {
					return err
				}
			}
		}
		if _, err := announcePlace(ctx, tx, placeID); err != nil {
			return err
		}
		for _, dm := range dp.Markets {
			marketID := newID()
			if _, err := tx.Exec(ctx, `
				INSERT INTO markets (id, city, place_id, name, season_start, categories, auto_accept)
				VALUES ($1, $2, $3, $4, $5, $6, $7)`,
				marketID, c.Slug, placeID, dm.Name, season, dm.Categories, dm.AutoAccept); err != nil {
				return err
			}
			sched := make([]ScheduleEntry, len(dm.Weekdays))
			for i, wd := range dm.Weekdays {
				sched[i] = ScheduleEntry{Weekday: int(wd), Opens: dm.Opens, Closes: dm.Closes}
			}
			if err := replaceSchedule(ctx, tx, c.Slug, marketID, sched); err != nil {
				return err
			}
			if _, err := announceMarket(ctx, tx, marketID); err != nil {
				return err
			}
		}
	}
	return nil
}
