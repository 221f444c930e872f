package calendar

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	ics "github.com/arran4/golang-ical"
	"github.com/teambition/rrule-go"
)

// icsOccurrence is one occurrence as "uid start end status", instants in UTC.
func icsKey(uid string, start, end time.Time, status string) string {
	return fmt.Sprintf("%s %s %s %s", uid, start.UTC().Format(time.RFC3339), end.UTC().Format(time.RFC3339), strings.ToLower(status))
}

// expandICS expands a parsed feed's VEVENTs independently of the service:
// rrule-go on each master's RRULE, RDATE and EXDATE, then the overrides
// (RECURRENCE-ID), keeping occurrences that overlap [from, to).
func expandICS(tb testing.TB, cal *ics.Calendar, from, to time.Time) []string {
	tb.Helper()
	parseTime := func(p *ics.IANAProperty) (time.Time, bool) {
		tb.Helper()
		if p == nil {
			tb.Fatal("a VEVENT lacks a time property")
		}
		if v := p.ICalParameters["VALUE"]; len(v) == 1 && v[0] == "DATE" {
			loc := mustLoad(tb, calTZ(cal))
			t, err := time.ParseInLocation("20060102", p.Value, loc)
			if err != nil {
				tb.Fatal(err)
			}
			return t, true
		}
		tz := p.ICalParameters["TZID"]
		if len(tz) != 1 {
			tb.Fatalf("%s %s has no TZID", p.IANAToken, p.Value)
		}
		t, err := time.ParseInLocation("20060102T150405", p.Value, mustLoad(tb, tz[0]))
		if err != nil {
			tb.Fatal(err)
		}
		return t, false
	}
	type override struct {
		start, end time.Time
		status     string
	}
	overrides := map[string]map[time.Time]override{}
	var masters []*ics.VEvent
	for _, ev := range cal.Events() {
		uid := ev.GetProperty(ics.ComponentPropertyUniqueId).Value
		if rid := ev.GetProperty(ics.ComponentPropertyRecurrenceId); rid != nil {
			r, _ := parseTime(rid)
			s, _ := parseTime(ev.GetProperty(ics.ComponentPropertyDtStart))
			e, _ := parseTime(ev.GetProperty(ics.ComponentPropertyDtEnd))
			if overrides[uid] == nil {
				overrides[uid] = map[time.Time]override{}
			}
			overrides[uid][r.UTC()] = override{s, e, ev.GetProperty(ics.ComponentPropertyStatus).Value}
			continue
		}
		masters = append(masters, ev)
	}
	var out []string
	for _, ev := range masters {
		uid := ev.GetProperty(ics.ComponentPropertyUniqueId).Value
		dtstart, allDay := parseTime(ev.GetProperty(ics.ComponentPropertyDtStart))
		dtend, _ := parseTime(ev.GetProperty(ics.ComponentPropertyDtEnd))
		status := ev.GetProperty(ics.ComponentPropertyStatus).Value
		set := &rrule.Set{}
		if p := ev.GetProperty(ics.ComponentPropertyRrule); p != nil {
			opt, err := rrule.StrToROptionInLocation(p.Value, dtstart.Location())
			if err != nil {
				tb.Fatal(err)
			}
			if allDay && !opt.Until.IsZero() {
				opt.Until = time.Date(opt.Until.Year(), opt.Until.Month(), opt.Until.Day(), 23, 59, 59, 0, dtstart.Location())
			}
			opt.Dtstart = dtstart
			r, err := rrule.NewRRule(*opt)
			if err != nil {
				tb.Fatal(err)
			}
			set.RRule(r)
		} else {
			set.RDate(dtstart)
		}
		for _, p := range ev.GetProperties(ics.ComponentPropertyRdate) {
			t, _ := parseTime(p)
			set.RDate(t)
		}
		for _, p := range ev.GetProperties(ics.ComponentPropertyExdate) {
			t, _ := parseTime(p)
			set.ExDate(t)
		}
		for _, st := range set.Between(from.AddDate(0, 0, -40), to.AddDate(0, 0, 40), true) {
			var end time.Time
			if allDay {
				days := int(dtend.Sub(dtstart).Round(24*time.Hour) / (24 * time.Hour))
				end = time.Date(st.Year(), st.Month(), st.Day()+days, 0, 0, 0, 0, st.Location())
			} else {
				end = st.Add(dtend.Sub(dtstart))
			}
			s, e, stat := st, end, status
			if o, ok := overrides[uid][st.UTC()]; ok {
				s, e, stat = o.start, o.end, o.status
			}
			if s.Before(to) && (e.After(from) || (e.Equal(s) && !s.Before(from))) {
				out = append(out, icsKey(uid, s, e, stat))
			}
		}
	}
	slices.Sort(out)
	return out
}

func calTZ(cal *ics.Calendar) string {
	for _, p := range cal.CalendarProperties {
		if p.IANAToken == "X-WR-TIMEZONE" {
			return p.Value
		}
	}
	return "UTC"
}

func TestICSFeedMatchesTheAPI(t *testing.T) {
	s := startService(t, time.Date(2026, 2, 20, 10, 0, 0, 0, time.UTC))
	c := specClient(t)
	api := s.URL + "/api/v1/calendar"
	manager := admin

	weekly := must[EventView](t, 201)(call(t, c, "POST", api+"/cities/lisbon/events", &manager, map[string]any{
		"title":       "Fado na praça, com uma descrição longa para dobrar linhas: ção, ñ, ü, 😀 — e vírgulas; ponto-e-vírgula",
		"description": strings.Repeat("Música ao vivo, à beira-rio; entrada livre. ", 8), "category": "music",
		"address": "Praça do Comércio, 1100-148 Lisboa", "start": "2026-03-01T10:00", "end": "2026-03-01T11:30",
		"rrule": "FREQ=WEEKLY;BYDAY=SU", "exdates": []string{"2026-03-15T10:00"}, "rdates": []string{"2026-03-31T19:00"}}))
	must[EventView](t, 200)(call(t, c, "PUT", api+"/events/"+weekly.ID+"/occurrences/2026-03-22T10:00", &manager, map[string]any{"status": "cancelled"}))
	must[EventView](t, 200)(call(t, c, "PUT", api+"/events/"+weekly.ID+"/occurrences/2026-04-05T10:00", &manager,
		map[string]any{"start": "2026-04-06T11:00", "end": "2026-04-06T12:00"}))
	must[EventView](t, 201)(call(t, c, "POST", api+"/cities/lisbon/events", &manager, map[string]any{
		"title": "Feira do livro", "category": "books", "address": "Parque Eduardo VII", "all_day": true,
		"start": "2026-03-01", "end": "2026-03-02", "rrule": "FREQ=MONTHLY;BYMONTHDAY=1;COUNT=6", "status": "tentative"}))
	must[EventView](t, 201)(call(t, c, "POST", api+"/cities/lisbon/events", &manager, map[string]any{
		"title": "Night of the clock change", "category": "music", "address": "Alfama", "start": "2026-03-29T00:30", "end": "2026-03-29T03:00"}))
	must[EventView](t, 201)(call(t, c, "POST", api+"/cities/berlin/events", &manager, map[string]any{
		"title": "Wochenendmarkt-Konzert", "category": "music", "place_id": s.Place, "start": "2026-03-07T10:00", "end": "2026-03-07T11:00",
		"rrule": "FREQ=WEEKLY;BYDAY=SA;UNTIL=20261031T090000Z"}))

	for _, city := range []string{"lisbon", "berlin"} {
		t.Run(city, func(t *testing.T) {
			status, header, body := call(t, c, "GET", api+"/cities/"+city+"/calendar.ics", nil, nil)
			if status != 200 || !strings.HasPrefix(header.Get("Content-Type"), "text/calendar") {
				t.Fatalf("GET calendar.ics = %d %s", status, header.Get("Content-Type"))
			}
			t.Run("lines end in CRLF and are at most 75 octets", func(t *testing.T) {
				if !bytes.HasSuffix(body, []byte("\r\n")) {
					t.Error("the stream does not end with CRLF")
				}
				for i, line := range bytes.Split(bytes.TrimSuffix(body, []byte("\r\n")), []byte("\r\n")) {
					if bytes.ContainsAny(line, "\r\n") {
						t.Errorf("line %d holds a bare CR or LF: %q", i+1, line)
					}
					if len(line) > 75 {
						t.Errorf("line %d has %d octets: %q", i+1, len(line), line)
					}
				}
				if city == "lisbon" && !bytes.Contains(body, []byte("\r\n ")) {
					t.Error("no folded line: the long title should be folded")
				}
			})
			cal, err := ics.ParseCalendar(bytes.NewReader(body))
			if err != nil {
				t.Fatalf("the feed does not parse: %v", err)
			}
			t.Run("every TZID has a VTIMEZONE, every VEVENT a UID, DTSTAMP and SEQUENCE", func(t *testing.T) {
				zones := map[string]bool{}
				for _, comp := range cal.Components {
					if tz, ok := comp.(*ics.VTimezone); ok {
						zones[tz.GetProperty(ics.ComponentPropertyTzid).Value] = len(tz.Components) > 0
					}
				}
				for _, line := range strings.Split(strings.ReplaceAll(string(body), "\r\n ", ""), "\r\n") {
					if i := strings.Index(line, "TZID="); i >= 0 {
						tzid := strings.SplitN(line[i+5:], ":", 2)[0]
						if !zones[tzid] {
							t.Errorf("TZID %s has no VTIMEZONE with observances", tzid)
						}
					}
				}
				for _, ev := range cal.Events() {
					for _, p := range []ics.ComponentProperty{ics.ComponentPropertyUniqueId, ics.ComponentPropertyDtstamp, ics.ComponentPropertySequence} {
						if ev.GetProperty(p) == nil {
							t.Errorf("a VEVENT lacks %s", p)
						}
					}
				}
			})
			t.Run("the VTIMEZONE has the 2026 changes at the right local times", func(t *testing.T) {
				want := map[string]string{"lisbon": "DTSTART:20260329T010000\r\nTZOFFSETFROM:+0000\r\nTZOFFSETTO:+0100\r\nTZNAME:WEST",
					"berlin": "DTSTART:20260329T020000\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\nTZNAME:CEST"}[city]
				if !bytes.Contains(body, []byte(want)) {
					t.Errorf("no observance %q", want)
				}
			})
			t.Run("its recurrences expand to exactly the API's occurrences", func(t *testing.T) {
				loc := mustLoad(t, calTZ(cal))
				for _, rng := range [][2]string{{"2026-03-01", "2026-04-30"}, {"2026-10-01", "2026-11-30"}} {
					from, _ := time.ParseInLocation(time.DateOnly, rng[0], loc)
					to, _ := time.ParseInLocation(time.DateOnly, rng[1], loc)
					got := expandICS(t, cal, from, to.AddDate(0, 0, 1))
					p := must[calendarPage](t, 200)(call(t, c, "GET", api+"/cities/"+city+"/events?from="+rng[0]+"&to="+rng[1], nil, nil))
					var want []string
					for _, e := range p.Items {
						want = append(want, icsKey(e.EventID+"@piazza", e.StartsAt, e.EndsAt, e.Status))
					}
					slices.Sort(want)
					if !slices.Equal(got, want) || len(want) == 0 {
						t.Errorf("%s–%s: the feed expands to\n%s\nthe API lists\n%s", rng[0], rng[1], strings.Join(got, "\n"), strings.Join(want, "\n"))
					}
				}
			})
			t.Run("If-None-Match with the ETag is answered 304", func(t *testing.T) {
				etag := header.Get("ETag")
				req, _ := http.NewRequest("GET", api+"/cities/"+city+"/calendar.ics", nil)
				req.Header.Set("If-None-Match", etag)
				res, err := c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				res.Body.Close()
				if etag == "" || res.StatusCode != 304 {
					t.Errorf("conditional GET = %d (ETag %q), want 304", res.StatusCode, etag)
				}
			})
		})
	}

	t.Run("a change makes a new ETag and bumps SEQUENCE", func(t *testing.T) {
		_, before, _ := call(t, c, "GET", api+"/cities/lisbon/calendar.ics", nil, nil)
		must[EventView](t, 200)(call(t, c, "PATCH", api+"/events/"+weekly.ID, &manager, map[string]any{"title": "Fado"}))
		_, after, body := call(t, c, "GET", api+"/cities/lisbon/calendar.ics", nil, nil)
		if before.Get("ETag") == after.Get("ETag") {
			t.Error("the ETag did not change")
		}
		if !bytes.Contains(body, []byte("SUMMARY:Fado\r\n")) || !bytes.Contains(body, []byte("SEQUENCE:3\r\n")) {
			t.Errorf("the change is not in the feed with SEQUENCE 3")
		}
	})

	t.Run("place and category feeds hold only their events", func(t *testing.T) {
		_, _, body := call(t, c, "GET", api+"/cities/lisbon/categories/books/calendar.ics", nil, nil)
		if n := bytes.Count(body, []byte("BEGIN:VEVENT")); n != 1 || !bytes.Contains(body, []byte("Feira do livro")) {
			t.Errorf("the books feed has %d VEVENTs", n)
		}
		_, _, body = call(t, c, "GET", api+"/cities/berlin/places/"+s.Place+"/calendar.ics", nil, nil)
		if n := bytes.Count(body, []byte("BEGIN:VEVENT")); n != 1 {
			t.Errorf("the place feed has %d VEVENTs", n)
		}
		_, _, body = call(t, c, "GET", api+"/events/"+weekly.ID+"/event.ics", nil, nil)
		if n := bytes.Count(body, []byte("BEGIN:VEVENT")); n != 3 { // the series and two changed occurrences
			t.Errorf("the event's own feed has %d VEVENTs, want 3", n)
		}
	})

	t.Run("the Atom feed lists the city's events", func(t *testing.T) {
		status, header, body := call(t, c, "GET", api+"/cities/lisbon/feed.atom", nil, nil)
		var feed atomFeed
		if status != 200 || xml.Unmarshal(body, &feed) != nil || len(feed.Entries) != 3 || feed.Entries[0].Title != "Fado" {
			t.Errorf("atom = %d %s", status, body)
		}
		req, _ := http.NewRequest("GET", api+"/cities/lisbon/feed.atom", nil)
		req.Header.Set("If-None-Match", header.Get("ETag"))
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 304 {
			t.Errorf("conditional GET of the Atom feed = %d", res.StatusCode)
		}
	})
}
