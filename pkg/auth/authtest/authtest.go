// Package authtest mints access tokens for tests: a fixed signing key that a
// test service's verifier trusts, and tokens for any principal.
package authtest

import (
	"bytes"
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/localeurope/piazza/pkg/auth"
)

// Key is the tests' signing key (from a fixed seed: never use it elsewhere).
var Key = func() auth.Key {
	k, err := auth.KeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	if err != nil {
		panic(err)
	}
	return k
}()

// Verifier returns a verifier that trusts Key.
func Verifier() *auth.Verifier {
	v := auth.NewVerifier(nil)
	v.SetKey(Key.ID, Key.Public())
	return v
}

// Token returns an access token for p, valid for an hour.
func Token(tb testing.TB, p auth.Principal) string {
	tb.Helper()
	tok, _, err := Key.Sign(p, time.Now(), time.Hour)
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}
