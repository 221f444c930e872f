package calendar

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/localeurope/piazza/pkg/auth"
	"github.com/localeurope/piazza/pkg/bus"
	"github.com/localeurope/piazza/pkg/inbox"
	"github.com/localeurope/piazza/services/contract"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func jazz(place string) map[string]any {
	return map[string]any{
		"title": "Jazz on the square", "description": "Bring a chair, the band brings the rest.", "place_id": place,
		"category": "music", "organiser": "Kulturamt", "image_url": "https://example.org/jazz.jpg",
		"links":         []map[string]string{{"title": "Programme", "url": "https://example.org/jazz"}},
		"accessibility": "Step-free access from the north side; a hearing loop near the stage.",
		"start":         "2026-03-07T10:00", "end": "2026-03-07T12:00", "rrule": "FREQ=WEEKLY;BYDAY=SA",
	}
}

func TestEventsAPI(t *testing.T) {
	now := time.Date(2026, 3, 20, 10, 0, 0, 0, time.UTC) // Friday 20 March 2026
	s := startService(t, now)
	c := specClient(t)
	api := s.URL + "/api/v1/calendar"
	berlin := mustLoad(t, "Europe/Berlin")

	// A market day from listings, on the Saturday of the spring change.
	md := marketDay("berlin", "Wochenmarkt", at(t, berlin, "2026-03-28 08:00"), at(t, berlin, "2026-03-28 13:00"), 1)
	md.PlaceID = s.Place
	h := inbox.Handler(s.Pool, consumerName, applyListingsEvent)
	if err := h(context.Background(), marketDayEvent(t, md), bus.Delivery{}); err != nil {
		t.Fatal(err)
	}

	t.Run("only the city's managers and admins create events", func(t *testing.T) {
		for _, tt := range []struct {
			name   string
			who    *auth.Principal
			status int
		}{
			{"anonymous", nil, 401},
			{"a vendor", &vendor, 403},
			{"a manager of another city", &lisbonManager, 403},
		} {
			if st, _, body := call(t, c, "POST", api+"/cities/berlin/events", tt.who, jazz(s.Place)); st != tt.status {
				t.Errorf("%s: %d %s, want %d", tt.name, st, body, tt.status)
			}
		}
		must[EventView](t, 201)(call(t, c, "POST", api+"/cities/berlin/events", &admin, map[string]any{
			"title": "Admin's event", "category": "civic", "address": "Rathaus", "start": "2026-03-21T18:00", "end": "2026-03-21T19:00"}))
	})

	ev := must[EventView](t, 201)(call(t, c, "POST", api+"/cities/berlin/events", &berlinManager, jazz(s.Place)))

	t.Run("an event is created with its place, uid and feed links", func(t *testing.T) {
		if ev.Place == nil || ev.Place.Name != "Marktplatz" || ev.UID != ev.ID+"@piazza" || ev.Status != "confirmed" ||
			ev.Timezone != "Europe/Berlin" || !strings.HasPrefix(ev.WebcalURL, "webcal://") || ev.Sequence != 0 || ev.Version != 1 {
			t.Errorf("event = %+v", ev)
		}
		if !ev.StartsAt.Equal(at(t, berlin, "2026-03-07 10:00")) {
			t.Errorf("starts_at = %s", ev.StartsAt)
		}
	})

	t.Run("invalid events are field errors", func(t *testing.T) {
		for _, tt := range []struct {
			name  string
			patch map[string]any
			field string
		}{
			{"no title", map[string]any{"title": ""}, "title"},
			{"an unknown place", map[string]any{"place_id": "0195f000-0000-7000-8000-000000000000"}, "place_id"},
			{"a start the clocks skip", map[string]any{"start": "2026-03-29T02:30", "end": "2026-03-29T03:30", "rrule": ""}, "start"},
			{"a start that is not an occurrence", map[string]any{"start": "2026-03-06T10:00", "end": "2026-03-06T12:00"}, "start"},
			{"an hourly rule", map[string]any{"rrule": "FREQ=HOURLY"}, "rrule"},
			{"end before start", map[string]any{"end": "2026-03-07T09:00"}, "end"},
			{"a bad category", map[string]any{"category": "Live Music"}, "category"},
			{"a javascript link", map[string]any{"links": []map[string]string{{"title": "x", "url": "javascript:alert(1)"}}}, "links[0].url"},
		} {
			body := jazz(s.Place)
			for k, v := range tt.patch {
				body[k] = v
			}
			st, _, b := call(t, c, "POST", api+"/cities/berlin/events", &berlinManager, body)
			if st != 422 || !slices.Contains(problemFields(t, b), tt.field) {
				t.Errorf("%s: %d %s, want 422 on %s", tt.name, st, b, tt.field)
			}
		}
	})

	occurrences := func(t *testing.T, query string) calendarPage {
		t.Helper()
		return must[calendarPage](t, 200)(call(t, c, "GET", api+"/cities/berlin/events?"+query, nil, nil))
	}
	jazzStarts := func(p calendarPage) []string {
		var out []string
		for _, e := range p.Items {
			if e.EventID == ev.ID {
				out = append(out, e.StartsAt.In(berlin).Format("01-02 15:04 MST")+" "+e.Status)
			}
		}
		return out
	}

	t.Run("a weekly 10:00 event stays at 10:00 local across the spring change", func(t *testing.T) {
		p := occurrences(t, "from=2026-03-21&to=2026-04-04")
		want := []string{"03-21 10:00 CET confirmed", "03-28 10:00 CET confirmed", "04-04 10:00 CEST confirmed"}
		if got := jazzStarts(p); !slices.Equal(got, want) {
			t.Errorf("occurrences = %q, want %q", got, want)
		}
		var market *Entry
		for i := range p.Items {
			if p.Items[i].Kind == "market_day" {
				market = &p.Items[i]
			}
		}
		if market == nil || market.ID != md.ID || market.Editable || market.Category != "market" {
			t.Errorf("market day entry = %+v", market)
		}
	})

	t.Run("one occurrence is cancelled and another moved", func(t *testing.T) {
		must[EventView](t, 200)(call(t, c, "PUT", api+"/events/"+ev.ID+"/occurrences/2026-03-28T10:00", &berlinManager,
			map[string]any{"status": "cancelled"}))
		got := must[EventView](t, 200)(call(t, c, "PUT", api+"/events/"+ev.ID+"/occurrences/2026-04-04T10:00", &berlinManager,
			map[string]any{"start": "2026-04-05T15:00", "end": "2026-04-05T17:00", "title": "Jazz (Easter Sunday)"}))
		if len(got.Overrides) != 2 || got.Sequence != 2 || got.Version != 3 {
			t.Errorf("after two changes: %d overrides, sequence %d, version %d", len(got.Overrides), got.Sequence, got.Version)
		}
		p := occurrences(t, "from=2026-03-21&to=2026-04-05")
		want := []string{"03-21 10:00 CET confirmed", "03-28 10:00 CET cancelled", "04-05 15:00 CEST confirmed"}
		if got := jazzStarts(p); !slices.Equal(got, want) {
			t.Errorf("occurrences = %q, want %q", got, want)
		}
		if st, _, b := call(t, c, "PUT", api+"/events/"+ev.ID+"/occurrences/2026-03-29T10:00", &berlinManager,
			map[string]any{"status": "cancelled"}); st != 404 {
			t.Errorf("changing a Sunday of a Saturday event = %d %s, want 404", st, b)
		}
	})

	t.Run("only the city's managers change events and occurrences", func(t *testing.T) {
		for _, who := range []struct {
			name   string
			p      *auth.Principal
			status int
		}{{"anonymous", nil, 401}, {"a Lisbon manager", &lisbonManager, 403}, {"a vendor", &vendor, 403}} {
			p := who.p
			if st, _, _ := call(t, c, "PATCH", api+"/events/"+ev.ID, p, map[string]any{"title": "x"}); st != who.status {
				t.Errorf("%s PATCH = %d, want %d", who.name, st, who.status)
			}
			if st, _, _ := call(t, c, "PUT", api+"/events/"+ev.ID+"/occurrences/2026-03-21T10:00", p, map[string]any{"status": "cancelled"}); st != who.status {
				t.Errorf("%s PUT occurrence = %d, want %d", who.name, st, who.status)
			}
			if st, _, _ := call(t, c, "DELETE", api+"/events/"+ev.ID+"/occurrences/2026-03-28T10:00", p, nil); st != who.status {
				t.Errorf("%s DELETE occurrence = %d, want %d", who.name, st, who.status)
			}
		}
	})

	t.Run("market days are not editable in the calendar", func(t *testing.T) {
		if st, _, b := call(t, c, "PATCH", api+"/events/"+md.ID, &berlinManager, map[string]any{"title": "x"}); st != 409 {
			t.Errorf("PATCH a market day = %d %s, want 409", st, b)
		}
		if st, _, _ := call(t, c, "PATCH", api+"/events/"+md.ID, nil, map[string]any{"title": "x"}); st != 401 {
			t.Errorf("anonymous PATCH of a market day = %d, want 401", st)
		}
	})

	t.Run("a change bumps SEQUENCE; a stale version is a conflict", func(t *testing.T) {
		got := must[EventView](t, 200)(call(t, c, "PATCH", api+"/events/"+ev.ID, &berlinManager,
			map[string]any{"title": "Jazz am Marktplatz", "version": 3}))
		if got.Sequence != 3 || got.Version != 4 || got.Title != "Jazz am Marktplatz" || len(got.Overrides) != 2 {
			t.Errorf("after PATCH: %+v", got)
		}
		if st, _, _ := call(t, c, "PATCH", api+"/events/"+ev.ID, &berlinManager, map[string]any{"title": "x", "version": 3}); st != 409 {
			t.Errorf("stale PATCH = %d, want 409", st)
		}
	})

	t.Run("filters by place, category and text", func(t *testing.T) {
		count := func(q string) int { return len(occurrences(t, "from=2026-03-21&to=2026-03-28&"+q).Items) }
		if n := count("category=music"); n != 2 {
			t.Errorf("category=music: %d items, want 2", n)
		}
		if n := count("category=market"); n != 1 {
			t.Errorf("category=market: %d items, want 1 (the market day)", n)
		}
		if n := count("place=" + s.Place); n != 3 {
			t.Errorf("place: %d items, want 3", n)
		}
		if n := count("q=marktpl"); n != 3 {
			t.Errorf("q=marktpl: %d items, want 3 (prefix match on title and place)", n)
		}
		if n := count("q=rathaus"); n != 1 {
			t.Errorf("q=rathaus: %d items, want 1 (the address)", n)
		}
		if st, _, b := call(t, c, "GET", api+"/cities/berlin/events?place=nope", nil, nil); st != 422 || !slices.Contains(problemFields(t, b), "place") {
			t.Errorf("a malformed place = %d %s", st, b)
		}
	})

	t.Run("today and this weekend are in the city's timezone", func(t *testing.T) {
		p := must[calendarPage](t, 200)(call(t, c, "GET", api+"/cities/berlin/weekend", nil, nil))
		if p.From != "2026-03-21" || p.To != "2026-03-22" || len(p.Items) != 2 {
			t.Errorf("weekend %s–%s with %d items, want 2026-03-21–22 with jazz and the admin's event", p.From, p.To, len(p.Items))
		}
		p = must[calendarPage](t, 200)(call(t, c, "GET", api+"/cities/berlin/today", nil, nil))
		if p.From != "2026-03-20" || p.To != "2026-03-20" || len(p.Items) != 0 {
			t.Errorf("today %s–%s with %d items", p.From, p.To, len(p.Items))
		}
	})

	t.Run("pages follow each other and cover the whole range", func(t *testing.T) {
		all := occurrences(t, "from=2026-03-01&to=2026-05-31")
		var paged []string
		q := "from=2026-03-01&to=2026-05-31&limit=3"
		for range 100 {
			p := occurrences(t, q)
			for _, e := range p.Items {
				paged = append(paged, e.ID)
			}
			if p.NextCursor == nil {
				break
			}
			q = "from=2026-03-01&to=2026-05-31&limit=3&cursor=" + *p.NextCursor
		}
		var want []string
		for _, e := range all.Items {
			want = append(want, e.ID)
		}
		if !slices.Equal(paged, want) || len(want) < 10 {
			t.Errorf("paged ids (%d) differ from the whole list (%d)", len(paged), len(want))
		}
		if st, _, b := call(t, c, "GET", api+"/cities/berlin/events?from=2026-04-01&cursor="+strings.TrimPrefix(q, "from=2026-03-01&to=2026-05-31&limit=3&cursor="), nil, nil); st != 422 {
			t.Errorf("a cursor of another query = %d %s, want 422", st, b)
		}
	})

	t.Run("anyone submits; a manager approves or rejects", func(t *testing.T) {
		sub := must[Submission](t, 201)(call(t, c, "POST", api+"/cities/berlin/submissions", nil, map[string]any{
			"title": "Repair café", "category": "community", "address": "Oranienstraße 1", "start": "2026-03-24T17:00",
			"end": "2026-03-24T20:00", "submitter_name": "Ada", "submitter_email": "ada@example.org"}))
		if sub.Event.Status != "pending_review" || sub.StatusToken == "" || sub.Event.Submitter != nil {
			t.Fatalf("submission = %+v", sub)
		}
		id := sub.Event.ID
		if st, _, _ := call(t, c, "GET", api+"/events/"+id, nil, nil); st != 404 {
			t.Errorf("a pending submission is visible to anyone: %d", st)
		}
		if st, _, _ := call(t, c, "GET", api+"/events/"+id+"?token=wrong", nil, nil); st != 404 {
			t.Errorf("a wrong token shows the submission: %d", st)
		}
		got := must[EventView](t, 200)(call(t, c, "GET", api+"/events/"+id+"?token="+sub.StatusToken, nil, nil))
		if got.Status != "pending_review" || got.Submitter != nil {
			t.Errorf("submitter's view = %+v", got)
		}
		if n := len(occurrences(t, "from=2026-03-24&to=2026-03-24").Items); n != 0 {
			t.Errorf("a pending submission is on the calendar (%d items)", n)
		}
		if st, _, _ := call(t, c, "POST", api+"/cities/berlin/submissions", nil, map[string]any{
			"title": "x", "category": "x", "address": "x", "start": "2026-03-24T17:00", "end": "2026-03-24T18:00", "status": "confirmed"}); st != 422 {
			t.Errorf("a submission that sets its status = %d, want 422", st)
		}
		if st, _, _ := call(t, c, "GET", api+"/cities/berlin/moderation", nil, nil); st != 401 {
			t.Errorf("anonymous moderation = %d", st)
		}
		if st, _, _ := call(t, c, "GET", api+"/cities/berlin/moderation", &lisbonManager, nil); st != 403 {
			t.Errorf("Lisbon manager's moderation of Berlin = %d", st)
		}
		q := must[ModerationPage](t, 200)(call(t, c, "GET", api+"/cities/berlin/moderation", &berlinManager, nil))
		if len(q.Items) != 1 || q.Items[0].ID != id || q.Items[0].Submitter == nil || q.Items[0].Submitter.Email != "ada@example.org" {
			t.Errorf("moderation queue = %+v", q)
		}
		if st, _, _ := call(t, c, "POST", api+"/events/"+id+"/approve", &lisbonManager, map[string]any{}); st != 403 {
			t.Errorf("Lisbon manager approves a Berlin event: %d", st)
		}
		approved := must[EventView](t, 200)(call(t, c, "POST", api+"/events/"+id+"/approve", &berlinManager, map[string]any{}))
		if approved.Status != "confirmed" {
			t.Errorf("approved = %s", approved.Status)
		}
		if st, _, _ := call(t, c, "POST", api+"/events/"+id+"/approve", &berlinManager, map[string]any{}); st != 409 {
			t.Errorf("approving twice = %d, want 409", st)
		}
		if n := len(occurrences(t, "from=2026-03-24&to=2026-03-24").Items); n != 1 {
			t.Errorf("the approved event is not on the calendar (%d items)", n)
		}
		other := must[Submission](t, 201)(call(t, c, "POST", api+"/cities/berlin/submissions", nil, map[string]any{
			"title": "Spam", "category": "spam", "address": "x", "start": "2026-03-24T17:00", "end": "2026-03-24T18:00"}))
		if st, _, b := call(t, c, "POST", api+"/events/"+other.Event.ID+"/reject", &berlinManager, map[string]any{}); st != 422 {
			t.Errorf("rejecting without a reason = %d %s", st, b)
		}
		rejected := must[EventView](t, 200)(call(t, c, "POST", api+"/events/"+other.Event.ID+"/reject", &berlinManager, map[string]any{"reason": "Not an event"}))
		if rejected.Status != "rejected" || rejected.Reason != "Not an event" {
			t.Errorf("rejected = %+v", rejected)
		}
	})

	t.Run("cancelling an event cancels every occurrence", func(t *testing.T) {
		adminEv := must[EventView](t, 201)(call(t, c, "POST", api+"/cities/berlin/events", &berlinManager, map[string]any{
			"title": "Lantern walk", "category": "kids", "address": "Park", "all_day": true, "start": "2026-03-29", "end": "2026-03-29"}))
		got := must[EventView](t, 200)(call(t, c, "PATCH", api+"/events/"+adminEv.ID, &berlinManager, map[string]any{"status": "cancelled", "reason": "Storm"}))
		if got.Status != "cancelled" {
			t.Errorf("status = %s", got.Status)
		}
		p := occurrences(t, "from=2026-03-29&to=2026-03-29&category=kids")
		if len(p.Items) != 1 || p.Items[0].Status != "cancelled" || !p.Items[0].AllDay || p.Items[0].CancelReason != "Storm" ||
			p.Items[0].EndsAt.Sub(p.Items[0].StartsAt) != 23*time.Hour {
			t.Errorf("cancelled all-day occurrence = %+v", p.Items)
		}
	})

	t.Run("every change reaches the CALENDAR stream", func(t *testing.T) {
		want := []string{"calendar.berlin.event.created", "calendar.berlin.event.occurrence_changed", "calendar.berlin.event.updated",
			"calendar.berlin.event.submitted", "calendar.berlin.event.approved", "calendar.berlin.event.rejected", "calendar.berlin.event.cancelled"}
		seen := map[string]contract.CalendarEventV1{}
		eventually(t, "calendar events on the stream", func() bool {
			cons, err := s.JS.OrderedConsumer(context.Background(), contract.StreamCalendar, jetstream.OrderedConsumerConfig{})
			if err != nil {
				return false
			}
			batch, err := cons.FetchNoWait(500)
			if err != nil {
				return false
			}
			for msg := range batch.Messages() {
				e, err := bus.Decode(&nats.Msg{Subject: msg.Subject(), Header: msg.Headers(), Data: msg.Data()})
				if err != nil {
					t.Fatal(err)
				}
				var p contract.CalendarEventV1
				if err := e.Unmarshal(&p); err != nil {
					t.Fatal(err)
				}
				if e.Type != "eu.piazza.calendar.event."+contract.CalendarEventVerbs[e.Type]+".v1" {
					t.Errorf("type %s on %s", e.Type, msg.Subject())
				}
				seen[msg.Subject()] = p
			}
			for _, w := range want {
				if _, ok := seen[w]; !ok {
					return false
				}
			}
			return true
		})
		oc := seen["calendar.berlin.event.occurrence_changed"]
		if oc.ID != ev.ID || oc.OccurrenceStart == nil || oc.PlaceID != s.Place || oc.Category != "music" || oc.Version == 0 {
			t.Errorf("occurrence_changed payload = %+v", oc)
		}
	})
}
