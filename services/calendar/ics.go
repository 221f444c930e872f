package calendar

import (
	"fmt"
	"slices"
	"strings"
	"time"

	ics "github.com/arran4/golang-ical"
	"github.com/localeurope/piazza/pkg/zones"
)

// Feed is what one iCalendar or Atom feed holds.
type Feed struct {
	City     string
	Name     string // X-WR-CALNAME
	Timezone *time.Location
	Events   []*Event
	Market   []Entry // market days
}

const (
	icsStamp = "20060102T150405Z"
	icsLocal = "20060102T150405"
	icsDate  = "20060102"
)

// ICS renders the feed as RFC 5545 iCalendar: CRLF line ends, lines folded
// at 75 octets (by golang-ical, on UTF-8 boundaries), one VTIMEZONE for the
// city's zone, one VEVENT per series (with RRULE, EXDATE, RDATE) and one per
// changed occurrence (RECURRENCE-ID). The output depends only on the data
// (DTSTAMP is the last change, not the time of the request), so that the
// feed's ETag is stable.
func (f Feed) ICS(now time.Time) string {
	cal := ics.NewCalendarFor("Piazza")
	cal.SetProductId("-//Piazza//Events calendar//EN")
	cal.SetCalscale("GREGORIAN")
	cal.SetMethod(ics.MethodPublish)
	cal.SetXWRCalName(clean(f.Name))
	cal.SetXWRTimezone(f.Timezone.String())
	cal.SetXPublishedTTL("PT1H")
	minYear, maxYear := now.Year(), now.Year()+10
	span := func(t time.Time) {
		minYear, maxYear = min(minYear, t.Year()), max(maxYear, t.Year())
	}
	var events []*ics.VEvent
	for _, e := range f.Events {
		loc, err := zones.Load(e.Timezone)
		if err != nil {
			continue
		}
		span(inLoc(e.StartLocal, loc))
		events = append(events, e.vevent(loc, nil))
		for i := range e.Overrides {
			span(inLoc(e.Overrides[i].StartLocal, loc))
			events = append(events, e.vevent(loc, &e.Overrides[i]))
		}
		for _, d := range e.RDates {
			span(inLoc(d, loc))
		}
	}
	for _, m := range f.Market {
		span(m.StartsAt.In(f.Timezone))
		events = append(events, marketVEvent(m, f.Timezone))
	}
	maxYear = min(maxYear, minYear+60)
	cal.AddVTimezone(vtimezone(f.Timezone, minYear, maxYear))
	for _, ev := range events {
		cal.AddVEvent(ev)
	}
	return cal.Serialize(ics.WithNewLine("\r\n"))
}

// clean makes text safe for a TEXT value: golang-ical escapes \ ; , and
// newlines; a CR would end the content line.
func clean(s string) string { return strings.ReplaceAll(s, "\r", "") }

func icsStatus(s string) ics.ObjectStatus {
	switch s {
	case StatusTentative:
		return ics.ObjectStatusTentative
	case StatusCancelled:
		return ics.ObjectStatusCancelled
	default:
		return ics.ObjectStatusConfirmed
	}
}

// setTime writes a DTSTART-like property: a DATE for all-day events, else a
// local DATE-TIME with TZID.
func setTime(ev *ics.VEvent, prop ics.ComponentProperty, n time.Time, allDay bool, tzid string) {
	if allDay {
		ev.AddProperty(prop, n.Format(icsDate), ics.WithValue(string(ics.ValueDataTypeDate)))
		return
	}
	ev.AddProperty(prop, n.Format(icsLocal), ics.WithTZID(tzid))
}

// vevent is the series' VEVENT, or with o the VEVENT of one changed occurrence.
func (e *Event) vevent(loc *time.Location, o *Override) *ics.VEvent {
	ev := ics.NewEvent(e.UID)
	tzid := loc.String()
	ev.SetDtStampTime(e.UpdatedAt.UTC())
	ev.SetProperty(ics.ComponentPropertyCreated, e.CreatedAt.UTC().Format(icsStamp))
	ev.SetProperty(ics.ComponentPropertyLastModified, e.UpdatedAt.UTC().Format(icsStamp))
	start, end, title, status, seq := e.StartLocal, e.EndLocal, e.Title, e.Status, e.Sequence
	if o != nil {
		setTime(ev, ics.ComponentPropertyRecurrenceId, o.RecurrenceID, e.AllDay, tzid)
		start, end, seq = o.StartLocal, o.EndLocal, o.Sequence
		if o.Title != "" {
			title = o.Title
		}
		if e.Status != StatusCancelled {
			status = o.Status
		}
		ev.SetDtStampTime(o.UpdatedAt.UTC())
	}
	setTime(ev, ics.ComponentPropertyDtStart, start, e.AllDay, tzid)
	if e.AllDay {
		setTime(ev, ics.ComponentPropertyDtEnd, end.AddDate(0, 0, 1), true, tzid)
	} else {
		setTime(ev, ics.ComponentPropertyDtEnd, end, false, tzid)
	}
	ev.SetSequence(seq)
	ev.SetSummary(clean(title))
	if d := e.icsDescription(); d != "" {
		ev.SetDescription(d)
	}
	if loc := e.location(); loc != "" {
		ev.SetLocation(clean(loc))
	}
	ev.AddProperty(ics.ComponentPropertyCategories, e.Category)
	ev.SetStatus(icsStatus(status))
	if len(e.Links) > 0 {
		ev.SetURL(e.Links[0].URL)
	}
	if e.ImageURL != "" {
		ev.AddProperty(ics.ComponentProperty("IMAGE"), e.ImageURL, ics.WithValue("URI"), &ics.KeyValues{Key: "DISPLAY", Value: []string{"BADGE"}})
	}
	if o == nil {
		if e.RRule != "" {
			ev.AddProperty(ics.ComponentPropertyRrule, e.RRule)
		}
		for _, d := range e.ExDates {
			setTime(ev, ics.ComponentPropertyExdate, d, e.AllDay, tzid)
		}
		for _, d := range e.RDates {
			setTime(ev, ics.ComponentPropertyRdate, d, e.AllDay, tzid)
		}
	}
	return ev
}

func (e *Event) location() string {
	switch {
	case e.PlaceName != "" && e.Address != "":
		return e.PlaceName + ", " + e.Address
	case e.PlaceName != "":
		return e.PlaceName
	default:
		return e.Address
	}
}

// icsDescription folds the fields iCalendar has no property for into the
// description, so that a calendar app shows them.
func (e *Event) icsDescription() string {
	parts := []string{}
	if e.Description != "" {
		parts = append(parts, e.Description)
	}
	if e.Organiser != "" {
		parts = append(parts, "Organiser: "+e.Organiser)
	}
	if e.Accessibility != "" {
		parts = append(parts, "Accessibility: "+e.Accessibility)
	}
	for _, l := range e.Links {
		parts = append(parts, strings.TrimSpace(l.Title+" "+l.URL))
	}
	return clean(strings.Join(parts, "\n\n"))
}

func marketVEvent(m Entry, loc *time.Location) *ics.VEvent {
	ev := ics.NewEvent("market-day-" + m.ID + "@piazza")
	ev.SetDtStampTime(m.updatedAt.UTC())
	ev.SetProperty(ics.ComponentPropertyLastModified, m.updatedAt.UTC().Format(icsStamp))
	setTime(ev, ics.ComponentPropertyDtStart, naive(m.StartsAt.In(loc)), false, loc.String())
	setTime(ev, ics.ComponentPropertyDtEnd, naive(m.EndsAt.In(loc)), false, loc.String())
	ev.SetSequence(int(m.Version))
	ev.SetSummary(clean(m.Title))
	if m.PlaceName != "" {
		ev.SetLocation(clean(m.PlaceName))
	}
	ev.AddProperty(ics.ComponentPropertyCategories, marketCategory)
	status := StatusConfirmed
	if m.Status == StatusCancelled {
		status = StatusCancelled
		if m.CancelReason != "" {
			ev.SetDescription(clean("Cancelled: " + m.CancelReason))
		}
	}
	ev.SetStatus(icsStatus(status))
	return ev
}

// vtimezone describes loc from Go's zone data between the years from and
// to: one observance per UTC-offset change (DTSTART in local time before the
// change, as RFC 5545 §3.6.5 wants), after an observance that holds from
// the start of the first year.
func vtimezone(loc *time.Location, from, to int) *ics.VTimezone {
	tz := ics.NewTimezone(loc.String())
	start := time.Date(from, 1, 1, 0, 0, 0, 0, loc)
	_, off := start.Zone()
	observance(tz, start, off)
	limit := time.Date(to+1, 1, 1, 0, 0, 0, 0, loc)
	t := start
	for range 1000 {
		_, end := t.ZoneBounds()
		if end.IsZero() || !end.Before(limit) {
			break
		}
		observance(tz, end, off)
		_, off = end.Zone()
		t = end
	}
	return tz
}

// observance adds a STANDARD or DAYLIGHT component for the offset that
// starts at t, when the offset before it was fromOff.
func observance(tz *ics.VTimezone, t time.Time, fromOff int) {
	name, off := t.Zone()
	base := ics.NewComponent("")
	base.Properties = nil
	base.AddProperty(ics.ComponentPropertyDtStart, t.In(time.FixedZone("", fromOff)).Format(icsLocal))
	base.AddProperty(ics.ComponentProperty("TZOFFSETFROM"), utcOffset(fromOff))
	base.AddProperty(ics.ComponentProperty("TZOFFSETTO"), utcOffset(off))
	base.AddProperty(ics.ComponentProperty("TZNAME"), name)
	if t.IsDST() {
		tz.Components = append(tz.Components, &ics.Daylight{ComponentBase: base})
	} else {
		tz.Components = append(tz.Components, &ics.Standard{ComponentBase: base})
	}
}

func utcOffset(sec int) string {
	sign := "+"
	if sec < 0 {
		sign, sec = "-", -sec
	}
	s := fmt.Sprintf("%s%02d%02d", sign, sec/3600, sec%3600/60)
	if sec%60 != 0 {
		s += fmt.Sprintf("%02d", sec%60)
	}
	return s
}

// sortEvents orders a feed's events by first start, then id (stable output).
func sortEvents(events []*Event) {
	slices.SortFunc(events, func(a, b *Event) int {
		if c := a.StartLocal.Compare(b.StartLocal); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
}
