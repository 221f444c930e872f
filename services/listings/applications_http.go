package listings

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/localeurope/piazza/pkg/auth"
	"github.com/localeurope/piazza/pkg/idempotency"
	"github.com/localeurope/piazza/pkg/web"
)

// Handlers of applications, batches and the live stall. Every one needs a
// token; who may do what is decided by the store (applications.go).

// idempotencyKeys guards the service's POST routes (see routes.go).
func idempotencyKeys(store *Store, log *slog.Logger) *idempotency.Keys {
	return &idempotency.Keys{Pool: store.pool, Log: log, Scope: func(r *http.Request) string {
		p, _ := auth.FromContext(r.Context())
		return p.AccountID
	}}
}

// pathID returns the {id} of the path, or writes a 404 naming what.
func pathID(w http.ResponseWriter, r *http.Request, log *slog.Logger, what string) (string, bool) {
	id := r.PathValue("id")
	if !isUUID(id) {
		web.WriteError(w, r, log, web.Errorf(web.ENotFound, "there is no %s %q", what, id))
		return "", false
	}
	return id, true
}

// optionalBody decodes a body that may be absent (an absent body is the zero
// T).
func optionalBody[T any](w http.ResponseWriter, r *http.Request) (T, error) {
	var zero T
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return zero, nil
	}
	return web.Decode[T](w, r)
}

// authed wraps a handler that needs a principal and an {id}.
func authed(log *slog.Logger, what string, h func(w http.ResponseWriter, r *http.Request, p auth.Principal, id string) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := auth.Require(r.Context())
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		id, ok := pathID(w, r, log, what)
		if !ok {
			return
		}
		if err := h(w, r, p, id); err != nil {
			web.WriteError(w, r, log, err)
		}
	})
}

func handleApply(store *Store, log *slog.Logger, now func() time.Time) http.Handler {
	return authed(log, "market day", func(w http.ResponseWriter, r *http.Request, p auth.Principal, id string) error {
		na, err := web.Decode[NewApplication](w, r)
		if err != nil {
			return err
		}
		app, err := store.ApplyAs(r.Context(), &p, id, na, now())
		if err != nil {
			return err
		}
		w.Header().Set("Location", "/api/v1/listings/applications/"+app.ID)
		web.JSON(w, http.StatusCreated, app)
		return nil
	})
}

func handleApplyBatch(store *Store, log *slog.Logger, now func() time.Time) http.Handler {
	return authed(log, "market", func(w http.ResponseWriter, r *http.Request, p auth.Principal, id string) error {
		nb, err := web.Decode[NewBatch](w, r)
		if err != nil {
			return err
		}
		b, err := store.ApplyBatch(r.Context(), p, id, nb, now())
		if err != nil {
			return err
		}
		w.Header().Set("Location", "/api/v1/listings/application-batches/"+b.ID)
		web.JSON(w, http.StatusCreated, b)
		return nil
	})
}

func handleBatch(store *Store, log *slog.Logger, now func() time.Time) http.Handler {
	return authed(log, "application batch", func(w http.ResponseWriter, r *http.Request, p auth.Principal, id string) error {
		b, err := store.Batch(r.Context(), p, id, now())
		if err != nil {
			return err
		}
		web.JSON(w, http.StatusOK, b)
		return nil
	})
}

func handleWithdrawBatch(store *Store, log *slog.Logger, now func() time.Time) http.Handler {
	return authed(log, "application batch", func(w http.ResponseWriter, r *http.Request, p auth.Principal, id string) error {
		if _, err := optionalBody[struct{}](w, r); err != nil {
			return err
		}
		b, err := store.WithdrawBatch(r.Context(), p, id, now())
		if err != nil {
			return err
		}
		web.JSON(w, http.StatusOK, b)
		return nil
	})
}

func handleVendorBatches(store *Store, log *slog.Logger, now func() time.Time) http.Handler {
	return authed(log, "vendor", func(w http.ResponseWriter, r *http.Request, p auth.Principal, id string) error {
		status := r.URL.Query().Get("status")
		if status != "" && status != batchActive && status != batchWithdrawn && status != batchEnded {
			return &web.Error{Code: web.EInvalid, Message: "the request has invalid fields",
				Fields: []web.FieldError{{Field: "status", Message: "must be active, withdrawn or ended"}}}
		}
		pg, err := readPage(r, "vendor-batches", id, status)
		if err != nil {
			return err
		}
		items, next, err := store.VendorBatches(r.Context(), p, id, status, pg, now())
		if err != nil {
			return err
		}
		for i := range items {
			items[i].Items, items[i].UpcomingDates = nil, nil
		}
		web.JSON(w, http.StatusOK, pageOf[Batch]{Items: items, NextCursor: next})
		return nil
	})
}

func handleApplication(store *Store, log *slog.Logger) http.Handler {
	return authed(log, "application", func(w http.ResponseWriter, r *http.Request, p auth.Principal, id string) error {
		a, err := loadApp(r.Context(), store.pool, id)
		if err != nil {
			return err
		}
		if err := mayRead(p, a); err != nil {
			return err
		}
		web.JSON(w, http.StatusOK, a)
		return nil
	})
}

func handleDayApplications(store *Store, log *slog.Logger) http.Handler {
	return authed(log, "market day", func(w http.ResponseWriter, r *http.Request, p auth.Principal, id string) error {
		af, err := readAppFilter(r, false)
		if err != nil {
			return err
		}
		pg, err := readPage(r, append([]string{"day-applications", id}, af.key()...)...)
		if err != nil {
			return err
		}
		items, next, err := store.DayApplications(r.Context(), p, id, af, pg)
		if err != nil {
			return err
		}
		web.JSON(w, http.StatusOK, pageOf[Application]{Items: items, NextCursor: next})
		return nil
	})
}

func handleVendorApplications(store *Store, log *slog.Logger) http.Handler {
	return authed(log, "vendor", func(w http.ResponseWriter, r *http.Request, p auth.Principal, id string) error {
		af, err := readAppFilter(r, true)
		if err != nil {
			return err
		}
		pg, err := readPage(r, append([]string{"vendor-applications", id}, af.key()...)...)
		if err != nil {
			return err
		}
		items, next, err := store.VendorApplications(r.Context(), p, id, af, pg)
		if err != nil {
			return err
		}
		web.JSON(w, http.StatusOK, pageOf[Application]{Items: items, NextCursor: next})
		return nil
	})
}

// Request bodies of the transitions.
type (
	withdrawRequest struct {
		Reason string `json:"reason,omitempty"`
	}
	acceptRequest struct {
		Pitch string `json:"pitch,omitempty"`
	}
	rejectRequest struct {
		Reason string `json:"reason"`
	}
	moveRequest struct {
		Pitch string `json:"pitch"`
	}
)

func (b *withdrawRequest) Validate() error {
	var f web.Fields
	checkNote(&f, "reason", b.Reason)
	return f.Err()
}

func (b *acceptRequest) Validate() error {
	var f web.Fields
	checkPitchCode(&f, "pitch", b.Pitch)
	return f.Err()
}

func (b *rejectRequest) Validate() error {
	var f web.Fields
	if b.Reason == "" {
		f.Add("reason", "is required")
	} else {
		checkNote(&f, "reason", b.Reason)
	}
	return f.Err()
}

func (b *moveRequest) Validate() error {
	var f web.Fields
	if b.Pitch == "" {
		f.Add("pitch", "is required")
	}
	checkPitchCode(&f, "pitch", b.Pitch)
	return f.Err()
}

// applicationAction answers a transition with the application after it.
func applicationAction(log *slog.Logger, do func(r *http.Request, w http.ResponseWriter, p auth.Principal, id string) (Application, error)) http.Handler {
	return authed(log, "application", func(w http.ResponseWriter, r *http.Request, p auth.Principal, id string) error {
		a, err := do(r, w, p, id)
		if err != nil {
			return err
		}
		web.JSON(w, http.StatusOK, a)
		return nil
	})
}

func handleWithdraw(store *Store, log *slog.Logger, now func() time.Time) http.Handler {
	return applicationAction(log, func(r *http.Request, w http.ResponseWriter, p auth.Principal, id string) (Application, error) {
		b, err := optionalBody[withdrawRequest](w, r)
		if err != nil {
			return Application{}, err
		}
		return store.Withdraw(r.Context(), p, id, b.Reason, now())
	})
}

func handleAccept(store *Store, log *slog.Logger, now func() time.Time) http.Handler {
	return applicationAction(log, func(r *http.Request, w http.ResponseWriter, p auth.Principal, id string) (Application, error) {
		b, err := optionalBody[acceptRequest](w, r)
		if err != nil {
			return Application{}, err
		}
		return store.Accept(r.Context(), p, id, b.Pitch, now())
	})
}

func handleReject(store *Store, log *slog.Logger, now func() time.Time) http.Handler {
	return applicationAction(log, func(r *http.Request, w http.ResponseWriter, p auth.Principal, id string) (Application, error) {
		b, err := web.Decode[rejectRequest](w, r)
		if err != nil {
			return Application{}, err
		}
		return store.Reject(r.Context(), p, id, b.Reason, now())
	})
}

func handleWaitlist(store *Store, log *slog.Logger, now func() time.Time) http.Handler {
	return applicationAction(log, func(r *http.Request, w http.ResponseWriter, p auth.Principal, id string) (Application, error) {
		if _, err := optionalBody[struct{}](w, r); err != nil {
			return Application{}, err
		}
		return store.Waitlist(r.Context(), p, id, now())
	})
}

func handleMove(store *Store, log *slog.Logger, now func() time.Time) http.Handler {
	return applicationAction(log, func(r *http.Request, w http.ResponseWriter, p auth.Principal, id string) (Application, error) {
		b, err := web.Decode[moveRequest](w, r)
		if err != nil {
			return Application{}, err
		}
		return store.Move(r.Context(), p, id, b.Pitch, now())
	})
}

func handleAcceptOffer(store *Store, log *slog.Logger, now func() time.Time) http.Handler {
	return applicationAction(log, func(r *http.Request, w http.ResponseWriter, p auth.Principal, id string) (Application, error) {
		if _, err := optionalBody[struct{}](w, r); err != nil {
			return Application{}, err
		}
		return store.AcceptOffer(r.Context(), p, id, now())
	})
}

func handleDeclineOffer(store *Store, log *slog.Logger, now func() time.Time) http.Handler {
	return applicationAction(log, func(r *http.Request, w http.ResponseWriter, p auth.Principal, id string) (Application, error) {
		if _, err := optionalBody[struct{}](w, r); err != nil {
			return Application{}, err
		}
		return store.DeclineOffer(r.Context(), p, id, now())
	})
}

func handleCheckIn(store *Store, log *slog.Logger, now func() time.Time) http.Handler {
	return authed(log, "application", func(w http.ResponseWriter, r *http.Request, p auth.Principal, id string) error {
		if _, err := optionalBody[struct{}](w, r); err != nil {
			return err
		}
		st, err := store.CheckIn(r.Context(), p, id, now())
		if err != nil {
			return err
		}
		web.JSON(w, http.StatusOK, st)
		return nil
	})
}

func handleCheckOut(store *Store, log *slog.Logger, now func() time.Time) http.Handler {
	return authed(log, "application", func(w http.ResponseWriter, r *http.Request, p auth.Principal, id string) error {
		if _, err := optionalBody[struct{}](w, r); err != nil {
			return err
		}
		st, err := store.CheckOut(r.Context(), p, id, now())
		if err != nil {
			return err
		}
		web.JSON(w, http.StatusOK, st)
		return nil
	})
}

func handlePostStatus(store *Store, log *slog.Logger, now func() time.Time) http.Handler {
	return authed(log, "application", func(w http.ResponseWriter, r *http.Request, p auth.Principal, id string) error {
		b, err := web.Decode[NewStatusPost](w, r)
		if err != nil {
			return err
		}
		st, err := store.PostStatus(r.Context(), p, id, b.Text, now())
		if err != nil {
			return err
		}
		web.JSON(w, http.StatusCreated, st)
		return nil
	})
}
