package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/localeurope/piazza/pkg/web"
)

// Issuer and audience of every Piazza access token.
const (
	Issuer   = "piazza"
	Audience = "piazza"
)

// AccessTTL is how long an access token is valid; a client refreshes it.
const AccessTTL = 15 * time.Minute

type claims struct {
	jwt.RegisteredClaims
	Email  string   `json:"email,omitempty"`
	Name   string   `json:"name,omitempty"`
	Roles  []string `json:"roles"`
	Cities []string `json:"cities,omitempty"`
}

// Key is an Ed25519 signing key with its key id.
type Key struct {
	ID      string
	Private ed25519.PrivateKey
}

// NewKey generates a signing key.
func NewKey() (Key, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return Key{}, err
	}
	return KeyFromSeed(priv.Seed())
}

// KeyFromSeed rebuilds a key from its 32-byte seed; the id is derived from the
// public key, so the same seed always has the same id.
func KeyFromSeed(seed []byte) (Key, error) {
	if len(seed) != ed25519.SeedSize {
		return Key{}, fmt.Errorf("auth: a signing key seed has %d bytes, not %d", ed25519.SeedSize, len(seed))
	}
	priv := ed25519.NewKeyFromSeed(seed)
	sum := sha256.Sum256(priv.Public().(ed25519.PublicKey))
	return Key{ID: base64.RawURLEncoding.EncodeToString(sum[:9]), Private: priv}, nil
}

// Public is the key's public half.
func (k Key) Public() ed25519.PublicKey { return k.Private.Public().(ed25519.PublicKey) }

// Sign issues an access token for p, valid for ttl from now.
func (k Key) Sign(p Principal, now time.Time, ttl time.Duration) (string, time.Time, error) {
	exp := now.Add(ttl)
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: Issuer, Audience: jwt.ClaimStrings{Audience}, Subject: p.AccountID,
			IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now.Add(-30 * time.Second)),
			ExpiresAt: jwt.NewNumericDate(exp),
		},
		Email: p.Email, Name: p.Name, Roles: p.Roles, Cities: p.Cities,
	})
	tok.Header["kid"] = k.ID
	s, err := tok.SignedString(k.Private)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("auth: sign: %w", err)
	}
	return s, exp, nil
}

// Verifier checks access tokens against a set of public keys, which may
// change while it runs (key rotation).
type Verifier struct {
	mu   sync.RWMutex
	keys map[string]ed25519.PublicKey
	gen  uint64 // counts key changes, under mu
	now  func() time.Time

	// verified caches tokens that verified, until their expiry: a client
	// sends one access token with every request for its whole life, and an
	// Ed25519 verification was a seventh of the API's CPU under load. Any
	// key change empties it, so a removed key's tokens stop at once.
	cacheMu  sync.Mutex
	verified map[string]verifiedToken
}

type verifiedToken struct {
	p   Principal
	exp time.Time
	nbf time.Time
}

// verifiedCacheSize bounds the cache; when full it is emptied and refills
// with the tokens in use.
const verifiedCacheSize = 10000

// NewVerifier returns a verifier with no keys; now may be nil (time.Now).
func NewVerifier(now func() time.Time) *Verifier {
	if now == nil {
		now = time.Now
	}
	return &Verifier{keys: map[string]ed25519.PublicKey{}, now: now, verified: map[string]verifiedToken{}}
}

func (v *Verifier) forgetVerified() {
	v.cacheMu.Lock()
	clear(v.verified)
	v.cacheMu.Unlock()
}

// SetKey adds or replaces the public key with id kid.
func (v *Verifier) SetKey(kid string, pub ed25519.PublicKey) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.keys[kid] = pub
	v.gen++
	v.forgetVerified()
}

// RemoveKey forgets a key; tokens signed with it no longer verify.
func (v *Verifier) RemoveKey(kid string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	delete(v.keys, kid)
	v.gen++
	v.forgetVerified()
}

// HasKeys reports whether any key is known (for readiness).
func (v *Verifier) HasKeys() bool {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return len(v.keys) > 0
}

// ErrInvalidToken is returned for any token that does not verify.
var ErrInvalidToken = errors.New("auth: invalid access token")

// Verify checks the token's signature (EdDSA only), issuer, audience and
// expiry (required) and returns its principal.
func (v *Verifier) Verify(token string) (Principal, error) {
	// The leeway below applies to cached tokens too.
	now := v.now()
	v.cacheMu.Lock()
	hit, ok := v.verified[token]
	v.cacheMu.Unlock()
	if ok && now.Before(hit.exp.Add(leeway)) && !now.Before(hit.nbf.Add(-leeway)) {
		p := hit.p
		p.Roles, p.Cities = slices.Clone(p.Roles), slices.Clone(p.Cities)
		return p, nil
	}
	v.mu.RLock()
	gen := v.gen
	v.mu.RUnlock()
	p, c, err := v.verify(token)
	if err != nil {
		return p, err
	}
	if c.ExpiresAt != nil {
		vt := verifiedToken{p: p, exp: c.ExpiresAt.Time}
		if c.NotBefore != nil {
			vt.nbf = c.NotBefore.Time
		}
		// Only if no key changed since the verification began: a token of a
		// key removed meanwhile must not be kept.
		v.mu.RLock()
		if v.gen == gen {
			v.cacheMu.Lock()
			if len(v.verified) >= verifiedCacheSize {
				clear(v.verified)
			}
			v.verified[token] = vt
			v.cacheMu.Unlock()
		}
		v.mu.RUnlock()
	}
	return p, nil
}

// leeway is the clock skew allowed on exp and nbf.
const leeway = 5 * time.Second

func (v *Verifier) verify(token string) (Principal, claims, error) {
	var c claims
	_, err := jwt.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		v.mu.RLock()
		key, ok := v.keys[kid]
		v.mu.RUnlock()
		if !ok {
			return nil, fmt.Errorf("unknown key %q", kid)
		}
		return key, nil
	},
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuer(Issuer),
		jwt.WithAudience(Audience),
		jwt.WithTimeFunc(v.now),
		jwt.WithLeeway(leeway),
	)
	if err != nil {
		return Principal{}, c, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	if c.Subject == "" {
		return Principal{}, c, fmt.Errorf("%w: no subject", ErrInvalidToken)
	}
	return Principal{AccountID: c.Subject, Email: c.Email, Name: c.Name, Roles: c.Roles, Cities: c.Cities}, c, nil
}

// Wrap puts the principal of a valid bearer token into the request context.
// A request without a token goes on anonymously; one with a bad or expired
// token is refused with 401, so that a client knows to refresh.
func (v *Verifier) Wrap(next http.Handler, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Get("Authorization")
		if h == "" {
			next.ServeHTTP(w, r)
			return
		}
		tok, ok := bearer(h)
		if !ok {
			web.WriteError(w, r, log, web.Errorf(web.EUnauthorized, "the Authorization header must be 'Bearer <access token>'"))
			return
		}
		p, err := v.Verify(tok)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			web.WriteError(w, r, log, web.Errorf(web.EUnauthorized, "the access token is invalid or expired; refresh it or sign in again"))
			return
		}
		next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
	})
}
