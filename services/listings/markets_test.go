package listings

import (
	"net/http"
	"slices"
	"testing"

	"github.com/google/uuid"
	"github.com/localeurope/piazza/services/contract"
)

func newMarketBody(placeID string) map[string]any {
	return map[string]any{
		"place_id": placeID, "name": "Kouter bloemenmarkt", "categories": []string{"flowers"},
		"schedule": []map[string]any{
			{"weekday": 7, "opens": "07:00", "closes": "13:00"},
			{"weekday": 3, "opens": "08:00", "closes": "12:00"},
		},
		"season_start": "2026-04-01", "season_end": "2026-12-31", "exceptions": []string{"2026-05-10"},
		"auto_accept": true, "offer_hours": 12, "description": "Flowers on the Kouter every Sunday since 1772.",
	}
}

// daysOf lists a market's days between two dates as date → day.
func daysOf(t *testing.T, c caller, marketID, from, to string) map[string]MarketDay {
	t.Helper()
	var pg struct {
		Items []MarketDay `json:"items"`
	}
	c.must(http.StatusOK, "GET", "/cities/ghent/market-days?limit=100&market_id="+marketID+"&from="+from+"&to="+to, nil, &pg)
	days := map[string]MarketDay{}
	for _, d := range pg.Items {
		days[d.Date] = d
	}
	return days
}

func TestMarketsAPI(t *testing.T) {
	svc := startService(t, apiNow) // Friday 1 May 2026
	anon, ghent, bologna, vendor := anonymous(t, svc), managerOf(t, svc, "ghent"), managerOf(t, svc, "bologna"), aVendor(t, svc)
	var place Square
	ghent.must(http.StatusCreated, "POST", "/cities/ghent/places", newPlaceBody(), &place)

	var m Market
	t.Run("a manager creates a market and its days over the horizon in one transaction", func(t *testing.T) {
		res := ghent.must(http.StatusCreated, "POST", "/cities/ghent/markets", newMarketBody(place.ID), &m)
		if m.Place.ID != place.ID || !m.AutoAccept || m.OfferHours != 12 || len(m.Schedule) != 2 || m.Schedule[0].Weekday != 3 ||
			*m.SeasonEnd != "2026-12-31" || m.Version != 1 {
			t.Fatalf("market = %+v", m)
		}
		if res.Header.Get("Location") != "/api/v1/listings/markets/"+m.ID {
			t.Errorf("Location = %q", res.Header.Get("Location"))
		}
		days := daysOf(t, anon, m.ID, "2026-05-01", "2026-05-29")
		// Sundays 3, 17, 24 (10 is an exception), Wednesdays 6, 13, 20, 27.
		want := []string{"2026-05-03", "2026-05-06", "2026-05-13", "2026-05-17", "2026-05-20", "2026-05-24", "2026-05-27"}
		for _, d := range want {
			if _, ok := days[d]; !ok {
				t.Errorf("no market day on %s", d)
			}
		}
		if len(days) != len(want) {
			t.Errorf("%d days, want %d: %v", len(days), len(want), days)
		}
		if d := days["2026-05-06"]; d.Opens != "08:00" || d.Closes != "12:00" || d.Timezone != "Europe/Brussels" {
			t.Errorf("Wednesday = %+v, want 08:00–12:00 Europe/Brussels", d)
		}
		if n := outboxCount(t, svc.Store, contract.TypeMarketUpserted, "markets/"+m.ID); n != 1 {
			t.Errorf("market.upserted rows = %d, want 1", n)
		}
		if n := count(t, svc.Store, `SELECT count(*) FROM outbox o JOIN market_days d ON o.ce_subject = 'market-days/' || d.id
			WHERE o.type = $1 AND d.market_id = $2`, contract.TypeMarketDayScheduled, m.ID); n < len(want) {
			t.Errorf("market_day.scheduled rows = %d, want one per day", n)
		}
	})

	t.Run("who may create a market", func(t *testing.T) {
		wantProblem(t, anon.send("POST", "/cities/ghent/markets", newMarketBody(place.ID)), http.StatusUnauthorized, "")
		wantProblem(t, bologna.send("POST", "/cities/ghent/markets", newMarketBody(place.ID)), http.StatusForbidden, "")
		wantProblem(t, vendor.send("POST", "/cities/ghent/markets", newMarketBody(place.ID)), http.StatusForbidden, "")
		// A Ghent square is no place for a Bologna market.
		wantProblem(t, adminOf(t, svc).send("POST", "/cities/bologna/markets", newMarketBody(place.ID)), http.StatusUnprocessableEntity, "place_id")
	})

	t.Run("an invalid market is refused field by field", func(t *testing.T) {
		for _, tt := range []struct {
			name  string
			edit  func(map[string]any)
			field string
		}{
			{"a repeated weekday", func(b map[string]any) {
				b["schedule"] = []map[string]any{{"weekday": 3, "opens": "08:00", "closes": "12:00"}, {"weekday": 3, "opens": "13:00", "closes": "14:00"}}
			}, "schedule[1].weekday"},
			{"closing before opening", func(b map[string]any) {
				b["schedule"] = []map[string]any{{"weekday": 3, "opens": "12:00", "closes": "08:00"}}
			}, "schedule[0].closes"},
			{"a season ending before it starts", func(b map[string]any) { b["season_end"] = "2026-01-01" }, "season_end"},
			{"no schedule", func(b map[string]any) { delete(b, "schedule") }, "schedule"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				body := newMarketBody(place.ID)
				tt.edit(body)
				wantProblem(t, ghent.send("POST", "/cities/ghent/markets", body), http.StatusUnprocessableEntity, tt.field)
			})
		}
	})

	t.Run("anyone lists and reads markets, a page at a time", func(t *testing.T) {
		var got Market
		anon.must(http.StatusOK, "GET", "/markets/"+m.ID, nil, &got)
		if got.Name != m.Name || len(got.Exceptions) != 1 {
			t.Fatalf("market = %+v", got)
		}
		wantProblem(t, anon.send("GET", "/markets/"+uuid.NewString(), nil), http.StatusNotFound, "")
		all := walk(t, anon, "/cities/ghent/markets", "id")
		wantOnce(t, walk(t, anon, "/cities/ghent/markets?limit=1", "id"), all)
		if len(all) != 4 { // three demo markets and this one
			t.Errorf("%d markets, want 4", len(all))
		}
		if got := walk(t, anon, "/cities/ghent/markets?category=flowers", "id"); len(got) != 2 || !slices.Contains(got, m.ID) {
			t.Errorf("flower markets = %v, want the demo Vrijdagmarkt and this one", got)
		}
		if got := walk(t, anon, "/cities/ghent/markets?place_id="+place.ID, "id"); len(got) != 1 {
			t.Errorf("markets on the square = %v, want 1", got)
		}
		wantProblem(t, anon.send("GET", "/cities/ghent/markets?category=Not+A+Slug", nil), http.StatusUnprocessableEntity, "category")
	})

	t.Run("a schedule change is carried to the scheduled days, never to open or hand-changed ones", func(t *testing.T) {
		before := daysOf(t, anon, m.ID, "2026-05-01", "2026-05-29")
		handChanged, open := before["2026-05-13"], before["2026-05-03"]
		ghent.must(http.StatusOK, "PATCH", "/market-days/"+handChanged.ID, map[string]any{"closes": "11:00"}, nil)
		mustExec(t, svc.Store, `UPDATE market_days SET status = 'open' WHERE id = $1`, open.ID)

		// Wednesdays go, Sundays get new hours, Saturdays come.
		var got Market
		ghent.must(http.StatusOK, "PATCH", "/markets/"+m.ID, map[string]any{"version": 1, "schedule": []map[string]any{
			{"weekday": 7, "opens": "09:00", "closes": "14:00"}, {"weekday": 6, "opens": "08:00", "closes": "12:00"},
		}}, &got)
		if got.Version != 2 || len(got.Schedule) != 2 || got.Schedule[0].Weekday != 6 {
			t.Fatalf("market = %+v", got)
		}
		after := daysOf(t, anon, m.ID, "2026-05-01", "2026-05-29")
		if d := after["2026-05-06"]; d.Status != "cancelled" || d.CancelReason != scheduleChangedReason {
			t.Errorf("a dropped Wednesday = %s %q, want cancelled because the schedule changed", d.Status, d.CancelReason)
		}
		if d := after["2026-05-13"]; d.Status != "cancelled" {
			t.Errorf("a dropped Wednesday with its own hours = %s, want cancelled", d.Status)
		}
		if d := after["2026-05-17"]; d.Opens != "09:00" || d.Closes != "14:00" || d.Version != 2 {
			t.Errorf("a Sunday = %s–%s v%d, want 09:00–14:00 v2", d.Opens, d.Closes, d.Version)
		}
		if d := after["2026-05-03"]; d.Status != "open" || d.Opens != "07:00" {
			t.Errorf("the open Sunday = %s %s, want open at its old hours", d.Status, d.Opens)
		}
		if d, ok := after["2026-05-09"]; !ok || d.Opens != "08:00" {
			t.Errorf("Saturday 9 May = %+v, want generated at 08:00", d)
		}
		if n := outboxCount(t, svc.Store, contract.TypeMarketDayCancelled, "market-days/"+before["2026-05-06"].ID); n != 1 {
			t.Errorf("market_day.cancelled rows = %d, want 1", n)
		}
		if n := outboxCount(t, svc.Store, contract.TypeMarketDayHoursChanged, "market-days/"+before["2026-05-17"].ID); n != 1 {
			t.Errorf("market_day.hours_changed rows = %d, want 1", n)
		}
	})

	t.Run("who may change a market, and with which version", func(t *testing.T) {
		wantProblem(t, ghent.send("PATCH", "/markets/"+m.ID, map[string]any{"auto_accept": false, "version": 1}), http.StatusConflict, "")
		wantProblem(t, anon.send("PATCH", "/markets/"+m.ID, map[string]any{"auto_accept": false}), http.StatusUnauthorized, "")
		wantProblem(t, bologna.send("PATCH", "/markets/"+m.ID, map[string]any{"auto_accept": false}), http.StatusForbidden, "")
		wantProblem(t, vendor.send("PATCH", "/markets/"+m.ID, map[string]any{"auto_accept": false}), http.StatusForbidden, "")
		wantProblem(t, ghent.send("PATCH", "/markets/"+m.ID, map[string]any{"season_start": "2027-01-01"}), http.StatusUnprocessableEntity, "season_end")
		var got Market
		ghent.must(http.StatusOK, "PATCH", "/markets/"+m.ID, map[string]any{"auto_accept": false, "offer_hours": 48, "season_end": nil}, &got)
		if got.AutoAccept || got.OfferHours != 48 || got.SeasonEnd != nil || got.Version != 3 {
			t.Errorf("market = %+v", got)
		}
		var autoAccept bool
		var offer int
		if err := svc.Store.pool.QueryRow(t.Context(), `SELECT auto_accept, offer_hours FROM markets WHERE id = $1`, m.ID).Scan(&autoAccept, &offer); err != nil || autoAccept || offer != 48 {
			t.Errorf("markets row auto_accept=%v offer_hours=%d (%v)", autoAccept, offer, err)
		}
	})
}
