package accounts

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/localeurope/piazza/pkg/web"
)

// RefreshTTL is how long a refresh token lasts without use.
const RefreshTTL = 30 * 24 * time.Hour

// Store is the accounts schema.
type Store struct {
	pool *pgxpool.Pool
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }

const accountCols = `id::text, email, name, roles, cities, created_at`

func scanAccount(row pgx.Row) (Account, string, error) {
	var a Account
	var hash string
	err := row.Scan(&a.ID, &a.Email, &a.Name, &a.Roles, &a.Cities, &a.CreatedAt, &hash)
	return a, hash, err
}

// Create stores a new account with the vendor role.
func (s *Store) Create(ctx context.Context, su SignUp, passwordHash string, roles, cities []string) (Account, error) {
	if roles == nil {
		roles = []string{"vendor"}
	}
	if cities == nil {
		cities = []string{}
	}
	a, _, err := scanAccount(s.pool.QueryRow(ctx, `
		INSERT INTO accounts (id, email, name, password_hash, roles, cities) VALUES ($1, $2, $3, $4, $5, $6)
		RETURNING `+accountCols+`, password_hash`, newID(), su.Email, su.Name, passwordHash, roles, cities))
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return Account{}, &web.Error{Code: web.EConflict, Message: "an account with this email exists; sign in instead",
			Fields: []web.FieldError{{Field: "email", Message: "is already registered"}}}
	}
	if err != nil {
		return Account{}, fmt.Errorf("accounts: create: %w", err)
	}
	return a, nil
}

// ByEmail returns an account and its password hash, or pgx.ErrNoRows.
func (s *Store) ByEmail(ctx context.Context, email string) (Account, string, error) {
	return scanAccount(s.pool.QueryRow(ctx, `SELECT `+accountCols+`, password_hash FROM accounts WHERE lower(email) = lower($1)`, email))
}

// ByID returns an account or ENotFound.
func (s *Store) ByID(ctx context.Context, id string) (Account, error) {
	a, _, err := scanAccount(s.pool.QueryRow(ctx, `SELECT `+accountCols+`, password_hash FROM accounts WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Account{}, web.Errorf(web.ENotFound, "there is no account %s", id)
	}
	if err != nil {
		return Account{}, fmt.Errorf("accounts: account %s: %w", id, err)
	}
	return a, nil
}

// SetRoles changes an account's roles and managed cities.
func (s *Store) SetRoles(ctx context.Context, id string, r Roles) (Account, error) {
	a, _, err := scanAccount(s.pool.QueryRow(ctx, `
		UPDATE accounts SET roles = $2, cities = $3, updated_at = now() WHERE id = $1
		RETURNING `+accountCols+`, password_hash`, id, r.Roles, r.Cities))
	if errors.Is(err, pgx.ErrNoRows) {
		return Account{}, web.Errorf(web.ENotFound, "there is no account %s", id)
	}
	if err != nil {
		return Account{}, fmt.Errorf("accounts: set roles: %w", err)
	}
	return a, nil
}

// Count returns the number of accounts.
func (s *Store) Count(ctx context.Context) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM accounts`).Scan(&n)
	return n, err
}

func hashToken(tok string) []byte {
	sum := sha256.Sum256([]byte(tok))
	return sum[:]
}

// RefreshReuseGrace is how long after its rotation a refresh token may be
// presented again and still be answered, with the successor that rotation
// issued: two tabs, or a page reload racing an in-flight refresh, present one
// token twice within a second or so. Later, presenting it again revokes its
// family (theft detection). Keep it short: within it, a stolen copy of a
// just-rotated token is as good as the owner's.
const RefreshReuseGrace = 30 * time.Second

// execer is a pool or a transaction.
type execer interface {
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
}

// IssueRefresh creates a refresh token in family (a new family when empty).
func (s *Store) IssueRefresh(ctx context.Context, q execer, accountID, family string, now time.Time) (string, time.Time, error) {
	if q == nil {
		q = s.pool
	}
	if family == "" {
		family = newID()
	}
	tok, err := newRefreshToken()
	if err != nil {
		return "", time.Time{}, fmt.Errorf("accounts: issue refresh token: %w", err)
	}
	exp := now.Add(RefreshTTL)
	if err := insertRefresh(ctx, q, tok, accountID, family, nil, exp); err != nil {
		return "", time.Time{}, err
	}
	return tok, exp, nil
}

func newRefreshToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// insertRefresh stores tok (hashed) in family; parent is the token it
// replaces, nil for a sign-in.
func insertRefresh(ctx context.Context, q execer, tok, accountID, family string, parent *string, exp time.Time) error {
	if _, err := q.Exec(ctx, `
		INSERT INTO refresh_tokens (id, account_id, family, token_hash, expires_at, parent_id) VALUES ($1, $2, $3, $4, $5, $6)`,
		newID(), accountID, family, hashToken(tok), exp, parent); err != nil {
		return fmt.Errorf("accounts: issue refresh token: %w", err)
	}
	return nil
}

var errBadRefresh = web.Errorf(web.EUnauthorized, "the refresh token is invalid, expired or already used; sign in again")

// Rotate uses a refresh token once and returns its account and a new token of
// the same family. A token presented again after its rotation gets the same
// successor while within RefreshReuseGrace, the successor unused and the
// family not revoked; otherwise it revokes its family: one of the two holders
// is not its owner. A family is revoked when any of its tokens is, so a
// rotation that races a revocation cannot outlive it.
//
// Only hashes are stored, so the successor cannot be looked up as plaintext;
// it is kept sealed with a key only the rotated token yields (sealSuccessor).
// Issuing a fresh successor to the second request instead would leave one of
// the two callers holding a superseded token (which one depends on which
// response a browser stores last) and sign it out at its next refresh.
func (s *Store) Rotate(ctx context.Context, tok string, now time.Time) (Account, string, time.Time, error) {
	next, err := newRefreshToken()
	if err != nil {
		return Account{}, "", time.Time{}, fmt.Errorf("accounts: refresh: %w", err)
	}
	sealed, err := sealSuccessor(tok, next)
	if err != nil {
		return Account{}, "", time.Time{}, fmt.Errorf("accounts: refresh: %w", err)
	}
	var (
		acc     Account
		issued  string
		exp     time.Time
		rotated bool // a first use, not a grace answer
		refused bool
	)
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var id, accountID, family string
		err := tx.QueryRow(ctx, `
			UPDATE refresh_tokens t SET used_at = $2, successor_sealed = $3
			WHERE token_hash = $1 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > $2
			  AND NOT EXISTS (SELECT 1 FROM refresh_tokens f WHERE f.family = t.family AND f.revoked_at IS NOT NULL)
			RETURNING id::text, account_id::text, family::text`, hashToken(tok), now, sealed).Scan(&id, &accountID, &family)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			// Used already (or unknown, expired, revoked): another request
			// may have rotated it a moment ago. Its row lock made this
			// statement wait for that commit, so the next one sees it.
			var ok bool
			accountID, issued, exp, ok, err = presentedAgain(ctx, tx, tok, now)
			if err != nil {
				return err
			}
			if !ok {
				refused = true
				return nil // commit: a revocation must stick
			}
		case err != nil:
			return err
		default:
			issued, exp, rotated = next, now.Add(RefreshTTL), true
			if err := insertRefresh(ctx, tx, issued, accountID, family, &id, exp); err != nil {
				return err
			}
		}
		acc, _, err = scanAccount(tx.QueryRow(ctx, `SELECT `+accountCols+`, password_hash FROM accounts WHERE id = $1`, accountID))
		return err
	})
	if err != nil {
		return Account{}, "", time.Time{}, fmt.Errorf("accounts: refresh: %w", err)
	}
	if refused {
		return Account{}, "", time.Time{}, errBadRefresh
	}
	if rotated {
		s.sweepSealed(ctx, now)
	}
	return acc, issued, exp, nil
}

// presentedAgain answers a refresh token that the rotation's UPDATE did not
// take. Within the grace window it returns the successor that token's
// rotation issued; a token used earlier, or whose successor has moved on, has
// its family revoked; ok is false unless a successor is returned.
func presentedAgain(ctx context.Context, tx pgx.Tx, tok string, now time.Time) (accountID, successor string, exp time.Time, ok bool, err error) {
	var (
		usedAt, revokedAt *time.Time
		sealed            []byte
		succHash          []byte
		succUsed, succRev *time.Time
		succExp           *time.Time
		familyRevoked     bool
	)
	err = tx.QueryRow(ctx, `
		SELECT t.account_id::text, t.used_at, t.revoked_at, t.successor_sealed,
		       s.token_hash, s.used_at, s.revoked_at, s.expires_at,
		       EXISTS (SELECT 1 FROM refresh_tokens f WHERE f.family = t.family AND f.revoked_at IS NOT NULL)
		FROM refresh_tokens t LEFT JOIN refresh_tokens s ON s.parent_id = t.id
		WHERE t.token_hash = $1`, hashToken(tok)).Scan(&accountID, &usedAt, &revokedAt, &sealed,
		&succHash, &succUsed, &succRev, &succExp, &familyRevoked)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", "", time.Time{}, false, nil // unknown
	}
	if err != nil {
		return "", "", time.Time{}, false, err
	}
	if usedAt == nil {
		return "", "", time.Time{}, false, nil // expired, or revoked before use
	}
	if revokedAt == nil && !familyRevoked && now.Sub(*usedAt) < RefreshReuseGrace &&
		succHash != nil && succUsed == nil && succRev == nil && succExp != nil && succExp.After(now) && sealed != nil {
		if next, err := openSuccessor(tok, sealed); err == nil && bytes.Equal(hashToken(next), succHash) {
			return accountID, next, *succExp, true, nil
		}
	}
	_, err = tx.Exec(ctx, `
		UPDATE refresh_tokens SET revoked_at = $2 WHERE revoked_at IS NULL AND family =
			(SELECT family FROM refresh_tokens WHERE token_hash = $1)`, hashToken(tok), now)
	return "", "", time.Time{}, false, err
}

// sweepSealed clears sealed successors whose grace window is over (with a
// margin for replicas' clocks), so that the database keeps no way to a live
// token for longer than the window. It never waits on a locked row; what it
// leaves, a later rotation sweeps.
func (s *Store) sweepSealed(ctx context.Context, now time.Time) {
	// Best effort: a failure leaves a few sealed values for the next sweep;
	// it must not fail the refresh that already committed.
	_, _ = s.pool.Exec(ctx, `
		UPDATE refresh_tokens SET successor_sealed = NULL WHERE id IN (
			SELECT id FROM refresh_tokens WHERE successor_sealed IS NOT NULL AND used_at < $1
			ORDER BY used_at LIMIT 100 FOR UPDATE SKIP LOCKED)`, now.Add(-2*RefreshReuseGrace))
}

// sealSuccessor encrypts next (AES-256-GCM) with a key derived from tok by
// HKDF. The database stores SHA-256(tok), which does not yield the key: only
// a caller presenting tok can open what is sealed.
func sealSuccessor(tok, next string) ([]byte, error) {
	aead, err := successorAEAD(tok)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return aead.Seal(nonce, nonce, []byte(next), nil), nil
}

func openSuccessor(tok string, sealed []byte) (string, error) {
	aead, err := successorAEAD(tok)
	if err != nil {
		return "", err
	}
	if len(sealed) < aead.NonceSize() {
		return "", errors.New("sealed successor too short")
	}
	plain, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], nil)
	return string(plain), err
}

func successorAEAD(tok string) (cipher.AEAD, error) {
	key, err := hkdf.Key(sha256.New, []byte(tok), nil, "piazza refresh token successor v1", 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// Revoke ends the family of a refresh token (sign-out).
func (s *Store) Revoke(ctx context.Context, tok string, now time.Time) error {
	_, err := s.pool.Exec(ctx, `
		UPDATE refresh_tokens SET revoked_at = $2 WHERE revoked_at IS NULL AND family =
			(SELECT family FROM refresh_tokens WHERE token_hash = $1)`, hashToken(tok), now)
	if err != nil {
		return fmt.Errorf("accounts: sign out: %w", err)
	}
	return nil
}
