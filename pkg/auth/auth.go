// Package auth issues and verifies Piazza's access tokens and hashes
// passwords. Tokens are short-lived JWTs signed with Ed25519 (EdDSA, the only
// algorithm accepted), with exp required; services verify them with public
// keys that the accounts service publishes in a NATS key-value bucket, so no
// service but accounts holds a private key.
//
// It must never decide what a principal may do with a record: services do,
// with the helpers on Principal.
package auth

import (
	"context"
	"slices"
	"strings"

	"github.com/localeurope/piazza/pkg/web"
)

// Roles.
const (
	RoleVendor  = "vendor"
	RoleManager = "manager"
	RoleAdmin   = "admin"
)

// Principal is who is making a request.
type Principal struct {
	AccountID string   `json:"account_id"`
	Email     string   `json:"email"`
	Name      string   `json:"name"`
	Roles     []string `json:"roles"`
	// Cities the principal manages (role manager).
	Cities []string `json:"cities"`
}

// Has reports whether p has role.
func (p Principal) Has(role string) bool { return slices.Contains(p.Roles, role) }

// IsAdmin reports whether p administers every city.
func (p Principal) IsAdmin() bool { return p.Has(RoleAdmin) }

// Manages reports whether p may run city: an admin, or a manager of it.
func (p Principal) Manages(city string) bool {
	return p.IsAdmin() || (p.Has(RoleManager) && slices.Contains(p.Cities, city))
}

type ctxKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// FromContext returns the request's principal, if it presented a valid token.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(ctxKey{}).(Principal)
	return p, ok
}

// Require returns the request's principal or an EUnauthorized error.
func Require(ctx context.Context) (Principal, error) {
	p, ok := FromContext(ctx)
	if !ok {
		return Principal{}, web.Errorf(web.EUnauthorized, "sign in first: this needs an access token (Authorization: Bearer …)")
	}
	return p, nil
}

// RequireManager returns the principal if it may run city, EUnauthorized
// without a token and EForbidden otherwise.
func RequireManager(ctx context.Context, city string) (Principal, error) {
	p, err := Require(ctx)
	if err != nil {
		return p, err
	}
	if !p.Manages(city) {
		return p, web.Errorf(web.EForbidden, "only the city's market managers may do this")
	}
	return p, nil
}

// bearer extracts the token of an "Authorization: Bearer <token>" header.
func bearer(h string) (string, bool) {
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return "", false
	}
	return strings.TrimSpace(tok), true
}
