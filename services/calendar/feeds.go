package calendar

import (
	"encoding/xml"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/localeurope/piazza/pkg/web"
	"github.com/localeurope/piazza/pkg/zones"
)

// Feed windows: what a subscription holds.
const (
	feedPastDays   = 31  // market days and finished series kept this long
	feedFutureDays = 366 // market days this far ahead
	feedMaxSeries  = 2000
)

// handleICS serves a city's iCalendar feed, narrowed to a place or a
// category by the path (kind) or by ?place=&category=&q=.
func handleICS(store *Store, log *slog.Logger, now func() time.Time, kind string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		city := r.PathValue("city")
		loc, err := store.Timezone(r.Context(), city)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		f, err := filterFromQuery(r)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		name := store.CityName(r.Context(), city)
		switch kind {
		case "place":
			f.Place = r.PathValue("place")
			if uuid.Validate(f.Place) != nil {
				web.WriteError(w, r, log, web.Errorf(web.ENotFound, "there is no place %q", f.Place))
				return
			}
		case "category":
			f.Category = r.PathValue("category")
			if !slugPattern.MatchString(f.Category) {
				web.WriteError(w, r, log, web.Errorf(web.ENotFound, "there is no category %q", f.Category))
				return
			}
			name += " — " + f.Category
		}
		t := now()
		feed := Feed{City: city, Name: name, Timezone: loc}
		feed.Events, err = store.Series(r.Context(), city, t.AddDate(0, 0, -feedPastDays), time.Time{}, f, feedMaxSeries)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		feed.Market, err = store.MarketDays(r.Context(), city, t.AddDate(0, 0, -feedPastDays), t.AddDate(0, 0, feedFutureDays), f)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		if kind == "place" && len(feed.Market) > 0 {
			feed.Name += " — " + feed.Market[0].PlaceName
		} else if kind == "place" && len(feed.Events) > 0 {
			feed.Name += " — " + feed.Events[0].PlaceName
		}
		sortEvents(feed.Events)
		serveCached(w, r, "text/calendar; charset=utf-8", city+".ics", feed.ICS(t))
	})
}

// handleEventICS serves one public event as iCalendar ("add to my calendar").
func handleEventICS(store *Store, log *slog.Logger, now func() time.Time) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e, err := store.Event(r.Context(), r.PathValue("id"))
		if err == nil && !public(e.Status) {
			err = web.Errorf(web.ENotFound, "there is no event %q", r.PathValue("id"))
		}
		if err == errMarketDay {
			err = web.Errorf(web.ENotFound, "there is no event %q", r.PathValue("id"))
		}
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		loc, err := zones.Load(e.Timezone)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		feed := Feed{City: e.City, Name: e.Title, Timezone: loc, Events: []*Event{e}}
		serveCached(w, r, "text/calendar; charset=utf-8", "event.ics", feed.ICS(now()))
	})
}

// Atom (RFC 4287), written with encoding/xml: a feed of the city's events,
// most recently changed first.
type atomFeed struct {
	XMLName xml.Name    `xml:"http://www.w3.org/2005/Atom feed"`
	ID      string      `xml:"id"`
	Title   string      `xml:"title"`
	Updated string      `xml:"updated"`
	Links   []atomLink  `xml:"link"`
	Author  atomAuthor  `xml:"author"`
	Entries []atomEntry `xml:"entry"`
}

type atomLink struct {
	Href string `xml:"href,attr"`
	Rel  string `xml:"rel,attr,omitempty"`
	Type string `xml:"type,attr,omitempty"`
}

type atomAuthor struct {
	Name string `xml:"name"`
}

type atomEntry struct {
	ID       string     `xml:"id"`
	Title    string     `xml:"title"`
	Updated  string     `xml:"updated"`
	Links    []atomLink `xml:"link"`
	Category *atomCat   `xml:"category"`
	Summary  string     `xml:"summary"`
}

type atomCat struct {
	Term string `xml:"term,attr"`
}

const atomEntries = 50

func handleAtom(store *Store, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		city := r.PathValue("city")
		loc, err := store.Timezone(r.Context(), city)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		events, err := store.Recent(r.Context(), city, atomEntries)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		scheme, host := baseURL(r)
		base := scheme + "://" + host + "/api/v1/calendar"
		name := store.CityName(r.Context(), city)
		feed := atomFeed{
			ID: "urn:piazza:calendar:" + city, Title: name + " — events", Updated: time.Unix(0, 0).UTC().Format(time.RFC3339),
			Links: []atomLink{{Href: base + "/cities/" + city + "/feed.atom", Rel: "self", Type: "application/atom+xml"},
				{Href: base + "/cities/" + city + "/calendar.ics", Rel: "alternate", Type: "text/calendar"}},
			Author: atomAuthor{Name: name}, Entries: []atomEntry{},
		}
		for i, e := range events {
			if i == 0 {
				feed.Updated = e.UpdatedAt.UTC().Format(time.RFC3339)
			}
			feed.Entries = append(feed.Entries, atomEntry{
				ID: "urn:uuid:" + e.ID, Title: e.Title, Updated: e.UpdatedAt.UTC().Format(time.RFC3339),
				Links: []atomLink{{Href: base + "/events/" + e.ID, Rel: "alternate", Type: "application/json"},
					{Href: base + "/events/" + e.ID + "/event.ics", Rel: "enclosure", Type: "text/calendar"}},
				Category: &atomCat{Term: e.Category}, Summary: atomSummary(e, loc),
			})
		}
		b, err := xml.MarshalIndent(feed, "", "  ")
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		serveCached(w, r, "application/atom+xml; charset=utf-8", "", xml.Header+string(b))
	})
}

// atomSummary says when and where, in the city's time.
func atomSummary(e *Event, loc *time.Location) string {
	var b strings.Builder
	if e.Status == StatusCancelled {
		b.WriteString("Cancelled. ")
	}
	start := inLoc(e.StartLocal, loc)
	if e.AllDay {
		fmt.Fprintf(&b, "%s", start.Format("Mon 2 Jan 2006"))
	} else {
		fmt.Fprintf(&b, "%s (%s)", start.Format("Mon 2 Jan 2006 15:04"), loc)
	}
	if e.RRule != "" {
		fmt.Fprintf(&b, ", repeating (%s)", e.RRule)
	}
	if l := e.location(); l != "" {
		b.WriteString(" — " + l)
	}
	if e.Description != "" {
		b.WriteString("\n\n" + e.Description)
	}
	return b.String()
}
