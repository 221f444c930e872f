package accounts

import (
	"context"
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

// IssueRefresh creates a refresh token in family (a new family when empty).
func (s *Store) IssueRefresh(ctx context.Context, q interface {
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
}, accountID, family string, now time.Time) (string, time.Time, error) {
	if q == nil {
		q = s.pool
	}
	if family == "" {
		family = newID()
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", time.Time{}, err
	}
	tok := base64.RawURLEncoding.EncodeToString(b)
	exp := now.Add(RefreshTTL)
	if _, err := q.Exec(ctx, `
		INSERT INTO refresh_tokens (id, account_id, family, token_hash, expires_at) VALUES ($1, $2, $3, $4, $5)`,
		newID(), accountID, family, hashToken(tok), exp); err != nil {
		return "", time.Time{}, fmt.Errorf("accounts: issue refresh token: %w", err)
	}
	return tok, exp, nil
}

var errBadRefresh = web.Errorf(web.EUnauthorized, "the refresh token is invalid, expired or already used; sign in again")

// Rotate uses a refresh token once and returns its account and a new token of
// the same family. A token used twice revokes its family: one of the two
// holders is not its owner.
func (s *Store) Rotate(ctx context.Context, tok string, now time.Time) (Account, string, time.Time, error) {
	var (
		acc           Account
		newTok        string
		exp           time.Time
		reuseDetected bool
	)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var accountID, family string
		err := tx.QueryRow(ctx, `
			UPDATE refresh_tokens SET used_at = $2
			WHERE token_hash = $1 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > $2
			RETURNING account_id::text, family::text`, hashToken(tok), now).Scan(&accountID, &family)
		if errors.Is(err, pgx.ErrNoRows) {
			tag, err := tx.Exec(ctx, `
				UPDATE refresh_tokens SET revoked_at = $2 WHERE revoked_at IS NULL AND family =
					(SELECT family FROM refresh_tokens WHERE token_hash = $1 AND used_at IS NOT NULL)`, hashToken(tok), now)
			if err != nil {
				return err
			}
			reuseDetected = tag.RowsAffected() > 0
			return errBadRefresh
		}
		if err != nil {
			return err
		}
		acc, _, err = scanAccount(tx.QueryRow(ctx, `SELECT `+accountCols+`, password_hash FROM accounts WHERE id = $1`, accountID))
		if err != nil {
			return err
		}
		newTok, exp, err = s.IssueRefresh(ctx, tx, accountID, family, now)
		return err
	})
	if reuseDetected {
		// The revocation must stick although the transaction above failed.
		_, _ = s.pool.Exec(ctx, `
			UPDATE refresh_tokens SET revoked_at = $2 WHERE revoked_at IS NULL AND family =
				(SELECT family FROM refresh_tokens WHERE token_hash = $1)`, hashToken(tok), now)
	}
	if err != nil {
		if errors.Is(err, errBadRefresh) {
			return Account{}, "", time.Time{}, errBadRefresh
		}
		return Account{}, "", time.Time{}, fmt.Errorf("accounts: refresh: %w", err)
	}
	return acc, newTok, exp, nil
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
