package calendar

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/localeurope/piazza/pkg/web"
)

// maxRangeDays bounds one query.
const maxRangeDays = 92

// routes is the whole HTTP surface of the events calendar.
func routes(mux *http.ServeMux, store *Store, log *slog.Logger, now func() time.Time) {
	mux.Handle("GET /api/v1/calendar/cities/{city}/events", handleEvents(store, log, now))
}

// handleEvents lists a city's calendar between the local dates from and to
// (inclusive; default: today and the next 7 days).
func handleEvents(store *Store, log *slog.Logger, now func() time.Time) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		city := r.PathValue("city")
		loc, err := store.Timezone(r.Context(), city)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		from, to, err := localRange(r, now().In(loc), loc)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		entries, err := store.Entries(r.Context(), city, from, to)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		if entries == nil {
			entries = []Entry{}
		}
		web.JSON(w, http.StatusOK, map[string]any{
			"city": city, "timezone": loc.String(),
			"from": from.Format(time.DateOnly), "to": to.AddDate(0, 0, -1).Format(time.DateOnly),
			"items": entries,
		})
	})
}

// localRange turns from/to local dates into [start of from, start of the day
// after to) in loc, which is right across DST changes.
func localRange(r *http.Request, now time.Time, loc *time.Location) (time.Time, time.Time, error) {
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
