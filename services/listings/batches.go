package listings

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/localeurope/piazza/pkg/auth"
	"github.com/localeurope/piazza/pkg/web"
	"github.com/localeurope/piazza/pkg/zones"
)

// Application batches: a vendor applies for many dates of one market, or its
// whole season, in one request. Days that exist get their application at
// once; days generated later get theirs from the generator (onDayCreated), in
// the transaction that creates the day, while the batch is active.

// Batch states.
const (
	batchActive    = "active"
	batchWithdrawn = "withdrawn"
	batchEnded     = "ended"
)

// maxUpcoming bounds upcoming_dates.
const maxUpcoming = 366

// NewBatch is the body of POST /markets/{id}/applications.
type NewBatch struct {
	VendorID string   `json:"vendor_id"`
	Dates    []string `json:"dates,omitempty"`
	Season   *bool    `json:"season,omitempty"`
	Pitch    string   `json:"pitch,omitempty"`
	Note     string   `json:"note,omitempty"`
}

// Validate checks a new batch: exactly one of dates and season.
func (b *NewBatch) Validate() error {
	var f web.Fields
	if !isUUID(b.VendorID) {
		f.Add("vendor_id", "must be a vendor id (UUID)")
	}
	switch {
	case b.Season != nil && b.Dates != nil:
		f.Add("season", "give either dates or season, not both")
	case b.Season != nil && !*b.Season:
		f.Add("season", "must be true when given")
	case b.Season == nil && len(b.Dates) == 0:
		f.Add("dates", "give at least one date, or season: true")
	case len(b.Dates) > 366:
		f.Add("dates", "must hold at most 366 dates")
	}
	seen := map[string]bool{}
	for i, d := range b.Dates {
		if _, err := time.Parse(time.DateOnly, d); err != nil {
			f.Add(fmt.Sprintf("dates[%d]", i), "must be a date like 2026-05-01")
		} else if seen[d] {
			f.Add(fmt.Sprintf("dates[%d]", i), "is given twice")
		}
		seen[d] = true
	}
	checkPitchCode(&f, "pitch", b.Pitch)
	checkNote(&f, "note", b.Note)
	return f.Err()
}

// Batch is a vendor's application for many days of one market.
type Batch struct {
	ID             string        `json:"id"`
	City           string        `json:"city"`
	MarketID       string        `json:"market_id"`
	Market         refMarket     `json:"market"`
	VendorID       string        `json:"vendor_id"`
	Season         bool          `json:"season"`
	Dates          []string      `json:"dates,omitempty"`
	PreferredPitch string        `json:"preferred_pitch,omitempty"`
	Note           string        `json:"note,omitempty"`
	Status         string        `json:"status"`
	Items          []Application `json:"items,omitempty"`
	Skipped        []SkippedDate `json:"skipped,omitempty"`
	UpcomingDates  []string      `json:"upcoming_dates,omitempty"`
	CreatedAt      time.Time     `json:"created_at"`

	owner     string
	seasonEnd *time.Time
}

// SkippedDate is a date a new batch could not apply for.
type SkippedDate struct {
	Date          string `json:"date"`
	MarketDayID   string `json:"market_day_id,omitempty"`
	Reason        string `json:"reason"` // already_applied, pitch_taken, day_cancelled, day_over
	ApplicationID string `json:"application_id,omitempty"`
}

// ApplyBatch creates a batch for the market on behalf of who, and the
// applications of the days that exist.
func (s *Store) ApplyBatch(ctx context.Context, who auth.Principal, marketID string, nb NewBatch, now time.Time) (Batch, error) {
	var b Batch
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		ms, err := loadSchedules(ctx, tx, marketID)
		if err != nil {
			return fmt.Errorf("listings: batch: market: %w", err)
		}
		if len(ms) == 0 {
			return web.Errorf(web.ENotFound, "there is no market %s", marketID)
		}
		m := ms[0]
		if _, err := applicant(ctx, tx, nb.VendorID, m.City, &who); err != nil {
			return err
		}
		loc, err := zones.Load(m.Timezone)
		if err != nil {
			return err
		}
		today := Today(now, loc)
		var f web.Fields
		for i, ds := range nb.Dates {
			d, _ := time.Parse(time.DateOnly, ds)
			switch {
			case ds < today:
				f.Add(fmt.Sprintf("dates[%d]", i), "is in the past")
			case !m.runsOn(d):
				f.Add(fmt.Sprintf("dates[%d]", i), "is not a date of this market")
			}
		}
		if err := f.Err(); err != nil {
			return err
		}
		if nb.Pitch != "" {
			if _, err := pitchOnPlan(ctx, tx, m.PlaceID, nb.Pitch); err != nil {
				return err
			}
		}
		season := nb.Season != nil
		var dates []string
		if !season {
			dates = slices.Clone(nb.Dates)
			slices.Sort(dates)
		}
		id := newID()
		if _, err := tx.Exec(ctx, `
			INSERT INTO application_batches (id, city, market_id, vendor_id, season, dates, preferred_pitch, note)
			VALUES ($1, $2, $3, $4, $5, $6::date[], nullif($7, ''), nullif($8, ''))`,
			id, m.City, m.ID, nb.VendorID, season, dates, nb.Pitch, nb.Note); err != nil {
			return fmt.Errorf("listings: batch: insert: %w", err)
		}
		rows, err := tx.Query(ctx, `
			SELECT id::text, date::text, status, ends_at FROM market_days
			WHERE market_id = $1 AND date >= $2::date AND ($3 OR date = ANY($4::date[]))
			ORDER BY date`, m.ID, today, season, dates)
		if err != nil {
			return fmt.Errorf("listings: batch: days: %w", err)
		}
		type day struct {
			id, date, status string
			ends             time.Time
		}
		days, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (day, error) {
			var d day
			return d, r.Scan(&d.id, &d.date, &d.status, &d.ends)
		})
		if err != nil {
			return fmt.Errorf("listings: batch: days: %w", err)
		}
		var skipped []SkippedDate
		na := NewApplication{VendorID: nb.VendorID, Pitch: nb.Pitch, Note: nb.Note}
		for _, d := range days {
			skip := SkippedDate{Date: d.date, MarketDayID: d.id}
			switch {
			case d.status == "cancelled":
				skip.Reason = "day_cancelled"
			case d.status == "closed" || !now.Before(d.ends):
				skip.Reason = "day_over"
			default:
				_, err := s.apply(ctx, tx, d.id, na, now, applyOpts{batchID: id})
				var dup *alreadyApplied
				switch {
				case errors.As(err, &dup):
					skip.Reason, skip.ApplicationID = "already_applied", dup.existing
				case web.ErrorCode(err) == web.EConflict:
					skip.Reason = "pitch_taken"
				case err != nil:
					return err
				}
			}
			if skip.Reason != "" {
				skipped = append(skipped, skip)
			}
		}
		if b, err = loadBatch(ctx, tx, id, now); err != nil {
			return err
		}
		b.Skipped = skipped
		return nil
	})
	return b, err
}

// applyBatchesTo creates, for a day just generated, the applications of the
// market's active batches that cover its date. A batch that cannot apply
// (the vendor applied on its own, its preferred pitch is taken) skips the day.
func (s *Store) applyBatchesTo(ctx context.Context, tx pgx.Tx, dayID, marketID, date string, now time.Time) error {
	rows, err := tx.Query(ctx, `
		SELECT id::text, vendor_id::text, coalesce(preferred_pitch, ''), coalesce(note, '') FROM application_batches
		WHERE market_id = $1 AND status = 'active' AND (season OR $2::date = ANY(dates))
		ORDER BY created_at, id`, marketID, date)
	if err != nil {
		return fmt.Errorf("listings: batches for %s: %w", dayID, err)
	}
	type batch struct{ id, vendor, pitch, note string }
	batches, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (batch, error) {
		var b batch
		return b, r.Scan(&b.id, &b.vendor, &b.pitch, &b.note)
	})
	if err != nil {
		return fmt.Errorf("listings: batches for %s: %w", dayID, err)
	}
	for _, b := range batches {
		_, err := s.apply(ctx, tx, dayID, NewApplication{VendorID: b.vendor, Pitch: b.pitch, Note: b.note}, now, applyOpts{batchID: b.id})
		var we *web.Error
		if err != nil && !errors.As(err, &we) {
			return err
		}
	}
	return nil
}

const batchSelect = `
	SELECT b.id::text, b.city, b.market_id::text, m.name, b.vendor_id::text, b.season, b.dates::text[],
	       coalesce(b.preferred_pitch, ''), coalesce(b.note, ''), b.status, b.created_at,
	       coalesce(v.owner_account_id, ''), m.season_end
	FROM application_batches b JOIN markets m ON m.id = b.market_id JOIN vendors v ON v.id = b.vendor_id`

func scanBatch(row pgx.CollectableRow) (Batch, error) {
	var b Batch
	err := row.Scan(&b.ID, &b.City, &b.MarketID, &b.Market.Name, &b.VendorID, &b.Season, &b.Dates,
		&b.PreferredPitch, &b.Note, &b.Status, &b.CreatedAt, &b.owner, &b.seasonEnd)
	b.Market.ID = b.MarketID
	return b, err
}

// settle reports ended for an active batch whose last date is past.
func (b *Batch) settle(today string) {
	if b.Status != batchActive {
		return
	}
	switch {
	case !b.Season && len(b.Dates) > 0 && b.Dates[len(b.Dates)-1] < today:
		b.Status = batchEnded
	case b.Season && b.seasonEnd != nil && b.seasonEnd.Format(time.DateOnly) < today:
		b.Status = batchEnded
	}
}

// loadBatch reads a batch with its applications and upcoming dates.
func loadBatch(ctx context.Context, q querier, id string, now time.Time) (Batch, error) {
	rows, err := q.Query(ctx, batchSelect+` WHERE b.id = $1`, id)
	if err != nil {
		return Batch{}, fmt.Errorf("listings: batch %s: %w", id, err)
	}
	b, err := pgx.CollectExactlyOneRow(rows, scanBatch)
	if errors.Is(err, pgx.ErrNoRows) {
		return Batch{}, errNoBatch(id)
	}
	if err != nil {
		return Batch{}, fmt.Errorf("listings: batch %s: %w", id, err)
	}
	rows, err = q.Query(ctx, appSelect+` WHERE a.batch_id = $1 ORDER BY d.date, a.id`, id)
	if err != nil {
		return Batch{}, fmt.Errorf("listings: batch %s: %w", id, err)
	}
	if b.Items, err = pgx.CollectRows(rows, scanApp); err != nil {
		return Batch{}, fmt.Errorf("listings: batch %s: %w", id, err)
	}
	b.Items = nonNil(b.Items)
	ms, err := loadSchedules(ctx, q, b.MarketID)
	if err != nil || len(ms) == 0 {
		return Batch{}, fmt.Errorf("listings: batch %s: market: %v", id, err)
	}
	loc, err := zones.Load(ms[0].Timezone)
	if err != nil {
		return Batch{}, err
	}
	today := Today(now, loc)
	b.settle(today)
	if b.Status == batchActive {
		if b.UpcomingDates, err = upcomingDates(ctx, q, ms[0], b, today); err != nil {
			return Batch{}, err
		}
	}
	return b, nil
}

func errNoBatch(id string) error {
	return web.Errorf(web.ENotFound, "there is no application batch %s", id)
}

// upcomingDates lists the batch's dates from today on whose market days do
// not exist yet. An open-ended season lists none.
func upcomingDates(ctx context.Context, q querier, m marketSchedule, b Batch, today string) ([]string, error) {
	var candidates []string
	if b.Season {
		if m.SeasonEnd == nil {
			return nil, nil
		}
		d, _ := time.Parse(time.DateOnly, today)
		for ; !d.After(*m.SeasonEnd) && len(candidates) < 3*maxUpcoming; d = d.AddDate(0, 0, 1) {
			if m.runsOn(d) {
				candidates = append(candidates, d.Format(time.DateOnly))
			}
		}
	} else {
		for _, d := range b.Dates {
			if d >= today {
				candidates = append(candidates, d)
			}
		}
	}
	if len(candidates) == 0 {
		return nil, nil
	}
	rows, err := q.Query(ctx, `SELECT date::text FROM market_days WHERE market_id = $1 AND date = ANY($2::date[])`, m.ID, candidates)
	if err != nil {
		return nil, fmt.Errorf("listings: upcoming dates: %w", err)
	}
	exist, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("listings: upcoming dates: %w", err)
	}
	var out []string
	for _, d := range candidates {
		if !slices.Contains(exist, d) && len(out) < maxUpcoming {
			out = append(out, d)
		}
	}
	return out, nil
}

// mayReadVendorRecords: the vendor's owner, a manager of its city or an admin.
func mayReadVendorRecords(p auth.Principal, owner, city string) bool {
	return (owner != "" && owner == p.AccountID) || p.Manages(city)
}

// Batch returns a batch for who: its vendor's owner, a manager of its city
// or an admin (ENotFound for anyone else).
func (s *Store) Batch(ctx context.Context, who auth.Principal, id string, now time.Time) (Batch, error) {
	b, err := loadBatch(ctx, s.pool, id, now)
	if err != nil {
		return Batch{}, err
	}
	if !mayReadVendorRecords(who, b.owner, b.City) {
		return Batch{}, errNoBatch(id)
	}
	return b, nil
}

// WithdrawBatch stops a batch and withdraws its live applications (declining
// open offers) on days that are not closed or cancelled, in one transaction.
func (s *Store) WithdrawBatch(ctx context.Context, who auth.Principal, id string, now time.Time) (Batch, error) {
	var out Batch
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		b, err := loadBatch(ctx, tx, id, now)
		if err != nil {
			return err
		}
		switch {
		case (b.owner != "" && b.owner == who.AccountID) || who.IsAdmin():
		case mayReadVendorRecords(who, b.owner, b.City):
			return web.Errorf(web.EForbidden, "only the vendor may withdraw its batch")
		default:
			return errNoBatch(id)
		}
		if b.Status != batchActive {
			return web.Errorf(web.EConflict, "the batch is %s", b.Status)
		}
		tag, err := tx.Exec(ctx, `UPDATE application_batches SET status = 'withdrawn', version = version + 1, updated_at = $2
			WHERE id = $1 AND status = 'active'`, id, now)
		if err != nil {
			return fmt.Errorf("listings: withdraw batch %s: %w", id, err)
		}
		if tag.RowsAffected() == 0 {
			return web.Errorf(web.EConflict, "the batch is no longer active")
		}
		for _, item := range b.Items { // ordered by date: days are locked in a consistent order
			if item.Status != statusPending && item.Status != statusWaitlisted && item.Status != statusAccepted && item.Status != statusOffered {
				continue
			}
			d, err := lockDay(ctx, tx, item.MarketDayID)
			if err != nil {
				return err
			}
			if d.finished() {
				continue
			}
			a, err := loadApp(ctx, tx, item.ID)
			if err != nil {
				return err
			}
			switch a.Status {
			case statusOffered:
				err = declineOffer(ctx, tx, d, a, now)
			case statusPending, statusWaitlisted, statusAccepted:
				err = withdraw(ctx, tx, d, a, "", now)
			}
			if err != nil {
				return err
			}
		}
		out, err = loadBatch(ctx, tx, id, now)
		return err
	})
	return out, err
}
