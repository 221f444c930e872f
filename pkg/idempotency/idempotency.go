// Package idempotency makes POST requests safe to retry. A client sends an
// Idempotency-Key header; the first response to that key (per caller and
// operation) is stored for a day, and a retry with the same key and body gets
// it replayed with "Idempotent-Replayed: true" instead of doing the work again.
// The same key with another body is refused (422); a retry while the first
// request is still running is refused (409).
//
// Responses that say nothing about the request's effect are never stored, so
// that the retry runs normally: 401, 413, 415, 429 and every 5xx.
//
// It must never look inside a request or response body: it stores and replays
// bytes, and leaves what a request means to the handler it wraps.
package idempotency

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/localeurope/piazza/pkg/postgres"
	"github.com/localeurope/piazza/pkg/web"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations is the idempotency table's migration set.
func Migrations() postgres.MigrationSet {
	sub, _ := fs.Sub(migrations, "migrations")
	return postgres.MigrationSet{Name: "idempotency", FS: sub}
}

// Header names.
const (
	KeyHeader      = "Idempotency-Key"
	ReplayedHeader = "Idempotent-Replayed"
)

// Defaults.
const (
	DefaultTTL      = 24 * time.Hour
	DefaultAbandon  = time.Minute // a claim this old belongs to a request that died with its process
	maxKeyLen       = 200
	maxStoredBody   = 1 << 20
	defaultMaxInput = web.MaxBodyBytes
)

// storedHeaders are the response headers a replay repeats.
var storedHeaders = []string{"Content-Type", "Location", "Content-Language"}

// Keys stores responses by idempotency key in the pool's schema.
type Keys struct {
	Pool *pgxpool.Pool
	Log  *slog.Logger
	// Scope names the caller of a request (an account id, say); keys are
	// scoped to it. A request whose scope is "" (an anonymous caller) is
	// passed on untouched.
	Scope func(r *http.Request) string
	// TTL is how long a response is kept (DefaultTTL when zero).
	TTL time.Duration
	// Abandon is how old a claim must be before a retry may take it over
	// (DefaultAbandon when zero).
	Abandon time.Duration
	// MaxBody is the largest body it reads to hash (web.MaxBodyBytes when
	// zero); a larger request is passed on for the handler to refuse.
	MaxBody int64
}

// Wrap returns h guarded by idempotency keys. Requests without the header are
// passed on untouched.
func (k *Keys) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, present := r.Header[http.CanonicalHeaderKey(KeyHeader)]
		if !present {
			h.ServeHTTP(w, r)
			return
		}
		if len(key) != 1 || !validKey(key[0]) {
			web.WriteError(w, r, k.Log, &web.Error{Code: web.EInvalid, Message: "the Idempotency-Key header is invalid",
				Fields: []web.FieldError{{Field: KeyHeader, Message: "must be one value of 1 to 200 printable ASCII characters without spaces"}}})
			return
		}
		scope := ""
		if k.Scope != nil {
			scope = k.Scope(r)
		}
		if scope == "" {
			h.ServeHTTP(w, r)
			return
		}
		body, tooLarge, err := readBody(r, k.maxBody())
		if err != nil {
			web.WriteError(w, r, k.Log, web.Errorf(web.EInvalid, "the body could not be read"))
			return
		}
		if tooLarge { // the handler refuses it; a 413 is never stored
			h.ServeHTTP(w, r)
			return
		}
		sum := sha256.Sum256(body)
		k.serve(w, r, h, scope, r.Method+" "+r.URL.Path, key[0], sum[:])
	})
}

func (k *Keys) serve(w http.ResponseWriter, r *http.Request, h http.Handler, scope, op, key string, hash []byte) {
	ctx := r.Context()
	for attempt := 0; attempt < 3; attempt++ {
		claimed, err := k.claim(ctx, scope, op, key, hash)
		if err != nil {
			web.WriteError(w, r, k.Log, fmt.Errorf("idempotency: claim: %w", err))
			return
		}
		if claimed {
			k.run(w, r, h, scope, op, key)
			return
		}
		st, found, err := k.load(ctx, scope, op, key)
		if err != nil {
			web.WriteError(w, r, k.Log, fmt.Errorf("idempotency: load: %w", err))
			return
		}
		if !found {
			continue // released between our claim and our read: claim again
		}
		switch {
		case !bytes.Equal(st.hash, hash):
			web.WriteError(w, r, k.Log, &web.Error{Code: web.EInvalid, Message: "this Idempotency-Key was used with a different request body",
				Fields: []web.FieldError{{Field: KeyHeader, Message: "was used with a different request body"}}})
		case st.status == nil:
			web.WriteError(w, r, k.Log, web.Errorf(web.EConflict, "a request with this Idempotency-Key is still being processed; retry in a moment"))
		default:
			for name, v := range st.headers {
				w.Header().Set(name, v)
			}
			w.Header().Set(ReplayedHeader, "true")
			w.WriteHeader(*st.status)
			_, _ = w.Write(st.body)
		}
		return
	}
	web.WriteError(w, r, k.Log, web.Errorf(web.EConflict, "a request with this Idempotency-Key is still being processed; retry in a moment"))
}

// run serves the request and stores its response, or releases the claim
// when the response must not be stored (or the handler panics).
func (k *Keys) run(w http.ResponseWriter, r *http.Request, h http.Handler, scope, op, key string) {
	rec := &recorder{ResponseWriter: w}
	stored := false
	defer func() {
		if stored {
			return
		}
		// Release with a context of its own: the client may be gone.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
		defer cancel()
		if _, err := k.Pool.Exec(ctx, `DELETE FROM idempotency_keys WHERE scope = $1 AND operation = $2 AND key = $3 AND status IS NULL`,
			scope, op, key); err != nil {
			k.Log.Error("idempotency key not released", "operation", op, "err", err)
		}
	}()
	h.ServeHTTP(rec, r)
	if !rec.wroteHeader {
		rec.status = http.StatusOK
	}
	if !storable(rec.status) || rec.overflow {
		return
	}
	headers := map[string]string{}
	for _, name := range storedHeaders {
		if v := w.Header().Get(name); v != "" {
			headers[name] = v
		}
	}
	hj, _ := json.Marshal(headers)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
	defer cancel()
	_, err := k.Pool.Exec(ctx, `
		UPDATE idempotency_keys SET status = $4, headers = $5, body = $6
		WHERE scope = $1 AND operation = $2 AND key = $3 AND status IS NULL`,
		scope, op, key, rec.status, hj, rec.body.Bytes())
	if err != nil {
		k.Log.Error("idempotent response not stored", "operation", op, "err", err)
		return
	}
	stored = true
}

// claim inserts a claim on the key, or takes over an expired response or an
// abandoned claim of the same request. It reports whether it holds the claim.
func (k *Keys) claim(ctx context.Context, scope, op, key string, hash []byte) (bool, error) {
	rows, err := k.Pool.Query(ctx, `
		INSERT INTO idempotency_keys AS i (scope, operation, key, request_hash) VALUES ($1, $2, $3, $4)
		ON CONFLICT (scope, operation, key) DO UPDATE
		   SET request_hash = EXCLUDED.request_hash, status = NULL, headers = NULL, body = NULL, created_at = now()
		 WHERE i.created_at < now() - make_interval(secs => $5)
		    OR (i.status IS NULL AND i.request_hash = EXCLUDED.request_hash AND i.created_at < now() - make_interval(secs => $6))
		RETURNING true`, scope, op, key, hash, k.ttl().Seconds(), k.abandon().Seconds())
	if err != nil {
		return false, err
	}
	n := 0
	for rows.Next() {
		n++
	}
	return n == 1, rows.Err()
}

type stored struct {
	hash    []byte
	status  *int
	headers map[string]string
	body    []byte
}

func (k *Keys) load(ctx context.Context, scope, op, key string) (stored, bool, error) {
	var s stored
	err := k.Pool.QueryRow(ctx, `
		SELECT request_hash, status, headers, body FROM idempotency_keys
		WHERE scope = $1 AND operation = $2 AND key = $3`, scope, op, key).Scan(&s.hash, &s.status, &s.headers, &s.body)
	if errors.Is(err, pgx.ErrNoRows) {
		return s, false, nil
	}
	return s, err == nil, err
}

// Prune deletes responses older than the TTL; call it now and then.
func (k *Keys) Prune(ctx context.Context) (int64, error) {
	tag, err := k.Pool.Exec(ctx, `DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(secs => $1)`, k.ttl().Seconds())
	if err != nil {
		return 0, fmt.Errorf("idempotency: prune: %w", err)
	}
	return tag.RowsAffected(), nil
}

func (k *Keys) ttl() time.Duration     { return orDefault(k.TTL, DefaultTTL) }
func (k *Keys) abandon() time.Duration { return orDefault(k.Abandon, DefaultAbandon) }
func (k *Keys) maxBody() int64 {
	if k.MaxBody > 0 {
		return k.MaxBody
	}
	return defaultMaxInput
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// storable reports whether a response with status may be replayed.
func storable(status int) bool {
	switch {
	case status >= 500, status == http.StatusUnauthorized, status == http.StatusRequestEntityTooLarge,
		status == http.StatusUnsupportedMediaType, status == http.StatusTooManyRequests:
		return false
	}
	return true
}

func validKey(k string) bool {
	if len(k) == 0 || len(k) > maxKeyLen {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

// readBody reads up to max bytes of the body and puts what it read back in
// front of the rest, so the handler sees the whole body either way.
func readBody(r *http.Request, max int64) ([]byte, bool, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, false, nil
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, max+1))
	if err != nil {
		return nil, false, err
	}
	if int64(len(b)) > max {
		r.Body = readCloser{io.MultiReader(bytes.NewReader(b), r.Body), r.Body}
		return nil, true, nil
	}
	r.Body = io.NopCloser(bytes.NewReader(b))
	return b, false, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

// recorder passes the response through and keeps a copy.
type recorder struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
	body        bytes.Buffer
	overflow    bool
}

func (r *recorder) WriteHeader(code int) {
	if !r.wroteHeader {
		r.status, r.wroteHeader = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if !r.wroteHeader {
		r.WriteHeader(http.StatusOK)
	}
	if r.body.Len()+len(b) > maxStoredBody {
		r.overflow = true
	} else {
		r.body.Write(b)
	}
	return r.ResponseWriter.Write(b)
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
