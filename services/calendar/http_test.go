package calendar

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/localeurope/piazza/pkg/bus"
	"github.com/localeurope/piazza/pkg/inbox"
	"github.com/localeurope/piazza/pkg/web"
)

type eventsPage struct {
	City     string  `json:"city"`
	Timezone string  `json:"timezone"`
	From     string  `json:"from"`
	To       string  `json:"to"`
	Items    []Entry `json:"items"`
}

func get(tb testing.TB, url string) (int, http.Header, []byte) {
	tb.Helper()
	res, err := http.Get(url)
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return res.StatusCode, res.Header, b
}

func getEvents(tb testing.TB, url string) eventsPage {
	tb.Helper()
	status, _, body := get(tb, url)
	if status != http.StatusOK {
		tb.Fatalf("GET %s = %d %s", url, status, body)
	}
	var p eventsPage
	if err := json.Unmarshal(body, &p); err != nil {
		tb.Fatal(err)
	}
	return p
}

func titles(p eventsPage) []string {
	var out []string
	for _, e := range p.Items {
		out = append(out, e.Title)
	}
	return out
}

func TestEventsHTTP(t *testing.T) {
	ctx := context.Background()
	berlin := mustLoad(t, "Europe/Berlin")
	// 23:30Z on Thursday 26 March is 00:30 on Friday 27 March in Berlin.
	now := time.Date(2026, 3, 26, 23, 30, 0, 0, time.UTC)

	pool := openPool(t, newDatabase(t))
	log := testLog(t)
	mux := http.NewServeMux()
	routes(mux, &Store{pool: pool}, log, func() time.Time { return now })
	srv := httptest.NewServer(web.Middleware{Log: log}.Wrap(mux))
	t.Cleanup(srv.Close)
	api := srv.URL + "/api/v1/calendar/cities/"

	h := inbox.Handler(pool, consumerName, applyListingsEvent)
	deliver := func(ev bus.Event) {
		t.Helper()
		if err := h(ctx, ev, bus.Delivery{}); err != nil {
			t.Fatal(err)
		}
	}
	deliver(cityEvent(t, "berlin", "Europe/Berlin", 1))
	// Sunday 29 March 2026 has 23 hours in Berlin: 02:00 CET becomes 03:00 CEST.
	for _, e := range []struct{ title, starts, ends string }{
		{"Thursday late", "2026-03-26 23:30", "2026-03-26 23:59"},
		{"Friday early", "2026-03-27 00:30", "2026-03-27 01:00"},
		{"Saturday market", "2026-03-28 08:00", "2026-03-28 13:00"},
		{"Sunday just after midnight", "2026-03-29 00:30", "2026-03-29 01:00"},
		{"Sunday after the change", "2026-03-29 03:30", "2026-03-29 04:00"},
		{"Sunday late", "2026-03-29 23:30", "2026-03-29 23:59"},
		{"Monday early", "2026-03-30 00:30", "2026-03-30 01:00"},
	} {
		deliver(marketDayEvent(t, marketDay("berlin", e.title, at(t, berlin, e.starts), at(t, berlin, e.ends), 1)))
	}

	t.Run("a range across the spring change holds the entries of its local dates", func(t *testing.T) {
		p := getEvents(t, api+"berlin/events?from=2026-03-27&to=2026-03-29")
		want := []string{"Friday early", "Saturday market", "Sunday just after midnight", "Sunday after the change", "Sunday late"}
		if got := titles(p); !slices.Equal(got, want) {
			t.Errorf("entries = %q, want %q", got, want)
		}
		if p.From != "2026-03-27" || p.To != "2026-03-29" || p.Timezone != "Europe/Berlin" || p.City != "berlin" {
			t.Errorf("page %s %s–%s in %s, want berlin 2026-03-27–2026-03-29 in Europe/Berlin", p.City, p.From, p.To, p.Timezone)
		}
	})

	t.Run("the 23-hour day of the change holds its own entries and no others", func(t *testing.T) {
		p := getEvents(t, api+"berlin/events?from=2026-03-29&to=2026-03-29")
		want := []string{"Sunday just after midnight", "Sunday after the change", "Sunday late"}
		if got := titles(p); !slices.Equal(got, want) {
			t.Errorf("entries = %q, want %q", got, want)
		}
	})

	t.Run("the default range starts on the local date, not the UTC one", func(t *testing.T) {
		p := getEvents(t, api+"berlin/events")
		if p.From != "2026-03-27" || p.To != "2026-04-03" {
			t.Errorf("default range %s–%s, want 2026-03-27–2026-04-03", p.From, p.To)
		}
		if got := titles(p); len(got) == 0 || got[0] != "Friday early" {
			t.Errorf("entries = %q, want Friday early first and not Thursday late", got)
		}
	})

	t.Run("92 days across the autumn change are allowed", func(t *testing.T) {
		// 1 October to 1 January is 92 local days but 92×24+1 hours.
		p := getEvents(t, api+"berlin/events?from=2026-10-01&to=2027-01-01")
		if p.From != "2026-10-01" || p.To != "2027-01-01" {
			t.Errorf("range %s–%s", p.From, p.To)
		}
		getEvents(t, api+"berlin/events?from=2026-03-01&to=2026-06-01")
	})

	t.Run("extreme years are answered, not failed", func(t *testing.T) {
		for _, q := range []string{"from=0000-01-01&to=0000-01-02", "from=0001-01-01&to=0001-01-01", "from=9999-12-31&to=9999-12-31"} {
			if p := getEvents(t, api+"berlin/events?"+q); len(p.Items) != 0 {
				t.Errorf("%s: %d entries", q, len(p.Items))
			}
		}
	})

	for _, tt := range []struct {
		name, path string
		status     int
		fields     []string
	}{
		{"an unknown city is not found", "atlantis/events", 404, nil},
		{"a city that is not UTF-8 is not found", "%FF/events", 404, nil},
		{"a city with a NUL byte is not found", "ber%00lin/events", 404, nil},
		{"a malformed from date is a field error", "berlin/events?from=2026-02-30", 422, []string{"from"}},
		{"a malformed to date is a field error", "berlin/events?from=2026-03-01&to=next-week", 422, []string{"to"}},
		{"a reversed range is a field error", "berlin/events?from=2026-03-10&to=2026-03-01", 422, []string{"to"}},
		{"93 days are too many", "berlin/events?from=2026-10-01&to=2027-01-02", 422, []string{"to"}},
		{"93 days across the spring change are too many", "berlin/events?from=2026-03-01&to=2026-06-02", 422, []string{"to"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, header, body := get(t, api+tt.path)
			if status != tt.status {
				t.Fatalf("GET %s = %d %s, want %d", tt.path, status, body, tt.status)
			}
			if ct := header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type = %q", ct)
			}
			var p web.Problem
			if err := json.Unmarshal(body, &p); err != nil {
				t.Fatal(err)
			}
			var fields []string
			for _, f := range p.Errors {
				fields = append(fields, f.Field)
			}
			if p.Status != tt.status || strings.Join(fields, ",") != strings.Join(tt.fields, ",") {
				t.Errorf("problem = %+v, want status %d with field errors %v", p, tt.status, tt.fields)
			}
		})
	}
}
