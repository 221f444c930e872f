package calendar

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"
)

func TestRetriesAndLimits(t *testing.T) {
	s := startService(t, time.Date(2026, 3, 20, 10, 0, 0, 0, time.UTC))
	c := specClient(t)
	api := s.URL + "/api/v1/calendar"
	post := func(path, key string, token string, body any) (int, http.Header, []byte) {
		t.Helper()
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest("POST", api+path, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		out, _ := io.ReadAll(res.Body)
		return res.StatusCode, res.Header, out
	}
	event := func(title string) map[string]any {
		return map[string]any{"title": title, "category": "music", "address": "Rathaus",
			"start": "2026-03-27T18:00", "end": "2026-03-27T20:00"}
	}

	t.Run("a manager's retried create replays the first answer and creates one event", func(t *testing.T) {
		tok := token(t, berlinManager)
		st1, _, b1 := post("/cities/berlin/events", "create-1", tok, event("Concert"))
		st2, h2, b2 := post("/cities/berlin/events", "create-1", tok, event("Concert"))
		if st1 != 201 || st2 != 201 || !bytes.Equal(b1, b2) || h2.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("first %d, retry %d (replayed %q); bodies equal: %v", st1, st2, h2.Get("Idempotent-Replayed"), bytes.Equal(b1, b2))
		}
		if st, _, _ := post("/cities/berlin/events", "create-1", tok, event("Another concert")); st != 422 {
			t.Fatalf("the same key with another body = %d, want 422", st)
		}
		var n int
		if err := s.Pool.QueryRow(t.Context(), `SELECT count(*) FROM events WHERE title = 'Concert'`).Scan(&n); err != nil || n != 1 {
			t.Fatalf("%d events titled Concert (%v), want 1", n, err)
		}
	})
	t.Run("anonymous submissions are limited per address; managers are not", func(t *testing.T) {
		sub := func(i int) map[string]any {
			e := event("Submission")
			e["submitter_name"], e["submitter_email"] = "Ada", "ada@example.org"
			return e
		}
		for i := range 5 {
			if st, _, b := post("/cities/berlin/submissions", "", "", sub(i)); st != 201 {
				t.Fatalf("submission %d = %d %s", i+1, st, b)
			}
		}
		if st, h, _ := post("/cities/berlin/submissions", "", "", sub(6)); st != 429 || h.Get("Retry-After") == "" {
			t.Fatalf("sixth submission = %d (Retry-After %q), want 429", st, h.Get("Retry-After"))
		}
		if st, _, b := post("/cities/berlin/submissions", "", token(t, berlinManager), sub(7)); st != 201 {
			t.Fatalf("a manager's submission = %d %s, want 201", st, b)
		}
	})
}
