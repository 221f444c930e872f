package accounts

import (
	"bytes"
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

// familyCount counts the tokens of tok's family, and those still usable.
func familyCount(tb testing.TB, s *Store, tok string) (total, live int) {
	tb.Helper()
	err := s.pool.QueryRow(context.Background(), `
		SELECT count(*), count(*) FILTER (WHERE used_at IS NULL AND revoked_at IS NULL) FROM refresh_tokens
		WHERE family = (SELECT family FROM refresh_tokens WHERE token_hash = $1)`, hashToken(tok)).Scan(&total, &live)
	if err != nil {
		tb.Fatal(err)
	}
	return total, live
}

func TestRotate(t *testing.T) {
	s := newStore(t, newDatabase(t))
	ctx := context.Background()
	now := time.Date(2026, 5, 2, 9, 0, 0, 0, time.UTC)
	a := createAccount(t, s, "rota@example.org")

	t.Run("20 concurrent uses of one refresh token all get the same successor, and the family stays one", func(t *testing.T) {
		tok := issue(t, s, a.ID, now)
		const n = 20
		got := make([]string, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { _, got[i], _, errs[i] = s.Rotate(ctx, tok, now) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("rotation %d: %v, want success", i, err)
			}
			if got[i] != got[0] {
				t.Errorf("rotation %d returned another successor: the family forked", i)
			}
		}
		if total, live := familyCount(t, s, tok); total != 2 || live != 1 {
			t.Errorf("family has %d tokens, %d live; want 2 with 1 live", total, live)
		}
		if _, _, _, err := s.Rotate(ctx, got[0], now.Add(time.Minute)); err != nil {
			t.Errorf("the successor: %v", err)
		}
	})

	t.Run("a token presented again within the grace window gets the same successor", func(t *testing.T) {
		tok := issue(t, s, a.ID, now)
		acc, next, exp, err := s.Rotate(ctx, tok, now)
		if err != nil {
			t.Fatal(err)
		}
		acc2, again, exp2, err := s.Rotate(ctx, tok, now.Add(RefreshReuseGrace-time.Second))
		if err != nil {
			t.Fatalf("presented again within the window: %v", err)
		}
		if again != next || !exp2.Equal(exp) || acc2.ID != acc.ID {
			t.Errorf("got another successor (%v, expires %v) than the rotation's (expires %v)", again != next, exp2, exp)
		}
		if total, live := familyCount(t, s, tok); total != 2 || live != 1 {
			t.Errorf("family has %d tokens, %d live; want 2 with 1 live", total, live)
		}
		if _, _, _, err := s.Rotate(ctx, next, now.Add(time.Minute)); err != nil {
			t.Errorf("the successor: %v", err)
		}
	})

	t.Run("a token presented again once the grace window is over revokes its family", func(t *testing.T) {
		tok := issue(t, s, a.ID, now)
		_, next, _, err := s.Rotate(ctx, tok, now)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := s.Rotate(ctx, tok, now.Add(RefreshReuseGrace)); !errors.Is(err, errBadRefresh) {
			t.Fatalf("presented again after the window: %v, want errBadRefresh", err)
		}
		if _, _, _, err := s.Rotate(ctx, next, now.Add(RefreshReuseGrace)); !errors.Is(err, errBadRefresh) {
			t.Errorf("the successor after the family was revoked: %v, want errBadRefresh", err)
		}
		if total, live := familyCount(t, s, tok); total != 2 || live != 0 {
			t.Errorf("family has %d tokens, %d live; want none live", total, live)
		}
	})

	t.Run("a token presented again after its successor was used revokes its family, even within the window", func(t *testing.T) {
		tok := issue(t, s, a.ID, now)
		_, next, _, err := s.Rotate(ctx, tok, now)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := s.Rotate(ctx, next, now.Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := s.Rotate(ctx, tok, now.Add(2*time.Second)); !errors.Is(err, errBadRefresh) {
			t.Fatalf("presented again: %v, want errBadRefresh", err)
		}
		if total, live := familyCount(t, s, tok); total != 3 || live != 0 {
			t.Errorf("family has %d tokens, %d live; want none live", total, live)
		}
	})

	t.Run("a revoked family gets no grace", func(t *testing.T) {
		tok := issue(t, s, a.ID, now)
		_, next, _, err := s.Rotate(ctx, tok, now)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Revoke(ctx, next, now); err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := s.Rotate(ctx, tok, now.Add(time.Second)); !errors.Is(err, errBadRefresh) {
			t.Errorf("presented again after sign-out: %v, want errBadRefresh", err)
		}
	})

	t.Run("the sealed successor is cleared once the window is over, and never holds the token in clear", func(t *testing.T) {
		tok := issue(t, s, a.ID, now)
		_, next, _, err := s.Rotate(ctx, tok, now)
		if err != nil {
			t.Fatal(err)
		}
		var sealed []byte
		if err := s.pool.QueryRow(ctx, `SELECT successor_sealed FROM refresh_tokens WHERE token_hash = $1`, hashToken(tok)).Scan(&sealed); err != nil {
			t.Fatal(err)
		}
		if len(sealed) == 0 || bytes.Contains(sealed, []byte(next)) {
			t.Fatalf("sealed successor = %q", sealed)
		}
		// Any later rotation sweeps what is past the window.
		if _, _, _, err := s.Rotate(ctx, issue(t, s, a.ID, now), now.Add(3*RefreshReuseGrace)); err != nil {
			t.Fatal(err)
		}
		if err := s.pool.QueryRow(ctx, `SELECT successor_sealed FROM refresh_tokens WHERE token_hash = $1`, hashToken(tok)).Scan(&sealed); err != nil {
			t.Fatal(err)
		}
		if sealed != nil {
			t.Error("the sealed successor is still there after the window")
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
