package calendar

import (
	"log/slog"
	"net/http"
	"time"
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

	// Managers edit; anyone submits to the moderation queue.
	mux.Handle("POST "+p+"/cities/{city}/events", handleCreate(store, log))
	mux.Handle("POST "+p+"/cities/{city}/submissions", handleSubmit(store, log))
	mux.Handle("GET "+p+"/cities/{city}/moderation", handleModeration(store, log))
	mux.Handle("PATCH "+p+"/events/{id}", handleUpdate(store, log))
	mux.Handle("POST "+p+"/events/{id}/approve", handleReview(store, log, true))
	mux.Handle("POST "+p+"/events/{id}/reject", handleReview(store, log, false))
	mux.Handle("PUT "+p+"/events/{id}/occurrences/{recurrence}", handleSetOccurrence(store, log))
	mux.Handle("DELETE "+p+"/events/{id}/occurrences/{recurrence}", handleResetOccurrence(store, log))

	// Feeds.
	mux.Handle("GET "+p+"/cities/{city}/calendar.ics", handleICS(store, log, now, ""))
	mux.Handle("GET "+p+"/cities/{city}/places/{place}/calendar.ics", handleICS(store, log, now, "place"))
	mux.Handle("GET "+p+"/cities/{city}/categories/{category}/calendar.ics", handleICS(store, log, now, "category"))
	mux.Handle("GET "+p+"/events/{id}/event.ics", handleEventICS(store, log, now))
	mux.Handle("GET "+p+"/cities/{city}/feed.atom", handleAtom(store, log))
}
