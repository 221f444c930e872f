package auth_test

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/localeurope/piazza/pkg/auth"
	"golang.org/x/crypto/argon2"
)

func hashPassword(tb testing.TB, password string) string {
	tb.Helper()
	h, err := auth.HashPassword(password)
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

// phc formats an argon2id hash with the given parameters, as another version
// of HashPassword might have stored it.
func phc(password string, salt []byte, t, m uint32, p uint8, keyLen uint32) string {
	key := argon2.IDKey([]byte(password), salt, t, m, p, keyLen)
	return fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", m, t, p,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

func TestPassword(t *testing.T) {
	const password = "correct horse battery staple"
	hash := hashPassword(t, password)

	t.Run("the hash is an argon2id PHC string that verifies with the password", func(t *testing.T) {
		if !strings.HasPrefix(hash, "$argon2id$v=19$m=19456,t=2,p=1$") {
			t.Errorf("hash %q is not in the expected PHC form", hash)
		}
		ok, err := auth.CheckPassword(hash, password)
		if err != nil || !ok {
			t.Errorf("CheckPassword(right password) = %v, %v", ok, err)
		}
	})

	t.Run("a wrong password does not verify and is no error", func(t *testing.T) {
		for _, wrong := range []string{"correct horse battery stapl", "Correct horse battery staple", ""} {
			ok, err := auth.CheckPassword(hash, wrong)
			if err != nil || ok {
				t.Errorf("CheckPassword(%q) = %v, %v; want false, nil", wrong, ok, err)
			}
		}
	})

	t.Run("two hashes of one password differ (salted) and both verify", func(t *testing.T) {
		again := hashPassword(t, password)
		if again == hash {
			t.Fatal("two hashes of one password are equal")
		}
		if ok, err := auth.CheckPassword(again, password); err != nil || !ok {
			t.Errorf("CheckPassword(second hash) = %v, %v", ok, err)
		}
	})

	t.Run("the parameters are read from the hash, so older hashes still verify", func(t *testing.T) {
		salt := []byte("0123456789abcdef")
		for _, old := range []string{
			phc(password, salt, 1, 8*1024, 1, 32),
			phc(password, salt, 3, 12*1024, 2, 16),
		} {
			ok, err := auth.CheckPassword(old, password)
			if err != nil || !ok {
				t.Errorf("CheckPassword(%s) = %v, %v; want true", old, ok, err)
			}
			if ok, _ := auth.CheckPassword(old, "another password"); ok {
				t.Errorf("%s verified a wrong password", old)
			}
		}
	})

	t.Run("a hash whose key bytes were changed does not verify", func(t *testing.T) {
		i := strings.LastIndexByte(hash, '$')
		key, err := base64.RawStdEncoding.DecodeString(hash[i+1:])
		if err != nil {
			t.Fatal(err)
		}
		key[0] ^= 1
		tampered := hash[:i+1] + base64.RawStdEncoding.EncodeToString(key)
		if ok, _ := auth.CheckPassword(tampered, password); ok {
			t.Error("a tampered hash verified")
		}
	})

	salt := base64.RawStdEncoding.EncodeToString([]byte("0123456789abcdef"))
	key := base64.RawStdEncoding.EncodeToString(make([]byte, 32))
	malformed := []struct{ name, hash string }{
		{"an empty hash", ""},
		{"a plain-text password", password},
		{"a bcrypt hash", "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"},
		{"an argon2i hash", "$argon2i$v=19$m=19456,t=2,p=1$" + salt + "$" + key},
		{"another argon2 version", "$argon2id$v=16$m=19456,t=2,p=1$" + salt + "$" + key},
		{"a missing version", "$argon2id$m=19456,t=2,p=1$" + salt + "$" + key},
		{"too many parts", "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$" + key + "$x"},
		{"unreadable parameters", "$argon2id$v=19$memory=lots$" + salt + "$" + key},
		{"negative parameters", "$argon2id$v=19$m=-1,t=2,p=1$" + salt + "$" + key},
		{"zero passes", "$argon2id$v=19$m=19456,t=0,p=1$" + salt + "$" + key},
		{"zero lanes", "$argon2id$v=19$m=19456,t=2,p=0$" + salt + "$" + key},
		{"too many lanes for a byte", "$argon2id$v=19$m=19456,t=2,p=256$" + salt + "$" + key},
		{"absurd memory (4 TiB)", "$argon2id$v=19$m=4294967295,t=2,p=1$" + salt + "$" + key},
		{"absurd passes", "$argon2id$v=19$m=19456,t=4294967295,p=1$" + salt + "$" + key},
		{"a salt that is not base64", "$argon2id$v=19$m=19456,t=2,p=1$!!!!$" + key},
		{"a key that is not base64", "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$%%%%"},
		{"an empty key", "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$"},
	}
	for _, tt := range malformed {
		t.Run("a malformed hash is an error, not a panic: "+tt.name, func(t *testing.T) {
			ok, err := auth.CheckPassword(tt.hash, password)
			if err == nil || ok {
				t.Errorf("CheckPassword(%q) = %v, %v; want false and an error", tt.hash, ok, err)
			}
		})
	}
}
