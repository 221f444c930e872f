package calendar

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/localeurope/piazza/pkg/auth"
	"github.com/localeurope/piazza/pkg/idempotency"
	"github.com/localeurope/piazza/pkg/ratelimit"
	"github.com/localeurope/piazza/pkg/web"
)

// routes is the whole HTTP surface of the events calendar (described in
// openapi.yaml).
func routes(mux *http.ServeMux, store *Store, log *slog.Logger, now func() time.Time) {
	const p = "/api/v1/calendar"
	mux.Handle("GET "+p+"/openapi.yaml", handleOpenAPI())

	// Reading the calendar: occurrences expanded on the fly.
	mux.Handle("GET "+p+"/cities/{city}/events", handleCalendar(store, log, now, queryRange))
	mux.Handle("GET "+p+"/cities/{city}/today", handleCalendar(store, log, now, todayRange))
	mux.Handle("GET "+p+"/cities/{city}/weekend", handleCalendar(store, log, now, weekendRange))
	mux.Handle("GET "+p+"/events/{id}", handleGetEvent(store, log))
	mux.Handle("GET "+p+"/cities/{city}/categories", handleCategories(store, log, now))
	mux.Handle("GET "+p+"/cities/{city}/places", handlePlaces(store, log, now))

	// Managers edit; anyone submits to the moderation queue. A signed-in
	// caller's POSTs take an Idempotency-Key; anonymous submissions are
	// limited per client address. A keyed submission's answer, kept for its
	// replay, holds the submitter's status token until the key expires (24
	// hours): a retry must get the token, and the token only shows the state
	// of that one submission. The events table keeps only its hash.
	idem := &idempotency.Keys{Pool: store.pool, Log: log, Scope: func(r *http.Request) string {
		p, _ := auth.FromContext(r.Context())
		return p.AccountID
	}}
	// 5 at once, then one a minute, shared by the replicas
	submissions := &ratelimit.Limiter{Pool: store.pool, Name: "submissions", Every: time.Minute, Burst: 5}
	mux.Handle("POST "+p+"/cities/{city}/events", idem.Wrap(handleCreate(store, log)))
	mux.Handle("POST "+p+"/cities/{city}/submissions", limitSubmissions(submissions, now, log, idem.Wrap(handleSubmit(store, log))))
	mux.Handle("GET "+p+"/submissions/{id}", handleSubmissionStatus(store, log))
	mux.Handle("GET "+p+"/cities/{city}/moderation", handleModeration(store, log))
	mux.Handle("PATCH "+p+"/events/{id}", handleUpdate(store, log))
	mux.Handle("POST "+p+"/events/{id}/approve", idem.Wrap(handleReview(store, log, true)))
	mux.Handle("POST "+p+"/events/{id}/reject", idem.Wrap(handleReview(store, log, false)))
	mux.Handle("PUT "+p+"/events/{id}/occurrences/{recurrence}", handleSetOccurrence(store, log))
	mux.Handle("DELETE "+p+"/events/{id}/occurrences/{recurrence}", handleResetOccurrence(store, log))

	// Feeds.
	mux.Handle("GET "+p+"/cities/{city}/calendar.ics", handleICS(store, log, now, ""))
	mux.Handle("GET "+p+"/cities/{city}/places/{place}/calendar.ics", handleICS(store, log, now, "place"))
	mux.Handle("GET "+p+"/cities/{city}/categories/{category}/calendar.ics", handleICS(store, log, now, "category"))
	mux.Handle("GET "+p+"/events/{id}/event.ics", handleEventICS(store, log, now))
	mux.Handle("GET "+p+"/cities/{city}/feed.atom", handleAtom(store, log))
}

// limitSubmissions refuses a client address's submissions beyond the
// limiter's rate with 429; managers (signed in) are not limited.
func limitSubmissions(l *ratelimit.Limiter, now func() time.Time, log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, signedIn := auth.FromContext(r.Context()); !signedIn {
			ok, err := l.Allow(r.Context(), web.ClientIP(r), now())
			if err == nil && !ok {
				err = web.Errorf(web.ETooMany, "too many submissions from your address; try again in a minute")
			}
			if err != nil {
				web.WriteError(w, r, log, err)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}
