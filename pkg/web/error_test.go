package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/localeurope/piazza/pkg/web"
)

func TestWriteError(t *testing.T) {
	t.Run("an *Error is written as problem+json with its status, code, field errors and request id", func(t *testing.T) {
		log := &logBuffer{}
		h := web.Middleware{Log: log.logger()}.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var f web.Fields
			f.Add("pitch", "must be at most %d characters", 16)
			web.WriteError(w, r, log.logger(), fmt.Errorf("listings: register stall: %w", f.Err()))
		}))
		rec := serve(h, httptest.NewRequest(http.MethodPost, "/api/v1/stalls", nil))

		if rec.Code != http.StatusUnprocessableEntity {
			t.Errorf("status = %d, want 422", rec.Code)
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
			t.Errorf("Content-Type = %q", ct)
		}
		p := problem(t, rec)
		if p.Code != web.EInvalid || p.Status != 422 || p.Instance != "/api/v1/stalls" || p.Title != "Unprocessable Entity" ||
			p.Type != "https://piazza.example/problems/invalid" || p.Detail != "the request has invalid fields" {
			t.Errorf("problem = %+v", p)
		}
		if len(p.Errors) != 1 || p.Errors[0] != (web.FieldError{Field: "pitch", Message: "must be at most 16 characters"}) {
			t.Errorf("errors = %+v", p.Errors)
		}
		if id := rec.Header().Get("X-Request-ID"); id == "" || p.RequestID != id {
			t.Errorf("request_id = %q, X-Request-ID = %q; want the same id", p.RequestID, id)
		}
	})

	t.Run("an error without a code is a bare 500 that keeps its text from the client", func(t *testing.T) {
		log := &logBuffer{}
		secret := `pq: relation "stalls" violates constraint at 10.0.3.7:5432`
		req := httptest.NewRequest(http.MethodGet, "/api/v1/stalls/7", nil)
		rec := httptest.NewRecorder()
		web.WriteError(rec, req, log.logger(), errors.New(secret))

		if rec.Code != http.StatusInternalServerError {
			t.Errorf("status = %d, want 500", rec.Code)
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
			t.Errorf("Content-Type = %q", ct)
		}
		if body := rec.Body.String(); strings.Contains(body, "pq:") || strings.Contains(body, "10.0.3.7") {
			t.Errorf("the body reveals the error: %s", body)
		}
		if p := problem(t, rec); p.Code != web.EInternal || p.Detail == "" {
			t.Errorf("problem = %+v, want code internal with a generic detail", p)
		}
		if !strings.Contains(log.String(), "10.0.3.7") {
			t.Errorf("the error was not logged for an operator: %s", log.String())
		}
	})

	t.Run("unavailable and rate limited ask the client to retry", func(t *testing.T) {
		for _, code := range []string{web.EUnavailable, web.ETooMany} {
			rec := httptest.NewRecorder()
			web.WriteError(rec, httptest.NewRequest(http.MethodGet, "/", nil), (&logBuffer{}).logger(), web.Errorf(code, "slow down"))
			if rec.Header().Get("Retry-After") == "" {
				t.Errorf("%s: no Retry-After", code)
			}
		}
	})
}

func TestStatus(t *testing.T) {
	for code, status := range map[string]int{
		web.EInvalid: 422, web.ENotFound: 404, web.EConflict: 409, web.EUnauthorized: 401, web.EForbidden: 403,
		web.ETooLarge: 413, web.EUnsupported: 415, web.ETooMany: 429, web.EUnavailable: 503, web.EInternal: 500,
		"something new": 500,
	} {
		if got := web.Status(code); got != status {
			t.Errorf("Status(%q) = %d, want %d", code, got, status)
		}
	}
}

func TestErrors(t *testing.T) {
	t.Run("no field errors is no error", func(t *testing.T) {
		var f web.Fields
		if err := f.Err(); err != nil {
			t.Errorf("Err() = %v, want nil", err)
		}
	})
	t.Run("ErrorCode finds a wrapped *Error and defaults to internal", func(t *testing.T) {
		if c := web.ErrorCode(fmt.Errorf("x: %w", web.Errorf(web.ENotFound, "no stall %d", 7))); c != web.ENotFound {
			t.Errorf("code = %q", c)
		}
		if c := web.ErrorCode(errors.New("boom")); c != web.EInternal {
			t.Errorf("code = %q", c)
		}
	})
}

func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

func problem(tb testing.TB, rec *httptest.ResponseRecorder) web.Problem {
	tb.Helper()
	var p web.Problem
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		tb.Fatalf("body %q is not a problem: %v", rec.Body.String(), err)
	}
	return p
}

// logBuffer collects log output from any goroutine.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func TestWriteErrorCancelledByClient(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := httptest.NewRequest("GET", "/x", nil).WithContext(ctx)
	w := httptest.NewRecorder()
	web.WriteError(w, r, slog.New(slog.DiscardHandler), fmt.Errorf("query: %w", context.Canceled))
	if w.Code != 499 || w.Body.Len() != 0 {
		t.Fatalf("a request its client abandoned got %d %q, want 499 and no body", w.Code, w.Body.String())
	}

	// The same error while the client is still there is our failure.
	w = httptest.NewRecorder()
	web.WriteError(w, httptest.NewRequest("GET", "/x", nil), slog.New(slog.DiscardHandler), context.Canceled)
	if w.Code != 500 {
		t.Fatalf("got %d, want 500", w.Code)
	}
}
