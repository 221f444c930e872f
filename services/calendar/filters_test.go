package calendar

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/localeurope/piazza/pkg/bus"
	"github.com/localeurope/piazza/pkg/inbox"
	"github.com/localeurope/piazza/services/contract"
)

func TestFiltersAPI(t *testing.T) {
	now := time.Date(2026, 3, 20, 10, 0, 0, 0, time.UTC) // Friday 20 March 2026
	s := startService(t, now)
	c := specClient(t)
	api := s.URL + "/api/v1/calendar"
	berlin := mustLoad(t, "Europe/Berlin")

	// Two days of one market on the Marktplatz, and a cancelled day of another.
	h := inbox.Handler(s.Pool, consumerName, applyListingsEvent)
	weekly := marketDay("berlin", "Wochenmarkt", at(t, berlin, "2026-03-21 08:00"), at(t, berlin, "2026-03-21 13:00"), 1)
	weekly.PlaceID = s.Place
	next := weekly
	next.ID, next.StartsAt, next.EndsAt = "0195f000-0000-7000-8000-0000000000a1", at(t, berlin, "2026-03-28 08:00"), at(t, berlin, "2026-03-28 13:00")
	called := marketDay("berlin", "Flohmarkt", at(t, berlin, "2026-03-22 08:00"), at(t, berlin, "2026-03-22 13:00"), 1)
	called.Status, called.PlaceName = "cancelled", "Rathausplatz"
	for _, d := range []contract.MarketDayV1{weekly, next, called} {
		if err := h(context.Background(), marketDayEvent(t, d), bus.Delivery{}); err != nil {
			t.Fatal(err)
		}
	}
	create := func(body map[string]any) EventView {
		t.Helper()
		return must[EventView](t, 201)(call(t, c, "POST", api+"/cities/berlin/events", &berlinManager, body))
	}
	create(jazz(s.Place)) // weekly music on the Marktplatz, for ever
	create(map[string]any{"title": "Spring concert", "category": "music", "address": "Philharmonie",
		"start": "2026-03-10T20:00", "end": "2026-03-10T22:00"}) // over already
	create(map[string]any{"title": "Puppet theatre", "category": "kids", "address": "Park",
		"start": "2026-03-25T15:00", "end": "2026-03-25T16:00"})
	called2 := create(map[string]any{"title": "Egg hunt", "category": "easter", "address": "Park",
		"start": "2026-04-05T11:00", "end": "2026-04-05T12:00"})
	must[EventView](t, 200)(call(t, c, "PATCH", api+"/events/"+called2.ID, &berlinManager, map[string]any{"status": "cancelled", "reason": "Rain"}))
	must[Submission](t, 201)(call(t, c, "POST", api+"/cities/berlin/submissions", nil, map[string]any{
		"title": "Repair café", "category": "community", "address": "x", "start": "2026-03-24T17:00", "end": "2026-03-24T20:00"}))

	type categories struct {
		City  string          `json:"city"`
		Items []CategoryCount `json:"items"`
	}
	type places struct {
		City  string       `json:"city"`
		Items []PlaceCount `json:"items"`
	}

	t.Run("categories are those with something to come, with how many", func(t *testing.T) {
		got := must[categories](t, 200)(call(t, c, "GET", api+"/cities/berlin/categories", nil, nil))
		want := []CategoryCount{{"kids", 1}, {"market", 1}, {"music", 1}}
		if got.City != "berlin" || !slices.Equal(got.Items, want) {
			t.Errorf("categories = %+v, want %+v (not the past concert, the cancelled egg hunt, the pending submission or the cancelled market day)", got, want)
		}
	})

	t.Run("every category listed selects something on the calendar", func(t *testing.T) {
		got := must[categories](t, 200)(call(t, c, "GET", api+"/cities/berlin/categories", nil, nil))
		for _, cat := range got.Items {
			p := must[calendarPage](t, 200)(call(t, c, "GET", api+"/cities/berlin/events?from=2026-03-20&to=2026-06-19&category="+cat.Slug, nil, nil))
			if len(p.Items) == 0 {
				t.Errorf("category %s is listed but selects nothing", cat.Slug)
			}
		}
	})

	t.Run("places are the city's, with what is coming up there", func(t *testing.T) {
		got := must[places](t, 200)(call(t, c, "GET", api+"/cities/berlin/places", nil, nil))
		// The cancelled Flohmarkt day named a square of its own: the calendar
		// knows that place, with nothing coming up there. The Marktplatz has
		// the jazz and the Wochenmarkt (one market, two days).
		want := []PlaceCount{{s.Place, "Marktplatz", 2}, {called.PlaceID, "Rathausplatz", 0}}
		if got.City != "berlin" || !slices.Equal(got.Items, want) {
			t.Errorf("places = %+v, want %+v", got.Items, want)
		}
	})

	t.Run("another city's lists are its own", func(t *testing.T) {
		cats := must[categories](t, 200)(call(t, c, "GET", api+"/cities/lisbon/categories", nil, nil))
		pls := must[places](t, 200)(call(t, c, "GET", api+"/cities/lisbon/places", nil, nil))
		if len(cats.Items) != 0 || len(pls.Items) != 0 || cats.Items == nil || pls.Items == nil {
			t.Errorf("Lisbon: categories %+v, places %+v; want two empty lists", cats.Items, pls.Items)
		}
	})

	t.Run("an unknown city is a 404", func(t *testing.T) {
		for _, path := range []string{"/cities/atlantis/categories", "/cities/atlantis/places"} {
			if st, _, b := call(t, c, "GET", api+path, nil, nil); st != 404 {
				t.Errorf("GET %s = %d %s, want 404", path, st, b)
			}
		}
	})

	t.Run("a series that has ended leaves its category", func(t *testing.T) {
		create(map[string]any{"title": "Lent choir", "category": "choir", "address": "Dom",
			"start": "2026-02-20T19:00", "end": "2026-02-20T20:00", "rrule": "FREQ=WEEKLY;UNTIL=20260319T230000Z"})
		got := must[categories](t, 200)(call(t, c, "GET", api+"/cities/berlin/categories", nil, nil))
		if slices.ContainsFunc(got.Items, func(c CategoryCount) bool { return c.Slug == "choir" }) {
			t.Errorf("categories = %+v: the choir's last date is past", got.Items)
		}
	})
}
