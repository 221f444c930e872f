package listings

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/localeurope/piazza/pkg/web"
)

func handleCities(store *Store, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := readPage(r, "cities")
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		cities, next, err := store.Cities(r.Context(), p)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		web.JSON(w, http.StatusOK, pageOf[City]{Items: cities, NextCursor: next})
	})
}

func handleCity(store *Store, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := store.City(r.Context(), r.PathValue("city"))
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		web.JSON(w, http.StatusOK, c)
	})
}

// today is the body of GET /cities/{city}/today.
type today struct {
	City       City        `json:"city"`
	Date       string      `json:"date"`
	MarketDays []MarketDay `json:"market_days"`
	// AsOf is when the snapshot was read: live changes after it come over
	// the notifier's websocket.
	AsOf time.Time `json:"as_of"`
}

func handleToday(store *Store, log *slog.Logger, now func() time.Time) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := store.City(r.Context(), r.PathValue("city"))
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		loc, err := c.Location()
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		at := now()
		date := Today(at, loc)
		days, err := store.MarketDays(r.Context(), c.Slug, date, date)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		web.JSON(w, http.StatusOK, today{City: c, Date: date, MarketDays: nonNil(days), AsOf: at.UTC().Truncate(time.Second)})
	})
}

// maxRangeDays bounds a market-days query.
const maxRangeDays = 62

// dateRange reads from= and to= (YYYY-MM-DD, local dates); from defaults to
// today and to to a week after from.
func dateRange(r *http.Request, today string) (string, string, error) {
	var f web.Fields
	q := r.URL.Query()
	parse := func(name, def string) time.Time {
		v := q.Get(name)
		if v == "" {
			v = def
		}
		t, err := time.Parse(time.DateOnly, v)
		if err != nil || t.Year() < 1 { // Postgres has no year 0
			f.Add(name, "must be a date like 2026-05-01")
		}
		return t
	}
	from := parse("from", today)
	to := parse("to", from.AddDate(0, 0, 7).Format(time.DateOnly))
	if err := f.Err(); err != nil {
		return "", "", err
	}
	if to.Before(from) {
		f.Add("to", "must not be before from")
	} else if to.Sub(from) > maxRangeDays*24*time.Hour {
		f.Add("to", "must be at most %d days after from", maxRangeDays)
	}
	if err := f.Err(); err != nil {
		return "", "", err
	}
	return from.Format(time.DateOnly), to.Format(time.DateOnly), nil
}

func handleMarketDay(store *Store, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if !isUUID(id) {
			web.WriteError(w, r, log, web.Errorf(web.ENotFound, "there is no market day %q", id))
			return
		}
		d, err := store.MarketDay(r.Context(), id)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		web.JSON(w, http.StatusOK, d)
	})
}

// Vendor handlers are in vendors.go.
