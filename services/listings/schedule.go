package listings

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/localeurope/piazza/pkg/zones"
	"github.com/localeurope/piazza/services/contract"
)

// Horizon is how far ahead market days are generated from schedules.
const Horizon = 28 * 24 * time.Hour

type marketSchedule struct {
	ID, City, Name, PlaceID, PlaceName, Timezone string
	Hours                                        map[int]dayHours // by ISO weekday
	SeasonStart                                  time.Time
	SeasonEnd                                    *time.Time
	Exceptions                                   map[string]bool // local dates
}

// dayHours are a weekday's opening hours, since local midnight.
type dayHours struct{ Opens, Closes time.Duration }

// loadSchedules loads the schedules of the given markets, or of every market
// when none is given.
func loadSchedules(ctx context.Context, q querier, ids ...string) ([]marketSchedule, error) {
	rows, err := q.Query(ctx, `
		SELECT m.id::text, m.city, m.name, p.id::text, p.name, c.timezone, m.season_start, m.season_end, m.exceptions::text[]
		FROM markets m JOIN places p ON p.id = m.place_id JOIN cities c ON c.slug = m.city
		WHERE cardinality($1::uuid[]) = 0 OR m.id = ANY($1::uuid[])
		ORDER BY m.id`, nonNil(ids))
	if err != nil {
		return nil, err
	}
	var markets []marketSchedule
	index := map[string]int{}
	var ms marketSchedule
	var exceptions []string
	_, err = pgx.ForEachRow(rows, []any{&ms.ID, &ms.City, &ms.Name, &ms.PlaceID, &ms.PlaceName, &ms.Timezone,
		&ms.SeasonStart, &ms.SeasonEnd, &exceptions}, func() error {
		m := ms
		m.Hours, m.Exceptions = map[int]dayHours{}, map[string]bool{}
		for _, d := range exceptions {
			m.Exceptions[d] = true
		}
		if ms.SeasonEnd != nil {
			end := *ms.SeasonEnd
			m.SeasonEnd = &end
		}
		index[m.ID] = len(markets)
		markets = append(markets, m)
		return nil
	})
	if err != nil {
		return nil, err
	}
	rows, err = q.Query(ctx, `
		SELECT market_id::text, weekday, extract(epoch FROM opens)::bigint, extract(epoch FROM closes)::bigint
		FROM market_schedule WHERE cardinality($1::uuid[]) = 0 OR market_id = ANY($1::uuid[])`, nonNil(ids))
	if err != nil {
		return nil, err
	}
	var id string
	var wd int
	var opens, closes int64
	_, err = pgx.ForEachRow(rows, []any{&id, &wd, &opens, &closes}, func() error {
		if i, ok := index[id]; ok {
			markets[i].Hours[wd] = dayHours{time.Duration(opens) * time.Second, time.Duration(closes) * time.Second}
		}
		return nil
	})
	return markets, err
}

// GenerateMarketDays creates the market days of every market from today (in
// each city's timezone) up to the horizon, and announces each new one. It is
// safe to run on several replicas at once: a day that exists is skipped, and
// only the transaction that created it announces it.
func (s *Store) GenerateMarketDays(ctx context.Context, now time.Time, horizon time.Duration) (int, error) {
	created := 0
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		markets, err := loadSchedules(ctx, tx)
		if err != nil {
			return err
		}
		for _, m := range markets {
			n, err := s.generateForMarket(ctx, tx, m, now, horizon)
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

func (s *Store) generateForMarket(ctx context.Context, tx pgx.Tx, m marketSchedule, now time.Time, horizon time.Duration) (int, error) {
	loc, err := zones.Load(m.Timezone)
	if err != nil {
		return 0, err
	}
	local := now.In(loc)
	first := time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, time.UTC)
	days := int(horizon / (24 * time.Hour))
	created := 0
	for i := 0; i <= days; i++ {
		date := first.AddDate(0, 0, i)
		h, ok := m.hoursOn(date)
		if !ok {
			continue
		}
		starts, ends := LocalTime(date, h.Opens, loc), LocalTime(date, h.Closes, loc)
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
		err = recordEvent(ctx, tx, contract.TypeMarketDayScheduled, m.City, "market_day", "scheduled", "market-days/"+id, contract.MarketDayV1{
			ID: id, City: m.City, MarketID: m.ID, MarketName: m.Name, PlaceID: m.PlaceID, PlaceName: m.PlaceName,
			Date: date.Format(time.DateOnly), StartsAt: starts, EndsAt: ends, Timezone: m.Timezone, Status: "scheduled", Version: 1,
		})
		if err != nil {
			return created, err
		}
		if err := s.onDayCreated(ctx, tx, marketDayCreated{ID: id, City: m.City, MarketID: m.ID,
			Date: date.Format(time.DateOnly), StartsAt: starts, EndsAt: ends, Now: now}); err != nil {
			return created, err
		}
	}
	return created, nil
}

// runsOn reports whether the market is held on date (a local date at UTC
// midnight): a scheduled weekday, in season, not an exception.
func (m marketSchedule) runsOn(date time.Time) bool {
	_, ok := m.hoursOn(date)
	return ok
}

// hoursOn returns the market's hours on date, if it is held then.
func (m marketSchedule) hoursOn(date time.Time) (dayHours, bool) {
	if date.Before(m.SeasonStart) || (m.SeasonEnd != nil && date.After(*m.SeasonEnd)) || m.Exceptions[date.Format(time.DateOnly)] {
		return dayHours{}, false
	}
	wd := int(date.Weekday())
	if wd == 0 {
		wd = 7 // ISO: Sunday is 7
	}
	h, ok := m.Hours[wd]
	return h, ok
}

// scheduleChangedReason is the cancel reason of a day the schedule dropped.
const scheduleChangedReason = "the market's schedule changed"

// reconcileDays carries a changed schedule to the market's scheduled days
// from today on: a day the schedule no longer holds is cancelled; a day whose
// hours were not changed by hand takes the schedule's hours. Open, closed and
// cancelled days are never touched.
func (s *Store) reconcileDays(ctx context.Context, tx pgx.Tx, m marketSchedule, now time.Time) error {
	loc, err := zones.Load(m.Timezone)
	if err != nil {
		return err
	}
	rows, err := tx.Query(ctx, `
		SELECT id::text, date, starts_at, ends_at, hours_changed FROM market_days
		WHERE market_id = $1 AND city = $2 AND status = 'scheduled' AND date >= $3
		ORDER BY date FOR NO KEY UPDATE`, m.ID, m.City, Today(now, loc))
	if err != nil {
		return fmt.Errorf("listings: reconcile market %s: %w", m.ID, err)
	}
	type day struct {
		id           string
		date         time.Time
		starts, ends time.Time
		byHand       bool
	}
	var days []day
	var d day
	if _, err := pgx.ForEachRow(rows, []any{&d.id, &d.date, &d.starts, &d.ends, &d.byHand}, func() error {
		days = append(days, d)
		return nil
	}); err != nil {
		return fmt.Errorf("listings: reconcile market %s: %w", m.ID, err)
	}
	for _, d := range days {
		h, ok := m.hoursOn(d.date)
		switch {
		case !ok:
			if _, err := tx.Exec(ctx, `
				UPDATE market_days SET status = 'cancelled', cancel_reason = $3, cancelled_at = $4, version = version + 1, updated_at = now()
				WHERE id = $1 AND city = $2 AND status = 'scheduled'`, d.id, m.City, scheduleChangedReason, now); err != nil {
				return fmt.Errorf("listings: reconcile market %s: %w", m.ID, err)
			}
			if err := s.onDayEnded(ctx, tx, marketDayEnded{ID: d.id, City: m.City, Status: "cancelled"}); err != nil {
				return err
			}
			if err := announceDay(ctx, tx, d.id, contract.TypeMarketDayCancelled, "cancelled"); err != nil {
				return err
			}
		case !d.byHand:
			starts, ends := LocalTime(d.date, h.Opens, loc), LocalTime(d.date, h.Closes, loc)
			if starts.Equal(d.starts) && ends.Equal(d.ends) {
				continue
			}
			if _, err := tx.Exec(ctx, `
				UPDATE market_days SET starts_at = $3, ends_at = $4, version = version + 1, updated_at = now()
				WHERE id = $1 AND city = $2 AND status = 'scheduled'`, d.id, m.City, starts, ends); err != nil {
				return fmt.Errorf("listings: reconcile market %s: %w", m.ID, err)
			}
			if err := announceDay(ctx, tx, d.id, contract.TypeMarketDayHoursChanged, "hours_changed"); err != nil {
				return err
			}
		}
	}
	return nil
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
