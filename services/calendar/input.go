package calendar

import (
	"fmt"
	"net/mail"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/localeurope/piazza/pkg/web"
	"github.com/teambition/rrule-go"
)

// errTooMany is a query that would expand too many occurrences.
var errTooMany = &web.Error{Code: web.EInvalid, Message: "the range holds too many occurrences; narrow it or filter",
	Fields: []web.FieldError{{Field: "to", Message: fmt.Sprintf("the range holds more than %d occurrences", maxOccurrences)}}}

var slugPattern = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

// EventInput is the body that creates (all required fields present) or
// changes (fields present replace, absent stay) an event.
type EventInput struct {
	Title         *string   `json:"title"`
	Description   *string   `json:"description"`
	PlaceID       *string   `json:"place_id"` // "" clears
	Address       *string   `json:"address"`
	Category      *string   `json:"category"`
	Organiser     *string   `json:"organiser"`
	ImageURL      *string   `json:"image_url"`
	Links         *[]Link   `json:"links"`
	Accessibility *string   `json:"accessibility"`
	AllDay        *bool     `json:"all_day"`
	Start         *string   `json:"start"`
	End           *string   `json:"end"`
	RRule         *string   `json:"rrule"`
	ExDates       *[]string `json:"exdates"`
	RDates        *[]string `json:"rdates"`
	Status        *string   `json:"status"`
	Reason        *string   `json:"reason"`
	Version       *int64    `json:"version"`
	// A submission's contact, seen only by the city's managers.
	SubmitterName  *string `json:"submitter_name"`
	SubmitterEmail *string `json:"submitter_email"`
}

// apply writes the input onto e and validates the result in loc; it returns
// the field errors as an EInvalid error. create requires the mandatory fields.
func (in EventInput) apply(e *Event, loc *time.Location, create bool) error {
	var f web.Fields
	text := func(name string, src *string, dst *string, max int, required bool) {
		if src == nil {
			if create && required {
				f.Add(name, "is required")
			}
			return
		}
		v := strings.TrimSpace(strings.ReplaceAll(*src, "\r", ""))
		switch {
		case required && v == "":
			f.Add(name, "must not be empty")
		case utf8.RuneCountInString(v) > max:
			f.Add(name, "must be at most %d characters", max)
		case !utf8.ValidString(v) || strings.ContainsRune(v, 0):
			f.Add(name, "must be UTF-8 text")
		default:
			*dst = v
		}
	}
	text("title", in.Title, &e.Title, 200, true)
	text("description", in.Description, &e.Description, 10000, false)
	text("address", in.Address, &e.Address, 300, false)
	text("organiser", in.Organiser, &e.Organiser, 200, false)
	text("accessibility", in.Accessibility, &e.Accessibility, 2000, false)
	text("submitter_name", in.SubmitterName, &e.SubmitterName, 200, false)
	text("category", in.Category, &e.Category, 60, true)
	if in.Category != nil && e.Category != "" && !slugPattern.MatchString(e.Category) {
		f.Add("category", "must be a slug: lower-case letters, digits and single hyphens")
	}
	if in.SubmitterEmail != nil {
		if v := strings.TrimSpace(*in.SubmitterEmail); v == "" {
			e.SubmitterMail = ""
		} else if a, err := mail.ParseAddress(v); err != nil || a.Address != v || len(v) > 254 {
			f.Add("submitter_email", "must be an email address")
		} else {
			e.SubmitterMail = v
		}
	}
	if in.ImageURL != nil {
		if v := strings.TrimSpace(*in.ImageURL); v != "" && !webURL(v) {
			f.Add("image_url", "must be an http or https URL")
		} else {
			e.ImageURL = v
		}
	}
	if in.Links != nil {
		if len(*in.Links) > 10 {
			f.Add("links", "must hold at most 10 links")
		}
		links := []Link{}
		for i, l := range *in.Links {
			l.Title, l.URL = strings.TrimSpace(l.Title), strings.TrimSpace(l.URL)
			if !webURL(l.URL) {
				f.Add(fmt.Sprintf("links[%d].url", i), "must be an http or https URL")
			}
			if utf8.RuneCountInString(l.Title) > 200 {
				f.Add(fmt.Sprintf("links[%d].title", i), "must be at most 200 characters")
			}
			links = append(links, l)
		}
		e.Links = links
	}
	if in.PlaceID != nil {
		e.PlaceID = nil
		if v := strings.TrimSpace(*in.PlaceID); v != "" {
			e.PlaceID = &v // checked against the city's places by the store
		}
	}
	if e.PlaceID == nil && e.Address == "" && (create || in.PlaceID != nil || in.Address != nil) {
		f.Add("place_id", "give one of the city's places or an address")
	}
	in.applyTime(e, loc, create, &f)
	return f.Err()
}

func webURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" && len(s) <= 2000
}

// applyTime sets the start, end and recurrence. Changing all_day requires
// start and end in the new form.
func (in EventInput) applyTime(e *Event, loc *time.Location, create bool, f *web.Fields) {
	if in.AllDay != nil {
		if *in.AllDay != e.AllDay && !create && (in.Start == nil || in.End == nil) {
			f.Add("all_day", "changing all_day needs start and end in the new form")
			return
		}
		e.AllDay = *in.AllDay
	}
	form := "a local date-time like 2026-05-02T10:00"
	if e.AllDay {
		form = "a date like 2026-05-02"
	}
	local := func(name string, s *string, dst *time.Time) {
		if s == nil {
			if create {
				f.Add(name, "is required")
			}
			return
		}
		t, ok := parseLocal(*s, e.AllDay)
		switch {
		case !ok:
			f.Add(name, "must be %s", form)
		case t.Year() < 1900 || t.Year() > 2200:
			f.Add(name, "must be between the years 1900 and 2200")
		case !e.AllDay && !existsIn(t, loc):
			f.Add(name, "does not exist in %s (the clocks skip it)", loc)
		default:
			*dst = t
		}
	}
	local("start", in.Start, &e.StartLocal)
	local("end", in.End, &e.EndLocal)
	dates := func(name string, src *[]string, dst *[]time.Time) {
		if src == nil {
			return
		}
		if len(*src) > maxDates {
			f.Add(name, "must hold at most %d dates", maxDates)
			return
		}
		out := []time.Time{}
		for i, s := range *src {
			t, ok := parseLocal(s, e.AllDay)
			if !ok || (!e.AllDay && !existsIn(t, loc)) {
				f.Add(fmt.Sprintf("%s[%d]", name, i), "must be %s that exists in %s", form, loc)
				continue
			}
			out = append(out, t)
		}
		*dst = out
	}
	dates("exdates", in.ExDates, &e.ExDates)
	dates("rdates", in.RDates, &e.RDates)
	if in.AllDay != nil && in.ExDates == nil && in.RDates == nil && (len(e.ExDates) > 0 || len(e.RDates) > 0) {
		e.ExDates, e.RDates = []time.Time{}, []time.Time{} // they were in the old form
	}
	if in.RRule != nil {
		e.RRule = strings.ToUpper(strings.TrimSpace(strings.TrimPrefix(*in.RRule, "RRULE:")))
	}
	if len(*f) > 0 {
		return
	}
	if e.EndLocal.Before(e.StartLocal) {
		f.Add("end", "must not be before start")
		return
	}
	if e.AllDay && e.EndLocal.Sub(e.StartLocal) > 366*24*time.Hour || !e.AllDay && e.EndLocal.Sub(e.StartLocal) > 7*24*time.Hour {
		f.Add("end", "an occurrence may last at most 7 days (366 when all-day)")
		return
	}
	if e.RRule != "" {
		dtstart := inLoc(e.StartLocal, loc)
		opt, msg := parseRule(e.RRule, dtstart, e.AllDay)
		if msg != "" {
			f.Add("rrule", "%s", msg)
			return
		}
		r, err := rrule.NewRRule(*opt)
		if err != nil {
			f.Add("rrule", "is not a valid recurrence rule: %s", err.Error())
			return
		}
		// DTSTART must be the rule's first occurrence: RFC 5545 leaves the set
		// undefined otherwise, and calendar apps disagree about it.
		if first := r.After(dtstart.Add(-time.Second), true); !first.Equal(dtstart) {
			f.Add("start", "must be an occurrence of the rrule (e.g. a Saturday for FREQ=WEEKLY;BYDAY=SA)")
		}
	}
}

// OverrideInput changes one occurrence: its status, its times, its title.
type OverrideInput struct {
	Status  *string `json:"status"`
	Start   *string `json:"start"`
	End     *string `json:"end"`
	Title   *string `json:"title"`
	Version *int64  `json:"version"`
}

func (in OverrideInput) apply(o *Override, allDay bool, loc *time.Location) error {
	var f web.Fields
	if in.Status != nil {
		switch *in.Status {
		case StatusConfirmed, StatusTentative, StatusCancelled:
			o.Status = *in.Status
		default:
			f.Add("status", "must be confirmed, tentative or cancelled")
		}
	}
	for _, p := range []struct {
		name string
		src  *string
		dst  *time.Time
	}{{"start", in.Start, &o.StartLocal}, {"end", in.End, &o.EndLocal}} {
		if p.src == nil {
			continue
		}
		t, ok := parseLocal(*p.src, allDay)
		if !ok || (!allDay && !existsIn(t, loc)) {
			f.Add(p.name, "must be a local %s that exists in %s", map[bool]string{true: "date", false: "date-time"}[allDay], loc)
			continue
		}
		*p.dst = t
	}
	if in.Title != nil {
		if v := strings.TrimSpace(*in.Title); utf8.RuneCountInString(v) > 200 {
			f.Add("title", "must be at most 200 characters")
		} else {
			o.Title = v
		}
	}
	if len(f) == 0 && o.EndLocal.Before(o.StartLocal) {
		f.Add("end", "must not be before start")
	}
	return f.Err()
}

// errMarketDay answers any change to a market day through the calendar.
var errMarketDay = web.Errorf(web.EConflict, "market days come from market listings and are changed there, not in the calendar")
