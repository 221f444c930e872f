package listings

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/localeurope/piazza/pkg/auth"
	"github.com/localeurope/piazza/pkg/web"
)

// caller is someone using the listings API: anonymous, or signed in as a
// principal. Every exchange is checked against openapi.yaml.
type caller struct {
	tb    testing.TB
	hc    *http.Client
	base  string // …/api/v1/listings
	token string
	P     auth.Principal
}

func anonymous(tb testing.TB, svc *service) caller {
	tb.Helper()
	return caller{tb: tb, hc: specClient(tb), base: svc.URL + "/api/v1/listings"}
}

func signedIn(tb testing.TB, svc *service, p auth.Principal) caller {
	tb.Helper()
	if p.AccountID == "" {
		p.AccountID = uuid.NewString()
	}
	c := anonymous(tb, svc)
	c.P, c.token = p, token(tb, p)
	return c
}

// The cast of the authorization tests.
func managerOf(tb testing.TB, svc *service, cities ...string) caller {
	return signedIn(tb, svc, auth.Principal{Name: "Manager", Roles: []string{auth.RoleManager}, Cities: cities})
}

func adminOf(tb testing.TB, svc *service) caller {
	return signedIn(tb, svc, auth.Principal{Name: "Admin", Roles: []string{auth.RoleAdmin}})
}

func aVendor(tb testing.TB, svc *service) caller {
	return signedIn(tb, svc, auth.Principal{Name: "Vendor", Roles: []string{auth.RoleVendor}})
}

// send makes a request; body is marshalled as JSON unless it is a string
// (sent as is) or nil (no body).
func (c caller) send(method, path string, body any) response {
	c.tb.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			c.tb.Fatal(err)
		}
		r = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, c.base+path, r)
	if err != nil {
		c.tb.Fatal(err)
	}
	if r != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	res, err := c.hc.Do(req)
	if err != nil {
		c.tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		c.tb.Fatal(err)
	}
	return response{res.StatusCode, res.Header, b}
}

// must sends and requires the status, decoding the body into out if given.
func (c caller) must(status int, method, path string, body, out any) response {
	c.tb.Helper()
	res := c.send(method, path, body)
	if res.Status != status {
		c.tb.Fatalf("%s %s = %d, want %d: %s", method, path, res.Status, status, truncate(res.Body))
	}
	if out != nil {
		if err := json.Unmarshal(res.Body, out); err != nil {
			c.tb.Fatalf("%s %s: %v", method, path, err)
		}
	}
	return res
}

// wantProblem requires a problem with the status and, if given, a field error.
func wantProblem(tb testing.TB, res response, status int, field string) {
	tb.Helper()
	if res.Status != status {
		tb.Fatalf("status = %d, want %d: %s", res.Status, status, truncate(res.Body))
	}
	var p web.Problem
	want := map[int]string{401: web.EUnauthorized, 403: web.EForbidden, 404: web.ENotFound, 409: web.EConflict,
		413: web.ETooLarge, 415: web.EUnsupported, 422: web.EInvalid}[status]
	if err := json.Unmarshal(res.Body, &p); err != nil || p.Code != want {
		tb.Fatalf("problem = %s, want code %s", res.Body, want)
	}
	if field == "" {
		return
	}
	for _, f := range p.Errors {
		if f.Field == field {
			return
		}
	}
	tb.Fatalf("field errors %+v, want one on %q", p.Errors, field)
}

// walk follows next_cursor from path (which may carry a query) and returns
// every item's id (or slug) in order.
func walk(tb testing.TB, c caller, path, key string) []string {
	tb.Helper()
	var ids []string
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	next := ""
	for pages := 0; ; pages++ {
		if pages > 1000 {
			tb.Fatal("pagination does not end")
		}
		p := path
		if next != "" {
			p += sep + "cursor=" + url.QueryEscape(next)
		}
		var pg struct {
			Items      []map[string]any `json:"items"`
			NextCursor *string          `json:"next_cursor"`
		}
		c.must(http.StatusOK, "GET", p, nil, &pg)
		for _, it := range pg.Items {
			ids = append(ids, it[key].(string))
		}
		if pg.NextCursor == nil {
			return ids
		}
		next = *pg.NextCursor
	}
}

// wantOnce requires every id of want exactly once in got, and nothing else.
func wantOnce(tb testing.TB, got, want []string) {
	tb.Helper()
	seen := map[string]int{}
	for _, id := range got {
		seen[id]++
	}
	for _, id := range want {
		if seen[id] != 1 {
			tb.Errorf("%s listed %d times, want once", id, seen[id])
		}
	}
	if len(got) != len(want) {
		tb.Errorf("listed %d items, want %d", len(got), len(want))
	}
}

// outboxCount counts outbox rows of a type whose ce subject is resource.
func outboxCount(tb testing.TB, s *Store, typ, resource string) int {
	tb.Helper()
	return count(tb, s, `SELECT count(*) FROM outbox WHERE type = $1 AND ce_subject = $2`, typ, resource)
}
