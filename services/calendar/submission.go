package calendar

// What became of a submission, for its submitter: anyone may submit without
// an account, so the secret status token is the submitter's only key to it.
// Only the token's SHA-256 is stored; the token travels in the query string,
// which the access log leaves out (it logs the path).

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/localeurope/piazza/pkg/web"
	"github.com/localeurope/piazza/pkg/zones"
)

// States of a submission, as its submitter sees them.
const (
	SubmissionPending  = "pending"
	SubmissionApproved = "approved"
	SubmissionRejected = "rejected"
)

// SubmissionStatus is a submission as its submitter sees it: the review's
// outcome, the manager's reason when it was rejected (or, once approved, why
// the event was cancelled), and the public event once approved.
type SubmissionStatus struct {
	ID          string    `json:"id"`
	City        string    `json:"city"`
	Title       string    `json:"title"`
	Start       string    `json:"start"` // local, in the city's timezone
	StartsAt    time.Time `json:"starts_at"`
	Timezone    string    `json:"timezone"`
	State       string    `json:"state"`
	Status      string    `json:"status"`
	Reason      string    `json:"reason"`
	EventURL    *string   `json:"event_url"`
	SubmittedAt time.Time `json:"submitted_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// statusPath is the path of a submission's status (the token goes in the
// query).
func statusPath(id string) string { return "/api/v1/calendar/submissions/" + id }

// statusURL is the submitter's link to follow a submission.
func statusURL(r *http.Request, id, token string) string {
	scheme, host := baseURL(r)
	return scheme + "://" + host + statusPath(id) + "?token=" + url.QueryEscape(token)
}

// Submission returns the submission id when token is its status token, and
// ENotFound otherwise: a wrong token, an unknown id and a manager's own event
// (which has no token) are told apart by nobody.
func (s *Store) Submission(ctx context.Context, id, token string) (*Event, error) {
	notFound := web.Errorf(web.ENotFound, "there is no submission %q with that token", id)
	if token == "" || len(token) > 100 || uuid.Validate(id) != nil {
		return nil, notFound
	}
	var hash []byte
	err := s.pool.QueryRow(ctx, `SELECT status_token FROM events WHERE id = $1`, id).Scan(&hash)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound
	}
	if err != nil {
		return nil, fmt.Errorf("calendar: submission %s: %w", id, err)
	}
	sum := sha256.Sum256([]byte(token))
	if hash == nil || subtle.ConstantTimeCompare(hash, sum[:]) != 1 {
		return nil, notFound
	}
	return s.Event(ctx, id)
}

func submissionStatus(r *http.Request, e *Event) SubmissionStatus {
	loc, err := zones.Load(e.Timezone)
	if err != nil {
		loc = time.UTC
	}
	st := SubmissionStatus{
		ID: e.ID, City: e.City, Title: e.Title, Start: formatLocal(e.StartLocal, e.AllDay),
		StartsAt: inLoc(e.StartLocal, loc).UTC(), Timezone: e.Timezone,
		State: SubmissionApproved, Status: e.Status, SubmittedAt: e.CreatedAt.UTC(), UpdatedAt: e.UpdatedAt.UTC(),
	}
	switch e.Status {
	case StatusPending:
		st.State = SubmissionPending
	case StatusRejected:
		st.State, st.Reason = SubmissionRejected, e.Reason
	case StatusCancelled:
		st.Reason = e.Reason
	}
	if st.State == SubmissionApproved {
		scheme, host := baseURL(r)
		u := scheme + "://" + host + "/api/v1/calendar/events/" + e.ID
		st.EventURL = &u
	}
	return st
}

// handleSubmissionStatus answers the submitter's status link.
func handleSubmissionStatus(store *Store, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e, err := store.Submission(r.Context(), r.PathValue("id"), r.URL.Query().Get("token"))
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		// The URL holds a secret: keep the answer out of shared caches.
		w.Header().Set("Cache-Control", "no-store")
		web.JSON(w, http.StatusOK, submissionStatus(r, e))
	})
}
