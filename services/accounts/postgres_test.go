package accounts

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/localeurope/piazza/pkg/web"
)

func createAccount(tb testing.TB, s *Store, email string) Account {
	tb.Helper()
	a, err := s.Create(context.Background(), SignUp{Email: email, Name: "Test"}, "$argon2id$unused", nil, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return a
}

func issue(tb testing.TB, s *Store, accountID string, now time.Time) string {
	tb.Helper()
	tok, _, err := s.IssueRefresh(context.Background(), nil, accountID, "", now)
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

func TestRotate(t *testing.T) {
	s := newStore(t, newDatabase(t))
	ctx := context.Background()
	now := time.Date(2026, 5, 2, 9, 0, 0, 0, time.UTC)
	a := createAccount(t, s, "rota@example.org")

	t.Run("concurrent uses of one refresh token: exactly one succeeds", func(t *testing.T) {
		tok := issue(t, s, a.ID, now)
		const n = 8
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { _, _, _, errs[i] = s.Rotate(ctx, tok, now) })
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, errBadRefresh):
				t.Errorf("Rotate: %v, want success or errBadRefresh", err)
			}
		}
		if ok != 1 {
			t.Errorf("%d of %d concurrent rotations succeeded, want 1", ok, n)
		}
	})

	t.Run("reuse revokes every token of the family in the database", func(t *testing.T) {
		tok := issue(t, s, a.ID, now)
		_, next, _, err := s.Rotate(ctx, tok, now)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := s.Rotate(ctx, tok, now.Add(time.Minute)); web.ErrorCode(err) != web.EUnauthorized {
			t.Fatalf("reuse: %v, want unauthorized", err)
		}
		var total, revoked int
		err = s.pool.QueryRow(ctx, `
			SELECT count(*), count(revoked_at) FROM refresh_tokens
			WHERE family = (SELECT family FROM refresh_tokens WHERE token_hash = $1)`, hashToken(next)).Scan(&total, &revoked)
		if err != nil {
			t.Fatal(err)
		}
		if total != 2 || revoked != 2 {
			t.Errorf("family of %d tokens has %d revoked, want all 2", total, revoked)
		}
	})

	t.Run("a token is accepted until it expires", func(t *testing.T) {
		tok := issue(t, s, a.ID, now)
		if _, _, _, err := s.Rotate(ctx, tok, now.Add(RefreshTTL)); !errors.Is(err, errBadRefresh) {
			t.Errorf("Rotate at expiry: %v, want errBadRefresh", err)
		}
		tok = issue(t, s, a.ID, now)
		if _, _, _, err := s.Rotate(ctx, tok, now.Add(RefreshTTL-time.Second)); err != nil {
			t.Errorf("Rotate a second before expiry: %v", err)
		}
	})
}

func TestStoreAccounts(t *testing.T) {
	s := newStore(t, newDatabase(t))
	ctx := context.Background()

	t.Run("ByEmail finds an account in any case", func(t *testing.T) {
		a := createAccount(t, s, "Case@Example.org")
		got, hash, err := s.ByEmail(ctx, "case@EXAMPLE.org")
		if err != nil || got.ID != a.ID || hash != "$argon2id$unused" {
			t.Errorf("ByEmail = %+v, %q, %v", got, hash, err)
		}
	})

	t.Run("ByID and SetRoles report a missing account as not found", func(t *testing.T) {
		missing := newID()
		if _, err := s.ByID(ctx, missing); web.ErrorCode(err) != web.ENotFound {
			t.Errorf("ByID: %v", err)
		}
		if _, err := s.SetRoles(ctx, missing, Roles{Roles: []string{"vendor"}, Cities: []string{}}); web.ErrorCode(err) != web.ENotFound {
			t.Errorf("SetRoles: %v", err)
		}
	})

	t.Run("seedDemo seeds an empty database once", func(t *testing.T) {
		empty := newStore(t, newDatabase(t))
		for i, want := range []bool{true, false} {
			seeded, err := seedDemo(ctx, empty)
			if err != nil || seeded != want {
				t.Errorf("seedDemo #%d = %v, %v; want %v", i+1, seeded, err, want)
			}
		}
		if n, err := empty.Count(ctx); err != nil || n != len(demoAccounts) {
			t.Errorf("%d accounts (%v), want %d", n, err, len(demoAccounts))
		}
	})
}
