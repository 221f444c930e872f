package listings

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/localeurope/piazza/pkg/bus"
	"github.com/localeurope/piazza/pkg/web"
	"github.com/localeurope/piazza/services/contract"
	"github.com/nats-io/nats.go"
)

// httpNow is 00:30 on Saturday 2 May 2026 in Ghent, still Friday 1 May in UTC.
var httpNow = time.Date(2026, 5, 1, 22, 30, 0, 0, time.UTC)

type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func do(tb testing.TB, method, url, contentType string, body io.Reader) response {
	tb.Helper()
	return doAs(tb, "", method, url, contentType, body)
}

// doAs is do with an access token ("" for none).
func doAs(tb testing.TB, token, method, url, contentType string, body io.Reader) response {
	tb.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, url, body)
	if err != nil {
		tb.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return response{res.StatusCode, res.Header, b}
}

func getJSON(tb testing.TB, url string, v any) {
	tb.Helper()
	res := do(tb, http.MethodGet, url, "", nil)
	if res.Status != http.StatusOK {
		tb.Fatalf("GET %s = %d %s", url, res.Status, res.Body)
	}
	if err := json.Unmarshal(res.Body, v); err != nil {
		tb.Fatalf("GET %s: %v", url, err)
	}
}

func TestHTTP(t *testing.T) {
	svc := startService(t, httpNow)
	api := svc.URL + "/api/v1/listings"

	var today today
	getJSON(t, api+"/cities/ghent/today", &today)
	if len(today.MarketDays) == 0 {
		t.Fatal("the demo has no market day today in Ghent")
	}
	day := today.MarketDays[0]
	var vendor Vendor
	owner := aVendor(t, svc) // vendors are created and act with a token of their owner
	res := owner.send("POST", "/vendors", map[string]any{"city": "ghent", "name": "Hoeve De Vlier", "kind": "farmer"})
	if res.Status != http.StatusCreated {
		t.Fatalf("create vendor = %d %s", res.Status, res.Body)
	}
	if err := json.Unmarshal(res.Body, &vendor); err != nil {
		t.Fatal(err)
	}

	t.Run("today is the local date in the city, not the UTC one", func(t *testing.T) {
		if today.Date != "2026-05-02" || today.City.Slug != "ghent" {
			t.Errorf("today = %s in %s, want 2026-05-02 in ghent", today.Date, today.City.Slug)
		}
		for _, d := range today.MarketDays {
			if d.Date != "2026-05-02" {
				t.Errorf("today lists a market day on %s", d.Date)
			}
		}
		if want := httpNow.UTC().Truncate(time.Second); !today.AsOf.Equal(want) {
			t.Errorf("as_of = %s, want the service's time %s", today.AsOf, want)
		}
	})

	t.Run("a vendor applies through the API and the stall reaches the LISTINGS stream", func(t *testing.T) {
		res := owner.send("POST", "/market-days/"+day.ID+"/applications", map[string]any{"vendor_id": vendor.ID})
		if res.Status != http.StatusCreated {
			t.Fatalf("apply = %d %s", res.Status, res.Body)
		}
		var app Application
		if err := json.Unmarshal(res.Body, &app); err != nil {
			t.Fatal(err)
		}
		if app.Status != "accepted" || res.Header.Get("Location") != "/api/v1/listings/applications/"+app.ID {
			t.Errorf("application %s with Location %q", app.Status, res.Header.Get("Location"))
		}
		if again := owner.send("POST", "/market-days/"+day.ID+"/applications", map[string]any{"vendor_id": vendor.ID}); again.Status != http.StatusConflict {
			t.Errorf("applying again = %d %s, want 409", again.Status, again.Body)
		}
		var md MarketDay
		getJSON(t, api+"/market-days/"+day.ID, &md)
		if len(md.Stalls) != 1 || md.Stalls[0].Vendor.ID != vendor.ID || md.Stalls[0].Pitch != app.Pitch {
			t.Errorf("stalls = %+v, want the vendor on %s", md.Stalls, app.Pitch)
		}

		var msg *nats.Msg
		eventually(t, "stall.registered published to LISTINGS", func() bool {
			raw, err := svc.JS.Stream(context.Background(), contract.StreamListings)
			if err != nil {
				return false
			}
			m, err := raw.GetLastMsgForSubject(context.Background(), "listings.ghent.stall.registered")
			if err != nil {
				return false
			}
			msg = &nats.Msg{Subject: m.Subject, Header: m.Header, Data: m.Data}
			return true
		})
		ev, err := bus.Decode(msg)
		if err != nil {
			t.Fatal(err)
		}
		var p contract.StallRegisteredV1
		if err := ev.Unmarshal(&p); err != nil {
			t.Fatal(err)
		}
		if ev.Type != contract.TypeStallRegistered || p.ApplicationID != app.ID || p.VendorID != vendor.ID || msg.Header.Get(bus.HdrMsgID) != ev.ID {
			t.Errorf("published %s %+v with Nats-Msg-Id %q", ev.Type, p, msg.Header.Get(bus.HdrMsgID))
		}
	})

	t.Run("the demo cities and their market days are published", func(t *testing.T) {
		eventually(t, "outbox drained", func() bool {
			return count(t, svc.Store, `SELECT count(*) FROM outbox WHERE published_at IS NULL`) == 0
		})
		info, err := svc.JS.Stream(context.Background(), contract.StreamListings)
		if err != nil {
			t.Fatal(err)
		}
		state := info.CachedInfo().State
		if want := count(t, svc.Store, `SELECT count(*) FROM outbox`); state.Msgs != uint64(want) {
			t.Errorf("LISTINGS holds %d messages, want one per outbox row (%d)", state.Msgs, want)
		}
	})

	unknown := uuid.NewString()
	big := `{"vendor_id":"` + vendor.ID + `","pitch":"` + strings.Repeat("x", web.MaxBodyBytes) + `"}`
	tests := []struct {
		name        string
		method      string
		path        string
		contentType string
		body        string
		status      int
		fields      []string
	}{
		{"a malformed market day id is not found", "GET", "/market-days/42", "", "", 404, nil},
		{"an unknown market day is not found", "GET", "/market-days/" + unknown, "", "", 404, nil},
		{"a malformed vendor id is not found", "GET", "/vendors/not-a-uuid", "", "", 404, nil},
		{"an unknown vendor is not found", "GET", "/vendors/" + unknown, "", "", 404, nil},
		{"a uuid in braces is not an id", "GET", "/vendors/%7B" + vendor.ID + "%7D", "", "", 404, nil},
		{"an unknown city is not found", "GET", "/cities/atlantis", "", "", 404, nil},
		{"an unknown city has no today", "GET", "/cities/atlantis/today", "", "", 404, nil},
		{"an unknown city has no market days", "GET", "/cities/atlantis/market-days", "", "", 404, nil},
		{"a city slug that is not UTF-8 is not found", "GET", "/cities/%FF", "", "", 404, nil},
		{"a city slug with a NUL byte is not found", "GET", "/cities/gh%00ent/today", "", "", 404, nil},
		{"a very long city slug is not found", "GET", "/cities/" + strings.Repeat("a", 5000) + "/market-days", "", "", 404, nil},
		{"a malformed from date is a field error", "GET", "/cities/ghent/market-days?from=2026-13-01", "", "", 422, []string{"from"}},
		{"a malformed to date is a field error", "GET", "/cities/ghent/market-days?from=2026-05-01&to=tomorrow", "", "", 422, []string{"to"}},
		{"two malformed dates are two field errors", "GET", "/cities/ghent/market-days?from=01/05/2026&to=2026-02-30", "", "", 422, []string{"from", "to"}},
		{"a reversed range is a field error", "GET", "/cities/ghent/market-days?from=2026-05-10&to=2026-05-01", "", "", 422, []string{"to"}},
		{"a range over 62 days is a field error", "GET", "/cities/ghent/market-days?from=2026-05-01&to=2026-07-03", "", "", 422, []string{"to"}},
		{"a date in year 0 is a field error", "GET", "/cities/ghent/market-days?from=0000-01-01&to=0000-01-02", "", "", 422, []string{"from", "to"}},
		{"a range ending in year 10000 is a field error", "GET", "/cities/ghent/market-days?from=9999-12-30", "", "", 422, []string{"to"}},
		{"applying to a malformed market day id is not found", "POST", "/market-days/abc/applications", "application/json", `{"vendor_id":"` + vendor.ID + `"}`, 404, nil},
		{"applying to an unknown market day is not found", "POST", "/market-days/" + unknown + "/applications", "application/json", `{"vendor_id":"` + vendor.ID + `"}`, 404, nil},
		{"an unknown JSON field is a field error", "POST", "/market-days/" + day.ID + "/applications", "application/json", `{"vendor_id":"` + vendor.ID + `","colour":"red"}`, 422, []string{"colour"}},
		{"a malformed vendor id in the body is a field error", "POST", "/market-days/" + day.ID + "/applications", "application/json", `{"vendor_id":"v1"}`, 422, []string{"vendor_id"}},
		{"an unknown vendor in the body is a field error", "POST", "/market-days/" + day.ID + "/applications", "application/json", `{"vendor_id":"` + unknown + `"}`, 422, []string{"vendor_id"}},
		{"an unknown pitch is a field error", "POST", "/market-days/" + day.ID + "/applications", "application/json", `{"vendor_id":"` + vendor.ID + `","pitch":"Z99"}`, 422, []string{"pitch"}},
		{"a pitch code over 16 characters is a field error", "POST", "/market-days/" + day.ID + "/applications", "application/json", `{"vendor_id":"` + vendor.ID + `","pitch":"` + strings.Repeat("A", 17) + `"}`, 422, []string{"pitch"}},
		{"a number for a string is a field error", "POST", "/market-days/" + day.ID + "/applications", "application/json", `{"vendor_id":7}`, 422, []string{"vendor_id"}},
		{"malformed JSON is invalid", "POST", "/market-days/" + day.ID + "/applications", "application/json", `{"vendor_id":`, 422, nil},
		{"an empty body is invalid", "POST", "/market-days/" + day.ID + "/applications", "application/json", ``, 422, nil},
		{"two JSON values are invalid", "POST", "/market-days/" + day.ID + "/applications", "application/json", `{"vendor_id":"` + vendor.ID + `"}{}`, 422, nil},
		{"a JSON array is invalid", "POST", "/vendors", "application/json", `[]`, 422, nil},
		{"a body over 64 KiB is too large", "POST", "/market-days/" + day.ID + "/applications", "application/json", big, 413, nil},
		{"a form body is an unsupported media type", "POST", "/market-days/" + day.ID + "/applications", "application/x-www-form-urlencoded", "vendor_id=" + vendor.ID, 415, nil},
		{"a malformed content type is an unsupported media type", "POST", "/vendors", "application/json; charset", `{}`, 415, nil},
		{"a vendor without name and kind has two field errors", "POST", "/vendors", "application/json", `{"city":"ghent"}`, 422, []string{"name", "kind"}},
		{"a vendor in an unknown city is a field error", "POST", "/vendors", "application/json", `{"city":"atlantis","name":"X","kind":"food"}`, 422, []string{"city"}},
		{"a vendor name with a NUL character is a field error", "POST", "/vendors", "application/json", `{"city":"ghent","name":"a\u0000b","kind":"food"}`, 422, []string{"name"}},
		{"a vendor description with a NUL character is a field error", "POST", "/vendors", "application/json", `{"city":"ghent","name":"X","kind":"food","description":"\u0000"}`, 422, []string{"description"}},
		{"a pitch code with a NUL character is a field error", "POST", "/market-days/" + day.ID + "/applications", "application/json", `{"vendor_id":"` + vendor.ID + `","pitch":"A\u0000"}`, 422, []string{"pitch"}},
		{"a vendor with a malformed city is a field error", "POST", "/vendors", "application/json", `{"city":"Gh ent","name":"X","kind":"food"}`, 422, []string{"city"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			res := doAs(t, owner.token, tt.method, api+tt.path, tt.contentType, body)
			if res.Status != tt.status {
				t.Fatalf("%s %s = %d %s, want %d", tt.method, tt.path, res.Status, truncate(res.Body), tt.status)
			}
			if ct := res.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type = %q, want application/problem+json", ct)
			}
			var p web.Problem
			if err := json.Unmarshal(res.Body, &p); err != nil {
				t.Fatalf("problem body %s: %v", truncate(res.Body), err)
			}
			if p.Status != tt.status || p.Code != codeFor(tt.status) || p.RequestID == "" || p.RequestID != res.Header.Get("X-Request-ID") {
				t.Errorf("problem = %+v, want status %d, code %s and the request id", p, tt.status, codeFor(tt.status))
			}
			got := map[string]bool{}
			for _, f := range p.Errors {
				got[f.Field] = true
			}
			for _, f := range tt.fields {
				if !got[f] {
					t.Errorf("field errors %+v do not name %q", p.Errors, f)
				}
			}
			if len(tt.fields) > 0 && len(p.Errors) != len(tt.fields) {
				t.Errorf("field errors %+v, want exactly %v", p.Errors, tt.fields)
			}
		})
	}

	t.Run("a range of exactly 62 days is fine", func(t *testing.T) {
		var out struct {
			From, To string
			Items    []MarketDay
		}
		getJSON(t, api+"/cities/ghent/market-days?from=2026-05-01&to=2026-07-02", &out)
		if out.From != "2026-05-01" || out.To != "2026-07-02" || len(out.Items) == 0 {
			t.Errorf("range %s–%s with %d days", out.From, out.To, len(out.Items))
		}
	})

	t.Run("the default range is local today and the next 7 days", func(t *testing.T) {
		var out struct{ From, To string }
		getJSON(t, api+"/cities/ghent/market-days", &out)
		if out.From != "2026-05-02" || out.To != "2026-05-09" {
			t.Errorf("default range %s–%s, want 2026-05-02–2026-05-09", out.From, out.To)
		}
	})
}

func codeFor(status int) string {
	switch status {
	case 404:
		return web.ENotFound
	case 409:
		return web.EConflict
	case 413:
		return web.ETooLarge
	case 415:
		return web.EUnsupported
	case 422:
		return web.EInvalid
	}
	return "?"
}

func truncate(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}
