package calendar

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/localeurope/piazza/pkg/bus"
	"github.com/localeurope/piazza/pkg/outbox"
	"github.com/localeurope/piazza/pkg/web"
	"github.com/localeurope/piazza/pkg/zones"
	"github.com/localeurope/piazza/services/contract"
)

// querier is a pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

const eventColumns = `id::text, city, uid, title, description, place_id::text, place_name, address, category, organiser,
	image_url, links, accessibility, all_day, start_local, end_local, timezone, rrule, exdates, rdates, status, reason,
	sequence, version, submitter_name, submitter_email, created_at, updated_at`

func scanEvent(row pgx.Row) (*Event, error) {
	var e Event
	err := row.Scan(&e.ID, &e.City, &e.UID, &e.Title, &e.Description, &e.PlaceID, &e.PlaceName, &e.Address, &e.Category,
		&e.Organiser, &e.ImageURL, &e.Links, &e.Accessibility, &e.AllDay, &e.StartLocal, &e.EndLocal, &e.Timezone,
		&e.RRule, &e.ExDates, &e.RDates, &e.Status, &e.Reason, &e.Sequence, &e.Version, &e.SubmitterName,
		&e.SubmitterMail, &e.CreatedAt, &e.UpdatedAt)
	return &e, err
}

// loadOverrides fills the overrides of events (one query for all).
func loadOverrides(ctx context.Context, db querier, events []*Event) error {
	if len(events) == 0 {
		return nil
	}
	byID := make(map[string]*Event, len(events))
	ids := make([]string, 0, len(events))
	for _, e := range events {
		byID[e.ID] = e
		ids = append(ids, e.ID)
	}
	const sql = `SELECT event_id::text, recurrence_id, status, start_local, end_local, title, sequence, updated_at
		FROM overrides WHERE event_id = ANY($1::uuid[]) ORDER BY event_id, recurrence_id`
	rows, err := db.Query(ctx, sql, ids)
	if err != nil {
		return fmt.Errorf("calendar: overrides: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var o Override
		if err := rows.Scan(&id, &o.RecurrenceID, &o.Status, &o.StartLocal, &o.EndLocal, &o.Title, &o.Sequence, &o.UpdatedAt); err != nil {
			return fmt.Errorf("calendar: overrides: %w", err)
		}
		byID[id].Overrides = append(byID[id].Overrides, o)
	}
	return rows.Err()
}

// Event returns an event with its overrides, or ENotFound.
func (s *Store) Event(ctx context.Context, id string) (*Event, error) {
	if uuid.Validate(id) != nil {
		return nil, web.Errorf(web.ENotFound, "there is no event %q", id)
	}
	e, err := scanEvent(s.pool.QueryRow(ctx, `SELECT `+eventColumns+` FROM events WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, s.notAnEvent(ctx, id)
	}
	if err != nil {
		return nil, fmt.Errorf("calendar: event %s: %w", id, err)
	}
	if err := loadOverrides(ctx, s.pool, []*Event{e}); err != nil {
		return nil, err
	}
	return e, nil
}

// notAnEvent explains why id is not a calendar event: a market day (409,
// managed in listings) or nothing (404).
func (s *Store) notAnEvent(ctx context.Context, id string) error {
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM entries WHERE id = $1`, id).Scan(&n); err != nil {
		return fmt.Errorf("calendar: entry %s: %w", id, err)
	}
	if n > 0 {
		return errMarketDay
	}
	return web.Errorf(web.ENotFound, "there is no event %q", id)
}

// EventCity returns the city of an event, or ENotFound, or the market-day
// conflict.
func (s *Store) EventCity(ctx context.Context, id string) (string, error) {
	if uuid.Validate(id) != nil {
		return "", web.Errorf(web.ENotFound, "there is no event %q", id)
	}
	var city string
	err := s.pool.QueryRow(ctx, `SELECT city FROM events WHERE id = $1`, id).Scan(&city)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", s.notAnEvent(ctx, id)
	}
	if err != nil {
		return "", fmt.Errorf("calendar: event %s: %w", id, err)
	}
	return city, nil
}

// CheckStatusToken reports whether token is the submitter's secret of event id.
func (s *Store) CheckStatusToken(ctx context.Context, id, token string) bool {
	if token == "" || uuid.Validate(id) != nil {
		return false
	}
	var hash []byte
	if err := s.pool.QueryRow(ctx, `SELECT status_token FROM events WHERE id = $1`, id).Scan(&hash); err != nil || hash == nil {
		return false
	}
	sum := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(hash, sum[:]) == 1
}

func (s *Store) location(ctx context.Context, tx pgx.Tx, city string) (*time.Location, error) {
	var tz string
	err := tx.QueryRow(ctx, `SELECT timezone FROM cities WHERE slug = $1`, city).Scan(&tz)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, web.Errorf(web.ENotFound, "there is no city %q on the calendar", city)
	}
	if err != nil {
		return nil, fmt.Errorf("calendar: city %s: %w", city, err)
	}
	return zones.Load(tz)
}

// resolvePlace fills the place name from the city's places.
func resolvePlace(ctx context.Context, tx pgx.Tx, e *Event) error {
	if e.PlaceID == nil {
		e.PlaceName = ""
		return nil
	}
	if uuid.Validate(*e.PlaceID) != nil {
		return (&web.Fields{{Field: "place_id", Message: "must be the id of one of the city's places"}}).Err()
	}
	err := tx.QueryRow(ctx, `SELECT name FROM places WHERE id = $1 AND city = $2`, *e.PlaceID, e.City).Scan(&e.PlaceName)
	if errors.Is(err, pgx.ErrNoRows) {
		return (&web.Fields{{Field: "place_id", Message: "is not one of the city's places"}}).Err()
	}
	return err
}

// CreateEvent adds a manager's event (status confirmed or tentative).
func (s *Store) CreateEvent(ctx context.Context, city, by string, in EventInput) (*Event, error) {
	var e *Event
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		e, err = s.insert(ctx, tx, city, in, StatusConfirmed, by, nil)
		if err != nil {
			return err
		}
		return emit(ctx, tx, contract.TypeCalendarEventCreated, e, nil)
	})
	return e, err
}

// SubmitEvent adds anyone's event to the moderation queue and returns the
// submitter's secret status token (only its hash is kept).
func (s *Store) SubmitEvent(ctx context.Context, city string, in EventInput) (*Event, string, error) {
	if in.Status != nil {
		return nil, "", (&web.Fields{{Field: "status", Message: "is set by the city's managers when they review the submission"}}).Err()
	}
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	token := base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(token))
	var e *Event
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		e, err = s.insert(ctx, tx, city, in, StatusPending, "", sum[:])
		if err != nil {
			return err
		}
		return emit(ctx, tx, contract.TypeCalendarEventSubmitted, e, nil)
	})
	return e, token, err
}

func (s *Store) insert(ctx context.Context, tx pgx.Tx, city string, in EventInput, status, by string, tokenHash []byte) (*Event, error) {
	loc, err := s.location(ctx, tx, city)
	if err != nil {
		return nil, err
	}
	id := uuid.Must(uuid.NewV7()).String()
	e := &Event{ID: id, UID: id + "@piazza", City: city, Timezone: loc.String(), Status: status, Version: 1,
		Links: []Link{}, ExDates: []time.Time{}, RDates: []time.Time{}}
	if in.Status != nil {
		if *in.Status != StatusConfirmed && *in.Status != StatusTentative {
			return nil, (&web.Fields{{Field: "status", Message: "must be confirmed or tentative"}}).Err()
		}
		e.Status = *in.Status
	}
	if in.Version != nil || in.Reason != nil {
		return nil, (&web.Fields{{Field: "version", Message: "is only for changes"}}).Err()
	}
	if err := in.apply(e, loc, true); err != nil {
		return nil, err
	}
	if err := resolvePlace(ctx, tx, e); err != nil {
		return nil, err
	}
	first, last, err := e.window(loc)
	if err != nil {
		return nil, err
	}
	err = tx.QueryRow(ctx, `
		INSERT INTO events (id, city, uid, title, description, place_id, place_name, address, category, organiser,
			image_url, links, accessibility, all_day, start_local, end_local, timezone, starts_at, ends_at, rrule,
			exdates, rdates, window_start, window_end, status, submitter_name, submitter_email, status_token, created_by)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22,
			$23, $24, $25, $26, $27, $28, $29)
		RETURNING created_at, updated_at`,
		e.ID, e.City, e.UID, e.Title, e.Description, e.PlaceID, e.PlaceName, e.Address, e.Category, e.Organiser,
		e.ImageURL, e.Links, e.Accessibility, e.AllDay, e.StartLocal, e.EndLocal, e.Timezone,
		inLoc(e.StartLocal, loc), e.firstEnd(loc), e.RRule, e.ExDates, e.RDates, first, last, e.Status,
		e.SubmitterName, e.SubmitterMail, tokenHash, by).Scan(&e.CreatedAt, &e.UpdatedAt)
	if err != nil {
		return nil, fmt.Errorf("calendar: insert event: %w", err)
	}
	return e, nil
}

func (e *Event) firstEnd(loc *time.Location) time.Time {
	s := series{e: e, loc: loc}
	return s.end(inLoc(e.StartLocal, loc))
}

func (e *Event) window(loc *time.Location) (time.Time, *time.Time, error) {
	s, err := e.series(loc)
	if err != nil {
		return time.Time{}, nil, err
	}
	first, last := s.window()
	return first, last, nil
}

// lock reads an event for a change in tx.
func (s *Store) lock(ctx context.Context, tx pgx.Tx, id string) (*Event, *time.Location, error) {
	e, err := scanEvent(tx.QueryRow(ctx, `SELECT `+eventColumns+` FROM events WHERE id = $1 FOR UPDATE`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil, web.Errorf(web.ENotFound, "there is no event %q", id)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("calendar: event %s: %w", id, err)
	}
	if err := loadOverrides(ctx, tx, []*Event{e}); err != nil {
		return nil, nil, err
	}
	loc, err := zones.Load(e.Timezone)
	if err != nil {
		return nil, nil, fmt.Errorf("calendar: event %s: %w", id, err)
	}
	return e, loc, nil
}

func checkVersion(e *Event, v *int64) error {
	if v != nil && *v != e.Version {
		return web.Errorf(web.EConflict, "the event changed since version %d (it is at version %d); reload it and try again", *v, e.Version)
	}
	return nil
}

// save writes a changed event (bumping SEQUENCE and version) and its event.
func (s *Store) save(ctx context.Context, tx pgx.Tx, e *Event, loc *time.Location, typ string, extra func(*contract.CalendarEventV1)) error {
	first, last, err := e.window(loc)
	if err != nil {
		return err
	}
	e.Sequence++
	e.Version++
	err = tx.QueryRow(ctx, `
		UPDATE events SET title = $2, description = $3, place_id = $4, place_name = $5, address = $6, category = $7,
			organiser = $8, image_url = $9, links = $10, accessibility = $11, all_day = $12, start_local = $13,
			end_local = $14, starts_at = $15, ends_at = $16, rrule = $17, exdates = $18, rdates = $19,
			window_start = $20, window_end = $21, status = $22, reason = $23, sequence = $24, version = $25,
			updated_at = now()
		WHERE id = $1 RETURNING updated_at`,
		e.ID, e.Title, e.Description, e.PlaceID, e.PlaceName, e.Address, e.Category, e.Organiser, e.ImageURL, e.Links,
		e.Accessibility, e.AllDay, e.StartLocal, e.EndLocal, inLoc(e.StartLocal, loc), e.firstEnd(loc), e.RRule,
		e.ExDates, e.RDates, first, last, e.Status, e.Reason, e.Sequence, e.Version).Scan(&e.UpdatedAt)
	if err != nil {
		return fmt.Errorf("calendar: update event %s: %w", e.ID, err)
	}
	return emit(ctx, tx, typ, e, extra)
}

// UpdateEvent changes an event. Status may move between confirmed,
// tentative and cancelled; a submission's status changes only by review.
func (s *Store) UpdateEvent(ctx context.Context, id string, in EventInput) (*Event, error) {
	var e *Event
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var loc *time.Location
		var err error
		if e, loc, err = s.lock(ctx, tx, id); err != nil {
			return err
		}
		if err := checkVersion(e, in.Version); err != nil {
			return err
		}
		wasCancelled := e.Status == StatusCancelled
		if in.Status != nil {
			switch {
			case e.Status == StatusPending || e.Status == StatusRejected:
				return web.Errorf(web.EConflict, "the event is %s: approve or reject it instead", e.Status)
			case *in.Status != StatusConfirmed && *in.Status != StatusTentative && *in.Status != StatusCancelled:
				return (&web.Fields{{Field: "status", Message: "must be confirmed, tentative or cancelled"}}).Err()
			}
			e.Status = *in.Status
		}
		if in.Reason != nil {
			e.Reason = *in.Reason
		}
		old := *e
		if err := in.apply(e, loc, false); err != nil {
			return err
		}
		if err := resolvePlace(ctx, tx, e); err != nil {
			return err
		}
		if timesChanged(&old, e) && len(e.Overrides) > 0 {
			// Overrides name occurrences of the old rule; those that are no
			// longer occurrences are dropped (as calendar apps do).
			if err := s.dropStrayOverrides(ctx, tx, e, loc); err != nil {
				return err
			}
		}
		typ := contract.TypeCalendarEventUpdated
		if e.Status == StatusCancelled && !wasCancelled {
			typ = contract.TypeCalendarEventCancelled
		}
		return s.save(ctx, tx, e, loc, typ, nil)
	})
	return e, err
}

func timesChanged(a, b *Event) bool {
	return a.AllDay != b.AllDay || !a.StartLocal.Equal(b.StartLocal) || a.RRule != b.RRule ||
		fmt.Sprint(a.ExDates) != fmt.Sprint(b.ExDates) || fmt.Sprint(a.RDates) != fmt.Sprint(b.RDates)
}

func (s *Store) dropStrayOverrides(ctx context.Context, tx pgx.Tx, e *Event, loc *time.Location) error {
	all := e.Overrides
	sr, err := e.series(loc)
	if err != nil {
		return err
	}
	keep := []Override{}
	for _, o := range all {
		if sr.isOccurrence(o.RecurrenceID) {
			keep = append(keep, o)
			continue
		}
		if _, err := tx.Exec(ctx, `DELETE FROM overrides WHERE event_id = $1 AND recurrence_id = $2`, e.ID, o.RecurrenceID); err != nil {
			return fmt.Errorf("calendar: drop override: %w", err)
		}
	}
	e.Overrides = keep
	return nil
}

// Review approves (status confirmed or tentative) or rejects (with a
// reason) a submission; anything but a pending submission is a conflict.
func (s *Store) Review(ctx context.Context, id string, approve bool, status, reason string, version *int64) (*Event, error) {
	var e *Event
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var loc *time.Location
		var err error
		if e, loc, err = s.lock(ctx, tx, id); err != nil {
			return err
		}
		if err := checkVersion(e, version); err != nil {
			return err
		}
		if e.Status != StatusPending {
			return web.Errorf(web.EConflict, "the event is %s, not waiting for review", e.Status)
		}
		typ := contract.TypeCalendarEventApproved
		e.Status, e.Reason = status, reason
		if !approve {
			typ, e.Status = contract.TypeCalendarEventRejected, StatusRejected
		}
		return s.save(ctx, tx, e, loc, typ, nil)
	})
	return e, err
}

// SetOverride changes one occurrence (RECURRENCE-ID recur, naive local).
func (s *Store) SetOverride(ctx context.Context, id string, recur time.Time, in OverrideInput) (*Event, error) {
	return s.changeOccurrence(ctx, id, recur, in.Version, func(e *Event, loc *time.Location, sr *series, cur *Override) (*Override, error) {
		o := cur
		if o == nil {
			start := inLoc(recur, loc)
			end := naive(sr.end(start).In(loc))
			if e.AllDay {
				end = end.AddDate(0, 0, -1)
			}
			o = &Override{RecurrenceID: recur, Status: StatusConfirmed, StartLocal: recur, EndLocal: end}
			if e.Status == StatusTentative {
				o.Status = StatusTentative
			}
		}
		if err := in.apply(o, e.AllDay, loc); err != nil {
			return nil, err
		}
		return o, nil
	})
}

// DeleteOverride undoes the change of one occurrence.
func (s *Store) DeleteOverride(ctx context.Context, id string, recur time.Time, version *int64) (*Event, error) {
	return s.changeOccurrence(ctx, id, recur, version, func(*Event, *time.Location, *series, *Override) (*Override, error) {
		return nil, nil
	})
}

func (s *Store) changeOccurrence(ctx context.Context, id string, recur time.Time, version *int64,
	change func(e *Event, loc *time.Location, sr *series, cur *Override) (*Override, error)) (*Event, error) {
	var e *Event
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var loc *time.Location
		var err error
		if e, loc, err = s.lock(ctx, tx, id); err != nil {
			return err
		}
		if err := checkVersion(e, version); err != nil {
			return err
		}
		if e.Status == StatusPending || e.Status == StatusRejected {
			return web.Errorf(web.EConflict, "the event is %s: review it first", e.Status)
		}
		sr, err := e.series(loc)
		if err != nil {
			return err
		}
		if !sr.isOccurrence(recur) {
			return web.Errorf(web.ENotFound, "the event has no occurrence starting at %s", formatLocal(recur, e.AllDay))
		}
		var cur *Override
		idx := -1
		for i := range e.Overrides {
			if e.Overrides[i].RecurrenceID.Equal(recur) {
				cur, idx = &e.Overrides[i], i
			}
		}
		next, err := change(e, loc, sr, cur)
		if err != nil {
			return err
		}
		if next == nil {
			if cur == nil {
				return web.Errorf(web.ENotFound, "the occurrence at %s is not changed", formatLocal(recur, e.AllDay))
			}
			e.Overrides = append(e.Overrides[:idx], e.Overrides[idx+1:]...)
			if _, err := tx.Exec(ctx, `DELETE FROM overrides WHERE event_id = $1 AND recurrence_id = $2`, e.ID, recur); err != nil {
				return fmt.Errorf("calendar: delete override: %w", err)
			}
		} else {
			if cur == nil && len(e.Overrides) >= maxOverrides {
				return web.Errorf(web.EConflict, "the event has %d changed occurrences, the most it may have", maxOverrides)
			}
			next.Sequence = e.Sequence + 1
			if _, err := tx.Exec(ctx, `
				INSERT INTO overrides (event_id, recurrence_id, status, start_local, end_local, title, sequence)
				VALUES ($1, $2, $3, $4, $5, $6, $7)
				ON CONFLICT (event_id, recurrence_id) DO UPDATE SET status = excluded.status, start_local = excluded.start_local,
					end_local = excluded.end_local, title = excluded.title, sequence = excluded.sequence, updated_at = now()`,
				e.ID, recur, next.Status, next.StartLocal, next.EndLocal, next.Title, next.Sequence); err != nil {
				return fmt.Errorf("calendar: override: %w", err)
			}
			next.UpdatedAt = time.Now()
			if cur != nil {
				*cur = *next
			} else {
				e.Overrides = append(e.Overrides, *next)
			}
		}
		return s.save(ctx, tx, e, loc, contract.TypeCalendarEventOccurrenceChanged, func(p *contract.CalendarEventV1) {
			at := inLoc(recur, loc).UTC()
			p.OccurrenceStart = &at
			if next == nil { // back to the series' own time and status
				start := inLoc(recur, loc)
				end := sr.end(start)
				next = &Override{Status: e.Status}
				p.OccurrenceStartsAt, p.OccurrenceEndsAt = ptr(start.UTC()), ptr(end.UTC())
			} else {
				p.OccurrenceStartsAt, p.OccurrenceEndsAt = ptr(inLoc(next.StartLocal, loc).UTC()), ptr(sr.overrideEnd(*next).UTC())
			}
			p.OccurrenceStatus = next.Status
		})
	})
	return e, err
}

func ptr[T any](v T) *T { return &v }

// emit adds the calendar event for e to the outbox in tx.
func emit(ctx context.Context, tx pgx.Tx, typ string, e *Event, extra func(*contract.CalendarEventV1)) error {
	loc, err := zones.Load(e.Timezone)
	if err != nil {
		return err
	}
	p := contract.CalendarEventV1{
		ID: e.ID, UID: e.UID, City: e.City, Title: e.Title, Category: e.Category, PlaceName: e.PlaceName,
		Address: e.Address, Status: e.Status, AllDay: e.AllDay, StartsAt: inLoc(e.StartLocal, loc).UTC(),
		EndsAt: e.firstEnd(loc).UTC(), Timezone: e.Timezone, RRule: e.RRule, Sequence: e.Sequence, Version: e.Version,
		At: time.Now().UTC(),
	}
	if e.PlaceID != nil {
		p.PlaceID = *e.PlaceID
	}
	if typ == contract.TypeCalendarEventRejected || typ == contract.TypeCalendarEventCancelled {
		p.Reason = e.Reason
	}
	if extra != nil {
		extra(&p)
	}
	ev, err := bus.NewEvent(contract.SourceCalendar, typ, "events/"+e.ID, p)
	if err != nil {
		return err
	}
	ev.TraceParent = web.TraceParent(ctx)
	return outbox.Add(ctx, tx, contract.CalendarSubject(e.City, "event", contract.CalendarEventVerbs[typ]), ev)
}
