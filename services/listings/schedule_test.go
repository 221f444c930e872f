package listings

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/localeurope/piazza/services/contract"
)

func TestLocalTime(t *testing.T) {
	tests := []struct {
		name  string
		tz    string
		date  string
		clock time.Duration
		want  string // UTC
	}{
		{"a 07:00 Brussels market is 06:00Z the day before spring forward", "Europe/Brussels", "2026-03-28", 7 * time.Hour, "2026-03-28T06:00:00Z"},
		{"a 07:00 Brussels market is 05:00Z on the spring-forward day", "Europe/Brussels", "2026-03-29", 7 * time.Hour, "2026-03-29T05:00:00Z"},
		{"a 07:00 Brussels market is 05:00Z the day before fall back", "Europe/Brussels", "2026-10-24", 7 * time.Hour, "2026-10-24T05:00:00Z"},
		{"a 07:00 Brussels market is 06:00Z on the fall-back day", "Europe/Brussels", "2026-10-25", 7 * time.Hour, "2026-10-25T06:00:00Z"},
		{"minutes count: 07:30 in Brussels in summer is 05:30Z", "Europe/Brussels", "2026-07-03", 7*time.Hour + 30*time.Minute, "2026-07-03T05:30:00Z"},
		{"Lisbon is on UTC in winter", "Europe/Lisbon", "2026-03-28", 7 * time.Hour, "2026-03-28T07:00:00Z"},
		{"Lisbon is UTC+1 from its spring-forward day", "Europe/Lisbon", "2026-03-29", 7 * time.Hour, "2026-03-29T06:00:00Z"},
		{"Lisbon is back on UTC on its fall-back day", "Europe/Lisbon", "2026-10-25", 7 * time.Hour, "2026-10-25T07:00:00Z"},
		{"Helsinki is UTC+2 in winter", "Europe/Helsinki", "2026-03-28", 7 * time.Hour, "2026-03-28T05:00:00Z"},
		{"Helsinki is UTC+3 from its spring-forward day", "Europe/Helsinki", "2026-03-29", 7 * time.Hour, "2026-03-29T04:00:00Z"},
		{"Helsinki is back on UTC+2 on its fall-back day", "Europe/Helsinki", "2026-10-25", 7 * time.Hour, "2026-10-25T05:00:00Z"},
		{"a time in the spring gap moves forward by the gap (02:30 → 03:30 CEST)", "Europe/Brussels", "2026-03-29", 2*time.Hour + 30*time.Minute, "2026-03-29T01:30:00Z"},
		{"a time in the autumn overlap is its second occurrence (02:30 CET)", "Europe/Brussels", "2026-10-25", 2*time.Hour + 30*time.Minute, "2026-10-25T01:30:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			date, err := time.Parse(time.DateOnly, tt.date)
			if err != nil {
				t.Fatal(err)
			}
			got := LocalTime(date, tt.clock, mustLoad(t, tt.tz))
			if want, _ := time.Parse(time.RFC3339, tt.want); !got.Equal(want) {
				t.Errorf("LocalTime(%s, %s, %s) = %s, want %s", tt.date, tt.clock, tt.tz, got.UTC().Format(time.RFC3339), tt.want)
			}
		})
	}
}

func TestToday(t *testing.T) {
	tests := []struct {
		name, tz, now, want string
	}{
		{"in Helsinki it is still the 1st of May at 23:59:59 local (20:59:59Z)", "Europe/Helsinki", "2026-05-01T20:59:59Z", "2026-05-01"},
		{"in Helsinki it is the 2nd of May at local midnight, 21:00Z on the 1st", "Europe/Helsinki", "2026-05-01T21:00:00Z", "2026-05-02"},
		{"in Helsinki in winter the day turns at 22:00Z", "Europe/Helsinki", "2026-01-15T22:00:00Z", "2026-01-16"},
		{"in Helsinki in winter 21:59Z is still the same day", "Europe/Helsinki", "2026-01-15T21:59:59Z", "2026-01-15"},
		{"in Ghent 22:30Z on the 1st of May is already the 2nd", "Europe/Brussels", "2026-05-01T22:30:00Z", "2026-05-02"},
		{"in Lisbon in winter local date and UTC date agree", "Europe/Lisbon", "2026-01-15T23:59:59Z", "2026-01-15"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now, err := time.Parse(time.RFC3339, tt.now)
			if err != nil {
				t.Fatal(err)
			}
			if got := Today(now, mustLoad(t, tt.tz)); got != tt.want {
				t.Errorf("Today(%s, %s) = %s, want %s", tt.now, tt.tz, got, tt.want)
			}
		})
	}
}

func TestSeedDemo(t *testing.T) {
	now := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	ctx := context.Background()

	t.Run("seeding twice seeds once and announces each city once", func(t *testing.T) {
		s := newStore(t)
		first, err := s.SeedDemo(ctx, now)
		if err != nil || !first {
			t.Fatalf("first SeedDemo = %v, %v; want true, nil", first, err)
		}
		second, err := s.SeedDemo(ctx, now)
		if err != nil || second {
			t.Fatalf("second SeedDemo = %v, %v; want false, nil", second, err)
		}
		if n := count(t, s, `SELECT count(*) FROM cities`); n != 2 {
			t.Errorf("cities = %d, want 2", n)
		}
		if n := count(t, s, `SELECT count(*) FROM outbox WHERE type = $1`, contract.TypeCityUpserted); n != 2 {
			t.Errorf("city.upserted outbox rows = %d, want 2", n)
		}
		cities, _, err := s.Cities(ctx, page{Limit: maxLimit})
		if err != nil {
			t.Fatal(err)
		}
		var slugs []string
		for _, c := range cities {
			slugs = append(slugs, c.Slug)
		}
		slices.Sort(slugs)
		if !slices.Equal(slugs, []string{"bologna", "ghent"}) {
			t.Errorf("cities = %v, want bologna and ghent", slugs)
		}
	})

	t.Run("replicas seeding at once seed once", func(t *testing.T) {
		s := newStore(t)
		const replicas = 6
		var wg sync.WaitGroup
		results := make(chan bool, replicas)
		for range replicas {
			wg.Go(func() {
				seeded, err := s.SeedDemo(ctx, now)
				if err != nil {
					t.Errorf("SeedDemo: %v", err)
				}
				results <- seeded
			})
		}
		wg.Wait()
		close(results)
		seeded := 0
		for r := range results {
			if r {
				seeded++
			}
		}
		if seeded != 1 {
			t.Errorf("%d replicas seeded, want 1", seeded)
		}
		if n := count(t, s, `SELECT count(*) FROM cities`); n != 2 {
			t.Errorf("cities = %d, want 2", n)
		}
	})
}

func TestGenerateMarketDays(t *testing.T) {
	ctx := context.Background()
	// 23:30Z on Friday 20 March is 00:30 on Saturday 21 March in Ghent: the
	// local date, not the UTC one, is "today".
	now := time.Date(2026, 3, 20, 23, 30, 0, 0, time.UTC)
	brussels := mustLoad(t, "Europe/Brussels")

	type day struct {
		market, date string
		starts       time.Time
	}
	setup := func(t *testing.T) (*Store, []day) {
		t.Helper()
		s := newStore(t)
		addCity(t, s, "ghent", "Europe/Brussels")
		place := addPlace(t, s, "ghent", "A1")
		tueFri := addMarket(t, s, "ghent", place, marketSpec{Name: "Tuesday and Friday", Weekdays: []int16{2, 5},
			Opens: "07:00", Closes: "13:00", SeasonStart: "2026-01-01"})
		sunday := addMarket(t, s, "ghent", place, marketSpec{Name: "Sunday", Weekdays: []int16{7},
			Opens: "07:00", Closes: "13:00", SeasonStart: "2026-01-01"})
		season := addMarket(t, s, "ghent", place, marketSpec{Name: "Short season", Weekdays: []int16{1, 2, 3, 4, 5, 6, 7},
			Opens: "08:30", Closes: "12:00", SeasonStart: "2026-03-25", SeasonEnd: "2026-04-01"})
		at := func(date string, clock time.Duration) time.Time {
			d, _ := time.Parse(time.DateOnly, date)
			return LocalTime(d, clock, brussels)
		}
		var want []day
		for _, d := range []string{"2026-03-24", "2026-03-27", "2026-03-31", "2026-04-03", "2026-04-07", "2026-04-10", "2026-04-14", "2026-04-17"} {
			want = append(want, day{tueFri, d, at(d, 7*time.Hour)})
		}
		for _, d := range []string{"2026-03-22", "2026-03-29", "2026-04-05", "2026-04-12"} {
			want = append(want, day{sunday, d, at(d, 7*time.Hour)})
		}
		for _, d := range []string{"2026-03-25", "2026-03-26", "2026-03-27", "2026-03-28", "2026-03-29", "2026-03-30", "2026-03-31", "2026-04-01"} {
			want = append(want, day{season, d, at(d, 8*time.Hour+30*time.Minute)})
		}
		return s, want
	}
	stored := func(t *testing.T, s *Store) []day {
		t.Helper()
		rows, err := s.pool.Query(ctx, `SELECT market_id::text, date::text, starts_at FROM market_days ORDER BY market_id, date`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var got []day
		for rows.Next() {
			var d day
			if err := rows.Scan(&d.market, &d.date, &d.starts); err != nil {
				t.Fatal(err)
			}
			got = append(got, d)
		}
		return got
	}
	sameDays := func(t *testing.T, got, want []day) {
		t.Helper()
		key := func(d day) string { return d.market + " " + d.date }
		slices.SortFunc(got, func(a, b day) int { return strings.Compare(key(a), key(b)) })
		slices.SortFunc(want, func(a, b day) int { return strings.Compare(key(a), key(b)) })
		if len(got) != len(want) {
			t.Fatalf("%d market days, want %d:\n got %v\nwant %v", len(got), len(want), got, want)
		}
		for i := range got {
			if key(got[i]) != key(want[i]) || !got[i].starts.Equal(want[i].starts) {
				t.Errorf("market day %d = %s at %s, want %s at %s", i, key(got[i]), got[i].starts.UTC(), key(want[i]), want[i].starts.UTC())
			}
		}
	}

	t.Run("days fall on scheduled weekdays, in season, from local today to the horizon, at local opening time across DST", func(t *testing.T) {
		s, want := setup(t)
		n, err := s.GenerateMarketDays(ctx, now, Horizon)
		if err != nil {
			t.Fatal(err)
		}
		if n != len(want) {
			t.Errorf("GenerateMarketDays created %d, want %d", n, len(want))
		}
		sameDays(t, stored(t, s), want)
	})

	t.Run("each created day is announced by exactly one outbox row carrying the day", func(t *testing.T) {
		s, want := setup(t)
		if _, err := s.GenerateMarketDays(ctx, now, Horizon); err != nil {
			t.Fatal(err)
		}
		rows, err := s.pool.Query(ctx, `SELECT subject, ce_subject, data FROM outbox WHERE type = $1`, contract.TypeMarketDayScheduled)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		ids := map[string]bool{}
		var announced []day
		for rows.Next() {
			var subject, ceSubject string
			var data []byte
			if err := rows.Scan(&subject, &ceSubject, &data); err != nil {
				t.Fatal(err)
			}
			var p contract.MarketDayV1
			if err := json.Unmarshal(data, &p); err != nil {
				t.Fatal(err)
			}
			if subject != "listings.ghent.market_day.scheduled" || ceSubject != "market-days/"+p.ID {
				t.Errorf("outbox row on %q about %q, want listings.ghent.market_day.scheduled about market-days/%s", subject, ceSubject, p.ID)
			}
			if ids[p.ID] {
				t.Errorf("market day %s announced twice", p.ID)
			}
			ids[p.ID] = true
			var dbDate string
			var dbStarts, dbEnds time.Time
			if err := s.pool.QueryRow(ctx, `SELECT date::text, starts_at, ends_at FROM market_days WHERE id = $1`, p.ID).Scan(&dbDate, &dbStarts, &dbEnds); err != nil {
				t.Fatalf("announced market day %s: %v", p.ID, err)
			}
			if p.Date != dbDate || !p.StartsAt.Equal(dbStarts) || !p.EndsAt.Equal(dbEnds) || p.City != "ghent" ||
				p.Timezone != "Europe/Brussels" || p.Status != "scheduled" || p.Version != 1 || p.MarketName == "" || p.PlaceName == "" {
				t.Errorf("payload %+v does not match the stored day %s %s–%s", p, dbDate, dbStarts, dbEnds)
			}
			announced = append(announced, day{p.MarketID, p.Date, p.StartsAt})
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		sameDays(t, announced, want)
	})

	t.Run("generating again creates and announces nothing", func(t *testing.T) {
		s, want := setup(t)
		if _, err := s.GenerateMarketDays(ctx, now, Horizon); err != nil {
			t.Fatal(err)
		}
		n, err := s.GenerateMarketDays(ctx, now.Add(time.Hour), Horizon)
		if err != nil || n != 0 {
			t.Fatalf("second GenerateMarketDays = %d, %v; want 0, nil", n, err)
		}
		sameDays(t, stored(t, s), want)
		if n := count(t, s, `SELECT count(*) FROM outbox WHERE type = $1`, contract.TypeMarketDayScheduled); n != len(want) {
			t.Errorf("outbox rows = %d, want %d", n, len(want))
		}
	})

	t.Run("a week later only the new tail of the horizon is created", func(t *testing.T) {
		s, want := setup(t)
		if _, err := s.GenerateMarketDays(ctx, now, Horizon); err != nil {
			t.Fatal(err)
		}
		n, err := s.GenerateMarketDays(ctx, now.AddDate(0, 0, 7), Horizon)
		if err != nil {
			t.Fatal(err)
		}
		// Saturday 28 March + 28 days = Saturday 25 April: three new days.
		if n != 3 {
			t.Errorf("created %d days a week later, want 3 (Tue 21, Fri 24 and Sun 19 April)", n)
		}
		if got := count(t, s, `SELECT count(*) FROM outbox WHERE type = $1`, contract.TypeMarketDayScheduled); got != len(want)+n {
			t.Errorf("outbox rows = %d, want %d", got, len(want)+n)
		}
	})

	t.Run("replicas generating at once announce each day once", func(t *testing.T) {
		s, want := setup(t)
		const replicas = 4
		var wg sync.WaitGroup
		created := make(chan int, replicas)
		for range replicas {
			wg.Go(func() {
				n, err := s.GenerateMarketDays(ctx, now, Horizon)
				if err != nil {
					t.Errorf("GenerateMarketDays: %v", err)
				}
				created <- n
			})
		}
		wg.Wait()
		close(created)
		total := 0
		for n := range created {
			total += n
		}
		if total != len(want) {
			t.Errorf("replicas created %d days in all, want %d", total, len(want))
		}
		if n := count(t, s, `SELECT count(*) FROM outbox WHERE type = $1`, contract.TypeMarketDayScheduled); n != len(want) {
			t.Errorf("outbox rows = %d, want %d", n, len(want))
		}
	})
}
