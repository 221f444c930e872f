package accounts

import (
	"bytes"
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/localeurope/piazza/pkg/auth"
	"github.com/localeurope/piazza/pkg/web"
)

func TestSignUp(t *testing.T) {
	e := startService(t, envOptions{})

	t.Run("a sign-up creates a vendor and returns tokens that work", func(t *testing.T) {
		tok := e.signUp(t, "Vera@Example.org", "Vera Vendor")
		if tok.AccessToken == "" || tok.RefreshToken == "" || tok.TokenType != "Bearer" {
			t.Fatalf("tokens %+v", tok)
		}
		if !tok.ExpiresAt.Equal(e.Clock.Now().Add(auth.AccessTTL)) || !tok.RefreshExpiresAt.Equal(e.Clock.Now().Add(RefreshTTL)) {
			t.Errorf("expiries %v and %v, want now+%v and now+%v", tok.ExpiresAt, tok.RefreshExpiresAt, auth.AccessTTL, RefreshTTL)
		}
		a := tok.Account
		if !isUUID(a.ID) || a.Email != "Vera@Example.org" || a.Name != "Vera Vendor" ||
			!slices.Equal(a.Roles, []string{auth.RoleVendor}) || a.Cities == nil || len(a.Cities) != 0 {
			t.Errorf("account %+v, want a new vendor without cities", a)
		}
		p := e.principal(t, tok.AccessToken)
		if p.AccountID != a.ID || p.Email != a.Email || !slices.Equal(p.Roles, []string{auth.RoleVendor}) {
			t.Errorf("access token principal %+v, want the new account", p)
		}
		me := decode[Account](t, e.me(t, tok.AccessToken), http.StatusOK)
		if me.ID != a.ID || me.Email != a.Email {
			t.Errorf("GET /me = %+v, want %+v", me, a)
		}
	})

	t.Run("an email already registered, in any case, is a conflict on the email field", func(t *testing.T) {
		e.signUp(t, "twice@example.org", "First")
		for _, email := range []string{"twice@example.org", "TWICE@example.ORG", "  Twice@Example.org "} {
			r := e.post(t, "/api/v1/accounts/signup", SignUp{Email: email, Password: password, Name: "Second"})
			p := problem(t, r, http.StatusConflict)
			if p.Code != web.EConflict || !slices.Equal(fields(p), []string{"email"}) {
				t.Errorf("%q: problem %+v, want a conflict on email", email, p)
			}
		}
	})

	t.Run("invalid fields are reported each by name", func(t *testing.T) {
		e.restLimiters()
		tests := []struct {
			name string
			in   SignUp
			want []string
		}{
			{"not an email", SignUp{Email: "vera.example.org", Password: password, Name: "Vera"}, []string{"email"}},
			{"an email without a dot in the domain", SignUp{Email: "vera@localhost", Password: password, Name: "Vera"}, []string{"email"}},
			{"an email with a display name", SignUp{Email: "Vera <vera@example.org>", Password: password, Name: "Vera"}, []string{"email"}},
			{"a short password", SignUp{Email: "vera@example.org", Password: "123456789", Name: "Vera"}, []string{"password"}},
			{"a password over 200 characters", SignUp{Email: "vera@example.org", Password: strings.Repeat("p", 201), Name: "Vera"}, []string{"password"}},
			{"a name over 120 characters", SignUp{Email: "vera@example.org", Password: password, Name: strings.Repeat("n", 121)}, []string{"name"}},
			{"a blank name", SignUp{Email: "vera@example.org", Password: password, Name: "   "}, []string{"name"}},
			{"everything wrong at once", SignUp{}, []string{"email", "password", "name"}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				p := problem(t, e.post(t, "/api/v1/accounts/signup", tt.in), http.StatusUnprocessableEntity)
				if p.Code != web.EInvalid || !slices.Equal(fields(p), tt.want) {
					t.Errorf("field errors %v (%+v), want %v", fields(p), p.Errors, tt.want)
				}
			})
		}
		if n, err := e.Store.Count(context.Background()); err != nil || n != 2 {
			t.Errorf("%d accounts (%v), want only the 2 valid sign-ups", n, err)
		}
	})

	t.Run("sign-ups from one address are rate limited", func(t *testing.T) {
		e.restLimiters()
		// Refused sign-ups count too, and cost no password hash.
		for i := range 10 {
			if r := e.post(t, "/api/v1/accounts/signup", SignUp{}); r.Status != http.StatusUnprocessableEntity {
				t.Fatalf("sign-up %d: status %d, want 422", i+1, r.Status)
			}
		}
		r := e.post(t, "/api/v1/accounts/signup", SignUp{Email: "late@example.org", Password: password, Name: "Late"})
		if p := problem(t, r, http.StatusTooManyRequests); p.Code != web.ETooMany || r.Header.Get("Retry-After") == "" {
			t.Errorf("problem %+v, Retry-After %q", p, r.Header.Get("Retry-After"))
		}
		e.restLimiters()
		e.signUp(t, "late@example.org", "Late")
	})
}

func TestConcurrentSignUpsOfOneEmail(t *testing.T) {
	e := startService(t, envOptions{})
	const n = 10 // the sign-up burst of one address
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			email := "rush@example.org"
			if i%2 == 1 {
				email = "Rush@Example.org"
			}
			body := `{"email":"` + email + `","password":"` + password + `","name":"Rush"}`
			res, err := http.Post(e.URL+"/api/v1/accounts/signup", "application/json", strings.NewReader(body))
			if err != nil {
				t.Error(err) // not Fatal: this is not the test's goroutine
				return
			}
			res.Body.Close()
			statuses[i] = res.StatusCode
		})
	}
	wg.Wait()
	created, conflicts := 0, 0
	for _, s := range statuses {
		switch s {
		case http.StatusCreated:
			created++
		case http.StatusConflict:
			conflicts++
		}
	}
	if created != 1 || conflicts != n-1 {
		t.Errorf("statuses %v: want exactly one 201 and %d 409s", statuses, n-1)
	}
	if c, err := e.Store.Count(context.Background()); err != nil || c != 1 {
		t.Errorf("%d accounts (%v), want 1", c, err)
	}
}

func TestSignIn(t *testing.T) {
	e := startService(t, envOptions{})
	vera := e.signUp(t, "vera@example.org", "Vera").Account

	t.Run("the right password signs in", func(t *testing.T) {
		tok := e.signIn(t, "vera@example.org", password)
		if tok.Account.ID != vera.ID || e.principal(t, tok.AccessToken).AccountID != vera.ID {
			t.Errorf("signed in as %+v, want %s", tok.Account, vera.ID)
		}
		if r := e.me(t, tok.AccessToken); r.Status != http.StatusOK {
			t.Errorf("GET /me: %d %s", r.Status, r.Body)
		}
	})

	t.Run("the email matches in any case and with surrounding spaces", func(t *testing.T) {
		if tok := e.signIn(t, "  VERA@example.org ", password); tok.Account.ID != vera.ID {
			t.Errorf("signed in as %s, want %s", tok.Account.ID, vera.ID)
		}
	})

	t.Run("a wrong password and an unknown email get the same 401", func(t *testing.T) {
		wrong := problem(t, e.post(t, "/api/v1/accounts/signin", SignIn{Email: "vera@example.org", Password: "not the password"}), http.StatusUnauthorized)
		unknown := problem(t, e.post(t, "/api/v1/accounts/signin", SignIn{Email: "nobody@example.org", Password: password}), http.StatusUnauthorized)
		if wrong.RequestID == "" {
			t.Error("the problem has no request id")
		}
		wrong.RequestID, unknown.RequestID = "", ""
		if wrong.Code != web.EUnauthorized || wrong.Type != unknown.Type || wrong.Title != unknown.Title ||
			wrong.Detail != unknown.Detail || wrong.Code != unknown.Code || len(wrong.Errors)+len(unknown.Errors) != 0 {
			t.Errorf("wrong password: %+v\nunknown email: %+v\nwant the same problem", wrong, unknown)
		}
	})

	t.Run("missing credentials are field errors", func(t *testing.T) {
		p := problem(t, e.post(t, "/api/v1/accounts/signin", SignIn{}), http.StatusUnprocessableEntity)
		if !slices.Equal(fields(p), []string{"email", "password"}) {
			t.Errorf("field errors %v, want email and password", fields(p))
		}
	})

	t.Run("repeated wrong passwords for one email are rate limited", func(t *testing.T) {
		e.restLimiters()
		wrongPassword := SignIn{Email: "vera@example.org", Password: "guess guess guess"}
		for i := range 5 {
			if r := e.post(t, "/api/v1/accounts/signin", wrongPassword); r.Status != http.StatusUnauthorized {
				t.Fatalf("attempt %d: status %d, want 401", i+1, r.Status)
			}
		}
		// The email's limit holds in any case, and for the right password too.
		for _, in := range []SignIn{wrongPassword, {Email: "VERA@example.org", Password: password}} {
			r := e.post(t, "/api/v1/accounts/signin", in)
			if p := problem(t, r, http.StatusTooManyRequests); p.Code != web.ETooMany {
				t.Errorf("problem %+v, want rate_limited", p)
			}
			if r.Header.Get("Retry-After") == "" {
				t.Error("a 429 without Retry-After")
			}
		}
		// Another email from the same address is not limited yet.
		e.signUp(t, "other@example.org", "Other")
		e.signIn(t, "other@example.org", password)

		e.restLimiters()
		e.signIn(t, "vera@example.org", password)
	})

	t.Run("sign-ins from one address are rate limited across emails", func(t *testing.T) {
		e.restLimiters()
		for i := range 10 {
			r := e.post(t, "/api/v1/accounts/signin", SignIn{Email: "nobody" + string(rune('a'+i)) + "@example.org", Password: password})
			if r.Status != http.StatusUnauthorized {
				t.Fatalf("attempt %d: status %d, want 401", i+1, r.Status)
			}
		}
		problem(t, e.post(t, "/api/v1/accounts/signin", SignIn{Email: "vera@example.org", Password: password}), http.StatusTooManyRequests)
	})
}

func TestRefresh(t *testing.T) {
	e := startService(t, envOptions{})
	e.signUp(t, "rita@example.org", "Rita")

	t.Run("refresh rotates: the new token works, the old one is refused", func(t *testing.T) {
		e.restLimiters() // each case signs in afresh
		first := e.signIn(t, "rita@example.org", password)
		e.Clock.Advance(time.Minute)
		second := decode[Tokens](t, e.refresh(t, first.RefreshToken), http.StatusOK)
		if second.RefreshToken == first.RefreshToken || second.AccessToken == first.AccessToken {
			t.Fatal("refresh returned the same tokens")
		}
		if second.Account.ID != first.Account.ID || e.principal(t, second.AccessToken).AccountID != first.Account.ID {
			t.Errorf("refreshed account %+v, want %s", second.Account, first.Account.ID)
		}
		if !second.ExpiresAt.Equal(e.Clock.Now().Add(auth.AccessTTL)) {
			t.Errorf("new access token expires at %v, want %v", second.ExpiresAt, e.Clock.Now().Add(auth.AccessTTL))
		}
		if r := e.me(t, second.AccessToken); r.Status != http.StatusOK {
			t.Errorf("GET /me with the refreshed access token: %d", r.Status)
		}
		third := decode[Tokens](t, e.refresh(t, second.RefreshToken), http.StatusOK)
		if third.RefreshToken == second.RefreshToken {
			t.Error("the second refresh returned the same refresh token")
		}
		problem(t, e.refresh(t, first.RefreshToken), http.StatusUnauthorized)
	})

	t.Run("reusing a rotated token revokes its whole family, and only that family", func(t *testing.T) {
		e.restLimiters() // each case signs in afresh
		stolen := e.signIn(t, "rita@example.org", password)
		otherDevice := e.signIn(t, "rita@example.org", password)
		newest := decode[Tokens](t, e.refresh(t, stolen.RefreshToken), http.StatusOK) // the thief refreshes first

		// Too late to be two tabs racing: the owner's copy is reused.
		e.Clock.Advance(RefreshReuseGrace)
		p := problem(t, e.refresh(t, stolen.RefreshToken), http.StatusUnauthorized) // the owner's copy is now reused
		if p.Code != web.EUnauthorized {
			t.Errorf("problem %+v", p)
		}
		problem(t, e.refresh(t, newest.RefreshToken), http.StatusUnauthorized)
		decode[Tokens](t, e.refresh(t, otherDevice.RefreshToken), http.StatusOK)
	})

	t.Run("two tabs refreshing with one token at once both stay signed in, with one successor", func(t *testing.T) {
		e.restLimiters() // each case signs in afresh
		tok := e.signIn(t, "rita@example.org", password)
		const tabs = 20
		got := make([]response, tabs)
		var wg sync.WaitGroup
		for i := range tabs {
			wg.Go(func() { got[i] = e.refresh(t, tok.RefreshToken) })
		}
		wg.Wait()
		var successor string
		for i, r := range got {
			tt := decode[Tokens](t, r, http.StatusOK)
			if successor == "" {
				successor = tt.RefreshToken
			}
			if tt.RefreshToken != successor || tt.RefreshToken == tok.RefreshToken {
				t.Errorf("tab %d got refresh token %q, want the one successor %q", i, tt.RefreshToken, successor)
			}
			if e.principal(t, tt.AccessToken).AccountID != tok.Account.ID {
				t.Errorf("tab %d got an access token for another account", i)
			}
		}
		e.Clock.Advance(10 * time.Second) // a reload presents the old token again, still within the window
		again := decode[Tokens](t, e.refresh(t, tok.RefreshToken), http.StatusOK)
		if again.RefreshToken != successor {
			t.Errorf("presented again within the window: a new successor %q, want %q", again.RefreshToken, successor)
		}
		next := decode[Tokens](t, e.refresh(t, successor), http.StatusOK)
		decode[Tokens](t, e.refresh(t, next.RefreshToken), http.StatusOK)
	})

	t.Run("a token presented again after the grace window signs out its family", func(t *testing.T) {
		e.restLimiters() // each case signs in afresh
		tok := e.signIn(t, "rita@example.org", password)
		next := decode[Tokens](t, e.refresh(t, tok.RefreshToken), http.StatusOK)
		e.Clock.Advance(RefreshReuseGrace)
		problem(t, e.refresh(t, tok.RefreshToken), http.StatusUnauthorized)
		problem(t, e.refresh(t, next.RefreshToken), http.StatusUnauthorized)
	})

	t.Run("reuse deep in a family revokes the newest token", func(t *testing.T) {
		e.restLimiters() // each case signs in afresh
		tok := e.signIn(t, "rita@example.org", password)
		chain := []string{tok.RefreshToken}
		for range 3 {
			chain = append(chain, decode[Tokens](t, e.refresh(t, chain[len(chain)-1]), http.StatusOK).RefreshToken)
		}
		problem(t, e.refresh(t, chain[1]), http.StatusUnauthorized)
		problem(t, e.refresh(t, chain[len(chain)-1]), http.StatusUnauthorized)
	})

	t.Run("sign-out revokes the session's refresh token", func(t *testing.T) {
		e.restLimiters() // each case signs in afresh
		tok := e.signIn(t, "rita@example.org", password)
		other := e.signIn(t, "rita@example.org", password)
		rotated := decode[Tokens](t, e.refresh(t, tok.RefreshToken), http.StatusOK)
		if r := e.post(t, "/api/v1/accounts/signout", Refresh{RefreshToken: rotated.RefreshToken}); r.Status != http.StatusNoContent {
			t.Fatalf("sign-out: %d %s", r.Status, r.Body)
		}
		problem(t, e.refresh(t, rotated.RefreshToken), http.StatusUnauthorized)
		decode[Tokens](t, e.refresh(t, other.RefreshToken), http.StatusOK)
	})

	t.Run("signing out with an unknown token reveals nothing", func(t *testing.T) {
		r := e.post(t, "/api/v1/accounts/signout", Refresh{RefreshToken: strings.Repeat("x", 43)})
		if r.Status != http.StatusNoContent {
			t.Errorf("status %d, want 204", r.Status)
		}
	})

	t.Run("an unknown refresh token is refused", func(t *testing.T) {
		problem(t, e.refresh(t, strings.Repeat("x", 43)), http.StatusUnauthorized)
	})

	t.Run("a refresh token of the wrong shape is a field error", func(t *testing.T) {
		p := problem(t, e.refresh(t, "short"), http.StatusUnprocessableEntity)
		if !slices.Equal(fields(p), []string{"refresh_token"}) {
			t.Errorf("field errors %v", fields(p))
		}
	})

	t.Run("an expired refresh token is refused", func(t *testing.T) {
		e.restLimiters()
		tok := e.signIn(t, "rita@example.org", password)
		e.Clock.Advance(RefreshTTL + time.Minute)
		problem(t, e.refresh(t, tok.RefreshToken), http.StatusUnauthorized)
	})
}

func TestRoles(t *testing.T) {
	e := startService(t, envOptions{demo: true})
	adminToken := e.signIn(t, "admin@piazza.example", DemoPassword).AccessToken
	vendor := e.signUp(t, "farmer@example.org", "Fran Farmer")
	path := "/api/v1/accounts/" + vendor.Account.ID + "/roles"
	makeManager := Roles{Roles: []string{auth.RoleManager, auth.RoleVendor}, Cities: []string{"ghent"}}

	t.Run("an anonymous request is unauthorized", func(t *testing.T) {
		problem(t, e.call(t, http.MethodPut, path, "", makeManager), http.StatusUnauthorized)
	})

	t.Run("a vendor may not change roles, not even their own", func(t *testing.T) {
		p := problem(t, e.call(t, http.MethodPut, path, vendor.AccessToken, makeManager), http.StatusForbidden)
		if p.Code != web.EForbidden {
			t.Errorf("problem %+v", p)
		}
	})

	t.Run("a city's manager may not change roles", func(t *testing.T) {
		manager := e.signIn(t, "manager.ghent@piazza.example", DemoPassword)
		problem(t, e.call(t, http.MethodPut, path, manager.AccessToken, makeManager), http.StatusForbidden)
	})

	t.Run("an admin changes roles, and the next tokens carry them", func(t *testing.T) {
		a := decode[Account](t, e.call(t, http.MethodPut, path, adminToken, makeManager), http.StatusOK)
		if !slices.Equal(a.Roles, makeManager.Roles) || !slices.Equal(a.Cities, makeManager.Cities) {
			t.Errorf("account %+v after the change", a)
		}

		signedIn := e.principal(t, e.signIn(t, "farmer@example.org", password).AccessToken)
		if !slices.Equal(signedIn.Roles, makeManager.Roles) || !slices.Equal(signedIn.Cities, []string{"ghent"}) ||
			!signedIn.Manages("ghent") || signedIn.Manages("bologna") {
			t.Errorf("next sign-in's principal %+v, want a manager of ghent", signedIn)
		}
		refreshed := decode[Tokens](t, e.refresh(t, vendor.RefreshToken), http.StatusOK)
		if p := e.principal(t, refreshed.AccessToken); !p.Manages("ghent") {
			t.Errorf("a refreshed token's principal %+v does not manage ghent", p)
		}
		if me := decode[Account](t, e.me(t, refreshed.AccessToken), http.StatusOK); !slices.Equal(me.Cities, []string{"ghent"}) {
			t.Errorf("GET /me = %+v", me)
		}
	})

	t.Run("roles without cities store an empty list", func(t *testing.T) {
		r := e.call(t, http.MethodPut, path, adminToken, rawBody{"application/json", []byte(`{"roles":["vendor"]}`)})
		a := decode[Account](t, r, http.StatusOK)
		if a.Cities == nil || len(a.Cities) != 0 || !bytes.Contains(r.Body, []byte(`"cities":[]`)) {
			t.Errorf("body %s, want an empty cities list", r.Body)
		}
	})

	t.Run("an unknown account is not found", func(t *testing.T) {
		for _, id := range []string{"0196a1b2-0000-7000-8000-000000000000", "not-a-uuid"} {
			p := problem(t, e.call(t, http.MethodPut, "/api/v1/accounts/"+id+"/roles", adminToken, makeManager), http.StatusNotFound)
			if p.Code != web.ENotFound {
				t.Errorf("%s: problem %+v", id, p)
			}
		}
	})

	t.Run("invalid roles and cities are field errors", func(t *testing.T) {
		tests := []struct {
			name string
			in   Roles
			want []string
		}{
			{"no roles", Roles{}, []string{"roles"}},
			{"an unknown role", Roles{Roles: []string{"king"}}, []string{"roles"}},
			{"a city that is not a slug", Roles{Roles: []string{auth.RoleManager}, Cities: []string{"Ghent"}}, []string{"cities"}},
			{"an empty city", Roles{Roles: []string{auth.RoleManager}, Cities: []string{""}}, []string{"cities"}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				p := problem(t, e.call(t, http.MethodPut, path, adminToken, tt.in), http.StatusUnprocessableEntity)
				if !slices.Equal(fields(p), tt.want) {
					t.Errorf("field errors %v, want %v", fields(p), tt.want)
				}
			})
		}
	})
}

func TestMe(t *testing.T) {
	e := startService(t, envOptions{})

	t.Run("an anonymous request is unauthorized", func(t *testing.T) {
		problem(t, e.me(t, ""), http.StatusUnauthorized)
	})

	t.Run("an expired access token is refused, and refreshing gets a working one", func(t *testing.T) {
		tok := e.signUp(t, "eve@example.org", "Eve")
		e.Clock.Advance(auth.AccessTTL + time.Minute)
		r := e.me(t, tok.AccessToken)
		problem(t, r, http.StatusUnauthorized)
		if r.Header.Get("WWW-Authenticate") == "" {
			t.Error("an expired token's 401 has no WWW-Authenticate challenge")
		}
		fresh := decode[Tokens](t, e.refresh(t, tok.RefreshToken), http.StatusOK)
		decode[Account](t, e.me(t, fresh.AccessToken), http.StatusOK)
	})
}

func TestRequestBodies(t *testing.T) {
	e := startService(t, envOptions{demo: true})
	adminToken := e.signIn(t, "admin@piazza.example", DemoPassword).AccessToken
	rolesPath := "/api/v1/accounts/" + e.signUp(t, "body@example.org", "Body").Account.ID + "/roles"
	oversized := jsonBody(`{"email":"` + strings.Repeat("a", web.MaxBodyBytes) + `"}`)
	validSignUp := `{"email":"x@example.org","password":"a long enough passphrase","name":"X"}`

	tests := []struct {
		name         string
		method, path string
		token        string
		body         rawBody
		status       int
	}{
		{"sign-up with a text/plain body", "POST", "/api/v1/accounts/signup", "", rawBody{"text/plain", []byte(validSignUp)}, 415},
		{"sign-up with a form body", "POST", "/api/v1/accounts/signup", "", rawBody{"application/x-www-form-urlencoded", []byte("email=x")}, 415},
		{"sign-up with a malformed content type", "POST", "/api/v1/accounts/signup", "", rawBody{"application/", []byte(validSignUp)}, 415},
		{"sign-up with truncated JSON", "POST", "/api/v1/accounts/signup", "", jsonBody(`{"email":`), 422},
		{"sign-up with something that is not JSON", "POST", "/api/v1/accounts/signup", "", jsonBody(`email=x`), 422},
		{"sign-up with an empty body", "POST", "/api/v1/accounts/signup", "", jsonBody(``), 422},
		{"sign-up with null", "POST", "/api/v1/accounts/signup", "", jsonBody(`null`), 422},
		{"sign-up with an array", "POST", "/api/v1/accounts/signup", "", jsonBody(`[]`), 422},
		{"sign-up with a number for the email", "POST", "/api/v1/accounts/signup", "", jsonBody(`{"email":5}`), 422},
		{"sign-up with an unknown field", "POST", "/api/v1/accounts/signup", "", jsonBody(`{"email":"x@example.org","admin":true}`), 422},
		{"sign-up with two JSON values", "POST", "/api/v1/accounts/signup", "", jsonBody(validSignUp + validSignUp), 422},
		{"sign-up with a NUL in the name", "POST", "/api/v1/accounts/signup", "", jsonBody(`{"email":"x@example.org","password":"a long enough passphrase","name":"X\u0000"}`), 422},
		{"sign-up over the size limit", "POST", "/api/v1/accounts/signup", "", oversized, 413},
		{"sign-in with malformed JSON", "POST", "/api/v1/accounts/signin", "", jsonBody(`{`), 422},
		{"sign-in over the size limit", "POST", "/api/v1/accounts/signin", "", oversized, 413},
		{"sign-in with a text/plain body", "POST", "/api/v1/accounts/signin", "", rawBody{"text/plain", []byte(`{}`)}, 415},
		{"sign-in with a huge password", "POST", "/api/v1/accounts/signin", "", jsonBody(`{"email":"x@example.org","password":"` + strings.Repeat("p", 1000) + `"}`), 422},
		{"refresh with a number for the token", "POST", "/api/v1/accounts/refresh", "", jsonBody(`{"refresh_token":5}`), 422},
		{"refresh over the size limit", "POST", "/api/v1/accounts/refresh", "", oversized, 413},
		{"sign-out with malformed JSON", "POST", "/api/v1/accounts/signout", "", jsonBody(`}`), 422},
		{"roles with malformed JSON", "PUT", rolesPath, adminToken, jsonBody(`{"roles":`), 422},
		{"roles with a string for the list", "PUT", rolesPath, adminToken, jsonBody(`{"roles":"admin"}`), 422},
		{"roles with a text/plain body", "PUT", rolesPath, adminToken, rawBody{"text/plain", []byte(`{"roles":["vendor"]}`)}, 415},
		{"roles over the size limit", "PUT", rolesPath, adminToken, oversized, 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.Clock.Advance(6 * time.Second) // one more sign-up or sign-in from this address
			p := problem(t, e.call(t, tt.method, tt.path, tt.token, tt.body), tt.status)
			if p.Detail == "" || p.Code == web.EInternal {
				t.Errorf("problem %+v", p)
			}
		})
	}
	if n, err := e.Store.Count(context.Background()); err != nil || n != 5 {
		t.Errorf("%d accounts (%v), want the 4 demo accounts and one sign-up", n, err)
	}
}

func TestDemoAccounts(t *testing.T) {
	first := startService(t, envOptions{demo: true})

	t.Run("the first start seeds four accounts and prints them", func(t *testing.T) {
		if n, err := first.Store.Count(context.Background()); err != nil || n != 4 {
			t.Fatalf("%d accounts (%v), want 4", n, err)
		}
		if !strings.Contains(first.Stdout, DemoPassword) || !strings.Contains(first.Stdout, "admin@piazza.example") {
			t.Errorf("stdout %q does not show the demo accounts", first.Stdout)
		}
	})

	t.Run("every demo account signs in with the demo password and has its roles", func(t *testing.T) {
		for _, d := range demoAccounts {
			p := first.principal(t, first.signIn(t, d.Email, DemoPassword).AccessToken)
			if !slices.Equal(p.Roles, d.Roles) || !slices.Equal(p.Cities, d.Cities) || p.Name != d.Name {
				t.Errorf("%s: principal %+v, want roles %v cities %v", d.Email, p, d.Roles, d.Cities)
			}
		}
	})

	t.Run("a second start on the same database seeds nothing", func(t *testing.T) {
		second := startService(t, envOptions{demo: true, shared: first})
		if n, err := second.Store.Count(context.Background()); err != nil || n != 4 {
			t.Errorf("%d accounts (%v) after a second start, want 4", n, err)
		}
		if second.Stdout != "" {
			t.Errorf("the second start printed %q", second.Stdout)
		}
		// Both replicas' keys are published: either's tokens verify at the other.
		tok := second.signIn(t, "vendor@piazza.example", DemoPassword)
		eventually(t, "the first replica accepts the second's token", func() bool {
			return first.me(t, tok.AccessToken).Status == http.StatusOK
		})
	})

	t.Run("seeding a database with accounts does nothing", func(t *testing.T) {
		seeded, err := seedDemo(context.Background(), first.Store)
		if err != nil || seeded {
			t.Errorf("seedDemo = %v, %v; want false, nil", seeded, err)
		}
	})
}

// TestSignInLimitAcrossReplicas: two replicas on one database count one
// email's sign-in attempts together, so adding replicas adds no guesses.
func TestSignInLimitAcrossReplicas(t *testing.T) {
	first := startService(t, envOptions{})
	second := startService(t, envOptions{shared: first})
	first.signUp(t, "vera@example.org", "Vera")
	first.restLimiters()
	second.restLimiters()
	wrong := SignIn{Email: "vera@example.org", Password: "guess guess guess"}
	for i := range 5 { // the email's burst, spread over both
		e := []*env{first, second}[i%2]
		if r := e.post(t, "/api/v1/accounts/signin", wrong); r.Status != http.StatusUnauthorized {
			t.Fatalf("attempt %d: status %d, want 401", i+1, r.Status)
		}
	}
	for _, e := range []*env{first, second} {
		if r := e.post(t, "/api/v1/accounts/signin", wrong); r.Status != http.StatusTooManyRequests {
			t.Errorf("a sixth attempt: status %d, want 429 on either replica", r.Status)
		}
	}
}
