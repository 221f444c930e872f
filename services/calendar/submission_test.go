package calendar

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestSubmissionStatus(t *testing.T) {
	s := startService(t, time.Date(2026, 3, 20, 10, 0, 0, 0, time.UTC))
	c := specClient(t)
	api := s.URL + "/api/v1/calendar"
	submit := func(title string) Submission {
		t.Helper()
		return must[Submission](t, 201)(call(t, c, "POST", api+"/cities/berlin/submissions", nil, map[string]any{
			"title": title, "category": "community", "address": "Oranienstraße 1", "start": "2026-03-24T17:00",
			"end": "2026-03-24T20:00", "submitter_name": "Ada", "submitter_email": "ada@example.org"}))
	}
	status := func(t *testing.T, u string) SubmissionStatus {
		t.Helper()
		st, h, b := call(t, c, "GET", u, nil, nil)
		if st != 200 {
			t.Fatalf("GET %s = %d %s", u, st, b)
		}
		if h.Get("Cache-Control") != "no-store" {
			t.Errorf("status answer Cache-Control %q, want no-store", h.Get("Cache-Control"))
		}
		return must[SubmissionStatus](t, 200)(st, h, b)
	}
	withToken := func(id, token string) string {
		return api + "/submissions/" + id + "?token=" + url.QueryEscape(token)
	}

	repair := submit("Repair café")
	spam := submit("Spam")

	t.Run("the submitter's status link names the submission and carries its token", func(t *testing.T) {
		if repair.StatusURL != withToken(repair.Event.ID, repair.StatusToken) || len(repair.StatusToken) < 32 {
			t.Errorf("status_url %q with token %q", repair.StatusURL, repair.StatusToken)
		}
		if repair.StatusToken == spam.StatusToken {
			t.Error("two submissions got the same token")
		}
	})

	t.Run("a pending submission shows as pending, with no event link", func(t *testing.T) {
		got := status(t, repair.StatusURL)
		if got.ID != repair.Event.ID || got.City != "berlin" || got.Title != "Repair café" || got.State != "pending" ||
			got.Status != "pending_review" || got.EventURL != nil || got.Reason != "" || got.Start != "2026-03-24T17:00" {
			t.Errorf("status = %+v", got)
		}
	})

	t.Run("without the right token there is no such submission", func(t *testing.T) {
		for _, tt := range []struct{ name, url string }{
			{"a wrong token", withToken(repair.Event.ID, "wrong")},
			{"the token of another submission", withToken(repair.Event.ID, spam.StatusToken)},
			{"no token", api + "/submissions/" + repair.Event.ID},
			{"an empty token", withToken(repair.Event.ID, "")},
			{"an unknown id", withToken("0195f000-0000-7000-8000-000000000000", repair.StatusToken)},
			{"a malformed id", withToken("nope", repair.StatusToken)},
		} {
			if st, _, b := call(t, c, "GET", tt.url, nil, nil); st != 404 {
				t.Errorf("%s: %d %s, want 404", tt.name, st, b)
			}
		}
		ev := must[EventView](t, 201)(call(t, c, "POST", api+"/cities/berlin/events", &berlinManager, map[string]any{
			"title": "Manager's own", "category": "civic", "address": "Rathaus", "start": "2026-03-21T18:00", "end": "2026-03-21T19:00"}))
		if st, _, b := call(t, c, "GET", withToken(ev.ID, repair.StatusToken), nil, nil); st != 404 {
			t.Errorf("a manager's event (no token) = %d %s, want 404", st, b)
		}
	})

	t.Run("a rejected submission shows the manager's reason", func(t *testing.T) {
		must[EventView](t, 200)(call(t, c, "POST", api+"/events/"+spam.Event.ID+"/reject", &berlinManager, map[string]any{"reason": "Not an event in Berlin"}))
		got := status(t, spam.StatusURL)
		if got.State != "rejected" || got.Status != "rejected" || got.Reason != "Not an event in Berlin" || got.EventURL != nil {
			t.Errorf("status = %+v", got)
		}
	})

	t.Run("an approved submission links to its public event", func(t *testing.T) {
		must[EventView](t, 200)(call(t, c, "POST", api+"/events/"+repair.Event.ID+"/approve", &berlinManager, map[string]any{}))
		got := status(t, repair.StatusURL)
		if got.State != "approved" || got.Status != "confirmed" || got.EventURL == nil || *got.EventURL != api+"/events/"+repair.Event.ID {
			t.Fatalf("status = %+v", got)
		}
		if ev := must[EventView](t, 200)(call(t, c, "GET", *got.EventURL, nil, nil)); ev.Status != "confirmed" {
			t.Errorf("the event link shows %+v", ev)
		}
	})

	t.Run("an approved event cancelled later says so, with the reason", func(t *testing.T) {
		must[EventView](t, 200)(call(t, c, "PATCH", api+"/events/"+repair.Event.ID, &berlinManager, map[string]any{"status": "cancelled", "reason": "The hall is flooded"}))
		got := status(t, repair.StatusURL)
		if got.State != "approved" || got.Status != "cancelled" || got.Reason != "The hall is flooded" {
			t.Errorf("status = %+v", got)
		}
	})

	t.Run("the token is shown only to the submitter and stored only as a hash", func(t *testing.T) {
		signedIn := must[Submission](t, 201)(call(t, c, "POST", api+"/cities/berlin/submissions", &berlinManager, map[string]any{
			"title": "A manager suggests", "category": "community", "address": "x", "start": "2026-03-26T17:00", "end": "2026-03-26T18:00"}))
		// A signed-in submission with an Idempotency-Key, sent twice (the
		// first answer lost on the way): one event, and the retry gets the
		// same answer, token included, so the submitter can still follow it.
		submitKeyed := func() (*http.Response, []byte) {
			req, _ := http.NewRequest("POST", api+"/cities/berlin/submissions", strings.NewReader(
				`{"title":"Keyed","category":"community","address":"x","start":"2026-03-26T17:00","end":"2026-03-26T18:00"}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Idempotency-Key", "submit-1")
			req.Header.Set("Authorization", "Bearer "+token(t, berlinManager))
			res, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			return res, b
		}
		res, keyedBody := submitKeyed()
		keyed := must[Submission](t, 201)(res.StatusCode, res.Header, keyedBody)
		res, again := submitKeyed()
		retried := must[Submission](t, 201)(res.StatusCode, res.Header, again)
		if retried.Event.ID != keyed.Event.ID || retried.StatusToken != keyed.StatusToken {
			t.Errorf("the retry made event %s (token equal: %v), want the first one, %s",
				retried.Event.ID, retried.StatusToken == keyed.StatusToken, keyed.Event.ID)
		}
		var keyedEvents int
		if err := s.Pool.QueryRow(t.Context(), `SELECT count(*) FROM events WHERE title = 'Keyed'`).Scan(&keyedEvents); err != nil || keyedEvents != 1 {
			t.Errorf("%d events after a retried submission (%v), want 1", keyedEvents, err)
		}

		var bodies []string
		for _, u := range []string{ // anyone's
			api + "/cities/berlin/events?from=2026-03-20&to=2026-03-31",
			api + "/cities/berlin/calendar.ics",
			api + "/cities/berlin/feed.atom",
			api + "/events/" + repair.Event.ID,
			repair.StatusURL, // the status itself does not echo the token
		} {
			resp, err := http.Get(u)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			bodies = append(bodies, strings.SplitN(u, "?token=", 2)[0]+"\n"+string(b))
		}
		for _, u := range []string{ // the managers'
			api + "/cities/berlin/moderation",
			api + "/events/" + signedIn.Event.ID,
			api + "/events/" + keyed.Event.ID,
		} {
			_, _, b := call(t, c, "GET", u, &berlinManager, nil)
			bodies = append(bodies, strings.SplitN(u, "?token=", 2)[0]+"\n"+string(b))
		}
		_, _, b := call(t, c, "GET", api+"/events/"+signedIn.Event.ID+"?token="+url.QueryEscape(signedIn.StatusToken), nil, nil)
		bodies = append(bodies, "the submitter's view of the event\n"+string(b))
		for _, body := range bodies {
			for _, tok := range []string{repair.StatusToken, spam.StatusToken, signedIn.StatusToken, keyed.StatusToken} {
				if strings.Contains(body, tok) {
					t.Errorf("a status token shows in %s", body[:strings.IndexByte(body, '\n')])
				}
			}
			if strings.Contains(body, "status_token") {
				t.Errorf("a status_token field shows in %s", body[:strings.IndexByte(body, '\n')])
			}
		}

		var plain int
		if err := s.Pool.QueryRow(t.Context(), `SELECT count(*) FROM events WHERE status_token = $1::bytea`,
			[]byte(keyed.StatusToken)).Scan(&plain); err != nil || plain != 0 {
			t.Errorf("%d events store the token itself (%v), want only its hash", plain, err)
		}
		if !bytes.Contains(keyedBody, []byte(keyed.StatusToken)) {
			t.Error("the submission's own answer lacks its token")
		}
	})
}
