package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// TestEndToEnd runs the real piazza, every target in one process, and follows
// one change from the listings API through the outbox, NATS and the notifier
// to a websocket client, and to the calendar.
func TestEndToEnd(t *testing.T) {
	p := startPiazza(t, newDatabase(t), t.TempDir())

	t.Run("healthz answers", func(t *testing.T) {
		var body map[string]string
		getJSON(t, p.base+"/healthz", http.StatusOK, &body)
		if body["status"] != "ok" {
			t.Errorf("/healthz body %v", body)
		}
	})

	loc, err := time.LoadLocation("Europe/Brussels")
	if err != nil {
		t.Fatal(err)
	}
	dateBefore := time.Now().In(loc).Format(time.DateOnly)
	var today todayBody
	getJSON(t, p.base+"/api/v1/listings/cities/ghent/today", http.StatusOK, &today)
	dateAfter := time.Now().In(loc).Format(time.DateOnly) // midnight may pass meanwhile
	if today.Date != dateBefore && today.Date != dateAfter {
		t.Errorf("today in Ghent is %s, want %s", today.Date, dateAfter)
	}
	if len(today.MarketDays) == 0 {
		t.Fatalf("no market day today in Ghent, which has a daily market: %+v", today)
	}
	day, _ := openMarketDay(t, p.base, p.now())

	ws := dialWS(t, p.base)
	since := ws.subscribe(t, "city:ghent")

	s := registerStall(t, p.base, day.ID, "Hoeve De Vlier")
	seq := ws.nextNotification(t, s)
	if seq <= since {
		t.Errorf("notification seq %d, want more than the subscribed seq %d", seq, since)
	}

	t.Run("the market day shows the stall", func(t *testing.T) {
		var d marketDay
		getJSON(t, p.base+"/api/v1/listings/market-days/"+day.ID, http.StatusOK, &d)
		if !hasStall(d, s) {
			t.Errorf("market day %s stalls %+v, want %+v", day.ID, d.Stalls, s)
		}
	})

	t.Run("the calendar lists the market day", func(t *testing.T) {
		eventually(t, eventTimeout, func() string { return calendarHas(t, p.base, day) })
	})

	t.Run("metrics are labelled by route pattern", func(t *testing.T) {
		status, _, body := request(t, http.MethodGet, p.base+"/metrics", "", nil)
		if status != http.StatusOK {
			t.Fatalf("/metrics = %d", status)
		}
		lines := metricLines(string(body), "piazza_http_requests_total")
		found := false
		for _, l := range lines {
			if strings.Contains(l, `route="GET /api/v1/listings/cities/{city}/today"`) && strings.Contains(l, `status="200"`) {
				found = true
			}
			if strings.Contains(l, "/ghent") || strings.Contains(l, day.ID) {
				t.Errorf("a raw path is a label: %s", l)
			}
		}
		if !found {
			t.Errorf("no piazza_http_requests_total for the /today pattern in:\n%s", strings.Join(lines, "\n"))
		}
	})

	t.Run("bad input is refused with problem+json", func(t *testing.T) {
		testBadInput(t, p.base, day.ID)
	})

	t.Run("no request failed with a 5xx", func(t *testing.T) {
		_, _, body := request(t, http.MethodGet, p.base+"/metrics", "", nil)
		for _, l := range metricLines(string(body), "piazza_http_requests_total") {
			// /readyz answers 503 while starting: that is its job.
			if strings.Contains(l, `status="5`) && !strings.Contains(l, `route="GET /readyz"`) {
				t.Errorf("a server error was counted: %s", l)
			}
		}
	})

	if err := p.stop(); err != nil {
		t.Fatalf("run returned %v after cancel, want nil", err)
	}
}

// testBadInput sends malformed requests through the real server.
func testBadInput(t *testing.T, base, dayID string) {
	vendors := base + "/api/v1/listings/vendors"
	tok := signUpVendor(t, base) // writes need a signed-in vendor; the checks below come after sign-in
	valid := `{"city":"ghent","name":"Kaasmakerij Het Hof","kind":"food"}`
	tests := []struct {
		name, method, url, contentType, body string
		status                               int
		field                                string // expected in errors[].field
	}{
		{name: "a body over 64 KiB", method: "POST", url: vendors, contentType: "application/json",
			body: `{"city":"ghent","kind":"food","name":"` + strings.Repeat("a", 70<<10) + `"}`, status: http.StatusRequestEntityTooLarge},
		{name: "an unknown field", method: "POST", url: vendors, contentType: "application/json",
			body: `{"city":"ghent","name":"X","kind":"food","nickname":"x"}`, status: http.StatusUnprocessableEntity, field: "nickname"},
		{name: "a field of the wrong type", method: "POST", url: vendors, contentType: "application/json",
			body: `{"city":"ghent","name":42,"kind":"food"}`, status: http.StatusUnprocessableEntity, field: "name"},
		{name: "an invalid field", method: "POST", url: vendors, contentType: "application/json",
			body: `{"city":"ghent","name":"X","kind":"wizard"}`, status: http.StatusUnprocessableEntity, field: "kind"},
		{name: "a wrong content type", method: "POST", url: vendors, contentType: "text/plain", body: valid,
			status: http.StatusUnsupportedMediaType},
		{name: "a form post", method: "POST", url: vendors, contentType: "application/x-www-form-urlencoded",
			body: "name=x", status: http.StatusUnsupportedMediaType},
		{name: "not JSON", method: "POST", url: vendors, contentType: "application/json", body: `{"name":`,
			status: http.StatusUnprocessableEntity},
		{name: "two JSON values", method: "POST", url: vendors, contentType: "application/json", body: valid + valid,
			status: http.StatusUnprocessableEntity},
		{name: "an empty body", method: "POST", url: vendors, contentType: "application/json",
			status: http.StatusUnprocessableEntity},
		{name: "an unknown market day", method: "POST", contentType: "application/json",
			url:  base + "/api/v1/listings/market-days/" + uuid.NewString() + "/applications",
			body: `{"vendor_id":"` + uuid.NewString() + `"}`, status: http.StatusNotFound},
		{name: "a market day id that is no UUID", method: "POST", contentType: "application/json",
			url:  base + "/api/v1/listings/market-days/1%20OR%201=1/applications",
			body: `{"vendor_id":"` + uuid.NewString() + `"}`, status: http.StatusNotFound},
		{name: "an unknown vendor", method: "POST", contentType: "application/json",
			url:  base + "/api/v1/listings/market-days/" + dayID + "/applications",
			body: `{"vendor_id":"` + uuid.NewString() + `"}`, status: http.StatusUnprocessableEntity, field: "vendor_id"},
		{name: "reading an unknown market day", method: "GET", url: base + "/api/v1/listings/market-days/" + uuid.NewString(),
			status: http.StatusNotFound},
		{name: "an unknown city", method: "GET", url: base + "/api/v1/listings/cities/atlantis/today", status: http.StatusNotFound},
		{name: "an unknown city on the calendar", method: "GET", url: base + "/api/v1/calendar/cities/atlantis/events",
			status: http.StatusNotFound},
		{name: "a bad date range", method: "GET", url: base + "/api/v1/listings/cities/ghent/market-days?from=yesterday",
			status: http.StatusUnprocessableEntity, field: "from"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, header, body := requestAs(t, tok, tt.method, tt.url, tt.contentType, []byte(tt.body))
			if status != tt.status {
				t.Fatalf("%s %s = %d, want %d; body: %.300s", tt.method, tt.url, status, tt.status, body)
			}
			if ct := header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type = %q, want application/problem+json", ct)
			}
			var prob struct {
				Status int    `json:"status"`
				Code   string `json:"code"`
				Detail string `json:"detail"`
				Errors []struct {
					Field string `json:"field"`
				} `json:"errors"`
			}
			if err := json.Unmarshal(body, &prob); err != nil {
				t.Fatalf("problem body %q: %v", body, err)
			}
			if prob.Status != tt.status || prob.Code == "" || prob.Detail == "" {
				t.Errorf("problem %+v: want status %d with a code and a detail", prob, tt.status)
			}
			if tt.field != "" {
				found := false
				for _, e := range prob.Errors {
					found = found || e.Field == tt.field
				}
				if !found {
					t.Errorf("errors %+v do not name the field %q", prob.Errors, tt.field)
				}
			}
			for _, leak := range []string{"pgx", "SQL", "sqlstate", "goroutine", "runtime."} {
				if bytes.Contains(body, []byte(leak)) {
					t.Errorf("the problem leaks %q: %s", leak, body)
				}
			}
		})
	}
}

// TestRestart stops piazza and starts it again on the same database and data
// directory: state survives, the notification position is kept, old events
// are not notified again, and demo data is not seeded twice.
func TestRestart(t *testing.T) {
	db, dataDir := newDatabase(t), t.TempDir()

	// At 11:00 in Ghent: from 17:00 on, the second run would rightly tell the
	// stall's followers that it is at the market tomorrow.
	first := startPiazzaWithClock(t, middayInGhent(t), db, dataDir)
	day, _ := openMarketDay(t, first.base, first.now())
	var before todayBody
	getJSON(t, first.base+"/api/v1/listings/cities/ghent/today", http.StatusOK, &before)
	ws := dialWS(t, first.base)
	ws.subscribe(t, "city:ghent")
	s1 := registerStall(t, first.base, day.ID, "Bakkerij Vandermeersch")
	seq1 := ws.nextNotification(t, s1)
	if err := first.stop(); err != nil {
		t.Fatalf("first run returned %v, want nil", err)
	}

	second := startPiazzaWithClock(t, middayInGhent(t), db, dataDir)

	t.Run("the stall is still there", func(t *testing.T) {
		var d marketDay
		getJSON(t, second.base+"/api/v1/listings/market-days/"+day.ID, http.StatusOK, &d)
		if !hasStall(d, s1) {
			t.Errorf("stalls %+v, want %+v", d.Stalls, s1)
		}
		getJSON(t, second.base+"/api/v1/listings/vendors/"+s1.VendorID, http.StatusOK, nil)
	})

	t.Run("demo data is not seeded twice", func(t *testing.T) {
		var cities struct {
			Items []struct{ Slug string } `json:"items"`
		}
		getJSON(t, second.base+"/api/v1/listings/cities", http.StatusOK, &cities)
		if len(cities.Items) != 2 {
			t.Errorf("%d cities after a restart, want 2: %+v", len(cities.Items), cities.Items)
		}
		var after todayBody
		getJSON(t, second.base+"/api/v1/listings/cities/ghent/today", http.StatusOK, &after)
		if after.Date == before.Date && len(after.MarketDays) != len(before.MarketDays) {
			t.Errorf("%d market days today after a restart, %d before", len(after.MarketDays), len(before.MarketDays))
		}
	})

	ws2 := dialWS(t, second.base)
	if got := ws2.subscribe(t, "city:ghent"); got != seq1 {
		t.Fatalf("subscribed at seq %d after a restart, want the last notification's seq %d", got, seq1)
	}
	// Old events must not come back. A re-notification would be sent to this
	// subscriber before anything new; wait a moment for one to show up.
	select {
	case m := <-ws2.msgs:
		t.Fatalf("got %s after a restart before any change", m.raw)
	case <-ws2.closed:
		t.Fatalf("websocket ended: %v", ws2.err)
	case <-time.After(time.Second):
	}

	s2 := registerStall(t, second.base, day.ID, "Imkerij De Honingpot")
	if seq2 := ws2.nextNotification(t, s2); seq2 != seq1+1 {
		t.Errorf("second notification has seq %d, want %d", seq2, seq1+1)
	}
	if n := notificationCount(t, db); n != 2 {
		t.Errorf("the notifier logged %d notifications for 2 stalls", n)
	}
	if err := second.stop(); err != nil {
		t.Fatalf("second run returned %v, want nil", err)
	}
}

func hasStall(d marketDay, s stall) bool {
	for _, st := range d.Stalls {
		if st.ApplicationID == s.ApplicationID && st.Vendor.ID == s.VendorID && st.Vendor.Name == s.VendorName && st.Pitch == s.Pitch {
			return true
		}
	}
	return false
}

// calendarHas returns "" when the Ghent calendar lists day, or why not.
func calendarHas(tb testing.TB, base string, day marketDay) string {
	status, _, body := request(tb, http.MethodGet, base+"/api/v1/calendar/cities/ghent/events", "", nil)
	if status != http.StatusOK {
		return "calendar answered " + http.StatusText(status) + ": " + string(body)
	}
	var cal struct {
		Items []struct {
			ID    string `json:"id"`
			Kind  string `json:"kind"`
			Title string `json:"title"`
		} `json:"items"`
	}
	if err := json.Unmarshal(body, &cal); err != nil {
		return err.Error()
	}
	for _, e := range cal.Items {
		if e.ID == day.ID {
			if e.Kind != "market_day" || e.Title != day.Market.Name {
				return "calendar entry " + e.Kind + " " + e.Title + ", want market_day " + day.Market.Name
			}
			return ""
		}
	}
	return "the calendar does not list market day " + day.ID + " yet: " + string(body)
}

// metricLines returns the samples of one metric family in a text exposition.
func metricLines(exposition, name string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(exposition))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), name+"{") {
			out = append(out, sc.Text())
		}
	}
	return out
}

// notificationCount reads the notifier's log directly: the one thing the API
// does not show.
func notificationCount(tb testing.TB, databaseURL string) int {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM notifier.notifications`).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}
