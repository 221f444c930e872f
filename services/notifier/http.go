package notifier

import (
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/localeurope/piazza/pkg/auth"
	"github.com/localeurope/piazza/pkg/web"
)

// routes is the whole HTTP surface of the notifier.
func routes(mux *http.ServeMux, store *Store, ws http.Handler, log *slog.Logger) {
	mux.Handle("GET /api/v1/notifier/ws", ws)
	mux.Handle("GET /api/v1/notifier/follows", handleFollows(store, log))
	mux.Handle("PUT /api/v1/notifier/follows/{topic}", handleFollow(store, log))
	mux.Handle("DELETE /api/v1/notifier/follows/{topic}", handleUnfollow(store, log))
	mux.Handle("POST /api/v1/notifier/follows/claim", handleClaim(store, log))
	mux.Handle("GET /api/v1/notifier/inbox", handleInbox(store, log))
	mux.Handle("POST /api/v1/notifier/inbox/read", handleMarkRead(store, log))
	mux.Handle("GET /api/v1/notifier/me", handleExport(store, log))
	mux.Handle("DELETE /api/v1/notifier/me", handleErase(store, log))
}

func handleFollows(store *Store, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		who, err := resident(r)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		fs, err := store.Follows(r.Context(), who)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		web.JSON(w, http.StatusOK, map[string]any{"items": nonNil(fs)})
	})
}

func topicParam(r *http.Request) (string, error) {
	t := r.PathValue("topic")
	if msg := validTopics([]string{t}, 0); msg != "" {
		return "", &web.Error{Code: web.EInvalid, Message: "the request has invalid fields",
			Fields: []web.FieldError{{Field: "topic", Message: msg}}}
	}
	return t, nil
}

func handleFollow(store *Store, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		who, err := resident(r)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		topic, err := topicParam(r)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		f, err := store.Follow(r.Context(), who, topic)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		web.JSON(w, http.StatusOK, f)
	})
}

func handleUnfollow(store *Store, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		who, err := resident(r)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		topic, err := topicParam(r)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		if err := store.Unfollow(r.Context(), who, topic); err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// handleClaim moves the device's follows to the signed-in account: call it
// once after signing in, with both the token and the device header.
func handleClaim(store *Store, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := auth.Require(r.Context())
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		d, err := uuid.Parse(r.Header.Get(DeviceHeader))
		if err != nil {
			web.WriteError(w, r, log, web.Errorf(web.EInvalid, "send the device id to claim in %s", DeviceHeader))
			return
		}
		n, err := store.Claim(r.Context(), "device:"+d.String(), "account:"+p.AccountID)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		web.JSON(w, http.StatusOK, map[string]any{"moved": n})
	})
}

func handleInbox(store *Store, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		who, err := resident(r)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		var f web.Fields
		limit := 50
		if v := r.URL.Query().Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 100 {
				f.Add("limit", "must be 1 to 100")
			}
			limit = n
		}
		cursor := r.URL.Query().Get("cursor")
		if cursor != "" {
			if _, err := uuid.Parse(cursor); err != nil || len(cursor) != 36 {
				f.Add("cursor", "is not a cursor this endpoint gave out")
			}
		}
		if err := f.Err(); err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		items, err := store.Inbox(r.Context(), who, cursor, limit+1)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		var next any
		if len(items) > limit {
			items = items[:limit]
			next = items[limit-1].ID
		}
		web.JSON(w, http.StatusOK, map[string]any{"items": nonNil(items), "next_cursor": next})
	})
}

// markRead is the body of POST /inbox/read.
type markRead struct {
	IDs []string `json:"ids"`
}

func (m *markRead) Validate() error {
	var f web.Fields
	if len(m.IDs) == 0 || len(m.IDs) > 100 {
		f.Add("ids", "must list 1 to 100 notification ids")
	}
	for i, id := range m.IDs {
		if _, err := uuid.Parse(id); err != nil || len(id) != 36 {
			f.Add("ids["+strconv.Itoa(i)+"]", "must be a notification id")
		}
	}
	return f.Err()
}

func handleMarkRead(store *Store, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		who, err := resident(r)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		in, err := web.Decode[markRead](w, r)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		n, err := store.MarkRead(r.Context(), who, in.IDs)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		web.JSON(w, http.StatusOK, map[string]any{"marked": n})
	})
}

// handleExport returns everything the notifier holds about the resident.
func handleExport(store *Store, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		who, err := resident(r)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		fs, err := store.Follows(r.Context(), who)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		reads, err := store.Reads(r.Context(), who)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		kind, id, _ := strings.Cut(who, ":")
		web.JSON(w, http.StatusOK, map[string]any{"resident": map[string]string{"kind": kind, "id": id},
			"follows": nonNil(fs), "read_notifications": nonNil(reads)})
	})
}

func handleErase(store *Store, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		who, err := resident(r)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		if err := store.Erase(r.Context(), who); err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
