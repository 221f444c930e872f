package calendar

import (
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/localeurope/piazza/pkg/auth"
	"github.com/localeurope/piazza/pkg/web"
	"github.com/localeurope/piazza/pkg/zones"
)

// EventView is an event series as the API shows it.
type EventView struct {
	ID            string         `json:"id"`
	UID           string         `json:"uid"`
	City          string         `json:"city"`
	Title         string         `json:"title"`
	Description   string         `json:"description"`
	Place         *Place         `json:"place"`
	Address       string         `json:"address"`
	Category      string         `json:"category"`
	Organiser     string         `json:"organiser"`
	ImageURL      string         `json:"image_url"`
	Links         []Link         `json:"links"`
	Accessibility string         `json:"accessibility"`
	AllDay        bool           `json:"all_day"`
	Start         string         `json:"start"`
	End           string         `json:"end"`
	Timezone      string         `json:"timezone"`
	StartsAt      time.Time      `json:"starts_at"`
	EndsAt        time.Time      `json:"ends_at"`
	RRule         string         `json:"rrule"`
	ExDates       []string       `json:"exdates"`
	RDates        []string       `json:"rdates"`
	Overrides     []OverrideView `json:"overrides"`
	Status        string         `json:"status"`
	Reason        string         `json:"reason"`
	Sequence      int            `json:"sequence"`
	Version       int64          `json:"version"`
	CreatedAt     time.Time      `json:"created_at"`
	UpdatedAt     time.Time      `json:"updated_at"`
	ICSURL        string         `json:"ics_url"`
	WebcalURL     string         `json:"webcal_url"`
	// Submitter is shown to the city's managers only.
	Submitter *Submitter `json:"submitter,omitempty"`
}

// Submitter is who submitted an event for review.
type Submitter struct {
	Name  string `json:"name"`
	Email string `json:"email"`
}

// OverrideView is one changed occurrence.
type OverrideView struct {
	RecurrenceID string    `json:"recurrence_id"`
	Status       string    `json:"status"`
	Start        string    `json:"start"`
	End          string    `json:"end"`
	StartsAt     time.Time `json:"starts_at"`
	EndsAt       time.Time `json:"ends_at"`
	Title        string    `json:"title"`
	Sequence     int       `json:"sequence"`
}

func view(r *http.Request, e *Event, manager bool) EventView {
	loc, err := zones.Load(e.Timezone)
	if err != nil {
		loc = time.UTC
	}
	sr := &series{e: e, loc: loc}
	scheme, host := baseURL(r)
	icsPath := host + "/api/v1/calendar/events/" + e.ID + "/event.ics"
	v := EventView{
		ID: e.ID, UID: e.UID, City: e.City, Title: e.Title, Description: e.Description, Address: e.Address,
		Category: e.Category, Organiser: e.Organiser, ImageURL: e.ImageURL, Links: e.Links, Accessibility: e.Accessibility,
		AllDay: e.AllDay, Start: formatLocal(e.StartLocal, e.AllDay), End: formatLocal(e.EndLocal, e.AllDay),
		Timezone: e.Timezone, StartsAt: inLoc(e.StartLocal, loc).UTC(), EndsAt: e.firstEnd(loc).UTC(), RRule: e.RRule,
		ExDates: []string{}, RDates: []string{}, Overrides: []OverrideView{}, Status: e.Status, Reason: e.Reason,
		Sequence: e.Sequence, Version: e.Version, CreatedAt: e.CreatedAt.UTC(), UpdatedAt: e.UpdatedAt.UTC(),
		ICSURL: scheme + "://" + icsPath, WebcalURL: "webcal://" + icsPath,
	}
	if v.Links == nil {
		v.Links = []Link{}
	}
	if e.PlaceID != nil {
		v.Place = &Place{ID: *e.PlaceID, Name: e.PlaceName}
	}
	for _, d := range e.ExDates {
		v.ExDates = append(v.ExDates, formatLocal(d, e.AllDay))
	}
	for _, d := range e.RDates {
		v.RDates = append(v.RDates, formatLocal(d, e.AllDay))
	}
	for _, o := range e.Overrides {
		v.Overrides = append(v.Overrides, OverrideView{
			RecurrenceID: formatLocal(o.RecurrenceID, e.AllDay), Status: o.Status,
			Start: formatLocal(o.StartLocal, e.AllDay), End: formatLocal(o.EndLocal, e.AllDay),
			StartsAt: inLoc(o.StartLocal, loc).UTC(), EndsAt: sr.overrideEnd(o).UTC(), Title: o.Title, Sequence: o.Sequence,
		})
	}
	if manager && (e.SubmitterName != "" || e.SubmitterMail != "") {
		v.Submitter = &Submitter{Name: e.SubmitterName, Email: e.SubmitterMail}
	}
	return v
}

func manages(r *http.Request, city string) bool {
	p, ok := auth.FromContext(r.Context())
	return ok && p.Manages(city)
}

func public(status string) bool {
	return status == StatusConfirmed || status == StatusTentative || status == StatusCancelled
}

// handleGetEvent shows an event: public ones to anyone; submissions to the
// city's managers and to the submitter with the secret token (?token=).
func handleGetEvent(store *Store, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		e, err := store.Event(r.Context(), id)
		if err == errMarketDay {
			err = web.Errorf(web.ENotFound, "%s is a market day: see /api/v1/listings/market-days/%s", id, id)
		}
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		manager := manages(r, e.City)
		if !public(e.Status) && !manager && !store.CheckStatusToken(r.Context(), id, r.URL.Query().Get("token")) {
			web.WriteError(w, r, log, web.Errorf(web.ENotFound, "there is no event %q", id))
			return
		}
		web.JSON(w, http.StatusOK, view(r, e, manager))
	})
}

func handleCreate(store *Store, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		city := r.PathValue("city")
		p, err := auth.RequireManager(r.Context(), city)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		in, err := web.Decode[EventInput](w, r)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		e, err := store.CreateEvent(r.Context(), city, p.AccountID, in)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		w.Header().Set("Location", "/api/v1/calendar/events/"+e.ID)
		web.JSON(w, http.StatusCreated, view(r, e, true))
	})
}

// Submission is the answer to a submission: the event waiting for review,
// and the submitter's secret link to follow it.
type Submission struct {
	Event       EventView `json:"event"`
	StatusToken string    `json:"status_token"`
	StatusURL   string    `json:"status_url"`
}

func handleSubmit(store *Store, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		city := r.PathValue("city")
		if _, err := store.Timezone(r.Context(), city); err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		in, err := web.Decode[EventInput](w, r)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		e, token, err := store.SubmitEvent(r.Context(), city, in)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		w.Header().Set("Location", "/api/v1/calendar/events/"+e.ID)
		w.Header().Set("Cache-Control", "no-store")
		web.JSON(w, http.StatusCreated, Submission{Event: view(r, e, false), StatusToken: token, StatusURL: statusURL(r, e.ID, token)})
	})
}

// ModerationPage is a page of the moderation queue.
type ModerationPage struct {
	Items      []EventView `json:"items"`
	NextCursor *string     `json:"next_cursor"`
}

func handleModeration(store *Store, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		city := r.PathValue("city")
		if _, err := auth.RequireManager(r.Context(), city); err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		var fe web.Fields
		limit := 50
		if v := r.URL.Query().Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 100 {
				fe.Add("limit", "must be a number from 1 to 100")
			}
			limit = n
		}
		after := r.URL.Query().Get("cursor")
		if after != "" && uuid.Validate(after) != nil {
			fe.Add("cursor", "is not a cursor of this list")
		}
		if err := fe.Err(); err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		events, err := store.Pending(r.Context(), city, after, limit+1)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		page := ModerationPage{Items: []EventView{}}
		for i, e := range events {
			if i == limit {
				c := events[i-1].ID
				page.NextCursor = &c
				break
			}
			page.Items = append(page.Items, view(r, e, true))
		}
		web.JSON(w, http.StatusOK, page)
	})
}

func handleUpdate(store *Store, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := requireManager(r, store); err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		in, err := web.Decode[EventInput](w, r)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		if in.SubmitterName != nil || in.SubmitterEmail != nil {
			web.WriteError(w, r, log, (&web.Fields{{Field: "submitter_name", Message: "is set only by a submission"}}).Err())
			return
		}
		e, err := store.UpdateEvent(r.Context(), r.PathValue("id"), in)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		web.JSON(w, http.StatusOK, view(r, e, true))
	})
}

// ReviewInput approves (status: confirmed or tentative) or rejects (reason)
// a submission.
type ReviewInput struct {
	Status  *string `json:"status"`
	Reason  *string `json:"reason"`
	Version *int64  `json:"version"`
}

func handleReview(store *Store, log *slog.Logger, approve bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := requireManager(r, store); err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		in, err := web.Decode[ReviewInput](w, r)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		var fe web.Fields
		status, reason := StatusConfirmed, ""
		if in.Status != nil {
			if !approve || (*in.Status != StatusConfirmed && *in.Status != StatusTentative) {
				fe.Add("status", "must be confirmed or tentative, and only when approving")
			}
			status = *in.Status
		}
		if in.Reason != nil {
			reason = *in.Reason
			if utf8Len(reason) > 1000 {
				fe.Add("reason", "must be at most 1000 characters")
			}
		}
		if !approve && reason == "" {
			fe.Add("reason", "is required: the submitter reads it")
		}
		if err := fe.Err(); err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		e, err := store.Review(r.Context(), r.PathValue("id"), approve, status, reason, in.Version)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		web.JSON(w, http.StatusOK, view(r, e, true))
	})
}

// recurrenceFromPath reads an occurrence's original local start from the
// path: 2026-05-02T10:00, or 2026-05-02 for an all-day event.
func recurrenceFromPath(r *http.Request) (time.Time, error) {
	v := r.PathValue("recurrence")
	if t, ok := parseLocal(v, false); ok {
		return t, nil
	}
	if t, ok := parseLocal(v, true); ok {
		return t, nil
	}
	return time.Time{}, web.Errorf(web.ENotFound, "%q is not an occurrence: use its original local start, like 2026-05-02T10:00", v)
}

func handleSetOccurrence(store *Store, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := requireManager(r, store); err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		recur, err := recurrenceFromPath(r)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		in, err := web.Decode[OverrideInput](w, r)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		e, err := store.SetOverride(r.Context(), r.PathValue("id"), recur, in)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		web.JSON(w, http.StatusOK, view(r, e, true))
	})
}

func handleResetOccurrence(store *Store, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := requireManager(r, store); err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		recur, err := recurrenceFromPath(r)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		e, err := store.DeleteOverride(r.Context(), r.PathValue("id"), recur, nil)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		web.JSON(w, http.StatusOK, view(r, e, true))
	})
}

func utf8Len(s string) int { return len([]rune(s)) }
