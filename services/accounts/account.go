package accounts

import (
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/localeurope/piazza/pkg/auth"
	"github.com/localeurope/piazza/pkg/web"
)

// Account is a person who signs in: a vendor, a market manager or an admin.
type Account struct {
	ID        string    `json:"id"`
	Email     string    `json:"email"`
	Name      string    `json:"name"`
	Roles     []string  `json:"roles"`
	Cities    []string  `json:"cities"`
	CreatedAt time.Time `json:"created_at"`
}

func (a Account) principal() auth.Principal {
	return auth.Principal{AccountID: a.ID, Email: a.Email, Name: a.Name, Roles: a.Roles, Cities: a.Cities}
}

// SignUp is the body of POST /signup.
type SignUp struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	Name     string `json:"name"`
}

// Password length limits: long enough for passphrases, short enough that
// hashing cannot be abused.
const (
	minPassword = 10
	maxPassword = 200
)

// Validate checks a sign-up.
func (s *SignUp) Validate() error {
	var f web.Fields
	s.Email = strings.TrimSpace(s.Email)
	s.Name = strings.TrimSpace(s.Name)
	if !validEmail(s.Email) {
		f.Add("email", "must be an email address")
	}
	switch n := utf8.RuneCountInString(s.Password); {
	case n < minPassword:
		f.Add("password", "must be at least %d characters", minPassword)
	case n > maxPassword:
		f.Add("password", "must be at most %d characters", maxPassword)
	}
	switch n := utf8.RuneCountInString(s.Name); {
	case n == 0:
		f.Add("name", "is required")
	case n > 120:
		f.Add("name", "must be at most 120 characters")
	case strings.ContainsRune(s.Name, 0):
		f.Add("name", "must not contain NUL characters")
	}
	return f.Err()
}

func validEmail(s string) bool {
	if len(s) > 254 || strings.ContainsRune(s, 0) {
		return false
	}
	a, err := mail.ParseAddress(s)
	return err == nil && a.Address == s && strings.Contains(s[strings.LastIndexByte(s, '@'):], ".")
}

// SignIn is the body of POST /signin.
type SignIn struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

// Validate checks a sign-in's shape; a wrong password is not a field error.
func (s *SignIn) Validate() error {
	var f web.Fields
	s.Email = strings.TrimSpace(s.Email)
	if s.Email == "" || len(s.Email) > 254 {
		f.Add("email", "is required")
	}
	if s.Password == "" || len(s.Password) > 4*maxPassword {
		f.Add("password", "is required")
	}
	return f.Err()
}

// Refresh is the body of POST /refresh and /signout.
type Refresh struct {
	RefreshToken string `json:"refresh_token"`
}

// Validate checks a refresh request.
func (r *Refresh) Validate() error {
	var f web.Fields
	if len(r.RefreshToken) < 20 || len(r.RefreshToken) > 200 {
		f.Add("refresh_token", "must be a refresh token")
	}
	return f.Err()
}

// Roles is the body of PUT /accounts/{id}/roles (admins only).
type Roles struct {
	Roles  []string `json:"roles"`
	Cities []string `json:"cities"`
}

// Validate checks a role change.
func (r *Roles) Validate() error {
	var f web.Fields
	if len(r.Roles) == 0 || len(r.Roles) > 3 {
		f.Add("roles", "must list one to three of vendor, manager, admin")
	}
	for _, role := range r.Roles {
		if role != auth.RoleVendor && role != auth.RoleManager && role != auth.RoleAdmin {
			f.Add("roles", "%q is not a role (vendor, manager, admin)", role)
		}
	}
	if len(r.Cities) > 50 {
		f.Add("cities", "must list at most 50 cities")
	}
	for _, c := range r.Cities {
		if len(c) == 0 || len(c) > 41 || strings.ToLower(c) != c || strings.ContainsAny(c, " /\x00") {
			f.Add("cities", "%q is not a city slug", c)
		}
	}
	if r.Cities == nil {
		r.Cities = []string{}
	}
	return f.Err()
}

// Tokens is what sign-up, sign-in and refresh return.
type Tokens struct {
	AccessToken      string    `json:"access_token"`
	TokenType        string    `json:"token_type"`
	ExpiresAt        time.Time `json:"expires_at"`
	RefreshToken     string    `json:"refresh_token"`
	RefreshExpiresAt time.Time `json:"refresh_expires_at"`
	Account          Account   `json:"account"`
}

func isUUID(s string) bool {
	_, err := uuid.Parse(s)
	return err == nil && len(s) == 36
}

func web409(err error) bool { return web.ErrorCode(err) == web.EConflict }
