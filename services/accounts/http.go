package accounts

import (
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/localeurope/piazza/pkg/auth"
	"github.com/localeurope/piazza/pkg/ratelimit"
	"github.com/localeurope/piazza/pkg/web"
)

// service holds what the handlers need.
type service struct {
	store *Store
	key   auth.Key
	log   *slog.Logger
	now   func() time.Time
	// Sign-in attempts: per client address and per email.
	byIP, byEmail *ratelimit.Limiter // shared by the replicas
	// dummyHash is checked when an email is unknown, so that a wrong email
	// takes as long as a wrong password.
	dummyHash string
}

// routes is the whole HTTP surface of accounts.
func routes(mux *http.ServeMux, s *service) {
	mux.Handle("POST /api/v1/accounts/signup", s.handleSignUp())
	mux.Handle("POST /api/v1/accounts/signin", s.handleSignIn())
	mux.Handle("POST /api/v1/accounts/refresh", s.handleRefresh())
	mux.Handle("POST /api/v1/accounts/signout", s.handleSignOut())
	mux.Handle("GET /api/v1/accounts/me", s.handleMe())
	mux.Handle("PUT /api/v1/accounts/{id}/roles", s.handleSetRoles())
}

func (s *service) tokens(r *http.Request, a Account, family string) (Tokens, error) {
	now := s.now()
	access, exp, err := s.key.Sign(a.principal(), now, auth.AccessTTL)
	if err != nil {
		return Tokens{}, err
	}
	refresh, rexp, err := s.store.IssueRefresh(r.Context(), nil, a.ID, family, now)
	if err != nil {
		return Tokens{}, err
	}
	return Tokens{AccessToken: access, TokenType: "Bearer", ExpiresAt: exp, RefreshToken: refresh, RefreshExpiresAt: rexp, Account: a}, nil
}

func (s *service) handleSignUp() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ok, err := s.byIP.Allow(r.Context(), "signup:"+web.ClientIP(r), s.now()); err != nil || !ok {
			if err == nil {
				err = web.Errorf(web.ETooMany, "too many sign-ups from your address; try again in a minute")
			}
			web.WriteError(w, r, s.log, err)
			return
		}
		su, err := web.Decode[SignUp](w, r)
		if err != nil {
			web.WriteError(w, r, s.log, err)
			return
		}
		hash, err := auth.HashPassword(su.Password)
		if err != nil {
			web.WriteError(w, r, s.log, err)
			return
		}
		a, err := s.store.Create(r.Context(), su, hash, nil, nil)
		if err != nil {
			web.WriteError(w, r, s.log, err)
			return
		}
		t, err := s.tokens(r, a, "")
		if err != nil {
			web.WriteError(w, r, s.log, err)
			return
		}
		web.JSON(w, http.StatusCreated, t)
	})
}

func (s *service) handleSignIn() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in, err := web.Decode[SignIn](w, r)
		if err != nil {
			web.WriteError(w, r, s.log, err)
			return
		}
		now := s.now()
		ok, err := s.byIP.Allow(r.Context(), web.ClientIP(r), now)
		if err == nil && ok {
			ok, err = s.byEmail.Allow(r.Context(), strings.ToLower(in.Email), now)
		}
		if err != nil || !ok {
			if err == nil {
				err = web.Errorf(web.ETooMany, "too many sign-in attempts; wait a minute and try again")
			}
			web.WriteError(w, r, s.log, err)
			return
		}
		a, hash, err := s.store.ByEmail(r.Context(), in.Email)
		if errors.Is(err, pgx.ErrNoRows) {
			hash = s.dummyHash
		} else if err != nil {
			web.WriteError(w, r, s.log, err)
			return
		}
		ok, herr := auth.CheckPassword(hash, in.Password)
		if err != nil || herr != nil || !ok {
			web.WriteError(w, r, s.log, web.Errorf(web.EUnauthorized, "the email or the password is wrong"))
			return
		}
		t, err := s.tokens(r, a, "")
		if err != nil {
			web.WriteError(w, r, s.log, err)
			return
		}
		web.JSON(w, http.StatusOK, t)
	})
}

func (s *service) handleRefresh() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in, err := web.Decode[Refresh](w, r)
		if err != nil {
			web.WriteError(w, r, s.log, err)
			return
		}
		now := s.now()
		a, refresh, rexp, err := s.store.Rotate(r.Context(), in.RefreshToken, now)
		if err != nil {
			web.WriteError(w, r, s.log, err)
			return
		}
		access, exp, err := s.key.Sign(a.principal(), now, auth.AccessTTL)
		if err != nil {
			web.WriteError(w, r, s.log, err)
			return
		}
		web.JSON(w, http.StatusOK, Tokens{AccessToken: access, TokenType: "Bearer", ExpiresAt: exp,
			RefreshToken: refresh, RefreshExpiresAt: rexp, Account: a})
	})
}

func (s *service) handleSignOut() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in, err := web.Decode[Refresh](w, r)
		if err != nil {
			web.WriteError(w, r, s.log, err)
			return
		}
		if err := s.store.Revoke(r.Context(), in.RefreshToken, s.now()); err != nil {
			web.WriteError(w, r, s.log, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

func (s *service) handleMe() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := auth.Require(r.Context())
		if err != nil {
			web.WriteError(w, r, s.log, err)
			return
		}
		a, err := s.store.ByID(r.Context(), p.AccountID)
		if err != nil {
			web.WriteError(w, r, s.log, err)
			return
		}
		web.JSON(w, http.StatusOK, a)
	})
}

func (s *service) handleSetRoles() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := auth.Require(r.Context())
		if err != nil {
			web.WriteError(w, r, s.log, err)
			return
		}
		if !p.IsAdmin() {
			web.WriteError(w, r, s.log, web.Errorf(web.EForbidden, "only an admin may change roles"))
			return
		}
		id := r.PathValue("id")
		if !isUUID(id) {
			web.WriteError(w, r, s.log, web.Errorf(web.ENotFound, "there is no account %q", id))
			return
		}
		in, err := web.Decode[Roles](w, r)
		if err != nil {
			web.WriteError(w, r, s.log, err)
			return
		}
		a, err := s.store.SetRoles(r.Context(), id, in)
		if err != nil {
			web.WriteError(w, r, s.log, err)
			return
		}
		web.JSON(w, http.StatusOK, a)
	})
}
