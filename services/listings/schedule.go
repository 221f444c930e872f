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

// Horizon is how far ahead market days are generated from schedules.
const Horizon = 28 * 24 * time.Hour

type marketSchedule struct {
	ID, City, Name, PlaceID, PlaceName, Timezone string
	Weekdays                                     []int16
	Opens, Closes                                time.Duration // since local midnight
	SeasonStart                                  time.Time
	SeasonEnd                                    *time.Time
}

// GenerateMarketDays creates the market days of every market from today (in
// each city's timezone) up to the horizon, and announces each new one. It is
// safe to run on several replicas at once: a day that exists is skipped, and
// only the transaction that created it announces it.
func (s *Store) GenerateMarketDays(ctx context.Context, now time.Time, horizon time.Duration) (int, error) {
	created := 0
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			SELECT m.id::text, m.city, m.name, p.id::text, p.name, c.timezone, m.weekdays,
			       extract(epoch FROM m.opens)::bigint, extract(epoch FROM m.closes)::bigint, m.season_start, m.season_end
			FROM markets m JOIN places p ON p.id = m.place_id JOIN cities c ON c.slug = m.city`)
		if err != nil {
			return err
		}
		var markets []marketSchedule
		var ms marketSchedule
		var opens, closes int64
		_, err = pgx.ForEachRow(rows, []any{&ms.ID, &ms.City, &ms.Name, &ms.PlaceID, &ms.PlaceName, &ms.Timezone, &ms.Weekdays,
			&opens, &closes, &ms.SeasonStart, &ms.SeasonEnd}, func() error {
			ms.Opens, ms.Closes = time.Duration(opens)*time.Second, time.Duration(closes)*time.Second
			markets = append(markets, ms)
			return nil
		})
		if err != nil {
			return err
		}
		for _, m := range markets {
			n, err := generateForMarket(ctx, tx, m, now, horizon)
			if err != nil {
				return fmt.Errorf("market %s: %w", m.ID, err)
			}
			created += n
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("listings: generate market days: %w", err)
	}
	return created, nil
}

func generateForMarket(ctx context.Context, tx pgx.Tx, m marketSchedule, now time.Time, horizon time.Duration) (int, error) {
	loc, err := time.LoadLocation(m.Timezone)
	if err != nil {
		return 0, err
	}
	local := now.In(loc)
	first := time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, time.UTC)
	days := int(horizon / (24 * time.Hour))
	created := 0
	for i := 0; i <= days; i++ {
		date := first.AddDate(0, 0, i)
		if !m.runsOn(date) {
			continue
		}
		starts, ends := LocalTime(date, m.Opens, loc), LocalTime(date, m.Closes, loc)
		id := newID()
		tag, err := tx.Exec(ctx, `
			INSERT INTO market_days (id, city, market_id, date, starts_at, ends_at) VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (market_id, date) DO NOTHING`, id, m.City, m.ID, date.Format(time.DateOnly), starts, ends)
		if err != nil {
			return created, err
		}
		if tag.RowsAffected() == 0 {
			continue
		}
		created++
		ev, err := bus.NewEvent(contract.SourceListings, contract.TypeMarketDayScheduled, "market-days/"+id, contract.MarketDayV1{
			ID: id, City: m.City, MarketID: m.ID, MarketName: m.Name, PlaceID: m.PlaceID, PlaceName: m.PlaceName,
			Date: date.Format(time.DateOnly), StartsAt: starts, EndsAt: ends, Timezone: m.Timezone, Status: "scheduled", Version: 1,
		})
		if err != nil {
			return created, err
		}
		if err := outbox.Add(ctx, tx, contract.ListingsSubject(m.City, "market_day", "scheduled"), ev); err != nil {
			return created, err
		}
	}
	return created, nil
}

func (m marketSchedule) runsOn(date time.Time) bool {
	if date.Before(m.SeasonStart) || (m.SeasonEnd != nil && date.After(*m.SeasonEnd)) {
		return false
	}
	wd := int16(date.Weekday())
	if wd == 0 {
		wd = 7 // ISO: Sunday is 7
	}
	for _, d := range m.Weekdays {
		if d == wd {
			return true
		}
	}
	return false
}

// LocalTime is the instant at wall-clock offset since midnight on date in
// loc. In a DST gap (02:30 on the spring-forward night) Go moves the time
// forward by the gap; in the autumn overlap it takes the second occurrence
// (standard time).
func LocalTime(date time.Time, sinceMidnight time.Duration, loc *time.Location) time.Time {
	h := int(sinceMidnight / time.Hour)
	mnt := int(sinceMidnight % time.Hour / time.Minute)
	return time.Date(date.Year(), date.Month(), date.Day(), h, mnt, 0, 0, loc)
}

// Today is the local date in loc at now.
func Today(now time.Time, loc *time.Location) string { return now.In(loc).Format(time.DateOnly) }
