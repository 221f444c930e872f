package listings

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/localeurope/piazza/pkg/auth"
	"github.com/localeurope/piazza/pkg/outbox"
	"github.com/localeurope/piazza/pkg/web"
)

// Transitions of an application after it was submitted: the managers'
// review, the vendor's withdrawal, and the waitlist's offers.

// change runs fn on application id in one transaction, after checking that
// who may (may) and taking the market day's lock. fn sees the application as
// it is once the lock is held. It returns the application after fn.
func (s *Store) change(ctx context.Context, who auth.Principal, id string, may func(auth.Principal, Application) error,
	fn func(tx pgx.Tx, d dayInfo, a Application) error) (Application, error) {
	var out Application
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		a, err := loadApp(ctx, tx, id)
		if err != nil {
			return err
		}
		if err := may(who, a); err != nil {
			return err
		}
		d, err := lockDay(ctx, tx, a.MarketDayID)
		if err != nil {
			return err
		}
		if a, err = loadApp(ctx, tx, id); err != nil {
			return err
		}
		if err := fn(tx, d, a); err != nil {
			return err
		}
		out, err = loadApp(ctx, tx, id)
		return err
	})
	return out, err
}

// changeStall is change for what a stall does on its own (check in, post a
// status, check out), which a square's stalls do all day at once. It locks
// only the application's row and then reads the day without a lock, so that
// stalls neither wait for each other nor share a lock on the day's row (a
// row share-locked by many transactions at once makes PostgreSQL build a
// multixact for every new holder: 1.3 ms of server time per status post at
// 340 posts/s). The day's own changes still exclude them: closing or
// cancelling a day locks its stalls' rows (closeStalls) before it reads
// their states, so a stall change either commits before that, and the day's
// change sees it, or takes its row lock after the day's change committed and
// then reads the day as it is. Pitch assignments update the row and so wait
// for it too. fn returns the application as it left it and the events that
// announce the change, which commit with it.
func (s *Store) changeStall(ctx context.Context, who auth.Principal, id string, may func(auth.Principal, Application) error,
	fn func(q querier, d dayInfo, a Application) (Application, []outbox.Entry, error)) (Application, error) {
	var out Application
	err := s.alone(ctx, "stall", func(conn *pgxpool.Conn) error {
		// BEGIN, the row lock and the day in one round trip, the day read
		// by the statement after the lock's: its snapshot then includes any
		// change of the day that locked the row first. The events go with
		// the COMMIT: a stall's change is three round trips.
		b := &pgx.Batch{}
		b.Queue(`BEGIN`)
		b.Queue(appSelect+` WHERE a.id = $1 FOR NO KEY UPDATE OF a`, id)
		b.Queue(daySelect+` WHERE d.id = (SELECT market_day_id FROM applications WHERE id = $1)`, id)
		br := conn.SendBatch(ctx, b)
		if _, err := br.Exec(); err != nil {
			br.Close()
			return fmt.Errorf("listings: stall %s: %w", id, err)
		}
		a, err := collectApp(br.Query())
		if err != nil {
			br.Close()
			return appErr(err, id)
		}
		var d dayInfo
		err = br.QueryRow().Scan(d.dest()...)
		if cerr := br.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return dayErr(err, a.MarketDayID)
		}
		if err := may(who, a); err != nil {
			return err
		}
		after, entries, err := fn(conn, d, a)
		if err != nil {
			return err
		}
		out = after
		return commit(ctx, conn, "stall", entries...)
	})
	return out, err
}

// setState is a transition: one UPDATE that succeeds only from the states in
// from. set is the SET list; $1 is the id, $2 the states, $3 now, and args
// follow from $4. It returns the application after the change.
func setState(ctx context.Context, tx pgx.Tx, a Application, from []string, action string, now time.Time, set string, args ...any) (Application, error) {
	all := append([]any{a.ID, from, now}, args...)
	tag, err := tx.Exec(ctx, `UPDATE applications SET `+set+`, version = version + 1, updated_at = $3
		WHERE id = $1 AND status = ANY($2)`, all...)
	if isUniqueViolation(err) {
		return a, web.Errorf(web.EConflict, "that pitch is taken on %s", a.MarketDay.Date)
	}
	if err != nil {
		return a, fmt.Errorf("listings: application %s: %s: %w", a.ID, action, err)
	}
	if tag.RowsAffected() == 0 {
		return a, conflictState(a, action)
	}
	return loadApp(ctx, tx, a.ID)
}

func errDayFinished(d dayInfo) error {
	return web.Errorf(web.EConflict, "the market day %s is %s; its applications no longer change", d.Date, d.Status)
}

// Withdraw is the vendor withdrawing a pending, waitlisted or accepted
// application. A freed pitch is offered to the waitlist.
func (s *Store) Withdraw(ctx context.Context, who auth.Principal, id, reason string, now time.Time) (Application, error) {
	return s.change(ctx, who, id, mayActAsVendor, func(tx pgx.Tx, d dayInfo, a Application) error {
		if d.finished() {
			return errDayFinished(d)
		}
		return withdraw(ctx, tx, d, a, reason, now)
	})
}

func withdraw(ctx context.Context, tx pgx.Tx, d dayInfo, a Application, reason string, now time.Time) error {
	after, err := setState(ctx, tx, a, []string{statusPending, statusWaitlisted, statusAccepted}, "withdrawn", now,
		`status = 'withdrawn', pitch_id = NULL, reason = nullif($4, ''), decided_at = $3`, reason)
	if err != nil {
		return err
	}
	if err := emitApplication(ctx, tx, d, after, typeWithdrawn, now); err != nil {
		return err
	}
	if a.Status != statusAccepted {
		return nil
	}
	if err := emitStall(ctx, tx, d, after, typeStallReleased, a.Pitch, "", "withdrawn", now); err != nil {
		return err
	}
	return offerNext(ctx, tx, d, *a.pitchID, now)
}

// Accept is a manager accepting a pending or waitlisted application on
// pitch, or on the preferred or first free pitch when pitch is "".
func (s *Store) Accept(ctx context.Context, who auth.Principal, id, pitch string, now time.Time) (Application, error) {
	return s.change(ctx, who, id, mayManage, func(tx pgx.Tx, d dayInfo, a Application) error {
		if d.finished() {
			return errDayFinished(d)
		}
		if a.Status != statusPending && a.Status != statusWaitlisted {
			return conflictState(a, "accepted")
		}
		pitchID, err := pitchToAssign(ctx, tx, d, pitch, a.PreferredPitch)
		if err != nil {
			return err
		}
		after, err := setState(ctx, tx, a, []string{statusPending, statusWaitlisted}, "accepted", now,
			`status = 'accepted', pitch_id = $4::uuid, live_state = 'expected', decided_at = $3`, pitchID)
		if err != nil {
			return err
		}
		return emitStallRegistered(ctx, tx, d, after, now)
	})
}

// pitchToAssign picks the pitch for an acceptance: the one asked for (which
// must be on the plan and free), else the preferred one if free, else the
// first free one.
func pitchToAssign(ctx context.Context, tx pgx.Tx, d dayInfo, pitch, preferred string) (string, error) {
	if pitch != "" {
		if _, err := pitchOnPlan(ctx, tx, d.PlaceID, pitch); err != nil {
			return "", err
		}
		id, err := freePitch(ctx, tx, d.PlaceID, d.ID, pitch)
		if err != nil {
			return "", err
		}
		if id == nil {
			return "", errPitchTaken(pitch, d.Date)
		}
		return *id, nil
	}
	if preferred != "" {
		id, err := freePitch(ctx, tx, d.PlaceID, d.ID, preferred)
		if err != nil || id != nil {
			return deref(id), err
		}
	}
	id, err := freePitch(ctx, tx, d.PlaceID, d.ID, "")
	if err != nil {
		return "", err
	}
	if id == nil {
		return "", web.Errorf(web.EConflict, "no pitch is free on %s", d.Date)
	}
	return *id, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// Reject is a manager rejecting an application with a reason. An accepted
// stall or an open offer frees its pitch for the waitlist.
func (s *Store) Reject(ctx context.Context, who auth.Principal, id, reason string, now time.Time) (Application, error) {
	return s.change(ctx, who, id, mayManage, func(tx pgx.Tx, d dayInfo, a Application) error {
		after, err := setState(ctx, tx, a, []string{statusPending, statusWaitlisted, statusOffered, statusAccepted}, "rejected", now,
			`status = 'rejected', pitch_id = NULL, offer_expires_at = NULL, reason = $4, decided_at = $3`, reason)
		if err != nil {
			return err
		}
		if err := emitApplication(ctx, tx, d, after, typeRejected, now); err != nil {
			return err
		}
		if a.Status == statusAccepted {
			if err := emitStall(ctx, tx, d, after, typeStallReleased, a.Pitch, "", "rejected", now); err != nil {
				return err
			}
		}
		if a.Status == statusAccepted || a.Status == statusOffered {
			return offerNext(ctx, tx, d, *a.pitchID, now)
		}
		return nil
	})
}

// Waitlist is a manager putting a pending application at the end of the
// day's waitlist.
func (s *Store) Waitlist(ctx context.Context, who auth.Principal, id string, now time.Time) (Application, error) {
	return s.change(ctx, who, id, mayManage, func(tx pgx.Tx, d dayInfo, a Application) error {
		if d.finished() {
			return errDayFinished(d)
		}
		after, err := setState(ctx, tx, a, []string{statusPending}, "waitlisted", now,
			`status = 'waitlisted', waitlisted_at = $3, decided_at = $3`)
		if err != nil {
			return err
		}
		return emitApplication(ctx, tx, d, after, typeWaitlisted, now)
	})
}

// Move is a manager moving an accepted stall to another free pitch. Moving
// it to its own pitch changes nothing.
func (s *Store) Move(ctx context.Context, who auth.Principal, id, pitch string, now time.Time) (Application, error) {
	return s.change(ctx, who, id, mayManage, func(tx pgx.Tx, d dayInfo, a Application) error {
		if d.finished() {
			return errDayFinished(d)
		}
		if a.Status != statusAccepted {
			return conflictState(a, "moved")
		}
		to, err := pitchOnPlan(ctx, tx, d.PlaceID, pitch)
		if err != nil {
			return err
		}
		if to == deref(a.pitchID) {
			return nil
		}
		free, err := freePitch(ctx, tx, d.PlaceID, d.ID, pitch)
		if err != nil {
			return err
		}
		if free == nil {
			return errPitchTaken(pitch, d.Date)
		}
		after, err := setState(ctx, tx, a, []string{statusAccepted}, "moved", now, `pitch_id = $4::uuid`, to)
		if err != nil {
			return err
		}
		return emitStall(ctx, tx, d, after, typeStallMoved, after.Pitch, a.Pitch, "", now)
	})
}

// AcceptOffer is the vendor taking up an offered stall before the offer
// expires.
func (s *Store) AcceptOffer(ctx context.Context, who auth.Principal, id string, now time.Time) (Application, error) {
	return s.change(ctx, who, id, mayActAsVendor, func(tx pgx.Tx, d dayInfo, a Application) error {
		if a.Status == statusOffered && !now.Before(*a.OfferExpiresAt) {
			return web.Errorf(web.EConflict, "the offer expired at %s", a.OfferExpiresAt.UTC().Format(time.RFC3339))
		}
		if d.finished() {
			return errDayFinished(d)
		}
		after, err := setState(ctx, tx, a, []string{statusOffered}, "accepted as an offer", now,
			`status = 'accepted', offer_expires_at = NULL, live_state = 'expected', decided_at = $3`)
		if err != nil {
			return err
		}
		return emitStallRegistered(ctx, tx, d, after, now)
	})
}

// DeclineOffer is the vendor declining an offered stall; the pitch goes to
// the next on the waitlist.
func (s *Store) DeclineOffer(ctx context.Context, who auth.Principal, id string, now time.Time) (Application, error) {
	return s.change(ctx, who, id, mayActAsVendor, func(tx pgx.Tx, d dayInfo, a Application) error {
		return declineOffer(ctx, tx, d, a, now)
	})
}

func declineOffer(ctx context.Context, tx pgx.Tx, d dayInfo, a Application, now time.Time) error {
	after, err := setState(ctx, tx, a, []string{statusOffered}, "declined", now,
		`status = 'declined', pitch_id = NULL, offer_expires_at = NULL, decided_at = $3`)
	if err != nil {
		return err
	}
	if err := emitApplication(ctx, tx, d, after, typeOfferDeclined, now); err != nil {
		return err
	}
	return offerNext(ctx, tx, d, *a.pitchID, now)
}

// offerNext offers a freed pitch to the first application on the day's
// waitlist. The offer expires offer_hours from now or at the day's start,
// whichever is earlier; once the day has started (or is over), nobody is
// offered anything: the pitch stays free for a manager to assign.
func offerNext(ctx context.Context, tx pgx.Tx, d dayInfo, pitchID string, now time.Time) error {
	if d.finished() || !now.Before(d.StartsAt) {
		return nil
	}
	expires := now.Add(time.Duration(d.OfferHours) * time.Hour)
	if expires.After(d.StartsAt) {
		expires = d.StartsAt
	}
	var id string
	err := tx.QueryRow(ctx, `SELECT id::text FROM applications WHERE market_day_id = $1 AND status = 'waitlisted'
		ORDER BY waitlisted_at, id LIMIT 1`, d.ID).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("listings: waitlist of %s: %w", d.ID, err)
	}
	a, err := loadApp(ctx, tx, id)
	if err != nil {
		return err
	}
	after, err := setState(ctx, tx, a, []string{statusWaitlisted}, "offered", now,
		`status = 'offered', pitch_id = $4::uuid, offer_expires_at = $5, decided_at = $3`, pitchID, expires)
	if err != nil {
		return err
	}
	return emitApplication(ctx, tx, d, after, typeOffered, now)
}

// ExpireOffers lets offers whose time is up expire and passes each pitch on
// to the next waitlisted application. It returns how many expired.
func (s *Store) ExpireOffers(ctx context.Context, now time.Time) (int, error) {
	rows, err := s.pool.Query(ctx, `SELECT id::text FROM applications WHERE status = 'offered' AND offer_expires_at <= $1
		ORDER BY offer_expires_at LIMIT 500`, now)
	if err != nil {
		return 0, fmt.Errorf("listings: expire offers: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, fmt.Errorf("listings: expire offers: %w", err)
	}
	expired := 0
	for _, id := range ids {
		_, err := s.change(ctx, auth.Principal{}, id, func(auth.Principal, Application) error { return nil },
			func(tx pgx.Tx, d dayInfo, a Application) error {
				if a.Status != statusOffered || now.Before(*a.OfferExpiresAt) {
					return nil // taken up, declined or rejected meanwhile
				}
				after, err := setState(ctx, tx, a, []string{statusOffered}, "expired", now,
					`status = 'expired', pitch_id = NULL, offer_expires_at = NULL, decided_at = $3`)
				if err != nil {
					return err
				}
				expired++
				if err := emitApplication(ctx, tx, d, after, typeOfferExpired, now); err != nil {
					return err
				}
				return offerNext(ctx, tx, d, *a.pitchID, now)
			})
		if err != nil {
			return expired, fmt.Errorf("listings: expire offer %s: %w", id, err)
		}
	}
	return expired, nil
}
