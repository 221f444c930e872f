package listings

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/localeurope/piazza/pkg/auth"
	"github.com/localeurope/piazza/pkg/outbox"
	"github.com/localeurope/piazza/pkg/web"
	"github.com/localeurope/piazza/pkg/zones"
)

// The market day, live: a stall (an accepted application) checks in once the
// day is open, posts short statuses, and checks out. Its live_state goes
// expected → open → closed.

// Live states of a stall.
const (
	liveExpected = "expected"
	liveOpen     = "open"
	liveClosed   = "closed"
)

// DefaultStatusPostInterval is the least time between two status posts of a
// stall unless Options say otherwise: a status is news for the people
// following the stall, not a chat.
const DefaultStatusPostInterval = 30 * time.Second

// statusPostEvery is the least time between two status posts of a stall; 0
// lifts the limit.
func (s *Store) statusPostEvery() time.Duration {
	if s.statusPostInterval != nil {
		return *s.statusPostInterval
	}
	return DefaultStatusPostInterval
}

// Stall is an accepted application: a vendor on a pitch, with its live state.
type Stall struct {
	ApplicationID  string     `json:"application_id"`
	Vendor         VendorRef  `json:"vendor"`
	Pitch          string     `json:"pitch"`
	Status         string     `json:"status"` // always accepted
	CreatedAt      time.Time  `json:"created_at"`
	LiveState      string     `json:"live_state"`
	CheckedInAt    *time.Time `json:"checked_in_at,omitempty"`
	CheckedOutAt   *time.Time `json:"checked_out_at,omitempty"`
	StatusText     string     `json:"status_text,omitempty"`
	StatusPostedAt *time.Time `json:"status_posted_at,omitempty"`
	MarketDayID    string     `json:"market_day_id,omitempty"`
	Version        int64      `json:"version,omitempty"`
}

func stallOf(a Application) Stall {
	return Stall{ApplicationID: a.ID, Vendor: a.Vendor, Pitch: a.Pitch, Status: a.Status, CreatedAt: a.CreatedAt,
		LiveState: a.LiveState, CheckedInAt: a.CheckedInAt, CheckedOutAt: a.CheckedOutAt, StatusText: a.StatusText,
		StatusPostedAt: a.StatusPostedAt, MarketDayID: a.MarketDayID, Version: a.Version}
}

// loadStalls returns the accepted stalls of the days, by day id, ordered by
// pitch code.
func loadStalls(ctx context.Context, q querier, dayIDs []string) (map[string][]Stall, error) {
	rows, err := q.Query(ctx, `
		SELECT a.market_day_id::text, a.id::text, v.id::text, v.name, v.kind, pi.code, a.status, a.created_at,
		       coalesce(a.live_state, 'expected'), a.checked_in_at, a.checked_out_at, coalesce(a.status_text, ''),
		       a.status_posted_at, a.version
		FROM applications a JOIN vendors v ON v.id = a.vendor_id JOIN pitches pi ON pi.id = a.pitch_id
		WHERE a.market_day_id = ANY($1::uuid[]) AND a.status = 'accepted'
		ORDER BY a.market_day_id, pi.code`, dayIDs)
	if err != nil {
		return nil, fmt.Errorf("listings: stalls: %w", err)
	}
	stalls := map[string][]Stall{}
	var st Stall
	_, err = pgx.ForEachRow(rows, []any{&st.MarketDayID, &st.ApplicationID, &st.Vendor.ID, &st.Vendor.Name, &st.Vendor.Kind,
		&st.Pitch, &st.Status, &st.CreatedAt, &st.LiveState, &st.CheckedInAt, &st.CheckedOutAt, &st.StatusText,
		&st.StatusPostedAt, &st.Version}, func() error {
		stalls[st.MarketDayID] = append(stalls[st.MarketDayID], st)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listings: stalls: %w", err)
	}
	return stalls, nil
}

// mayRunStall: the owner, a manager of the city or an admin.
func mayRunStall(p auth.Principal, a Application) error {
	if a.ownedBy(p) || p.Manages(a.City) {
		return nil
	}
	return errNoApplication(a.ID)
}

// CheckIn opens a stall: the application must be accepted, the day open and
// the stall expected.
func (s *Store) CheckIn(ctx context.Context, who auth.Principal, id string, now time.Time) (Stall, error) {
	a, err := s.changeStall(ctx, who, id, mayRunStall, func(q querier, d dayInfo, a Application) (Application, []outbox.Entry, error) {
		if err := liveConflict(d, a, liveExpected, d.Status == "open", "the market day is not open; check in once the manager opens it"); err != nil {
			return a, nil, err
		}
		after, err := setLive(ctx, q, a, liveExpected, now, `live_state = 'open', checked_in_at = $3`)
		if err != nil {
			return a, nil, err
		}
		return stallEntries(ctx, d, after, typeStallCheckedIn, now)
	})
	return stallOf(a), err
}

// CheckOut closes an open stall and clears its status.
func (s *Store) CheckOut(ctx context.Context, who auth.Principal, id string, now time.Time) (Stall, error) {
	a, err := s.changeStall(ctx, who, id, mayRunStall, func(q querier, d dayInfo, a Application) (Application, []outbox.Entry, error) {
		if err := liveConflict(d, a, liveOpen, true, ""); err != nil {
			return a, nil, err
		}
		after, err := setLive(ctx, q, a, liveOpen, now,
			`live_state = 'closed', checked_out_at = $3, status_text = NULL, status_posted_at = NULL`)
		if err != nil {
			return a, nil, err
		}
		return stallEntries(ctx, d, after, typeStallCheckedOut, now)
	})
	return stallOf(a), err
}

// NewStatusPost is the body of POST /applications/{id}/status-posts.
type NewStatusPost struct {
	Text string `json:"text"`
}

// Validate trims the text and requires 1–140 characters on one line.
func (p *NewStatusPost) Validate() error {
	var f web.Fields
	p.Text = strings.TrimSpace(p.Text)
	switch n := utf8.RuneCountInString(p.Text); {
	case n == 0:
		f.Add("text", "is required")
	case n > 140:
		f.Add("text", "must be at most 140 characters")
	case !utf8.ValidString(p.Text) || strings.ContainsAny(p.Text, "\x00\r\n"):
		f.Add("text", "must be one line of text without NUL characters")
	}
	return f.Err()
}

// PostStatus replaces the stall's status text: the day must be open, or
// scheduled for today, and the stall not closed; one post per status post
// interval (30 seconds by default).
func (s *Store) PostStatus(ctx context.Context, who auth.Principal, id, text string, now time.Time) (Stall, error) {
	a, err := s.changeStall(ctx, who, id, mayRunStall, func(q querier, d dayInfo, a Application) (Application, []outbox.Entry, error) {
		today := d.Status == "open"
		if loc, err := zones.Load(d.Timezone); err == nil && d.Status == "scheduled" {
			today = Today(now, loc) == d.Date
		}
		if a.Status != statusAccepted {
			return a, nil, conflictState(a, "given a status")
		}
		if !today {
			return a, nil, web.Errorf(web.EConflict, "statuses are posted on the market day, while it is on; the day is %s on %s", d.Status, d.Date)
		}
		if a.LiveState == liveClosed {
			return a, nil, web.Errorf(web.EConflict, "the stall has checked out")
		}
		if every := s.statusPostEvery(); every > 0 && a.StatusPostedAt != nil && now.Sub(*a.StatusPostedAt) < every {
			return a, nil, web.Errorf(web.ETooMany, "one status every %s, please", every)
		}
		// The post and the stall's new status in one statement (changeStall
		// locked the row).
		after, err := updateStall(ctx, q, a, `
			WITH post AS (INSERT INTO status_posts (id, city, application_id, text, posted_at) VALUES ($3, $4, $1, $5, $2))
			UPDATE applications SET status_text = $5, status_posted_at = $2, version = version + 1, updated_at = $2
			WHERE id = $1 AND status = 'accepted'`, now, newID(), a.City, text)
		if err != nil {
			return a, nil, err
		}
		return stallEntries(ctx, d, after, typeStallPosted, now)
	})
	return stallOf(a), err
}

// liveConflict explains why a stall in a cannot make a live change that
// needs live state want and dayOK.
func liveConflict(d dayInfo, a Application, want string, dayOK bool, dayMsg string) error {
	switch {
	case a.Status != statusAccepted:
		return conflictState(a, "checked in or out: it is not a stall")
	case !dayOK:
		return web.Errorf(web.EConflict, "%s", dayMsg)
	case a.LiveState != want:
		return web.Errorf(web.EConflict, "the stall is %s", a.LiveState)
	}
	return nil
}

// setLive is a live transition: one UPDATE from an accepted application in
// live state from ($1 id, $2 from, $3 now).
func setLive(ctx context.Context, q querier, a Application, from string, now time.Time, set string) (Application, error) {
	return updateStall(ctx, q, a, `UPDATE applications SET `+set+`, version = version + 1, updated_at = $3
		WHERE id = $1 AND status = 'accepted' AND live_state = $2`, from, now)
}

// updateStall runs an UPDATE of a's row ($1 id, then args) and returns a
// with the live fields and version the row has after it; the statement gets
// the RETURNING list here. No row updated is a conflict.
func updateStall(ctx context.Context, q querier, a Application, update string, args ...any) (Application, error) {
	after := a
	err := q.QueryRow(ctx, update+`
		RETURNING live_state, checked_in_at, checked_out_at, coalesce(status_text, ''), status_posted_at, version`,
		append([]any{a.ID}, args...)...).Scan(&after.LiveState, &after.CheckedInAt, &after.CheckedOutAt,
		&after.StatusText, &after.StatusPostedAt, &after.Version)
	if errors.Is(err, pgx.ErrNoRows) {
		return a, web.Errorf(web.EConflict, "the stall is no longer %s", a.LiveState)
	}
	if err != nil {
		return a, fmt.Errorf("listings: stall %s: %w", a.ID, err)
	}
	return after, nil
}

// closeStalls closes the stalls of a day that closed or was cancelled:
// open stalls are checked out (stall.checked_out each), expected ones simply
// never opened. Open offers end with the day. Call it with the day locked.
func closeStalls(ctx context.Context, tx pgx.Tx, dayID string, now time.Time) error {
	d, err := lockDay(ctx, tx, dayID)
	if err != nil {
		return err
	}
	// Lock every stall of the day before reading their states: a stall's
	// own change in flight (changeStall, which does not lock the day)
	// finishes first and is seen here; one that comes after this commits
	// finds the day ended.
	rows, err := tx.Query(ctx, `SELECT id::text, coalesce(live_state, '') FROM applications WHERE market_day_id = $1 AND status = 'accepted'
		ORDER BY id FOR NO KEY UPDATE`, dayID)
	if err != nil {
		return fmt.Errorf("listings: close stalls: %w", err)
	}
	type stallState struct{ ID, Live string }
	stalls, err := pgx.CollectRows(rows, pgx.RowToStructByPos[stallState])
	if err != nil {
		return fmt.Errorf("listings: close stalls: %w", err)
	}
	var open []string
	for _, st := range stalls {
		if st.Live == liveOpen {
			open = append(open, st.ID)
		}
	}
	for _, id := range open {
		a, err := loadApp(ctx, tx, id)
		if err != nil {
			return err
		}
		after, err := setLive(ctx, tx, a, liveOpen, now, `live_state = 'closed', checked_out_at = $3, status_text = NULL, status_posted_at = NULL`)
		if err != nil {
			return err
		}
		if err := emitStall(ctx, tx, d, after, typeStallCheckedOut, after.Pitch, "", "", now); err != nil {
			return err
		}
	}
	if _, err := tx.Exec(ctx, `UPDATE applications SET live_state = 'closed', version = version + 1, updated_at = $2
		WHERE market_day_id = $1 AND status = 'accepted' AND live_state = 'expected'`, dayID, now); err != nil {
		return fmt.Errorf("listings: close stalls: %w", err)
	}
	return nil
}
