package auth_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/localeurope/piazza/pkg/auth"
)

// t0 is when test tokens are issued.
var t0 = time.Date(2026, 5, 2, 9, 30, 0, 0, time.UTC)

func newKey(tb testing.TB) auth.Key {
	tb.Helper()
	k, err := auth.NewKey()
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// verifierAt returns a verifier whose clock stands at now and which knows keys.
func verifierAt(now time.Time, keys ...auth.Key) *auth.Verifier {
	v := auth.NewVerifier(func() time.Time { return now })
	for _, k := range keys {
		v.SetKey(k.ID, k.Public())
	}
	return v
}

func sign(tb testing.TB, k auth.Key, p auth.Principal, now time.Time) string {
	tb.Helper()
	tok, _, err := k.Sign(p, now, auth.AccessTTL)
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

var ghentManager = auth.Principal{
	AccountID: "0196a1b2-0000-7000-8000-000000000001", Email: "mieke@example.org", Name: "Mieke",
	Roles: []string{auth.RoleManager, auth.RoleVendor}, Cities: []string{"ghent", "bruges"},
}

// validClaims are the claims of a token Sign would issue at t0.
func validClaims() jwt.MapClaims {
	return jwt.MapClaims{
		"iss": auth.Issuer, "aud": []string{auth.Audience}, "sub": ghentManager.AccountID,
		"iat": t0.Unix(), "nbf": t0.Add(-30 * time.Second).Unix(), "exp": t0.Add(auth.AccessTTL).Unix(),
		"roles": []string{auth.RoleVendor},
	}
}

func with(c jwt.MapClaims, key string, value any) jwt.MapClaims {
	c = maps.Clone(c)
	c[key] = value
	return c
}

func without(c jwt.MapClaims, key string) jwt.MapClaims {
	c = maps.Clone(c)
	delete(c, key)
	return c
}

// craft signs claims with any method and key, as an attacker could.
func craft(tb testing.TB, method jwt.SigningMethod, key any, kid string, c jwt.MapClaims) string {
	tb.Helper()
	tok := jwt.NewWithClaims(method, c)
	tok.Header["kid"] = kid
	s, err := tok.SignedString(key)
	if err != nil {
		tb.Fatalf("craft %s token: %v", method.Alg(), err)
	}
	return s
}

// tamper rewrites the payload of a signed token, keeping its header and signature.
func tamper(tb testing.TB, token string, change func(map[string]any)) string {
	tb.Helper()
	parts := strings.Split(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		tb.Fatal(err)
	}
	var payload map[string]any
	if err := json.Unmarshal(raw, &payload); err != nil {
		tb.Fatal(err)
	}
	change(payload)
	raw, err = json.Marshal(payload)
	if err != nil {
		tb.Fatal(err)
	}
	parts[1] = base64.RawURLEncoding.EncodeToString(raw)
	return strings.Join(parts, ".")
}

func TestSignAndVerify(t *testing.T) {
	key := newKey(t)

	t.Run("a signed token verifies and keeps every principal field", func(t *testing.T) {
		tok, exp, err := key.Sign(ghentManager, t0, auth.AccessTTL)
		if err != nil {
			t.Fatal(err)
		}
		if !exp.Equal(t0.Add(auth.AccessTTL)) {
			t.Errorf("expires at %v, want %v", exp, t0.Add(auth.AccessTTL))
		}
		got, err := verifierAt(t0.Add(time.Minute), key).Verify(tok)
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if got.AccountID != ghentManager.AccountID || got.Email != ghentManager.Email || got.Name != ghentManager.Name ||
			!slices.Equal(got.Roles, ghentManager.Roles) || !slices.Equal(got.Cities, ghentManager.Cities) {
			t.Errorf("Verify = %+v, want %+v", got, ghentManager)
		}
	})

	t.Run("a token is still valid just before it expires", func(t *testing.T) {
		tok := sign(t, key, ghentManager, t0)
		if _, err := verifierAt(t0.Add(auth.AccessTTL-time.Second), key).Verify(tok); err != nil {
			t.Errorf("Verify one second before exp: %v", err)
		}
	})

	t.Run("a hand-crafted token with every required claim verifies, so the rejections below have the stated cause", func(t *testing.T) {
		tok := craft(t, jwt.SigningMethodEdDSA, key.Private, key.ID, validClaims())
		if _, err := verifierAt(t0, key).Verify(tok); err != nil {
			t.Fatalf("Verify: %v", err)
		}
	})
}

func TestVerifyRejects(t *testing.T) {
	key, other := newKey(t), newKey(t)
	good := sign(t, key, ghentManager, t0)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name  string
		token string
		at    time.Time // the verifier's clock
	}{
		{"an expired token", good, t0.Add(auth.AccessTTL + time.Minute)},
		{"a token that is not valid yet", good, t0.Add(-time.Minute)},
		{"a token with another issuer", craft(t, jwt.SigningMethodEdDSA, key.Private, key.ID, with(validClaims(), "iss", "evil")), t0},
		{"a token without an issuer", craft(t, jwt.SigningMethodEdDSA, key.Private, key.ID, without(validClaims(), "iss")), t0},
		{"a token for another audience", craft(t, jwt.SigningMethodEdDSA, key.Private, key.ID, with(validClaims(), "aud", "other-app")), t0},
		{"a token signed by an unknown key", sign(t, other, ghentManager, t0), t0},
		{"a token naming a known key id but signed by another key", craft(t, jwt.SigningMethodEdDSA, other.Private, key.ID, validClaims()), t0},
		{"a token without a key id", craft(t, jwt.SigningMethodEdDSA, key.Private, "", validClaims()), t0},
		{"a token whose payload was changed after signing", tamper(t, good, func(p map[string]any) {
			p["roles"] = []string{auth.RoleAdmin}
		}), t0},
		{"a token with alg none", craft(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, key.ID, validClaims()), t0},
		{"an HS256 token keyed with the public key's bytes (algorithm confusion)",
			craft(t, jwt.SigningMethodHS256, []byte(key.Public()), key.ID, validClaims()), t0},
		{"an HS256 token keyed with the base64 the key bucket publishes",
			craft(t, jwt.SigningMethodHS256, []byte(base64.StdEncoding.EncodeToString(key.Public())), key.ID, validClaims()), t0},
		{"an ES256 token", craft(t, jwt.SigningMethodES256, ecKey, key.ID, validClaims()), t0},
		{"a token without exp", craft(t, jwt.SigningMethodEdDSA, key.Private, key.ID, without(validClaims(), "exp")), t0},
		{"a token without sub", craft(t, jwt.SigningMethodEdDSA, key.Private, key.ID, without(validClaims(), "sub")), t0},
		{"a token with an empty sub", craft(t, jwt.SigningMethodEdDSA, key.Private, key.ID, with(validClaims(), "sub", "")), t0},
		{"an empty string", "", t0},
		{"garbage", "not.a.jwt", t0},
	}
	for _, tt := range tests {
		t.Run("rejects "+tt.name, func(t *testing.T) {
			p, err := verifierAt(tt.at, key).Verify(tt.token)
			if !errors.Is(err, auth.ErrInvalidToken) {
				t.Fatalf("Verify = %+v, %v; want ErrInvalidToken", p, err)
			}
			if p.AccountID != "" || p.Roles != nil {
				t.Errorf("a rejected token still yielded principal %+v", p)
			}
		})
	}
}

func TestKeys(t *testing.T) {
	t.Run("after RemoveKey its tokens no longer verify", func(t *testing.T) {
		key := newKey(t)
		v := verifierAt(t0, key)
		tok := sign(t, key, ghentManager, t0)
		if _, err := v.Verify(tok); err != nil {
			t.Fatalf("before RemoveKey: %v", err)
		}
		v.RemoveKey(key.ID)
		if _, err := v.Verify(tok); !errors.Is(err, auth.ErrInvalidToken) {
			t.Errorf("after RemoveKey: Verify err = %v, want ErrInvalidToken", err)
		}
		if v.HasKeys() {
			t.Error("HasKeys after removing the only key")
		}
	})

	t.Run("a verifier holding several keys accepts each key's tokens (rotation)", func(t *testing.T) {
		old, next := newKey(t), newKey(t)
		v := verifierAt(t0, old, next)
		for _, k := range []auth.Key{old, next} {
			if _, err := v.Verify(sign(t, k, ghentManager, t0)); err != nil {
				t.Errorf("token of key %s: %v", k.ID, err)
			}
		}
	})

	t.Run("KeyFromSeed gives the same key and id for the same seed", func(t *testing.T) {
		seed := bytes.Repeat([]byte{7}, 32)
		a, err := auth.KeyFromSeed(seed)
		if err != nil {
			t.Fatal(err)
		}
		b, err := auth.KeyFromSeed(bytes.Clone(seed))
		if err != nil {
			t.Fatal(err)
		}
		if a.ID == "" || a.ID != b.ID || !a.Public().Equal(b.Public()) {
			t.Errorf("ids %q and %q (public keys equal: %v), want one id", a.ID, b.ID, a.Public().Equal(b.Public()))
		}
		// A token of one verifies with the other's public key.
		if _, err := verifierAt(t0, b).Verify(sign(t, a, ghentManager, t0)); err != nil {
			t.Errorf("token of a, verified with b: %v", err)
		}
		c, err := auth.KeyFromSeed(bytes.Repeat([]byte{8}, 32))
		if err != nil {
			t.Fatal(err)
		}
		if c.ID == a.ID {
			t.Errorf("different seeds share id %q", a.ID)
		}
	})

	t.Run("KeyFromSeed refuses a seed of the wrong length", func(t *testing.T) {
		for _, n := range []int{0, 31, 33, 64} {
			if _, err := auth.KeyFromSeed(make([]byte, n)); err == nil {
				t.Errorf("a %d-byte seed was accepted", n)
			}
		}
	})

	t.Run("NewKey gives a fresh key each time", func(t *testing.T) {
		if a, b := newKey(t), newKey(t); a.ID == b.ID {
			t.Errorf("two new keys share id %q", a.ID)
		}
	})
}

// TestVerifiedCache: a token that verified once is not verified again, but
// its expiry and not-before still hold, and a removed key's tokens stop.
func TestVerifiedCache(t *testing.T) {
	key := newKey(t)
	at := t0.Add(time.Minute)
	v := auth.NewVerifier(func() time.Time { return at })
	v.SetKey(key.ID, key.Public())
	tok := sign(t, key, ghentManager, t0)
	for i := range 2 { // the second is answered from the cache
		if p, err := v.Verify(tok); err != nil || p.AccountID != ghentManager.AccountID {
			t.Fatalf("Verify %d = %+v, %v", i, p, err)
		}
	}
	t.Run("a cached principal cannot be changed through a returned one", func(t *testing.T) {
		p, _ := v.Verify(tok)
		p.Roles[0] = auth.RoleAdmin
		if q, _ := v.Verify(tok); q.Roles[0] == auth.RoleAdmin {
			t.Error("changing a returned principal's roles changed the cached one")
		}
	})
	t.Run("past its expiry a cached token is refused", func(t *testing.T) {
		at = t0.Add(auth.AccessTTL + time.Minute)
		if _, err := v.Verify(tok); !errors.Is(err, auth.ErrInvalidToken) {
			t.Errorf("Verify after exp = %v, want ErrInvalidToken", err)
		}
	})
	t.Run("before its not-before a cached token is refused", func(t *testing.T) {
		at = t0.Add(time.Minute)
		if _, err := v.Verify(tok); err != nil {
			t.Fatal(err)
		}
		at = t0.Add(-time.Hour)
		if _, err := v.Verify(tok); !errors.Is(err, auth.ErrInvalidToken) {
			t.Errorf("Verify before nbf = %v, want ErrInvalidToken", err)
		}
	})
}
