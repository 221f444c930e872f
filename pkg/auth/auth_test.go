package auth_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/localeurope/piazza/pkg/auth"
	"github.com/localeurope/piazza/pkg/web"
)

var (
	admin  = auth.Principal{AccountID: "a", Roles: []string{auth.RoleAdmin}}
	vendor = auth.Principal{AccountID: "v", Roles: []string{auth.RoleVendor}, Cities: []string{"ghent"}}
)

func TestManages(t *testing.T) {
	tests := []struct {
		name string
		p    auth.Principal
		city string
		want bool
	}{
		{"an admin manages a city", admin, "ghent", true},
		{"an admin manages any other city too", admin, "bologna", true},
		{"a manager manages a city listed on the token", ghentManager, "ghent", true},
		{"a manager manages every listed city", ghentManager, "bruges", true},
		{"a manager does not manage an unlisted city", ghentManager, "bologna", false},
		{"a manager with no cities manages none", auth.Principal{Roles: []string{auth.RoleManager}}, "ghent", false},
		{"a vendor manages no city, even one listed on the token", vendor, "ghent", false},
		{"a principal without roles manages nothing", auth.Principal{Cities: []string{"ghent"}}, "ghent", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.Manages(tt.city); got != tt.want {
				t.Errorf("Manages(%q) = %v, want %v", tt.city, got, tt.want)
			}
		})
	}
}

func TestRequire(t *testing.T) {
	anonymous := context.Background()

	t.Run("Require refuses an anonymous request with unauthorized", func(t *testing.T) {
		if _, err := auth.Require(anonymous); web.ErrorCode(err) != web.EUnauthorized {
			t.Errorf("Require = %v, want an %s error", err, web.EUnauthorized)
		}
	})

	t.Run("Require returns the principal of the context", func(t *testing.T) {
		p, err := auth.Require(auth.WithPrincipal(anonymous, ghentManager))
		if err != nil || p.AccountID != ghentManager.AccountID {
			t.Errorf("Require = %+v, %v", p, err)
		}
	})

	tests := []struct {
		name string
		ctx  context.Context
		city string
		code string // "" when allowed
	}{
		{"RequireManager refuses an anonymous request with unauthorized", anonymous, "ghent", web.EUnauthorized},
		{"RequireManager forbids a manager of another city", auth.WithPrincipal(anonymous, ghentManager), "bologna", web.EForbidden},
		{"RequireManager forbids a vendor", auth.WithPrincipal(anonymous, vendor), "ghent", web.EForbidden},
		{"RequireManager allows the city's manager", auth.WithPrincipal(anonymous, ghentManager), "ghent", ""},
		{"RequireManager allows an admin", auth.WithPrincipal(anonymous, admin), "bologna", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := auth.RequireManager(tt.ctx, tt.city)
			if tt.code == "" {
				if err != nil {
					t.Fatalf("RequireManager: %v", err)
				}
				want, _ := auth.FromContext(tt.ctx)
				if p.AccountID != want.AccountID {
					t.Errorf("RequireManager returned %+v, want %+v", p, want)
				}
				return
			}
			if got := web.ErrorCode(err); got != tt.code {
				t.Errorf("RequireManager error = %v (code %s), want code %s", err, got, tt.code)
			}
		})
	}
}

func TestWrap(t *testing.T) {
	key := newKey(t)
	now := time.Now()
	v := verifierAt(now, key)
	good := sign(t, key, ghentManager, now)
	expired := sign(t, key, ghentManager, now.Add(-time.Hour))

	// serve sends a request with the Authorization header (none when empty)
	// through Wrap; next reports what the inner handler saw.
	type seen struct {
		called    bool
		principal auth.Principal
		signedIn  bool
	}
	serve := func(tb testing.TB, authorization string) (*httptest.ResponseRecorder, seen) {
		tb.Helper()
		var s seen
		next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.called = true
			s.principal, s.signedIn = auth.FromContext(r.Context())
			w.WriteHeader(http.StatusNoContent)
		})
		r := httptest.NewRequest(http.MethodGet, "/api/v1/anything", nil)
		if authorization != "" {
			r.Header.Set("Authorization", authorization)
		}
		w := httptest.NewRecorder()
		v.Wrap(next, slog.New(slog.NewTextHandler(io.Discard, nil))).ServeHTTP(w, r)
		return w, s
	}

	t.Run("a request without a token goes on anonymously", func(t *testing.T) {
		w, s := serve(t, "")
		if w.Code != http.StatusNoContent || !s.called || s.signedIn {
			t.Errorf("status %d, handler called %v, signed in %v; want the handler to run anonymously", w.Code, s.called, s.signedIn)
		}
	})

	t.Run("a valid bearer token puts its principal into the context", func(t *testing.T) {
		for _, scheme := range []string{"Bearer", "bearer"} {
			w, s := serve(t, scheme+" "+good)
			if w.Code != http.StatusNoContent || !s.signedIn || s.principal.AccountID != ghentManager.AccountID {
				t.Errorf("%s: status %d, principal %+v (signed in %v)", scheme, w.Code, s.principal, s.signedIn)
			}
		}
	})

	refusals := []struct {
		name, authorization string
		wwwAuthenticate     bool
	}{
		{"another scheme is refused", "Basic dXNlcjpwYXNz", false},
		{"a scheme without a token is refused", "Bearer ", false},
		{"a bare token without a scheme is refused", good, false},
		{"a malformed token is refused and the client told to refresh", "Bearer not-a-token", true},
		{"an expired token is refused and the client told to refresh", "Bearer " + expired, true},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			w, s := serve(t, tt.authorization)
			if s.called {
				t.Error("the inner handler ran")
			}
			if w.Code != http.StatusUnauthorized || w.Header().Get("Content-Type") != "application/problem+json" {
				t.Fatalf("got %d %q, want a 401 problem", w.Code, w.Header().Get("Content-Type"))
			}
			var p web.Problem
			if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || p.Code != web.EUnauthorized || p.Status != http.StatusUnauthorized {
				t.Errorf("body %s (%v), want an unauthorized problem", w.Body, err)
			}
			got := w.Header().Get("WWW-Authenticate")
			if tt.wwwAuthenticate && got != `Bearer error="invalid_token"` {
				t.Errorf("WWW-Authenticate = %q, want the invalid_token challenge", got)
			}
		})
	}
}
