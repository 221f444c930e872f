package listings

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/localeurope/piazza/pkg/auth"
	"github.com/localeurope/piazza/pkg/outbox"
	"github.com/localeurope/piazza/pkg/web"
)

// The application lifecycle (see "Application states" in openapi.yaml).
//
// Every change to the applications of one market day first takes the day's
// row lock (lockDay), so that what a transaction reads about the day's
// pitches and waitlist stays true until it commits. The database is the
// guarantee regardless: a partial unique index keeps a pitch to one accepted
// or offered application per day, a unique key keeps one application per
// vendor per day, and each transition is one UPDATE … WHERE status = ANY(…).

// Application states.
const (
	statusPending    = "pending"
	statusAccepted   = "accepted"
	statusWaitlisted = "waitlisted"
	statusRejected   = "rejected"
	statusWithdrawn  = "withdrawn"
	statusOffered    = "offered"
	statusDeclined   = "declined"
	statusExpired    = "expired"
)

var applicationStatuses = []string{statusPending, statusAccepted, statusWaitlisted, statusRejected, statusWithdrawn,
	statusOffered, statusDeclined, statusExpired}

// NewApplication is the body of POST /market-days/{id}/applications.
type NewApplication struct {
	VendorID string `json:"vendor_id"`
	Pitch    string `json:"pitch,omitempty"` // preferred pitch code; any free one when empty
	Note     string `json:"note,omitempty"`
}

// Validate checks a new application.
func (a *NewApplication) Validate() error {
	var f web.Fields
	if !isUUID(a.VendorID) {
		f.Add("vendor_id", "must be a vendor id (UUID)")
	}
	checkPitchCode(&f, "pitch", a.Pitch)
	checkNote(&f, "note", a.Note)
	return f.Err()
}

func checkPitchCode(f *web.Fields, field, code string) {
	if code != "" && !pitchCodeRE.MatchString(code) {
		f.Add(field, "must be a pitch code of at most 16 letters, digits, '.', '_' or '-'")
	}
}

func checkNote(f *web.Fields, field, s string) {
	if utf8.RuneCountInString(s) > 500 {
		f.Add(field, "must be at most 500 characters")
	} else if strings.ContainsRune(s, 0) || !utf8.ValidString(s) {
		f.Add(field, "must be valid text without NUL characters")
	}
}

// Application is a vendor's request for a stall on one market day.
type Application struct {
	ID               string           `json:"id"`
	City             string           `json:"city"`
	MarketDayID      string           `json:"market_day_id"`
	VendorID         string           `json:"vendor_id"`
	Pitch            string           `json:"pitch,omitempty"` // assigned (accepted) or offered pitch
	PreferredPitch   string           `json:"preferred_pitch,omitempty"`
	Status           string           `json:"status"`
	Reason           string           `json:"reason,omitempty"`
	Note             string           `json:"note,omitempty"`
	WaitlistPosition int              `json:"waitlist_position,omitempty"`
	OfferExpiresAt   *time.Time       `json:"offer_expires_at,omitempty"`
	BatchID          string           `json:"batch_id,omitempty"`
	MarketDay        MarketDaySummary `json:"market_day"`
	Vendor           VendorRef        `json:"vendor"`
	LiveState        string           `json:"live_state,omitempty"`
	CheckedInAt      *time.Time       `json:"checked_in_at,omitempty"`
	CheckedOutAt     *time.Time       `json:"checked_out_at,omitempty"`
	StatusText       string           `json:"status_text,omitempty"`
	StatusPostedAt   *time.Time       `json:"status_posted_at,omitempty"`
	DecidedAt        *time.Time       `json:"decided_at,omitempty"`
	Version          int64            `json:"version"`
	CreatedAt        time.Time        `json:"created_at"`

	owner   string  // the vendor profile's owner account, "" when none
	pitchID *string // the held pitch's id
}

// MarketDaySummary is a market day as embedded in an application.
type MarketDaySummary struct {
	ID           string    `json:"id"`
	Date         string    `json:"date"`
	Status       string    `json:"status"`
	StartsAt     time.Time `json:"starts_at"`
	EndsAt       time.Time `json:"ends_at"`
	Market       refMarket `json:"market"`
	Place        refPlace  `json:"place"`
	CancelReason string    `json:"cancel_reason,omitempty"`
}

type refMarket struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type refPlace struct {
	ID   string  `json:"id"`
	Name string  `json:"name"`
	Lat  float64 `json:"lat"`
	Lon  float64 `json:"lon"`
}

// appColumns, appJoins and appSelect read an Application (see scanApp)
// from the application a; appColumns ends before the waitlist position,
// which appSelect counts: the waitlisted of the day up to and including a.
// insertAppSQL has a cheaper one (see there).
const (
	appColumns = `
	SELECT a.id::text, a.city, a.market_day_id::text, a.vendor_id::text, coalesce(pi.code, ''), coalesce(a.preferred_pitch, ''),
	       a.status, coalesce(a.reason, ''), coalesce(a.note, ''), a.offer_expires_at, coalesce(a.batch_id::text, ''),
	       coalesce(a.live_state, ''), a.checked_in_at, a.checked_out_at, coalesce(a.status_text, ''), a.status_posted_at,
	       a.decided_at, a.version, a.created_at,
	       d.date::text, d.status, d.starts_at, d.ends_at, coalesce(d.cancel_reason, ''),
	       m.id::text, m.name, p.id::text, p.name, p.lat, p.lon,
	       v.name, v.kind, coalesce(v.owner_account_id, ''), a.pitch_id::text,`
	appJoins = `
	JOIN market_days d ON d.id = a.market_day_id
	JOIN markets m ON m.id = d.market_id
	JOIN places p ON p.id = m.place_id
	JOIN vendors v ON v.id = a.vendor_id
	LEFT JOIN pitches pi ON pi.id = a.pitch_id`
	appSelect = appColumns + `
	       CASE WHEN a.status = 'waitlisted' THEN (SELECT count(*) FROM applications w
	            WHERE w.market_day_id = a.market_day_id AND w.status = 'waitlisted'
	              AND (w.waitlisted_at, w.id) <= (a.waitlisted_at, a.id)) END
	FROM applications a` + appJoins
)

// insertAppSQL chooses the application's status and pitch and inserts it,
// in one statement, returning its own columns and its pitch's code
// (scanInserted: the day, market, place and vendor are the caller's, read
// with the day's lock). With the market's auto_accept ($10) it is accepted
// on the preferred pitch ($3) or the first free one (freePitchSQL, whose
// parameters $1 to $3 it shares), or waitlisted when none is free; a
// preferred pitch that is taken inserts nothing. Without auto_accept it is
// pending. No row: nothing was inserted (that, or a unique index fired).
// The pitch choice is MATERIALIZED: inlined into each of its four
// references, it ran five times.
//
// A waitlisted application joins at the end: its waitlisted_at is $9, or
// just after the day's last if that is later (a registration that took the
// day's lock after another, with an earlier clock). Its place is then the
// day's waitlist count (market_days.waitlisted, which triggers keep, read
// with the day's lock) plus one. Counting the waitlist instead cost a
// registration time in proportion to it; joining the day, market, place
// and vendor again to return them cost it a fifth of the statement.
const insertAppSQL = `
	WITH pitch AS MATERIALIZED (
		SELECT CASE WHEN $10::boolean THEN (` + freePitchSQL + `) END AS id
	), choice AS (
		SELECT id AS pitch_id, CASE WHEN NOT $10 THEN 'pending' WHEN id IS NOT NULL THEN 'accepted' ELSE 'waitlisted' END AS status
		FROM pitch WHERE NOT ($10 AND $3 <> '' AND id IS NULL)
	), a AS (
		INSERT INTO applications (id, city, market_day_id, vendor_id, pitch_id, status, preferred_pitch, note, batch_id,
		                          waitlisted_at, live_state, decided_at)
		SELECT $4, $5, $2, $6, c.pitch_id, c.status, nullif($3, ''), nullif($7, ''), nullif($8, '')::uuid,
		       CASE WHEN c.status = 'waitlisted' THEN greatest($9::timestamptz, (
		           SELECT w.waitlisted_at + interval '1 microsecond' FROM applications w
		           WHERE w.market_day_id = $2 AND w.status = 'waitlisted'
		           ORDER BY w.waitlisted_at DESC, w.id DESC LIMIT 1)) END,
		       CASE WHEN c.status = 'accepted' THEN 'expected' END, CASE WHEN c.status <> 'pending' THEN $9 END
		FROM choice c
		ON CONFLICT DO NOTHING
		RETURNING *)
	SELECT a.id::text, a.city, a.market_day_id::text, a.vendor_id::text, coalesce(pi.code, ''), coalesce(a.preferred_pitch, ''),
	       a.status, coalesce(a.reason, ''), coalesce(a.note, ''), a.offer_expires_at, coalesce(a.batch_id::text, ''),
	       coalesce(a.live_state, ''), a.checked_in_at, a.checked_out_at, coalesce(a.status_text, ''), a.status_posted_at,
	       a.decided_at, a.version, a.created_at, a.pitch_id::text
	FROM a LEFT JOIN pitches pi ON pi.id = a.pitch_id`

// scanInserted reads a row of insertAppSQL, an application of v on day.
func scanInserted(day dayInfo, v vendorInfo) pgx.RowToFunc[Application] {
	return func(row pgx.CollectableRow) (Application, error) {
		var a Application
		err := row.Scan(&a.ID, &a.City, &a.MarketDayID, &a.VendorID, &a.Pitch, &a.PreferredPitch,
			&a.Status, &a.Reason, &a.Note, &a.OfferExpiresAt, &a.BatchID,
			&a.LiveState, &a.CheckedInAt, &a.CheckedOutAt, &a.StatusText, &a.StatusPostedAt,
			&a.DecidedAt, &a.Version, &a.CreatedAt, &a.pitchID)
		a.MarketDay = MarketDaySummary{ID: day.ID, Date: day.Date, Status: day.Status, StartsAt: day.StartsAt, EndsAt: day.EndsAt,
			CancelReason: day.CancelReason, Market: refMarket{ID: day.MarketID, Name: day.MarketName},
			Place: refPlace{ID: day.PlaceID, Name: day.PlaceName, Lat: day.Lat, Lon: day.Lon}}
		a.Vendor.ID, a.Vendor.Name, a.Vendor.Kind, a.owner = v.ID, v.Name, v.Kind, v.Owner
		if a.Status == statusWaitlisted {
			a.WaitlistPosition = int(day.Waitlisted) + 1
		}
		a.normalize()
		return a, err
	}
}

func scanApp(row pgx.CollectableRow) (Application, error) {
	var a Application
	var pos *int64
	d := &a.MarketDay
	err := row.Scan(&a.ID, &a.City, &a.MarketDayID, &a.VendorID, &a.Pitch, &a.PreferredPitch,
		&a.Status, &a.Reason, &a.Note, &a.OfferExpiresAt, &a.BatchID,
		&a.LiveState, &a.CheckedInAt, &a.CheckedOutAt, &a.StatusText, &a.StatusPostedAt,
		&a.DecidedAt, &a.Version, &a.CreatedAt,
		&d.Date, &d.Status, &d.StartsAt, &d.EndsAt, &d.CancelReason,
		&d.Market.ID, &d.Market.Name, &d.Place.ID, &d.Place.Name, &d.Place.Lat, &d.Place.Lon,
		&a.Vendor.Name, &a.Vendor.Kind, &a.owner, &a.pitchID, &pos)
	d.ID, a.Vendor.ID = a.MarketDayID, a.VendorID
	if pos != nil {
		a.WaitlistPosition = int(*pos)
	}
	a.normalize()
	return a, err
}

// normalize clears what a's status does not show.
func (a *Application) normalize() {
	if a.Status != statusAccepted { // the live fields describe a stall
		a.LiveState = ""
	}
	if a.Status != statusAccepted && a.Status != statusOffered {
		a.Pitch = ""
	}
}

// loadApp reads one application, or ENotFound.
func loadApp(ctx context.Context, q querier, id string) (Application, error) {
	return queryApp(ctx, q, appSelect+` WHERE a.id = $1`, id)
}

func queryApp(ctx context.Context, q querier, sql, id string) (Application, error) {
	a, err := collectApp(q.Query(ctx, sql, id))
	return a, appErr(err, id)
}

// collectApp reads the one application of a query's rows.
func collectApp(rows pgx.Rows, err error) (Application, error) {
	if err != nil {
		return Application{}, err
	}
	return pgx.CollectExactlyOneRow(rows, scanApp)
}

// appErr explains an error reading application id: ENotFound for no row.
func appErr(err error, id string) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return errNoApplication(id)
	}
	if err != nil {
		return fmt.Errorf("listings: application %s: %w", id, err)
	}
	return nil
}

func errNoApplication(id string) error {
	return web.Errorf(web.ENotFound, "there is no application %s", id)
}

// Who may do what with an application. Records a caller may not see are
// answered 404 (their existence must not leak); 403 means the caller sees the
// application but may not take this action.

func (a Application) ownedBy(p auth.Principal) bool { return a.owner != "" && a.owner == p.AccountID }

func (a Application) visibleTo(p auth.Principal) bool { return a.ownedBy(p) || p.Manages(a.City) }

// mayRead: the owner, a manager of the city or an admin.
func mayRead(p auth.Principal, a Application) error {
	if !a.visibleTo(p) {
		return errNoApplication(a.ID)
	}
	return nil
}

// mayActAsVendor: the owner (or an admin, who may act on any profile).
func mayActAsVendor(p auth.Principal, a Application) error {
	switch {
	case a.ownedBy(p) || p.IsAdmin():
		return nil
	case a.visibleTo(p):
		return web.Errorf(web.EForbidden, "only the vendor may do this")
	default:
		return errNoApplication(a.ID)
	}
}

// mayManage: a manager of the application's city, or an admin.
func mayManage(p auth.Principal, a Application) error {
	switch {
	case p.Manages(a.City):
		return nil
	case a.visibleTo(p):
		return web.Errorf(web.EForbidden, "only the city's market managers may do this")
	default:
		return errNoApplication(a.ID)
	}
}

// dayInfo is what the lifecycle needs to know about a market day and its
// market, read under the day's row lock.
type dayInfo struct {
	ID, City, Date, Status, Timezone string
	StartsAt, EndsAt                 time.Time
	MarketID, MarketName             string
	PlaceID, PlaceName               string
	AutoAccept                       bool
	OfferHours                       int
	CancelReason                     string
	Lat, Lon                         float64
	Waitlisted                       int64 // as of the read; stable under the day's lock
}

// lockDay locks a market day's row for the rest of the transaction.
func lockDay(ctx context.Context, tx pgx.Tx, dayID string) (dayInfo, error) {
	var d dayInfo
	err := tx.QueryRow(ctx, daySelect+` WHERE d.id = $1 FOR NO KEY UPDATE OF d`, dayID).Scan(d.dest()...)
	return d, dayErr(err, dayID)
}

// lockDayFor is lockDay that also reads the applying vendor (of the day's
// city) in the same round trip: see applicant.
func lockDayFor(ctx context.Context, tx pgx.Tx, dayID, vendorID string, who *auth.Principal) (dayInfo, vendorInfo, error) {
	var l dayFor
	return l.result(tx.QueryRow(ctx, lockDayForSQL, dayID, vendorID).Scan(l.dest()...), dayID, who)
}

// lockDayForSQL is lockDayFor's statement, with the day and vendor ids
// ($1, $2), which dayFor scans.
const lockDayForSQL = dayColumns + `, v.id::text, v.city, v.name, v.kind, coalesce(v.owner_account_id, '')` + dayFrom + `
	LEFT JOIN vendors v ON v.id = $2 AND v.city = d.city
	WHERE d.id = $1 FOR NO KEY UPDATE OF d`

// dayFor is what lockDayForSQL reads.
type dayFor struct {
	day                              dayInfo
	vid, vcity, vname, vkind, vowner *string
}

func (l *dayFor) dest() []any {
	return append(l.day.dest(), &l.vid, &l.vcity, &l.vname, &l.vkind, &l.vowner)
}

// result is the day and vendor read with err, or why who may not apply.
func (l *dayFor) result(err error, dayID string, who *auth.Principal) (dayInfo, vendorInfo, error) {
	if err := dayErr(err, dayID); err != nil {
		return l.day, vendorInfo{}, err
	}
	if l.vid == nil {
		return l.day, vendorInfo{}, errNoVendor()
	}
	v := vendorInfo{ID: *l.vid, City: *l.vcity, Name: *l.vname, Kind: *l.vkind, Owner: *l.vowner}
	return l.day, v, mayApplyFor(v, who)
}

// dayColumns and dayFrom read a dayInfo (see dest) from market_days d; a
// query adds its WHERE clause and lock.
const (
	dayColumns = `
	SELECT d.id::text, d.city, d.date::text, d.status, c.timezone, d.starts_at, d.ends_at,
	       m.id::text, m.name, p.id::text, p.name, m.auto_accept, m.offer_hours,
	       coalesce(d.cancel_reason, ''), p.lat, p.lon, d.waitlisted`
	dayFrom = `
	FROM market_days d JOIN markets m ON m.id = d.market_id JOIN places p ON p.id = m.place_id JOIN cities c ON c.slug = d.city`
	daySelect = dayColumns + dayFrom
)

func (d *dayInfo) dest() []any {
	return []any{&d.ID, &d.City, &d.Date, &d.Status, &d.Timezone, &d.StartsAt, &d.EndsAt,
		&d.MarketID, &d.MarketName, &d.PlaceID, &d.PlaceName, &d.AutoAccept, &d.OfferHours,
		&d.CancelReason, &d.Lat, &d.Lon, &d.Waitlisted}
}

func dayErr(err error, dayID string) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return web.Errorf(web.ENotFound, "there is no market day %s", dayID)
	}
	if err != nil {
		return fmt.Errorf("listings: lock market day %s: %w", dayID, err)
	}
	return nil
}

// finished reports whether the day is closed or cancelled: its applications
// no longer change.
func (d dayInfo) finished() bool { return d.Status == "closed" || d.Status == "cancelled" }

// vendorInfo is the applying vendor.
type vendorInfo struct {
	ID, City, Name, Kind, Owner string
}

// Apply stores a trusted application (no caller to check): see apply.
func (s *Store) Apply(ctx context.Context, dayID string, na NewApplication, now time.Time) (Application, error) {
	return s.ApplyAs(ctx, nil, dayID, na, now)
}

// ApplyAs stores an application for one market day on behalf of who (nil:
// trusted). With the market's auto_accept on, it is accepted on the
// preferred (or first free) pitch, or waitlisted when none is free;
// otherwise it is pending. Applications for one day take turns on the day's
// row lock, so many requests may race.
//
// It is three round trips: BEGIN with the day's lock, the insert, and the
// outbox rows with the COMMIT. The lock is held for the last two only: a
// day's applications queue on it, so its hold time bounds how many one day
// takes per second (the opening of a season's registrations, say).
func (s *Store) ApplyAs(ctx context.Context, who *auth.Principal, dayID string, na NewApplication, now time.Time) (Application, error) {
	var app Application
	err := s.alone(ctx, "apply", func(conn *pgxpool.Conn) (err error) {
		app, err = applyAlone(ctx, conn, who, dayID, na, now)
		return err
	})
	return app, err
}

// alone runs fn on a connection of its own, in the transaction fn begins in
// its first round trip and ends with commit, in its last: fewer round trips
// than pgx.BeginFunc's, on the paths that run most. A transaction fn leaves
// open (on an error) is rolled back here: a connection released inside one
// would be closed by the pool, and refusals (a second application, a full
// day, a stall already open) are common.
func (s *Store) alone(ctx context.Context, what string, fn func(conn *pgxpool.Conn) error) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("listings: %s: %w", what, err)
	}
	defer conn.Release()
	err = fn(conn)
	if err != nil && conn.Conn().PgConn().TxStatus() != 'I' {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, rerr := conn.Exec(rctx, `ROLLBACK`); rerr != nil {
			return errors.Join(err, rerr)
		}
	}
	return err
}

// commit writes entries to the outbox and commits the transaction on conn,
// in one round trip.
func commit(ctx context.Context, conn *pgxpool.Conn, what string, entries ...outbox.Entry) error {
	b := &pgx.Batch{}
	if err := outbox.Queue(conn.Conn(), b, entries...); err != nil {
		return err
	}
	var tag pgconn.CommandTag
	b.Queue(`COMMIT`).Exec(func(ct pgconn.CommandTag) error { tag = ct; return nil })
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("listings: %s: commit: %w", what, err)
	}
	if tag.String() != "COMMIT" {
		return fmt.Errorf("listings: %s: commit: %s", what, tag)
	}
	return nil
}

// applyAlone is ApplyAs in the transaction it begins on conn, which it
// commits when it returns no error.
func applyAlone(ctx context.Context, conn *pgxpool.Conn, who *auth.Principal, dayID string, na NewApplication, now time.Time) (Application, error) {
	b := &pgx.Batch{}
	b.Queue(`BEGIN`)
	var l dayFor
	b.Queue(lockDayForSQL, dayID, na.VendorID).QueryRow(func(row pgx.Row) error { return row.Scan(l.dest()...) })
	day, v, err := l.result(conn.SendBatch(ctx, b).Close(), dayID, who)
	if err != nil {
		return Application{}, err
	}
	app, entries, err := applyLocked(ctx, conn, day, v, na, now, applyOpts{actor: who})
	if err != nil {
		return Application{}, err
	}
	return app, commit(ctx, conn, "apply", entries...)
}

type applyOpts struct {
	actor   *auth.Principal // nil: trusted
	batchID string
}

// apply stores an application in tx (see ApplyAs).
func (s *Store) apply(ctx context.Context, tx pgx.Tx, dayID string, na NewApplication, now time.Time, o applyOpts) (Application, error) {
	day, v, err := lockDayFor(ctx, tx, dayID, na.VendorID, o.actor)
	if err != nil {
		return Application{}, err
	}
	app, entries, err := applyLocked(ctx, tx, day, v, na, now, o)
	if err != nil {
		return Application{}, err
	}
	return app, outbox.AddAll(ctx, tx, entries...)
}

// applyLocked inserts an application for v on the day locked by the
// transaction q is in, and returns it with the events that announce it: its
// submission and what came of it.
func applyLocked(ctx context.Context, q querier, day dayInfo, v vendorInfo, na NewApplication, now time.Time, o applyOpts) (Application, []outbox.Entry, error) {
	if day.finished() || !now.Before(day.EndsAt) {
		return Application{}, nil, web.Errorf(web.EConflict, "the market day %s is %s; it takes no more stalls", day.Date, closedWord(day.Status))
	}
	if na.Pitch != "" {
		if _, err := pitchOnPlan(ctx, q, day.PlaceID, na.Pitch); err != nil {
			return Application{}, nil, err
		}
	}
	id := newID()
	var app Application
	for attempt := 0; ; attempt++ {
		rows, err := q.Query(ctx, insertAppSQL, day.PlaceID, day.ID, na.Pitch, id, day.City, v.ID, na.Note, o.batchID, now,
			day.AutoAccept)
		if err != nil {
			return Application{}, nil, fmt.Errorf("listings: apply: insert: %w", err)
		}
		inserted, err := pgx.CollectRows(rows, scanInserted(day, v))
		if err != nil {
			return Application{}, nil, fmt.Errorf("listings: apply: insert: %w", err)
		}
		if len(inserted) == 1 {
			app = inserted[0]
			break
		}
		var existing string
		err = q.QueryRow(ctx, `SELECT id::text FROM applications WHERE market_day_id = $1 AND vendor_id = $2`, day.ID, v.ID).Scan(&existing)
		if err == nil {
			return Application{}, nil, &alreadyApplied{web.Errorf(web.EConflict, "vendor %s has already applied for this market day (application %s)", v.ID, existing), existing}
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return Application{}, nil, fmt.Errorf("listings: apply: %w", err)
		}
		// The preferred pitch is taken, or a pitch was taken behind the
		// day lock's back: try the next.
		if na.Pitch != "" {
			return Application{}, nil, errPitchTaken(na.Pitch, day.Date)
		}
		if attempt == 8 {
			return Application{}, nil, web.Errorf(web.EConflict, "the market day is busy; please try again")
		}
	}
	entries := make([]outbox.Entry, 1, 2)
	var err error
	if entries[0], err = applicationEntry(ctx, day, app, typeSubmitted, now); err != nil {
		return Application{}, nil, err
	}
	var next outbox.Entry
	switch app.Status {
	case statusAccepted:
		next, err = stallRegisteredEntry(ctx, day, app, app.CreatedAt)
	case statusWaitlisted:
		next, err = applicationEntry(ctx, day, app, typeWaitlisted, now)
	}
	if err != nil {
		return Application{}, nil, err
	}
	if next.Subject != "" {
		entries = append(entries, next)
	}
	return app, entries, nil
}

// alreadyApplied is the conflict of a second application for one day; a
// batch reports it as a skipped date.
type alreadyApplied struct {
	err      *web.Error
	existing string
}

func (e *alreadyApplied) Error() string { return e.err.Error() }
func (e *alreadyApplied) Unwrap() error { return e.err }

// applicant reads the applying vendor, which must be of the day's city, and
// checks that who may act for it.
func applicant(ctx context.Context, tx pgx.Tx, vendorID, city string, who *auth.Principal) (vendorInfo, error) {
	var v vendorInfo
	err := tx.QueryRow(ctx, `SELECT id::text, city, name, kind, coalesce(owner_account_id, '') FROM vendors WHERE id = $1 AND city = $2`,
		vendorID, city).Scan(&v.ID, &v.City, &v.Name, &v.Kind, &v.Owner)
	if errors.Is(err, pgx.ErrNoRows) {
		return v, errNoVendor()
	}
	if err != nil {
		return v, fmt.Errorf("listings: apply: vendor: %w", err)
	}
	return v, mayApplyFor(v, who)
}

func errNoVendor() error {
	return &web.Error{Code: web.EInvalid, Message: "the request has invalid fields",
		Fields: []web.FieldError{{Field: "vendor_id", Message: "there is no such vendor in this market's city"}}}
}

// mayApplyFor checks that who (nil: trusted) may act for vendor v.
func mayApplyFor(v vendorInfo, who *auth.Principal) error {
	if who != nil && !who.IsAdmin() && (v.Owner == "" || v.Owner != who.AccountID) {
		return web.Errorf(web.EForbidden, "you may apply only for vendor profiles you own")
	}
	return nil
}

func closedWord(status string) string {
	if status == "scheduled" || status == "open" {
		return "over"
	}
	return status
}

func errPitchTaken(code, date string) error {
	return web.Errorf(web.EConflict, "pitch %s is taken on %s", code, date)
}

// pitchOnPlan returns the id of the pitch with code on the square's plan, or
// a field error on "pitch".
func pitchOnPlan(ctx context.Context, q querier, placeID, code string) (string, error) {
	var id string
	err := q.QueryRow(ctx, `SELECT id::text FROM pitches WHERE place_id = $1 AND code = $2 AND removed_at IS NULL`, placeID, code).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", &web.Error{Code: web.EInvalid, Message: "the request has invalid fields",
			Fields: []web.FieldError{{Field: "pitch", Message: fmt.Sprintf("there is no pitch %q on this square", code)}}}
	}
	if err != nil {
		return "", fmt.Errorf("listings: pitch: %w", err)
	}
	return id, nil
}

// freePitch returns the preferred pitch if it is free, the first free one by
// code when preferred is "", or nil.
func freePitch(ctx context.Context, tx pgx.Tx, placeID, dayID, preferred string) (*string, error) {
	var id string
	err := tx.QueryRow(ctx, `SELECT id::text FROM (`+freePitchSQL+`) p`, placeID, dayID, preferred).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listings: free pitch: %w", err)
	}
	return &id, nil
}

// freePitchSQL selects the id of the first pitch (by code) on the plan of
// the place $1 that no application of the day $2 holds or is offered, or
// only the pitch with code $3 if that is not empty.
const freePitchSQL = `
	SELECT p.id FROM pitches p
	WHERE p.place_id = $1 AND p.removed_at IS NULL AND ($3 = '' OR p.code = $3)
	  AND NOT EXISTS (SELECT 1 FROM applications a WHERE a.market_day_id = $2 AND a.pitch_id = p.id
	                  AND a.status IN ('accepted', 'offered'))
	ORDER BY p.code LIMIT 1`

// isUniqueViolation reports a unique index firing: here, a pitch taken by a
// transaction that did not take the day's lock.
func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// conflictState explains a transition refused because of the current state.
func conflictState(a Application, action string) error {
	return web.Errorf(web.EConflict, "the application is %s; it cannot be %s", a.Status, action)
}

// sweepApplications lets waitlist offers expire (passing each pitch on) and
// forgets idempotency keys past their day.
func sweepApplications(ctx context.Context, store *Store, now func() time.Time, log *slog.Logger) error {
	t := time.NewTicker(15 * time.Second)
	defer t.Stop()
	keys := idempotencyKeys(store, log)
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if _, err := store.ExpireOffers(ctx, now()); err != nil && ctx.Err() == nil {
			log.Warn("expiring offers failed", "err", err)
		}
		if i%240 == 0 { // hourly
			if _, err := keys.Prune(ctx); err != nil && ctx.Err() == nil {
				log.Warn("pruning idempotency keys failed", "err", err)
			}
		}
	}
}
