package calendar

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/localeurope/piazza/pkg/auth"
	"github.com/localeurope/piazza/pkg/web"
)

// maxRangeDays bounds one query.
const maxRangeDays = 92

const (
	defaultPageSize = 500
	maxPageSize     = 1000
)

type rangeFunc func(r *http.Request, now time.Time, loc *time.Location) (time.Time, time.Time, error)

// Feeds are the subscribable feeds matching a list's filters.
type Feeds struct {
	ICS    string `json:"ics"`
	Webcal string `json:"webcal"`
	Atom   string `json:"atom"`
}

// calendarPage is one page of a city's calendar.
type calendarPage struct {
	City       string  `json:"city"`
	Timezone   string  `json:"timezone"`
	From       string  `json:"from"`
	To         string  `json:"to"`
	Items      []Entry `json:"items"`
	NextCursor *string `json:"next_cursor"`
	Feeds      Feeds   `json:"feeds"`
}

// handleCalendar lists a city's calendar (market days and event
// occurrences) in a range of local dates, filtered, a page at a time.
func handleCalendar(store *Store, log *slog.Logger, now func() time.Time, rng rangeFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		city := r.PathValue("city")
		loc, err := store.Timezone(r.Context(), city)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		from, to, err := rng(r, now().In(loc), loc)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		f, err := filterFromQuery(r)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		scope := fmt.Sprint(city, from.Unix(), to.Unix(), f.Place, f.Category, f.Text)
		limit, after, err := pageFromQuery(r, scope)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		entries, err := store.Calendar(r.Context(), city, loc, from, to, f)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		page := calendarPage{City: city, Timezone: loc.String(), From: from.Format(time.DateOnly),
			To: to.AddDate(0, 0, -1).Format(time.DateOnly), Items: []Entry{}, Feeds: feedsFor(r, city, f)}
		for _, e := range entries {
			if after != nil && compareEntries(e, *after) <= 0 {
				continue
			}
			if len(page.Items) == limit {
				c := encodeCursor(scope, page.Items[len(page.Items)-1])
				page.NextCursor = &c
				break
			}
			page.Items = append(page.Items, e)
		}
		web.JSON(w, http.StatusOK, page)
	})
}

func filterFromQuery(r *http.Request) (Filter, error) {
	var fe web.Fields
	q := r.URL.Query()
	f := Filter{Place: q.Get("place"), Category: q.Get("category"), Text: q.Get("q")}
	if f.Place != "" && uuid.Validate(f.Place) != nil {
		fe.Add("place", "must be a place id (UUID)")
	}
	if f.Category != "" && (!slugPattern.MatchString(f.Category) || len(f.Category) > 60) {
		fe.Add("category", "must be a category slug")
	}
	if utf8.RuneCountInString(f.Text) > 200 || !utf8.ValidString(f.Text) || strings.ContainsRune(f.Text, 0) {
		fe.Add("q", "must be text of at most 200 characters")
	}
	return f, fe.Err()
}

// cursor is the position after the last item of a page, bound to the
// query (scope) it was issued for.
type cursor struct {
	Scope uint64    `json:"h"`
	Start time.Time `json:"s"`
	Title string    `json:"t"`
	ID    string    `json:"i"`
}

func scopeHash(scope string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(scope))
	return h.Sum64()
}

func encodeCursor(scope string, last Entry) string {
	b, _ := json.Marshal(cursor{Scope: scopeHash(scope), Start: last.StartsAt, Title: last.Title, ID: last.ID})
	return base64.RawURLEncoding.EncodeToString(b)
}

func pageFromQuery(r *http.Request, scope string) (int, *Entry, error) {
	var fe web.Fields
	q := r.URL.Query()
	limit := defaultPageSize
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPageSize {
			fe.Add("limit", "must be a number from 1 to %d", maxPageSize)
		}
		limit = n
	}
	var after *Entry
	if v := q.Get("cursor"); v != "" {
		var c cursor
		b, err := base64.RawURLEncoding.DecodeString(v)
		if err != nil || json.Unmarshal(b, &c) != nil || c.Scope != scopeHash(scope) {
			fe.Add("cursor", "is not a cursor of this query; start again without it")
		} else {
			after = &Entry{StartsAt: c.Start, Title: c.Title, ID: c.ID}
		}
	}
	return limit, after, fe.Err()
}

// baseURL is the scheme and host the client used.
func baseURL(r *http.Request) (scheme, host string) {
	scheme = "http"
	if r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https" {
		scheme = "https"
	}
	return scheme, r.Host
}

func feedsFor(r *http.Request, city string, f Filter) Feeds {
	scheme, host := baseURL(r)
	path := "/api/v1/calendar/cities/" + url.PathEscape(city) + "/calendar.ics"
	q := url.Values{}
	switch {
	case f.Place != "" && f.Category == "":
		path = "/api/v1/calendar/cities/" + url.PathEscape(city) + "/places/" + f.Place + "/calendar.ics"
	case f.Category != "" && f.Place == "":
		path = "/api/v1/calendar/cities/" + url.PathEscape(city) + "/categories/" + f.Category + "/calendar.ics"
	case f.Place != "":
		q.Set("place", f.Place)
		q.Set("category", f.Category)
	}
	if f.Text != "" {
		q.Set("q", f.Text)
	}
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	return Feeds{ICS: scheme + "://" + host + path, Webcal: "webcal://" + host + path,
		Atom: scheme + "://" + host + "/api/v1/calendar/cities/" + url.PathEscape(city) + "/feed.atom"}
}

// queryRange turns from/to local dates into [start of from, start of the
// day after to) in loc, which is right across DST changes.
func queryRange(r *http.Request, now time.Time, loc *time.Location) (time.Time, time.Time, error) {
	var f web.Fields
	q := r.URL.Query()
	parse := func(name string, def time.Time) time.Time {
		v := q.Get(name)
		if v == "" {
			return def
		}
		t, err := time.ParseInLocation(time.DateOnly, v, loc)
		if err != nil {
			f.Add(name, "must be a date like 2026-05-01")
		}
		return t
	}
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, loc)
	from := parse("from", today)
	to := parse("to", from.AddDate(0, 0, 7))
	if err := f.Err(); err != nil {
		return time.Time{}, time.Time{}, err
	}
	if to.Before(from) {
		f.Add("to", "must not be before from")
	} else if to.After(from.AddDate(0, 0, maxRangeDays)) { // in local days: a day may have 23 or 25 hours
		f.Add("to", "must be at most %d days after from", maxRangeDays)
	}
	if err := f.Err(); err != nil {
		return time.Time{}, time.Time{}, err
	}
	return from, to.AddDate(0, 0, 1), nil
}

// todayRange is today in the city's timezone.
func todayRange(_ *http.Request, now time.Time, loc *time.Location) (time.Time, time.Time, error) {
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, loc)
	return today, today.AddDate(0, 0, 1), nil
}

// weekendRange is this weekend in the city's timezone: the coming Saturday
// and Sunday, or the current ones on a Saturday or Sunday.
func weekendRange(_ *http.Request, now time.Time, loc *time.Location) (time.Time, time.Time, error) {
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, loc)
	var sat time.Time
	switch wd := today.Weekday(); wd {
	case time.Saturday:
		sat = today
	case time.Sunday:
		sat = today.AddDate(0, 0, -1)
	default:
		sat = today.AddDate(0, 0, int(time.Saturday-wd))
	}
	return sat, sat.AddDate(0, 0, 2), nil
}

// etagMatches reports whether If-None-Match names etag (or is *).
func etagMatches(r *http.Request, etag string) bool {
	for _, v := range strings.Split(r.Header.Get("If-None-Match"), ",") {
		v = strings.TrimPrefix(strings.TrimSpace(v), "W/")
		if v == etag || v == "*" {
			return true
		}
	}
	return false
}

// serveCached writes body with a strong ETag, or 304 when the client has it.
func serveCached(w http.ResponseWriter, r *http.Request, contentType, filename, body string) {
	sum := sha256.Sum256([]byte(body))
	etag := `"` + hex.EncodeToString(sum[:16]) + `"`
	w.Header().Set("ETag", etag)
	w.Header().Set("Cache-Control", "public, max-age=300")
	if etagMatches(r, etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Type", contentType)
	if filename != "" {
		w.Header().Set("Content-Disposition", `inline; filename="`+filename+`"`)
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(body))
}

// requireManager loads an event's city and checks the caller manages it:
// 401 without a token, 404 for no such event, 409 for a market day, 403 for
// someone else's city.
func requireManager(r *http.Request, store *Store) (auth.Principal, error) {
	if _, err := auth.Require(r.Context()); err != nil {
		return auth.Principal{}, err
	}
	city, err := store.EventCity(r.Context(), r.PathValue("id"))
	if err != nil {
		return auth.Principal{}, err
	}
	return auth.RequireManager(r.Context(), city)
}
