package listings

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/localeurope/piazza/pkg/auth"
	"github.com/localeurope/piazza/pkg/web"
	"github.com/localeurope/piazza/services/contract"
)

// Square is a place (a city square) with its pitch plan, as GET /places/{id}
// shows it. (Place is the short form embedded in market days.)
type Square struct {
	ID        string     `json:"id"`
	City      string     `json:"city"`
	Name      string     `json:"name"`
	Lat       float64    `json:"lat"`
	Lon       float64    `json:"lon"`
	PlanW     float64    `json:"plan_w"`
	PlanH     float64    `json:"plan_h"`
	Pitches   []Pitch    `json:"pitches"`
	Version   int64      `json:"version"`
	CreatedAt time.Time  `json:"created_at"`
	UpdatedAt *time.Time `json:"updated_at,omitempty"`
}

const (
	maxPitchesPerPlan   = 500
	maxPitchesPerCreate = 200
	// Plans are stored in single precision: positions compare with a
	// tolerance well below a centimetre.
	planEpsilon = 1e-3
)

// NewPitch is the body of POST /places/{id}/pitches and an item of NewPlace.
type NewPitch struct {
	Code  string   `json:"code"`
	X     *float64 `json:"x"`
	Y     *float64 `json:"y"`
	W     *float64 `json:"w"`
	H     *float64 `json:"h"`
	Power bool     `json:"power"`
	Water bool     `json:"water"`
	Cover bool     `json:"cover"`
}

func (p *NewPitch) check(f *web.Fields, prefix string) {
	if !pitchCodeRE.MatchString(p.Code) {
		f.Add(prefix+"code", "must be a pitch code such as A1 (letters, digits, '.', '_', '-'; at most 16)")
	}
	checkMetres(f, prefix+"x", p.X, 0, 1000)
	checkMetres(f, prefix+"y", p.Y, 0, 1000)
	checkMetres(f, prefix+"w", p.W, 0.5, 100)
	checkMetres(f, prefix+"h", p.H, 0.5, 100)
}

func (p NewPitch) pitch() Pitch {
	return Pitch{Code: p.Code, X: *p.X, Y: *p.Y, W: *p.W, H: *p.H, Power: p.Power, Water: p.Water, Cover: p.Cover}
}

// Validate checks a new pitch on its own (the plan is checked in the store).
func (p *NewPitch) Validate() error {
	var f web.Fields
	p.check(&f, "")
	return f.Err()
}

func checkMetres(f *web.Fields, field string, v *float64, min, max float64) {
	switch {
	case v == nil:
		f.Add(field, "is required")
	case math.IsNaN(*v) || *v < min || *v > max:
		f.Add(field, "must be from %g to %g metres", min, max)
	}
}

func checkRange(f *web.Fields, field string, v *float64, min, max float64, required bool) {
	switch {
	case v == nil:
		if required {
			f.Add(field, "is required")
		}
	case math.IsNaN(*v) || *v < min || *v > max:
		f.Add(field, "must be from %g to %g", min, max)
	}
}

// NewPlace is the body of POST /cities/{city}/places.
type NewPlace struct {
	Name    string     `json:"name"`
	Lat     *float64   `json:"lat"`
	Lon     *float64   `json:"lon"`
	PlanW   *float64   `json:"plan_w"`
	PlanH   *float64   `json:"plan_h"`
	Pitches []NewPitch `json:"pitches"`
}

// Validate checks a new place and its plan: pitches inside it, codes unique,
// no two pitches overlapping.
func (p *NewPlace) Validate() error {
	var f web.Fields
	checkName(&f, "name", &p.Name)
	checkRange(&f, "lat", p.Lat, -90, 90, true)
	checkRange(&f, "lon", p.Lon, -180, 180, true)
	checkRange(&f, "plan_w", p.PlanW, 1, 1000, true)
	checkRange(&f, "plan_h", p.PlanH, 1, 1000, true)
	if len(p.Pitches) > maxPitchesPerCreate {
		f.Add("pitches", "must hold at most %d pitches; add more with POST /places/{id}/pitches", maxPitchesPerCreate)
	}
	if err := f.Err(); err != nil {
		return err
	}
	var placed []Pitch
	for i := range p.Pitches {
		prefix := fmt.Sprintf("pitches[%d].", i)
		n := len(f)
		p.Pitches[i].check(&f, prefix)
		if len(f) > n {
			continue
		}
		pi := p.Pitches[i].pitch()
		checkOnPlan(&f, prefix, pi, *p.PlanW, *p.PlanH, placed)
		placed = append(placed, pi)
	}
	return f.Err()
}

// checkOnPlan checks that pi lies inside the plan, has a code of its own and
// overlaps none of others.
func checkOnPlan(f *web.Fields, prefix string, pi Pitch, planW, planH float64, others []Pitch) {
	if pi.X+pi.W > planW+planEpsilon {
		f.Add(prefix+"x", "puts the pitch past the plan's width (x + w must be at most %g)", planW)
	}
	if pi.Y+pi.H > planH+planEpsilon {
		f.Add(prefix+"y", "puts the pitch past the plan's height (y + h must be at most %g)", planH)
	}
	for _, o := range others {
		if o.Code == pi.Code {
			f.Add(prefix+"code", "repeats pitch code %q", pi.Code)
		} else if overlaps(pi, o) {
			f.Add(prefix+"x", "makes pitch %s overlap pitch %s", pi.Code, o.Code)
		}
	}
}

// overlaps reports whether two pitches share area; touching edges is fine.
func overlaps(a, b Pitch) bool {
	return a.X < b.X+b.W-planEpsilon && b.X < a.X+a.W-planEpsilon &&
		a.Y < b.Y+b.H-planEpsilon && b.Y < a.Y+a.H-planEpsilon
}

// PlaceUpdate is the body of PATCH /places/{id}.
type PlaceUpdate struct {
	Name    *string  `json:"name"`
	Lat     *float64 `json:"lat"`
	Lon     *float64 `json:"lon"`
	PlanW   *float64 `json:"plan_w"`
	PlanH   *float64 `json:"plan_h"`
	Version *int64   `json:"version"`
}

// Validate checks the fields present.
func (u *PlaceUpdate) Validate() error {
	var f web.Fields
	if u.Name == nil && u.Lat == nil && u.Lon == nil && u.PlanW == nil && u.PlanH == nil {
		if u.Version == nil {
			return noChange()
		}
	}
	if u.Name != nil {
		checkName(&f, "name", u.Name)
	}
	checkRange(&f, "lat", u.Lat, -90, 90, false)
	checkRange(&f, "lon", u.Lon, -180, 180, false)
	checkRange(&f, "plan_w", u.PlanW, 1, 1000, false)
	checkRange(&f, "plan_h", u.PlanH, 1, 1000, false)
	checkVersion(&f, u.Version)
	return f.Err()
}

func checkVersion(f *web.Fields, v *int64) {
	if v != nil && *v < 1 {
		f.Add("version", "must be at least 1")
	}
}

// PitchUpdate is the body of PATCH /places/{id}/pitches/{code}.
type PitchUpdate struct {
	Code  *string  `json:"code"`
	X     *float64 `json:"x"`
	Y     *float64 `json:"y"`
	W     *float64 `json:"w"`
	H     *float64 `json:"h"`
	Power *bool    `json:"power"`
	Water *bool    `json:"water"`
	Cover *bool    `json:"cover"`
}

// Validate checks the fields present.
func (u *PitchUpdate) Validate() error {
	var f web.Fields
	if u.Code == nil && u.X == nil && u.Y == nil && u.W == nil && u.H == nil && u.Power == nil && u.Water == nil && u.Cover == nil {
		return noChange()
	}
	if u.Code != nil && !pitchCodeRE.MatchString(*u.Code) {
		f.Add("code", "must be a pitch code such as A1 (letters, digits, '.', '_', '-'; at most 16)")
	}
	if u.X != nil {
		checkMetres(&f, "x", u.X, 0, 1000)
	}
	if u.Y != nil {
		checkMetres(&f, "y", u.Y, 0, 1000)
	}
	if u.W != nil {
		checkMetres(&f, "w", u.W, 0.5, 100)
	}
	if u.H != nil {
		checkMetres(&f, "h", u.H, 0.5, 100)
	}
	return f.Err()
}

func (u PitchUpdate) apply(p Pitch) Pitch {
	set := func(dst *float64, v *float64) {
		if v != nil {
			*dst = *v
		}
	}
	setB := func(dst *bool, v *bool) {
		if v != nil {
			*dst = *v
		}
	}
	if u.Code != nil {
		p.Code = *u.Code
	}
	set(&p.X, u.X)
	set(&p.Y, u.Y)
	set(&p.W, u.W)
	set(&p.H, u.H)
	setB(&p.Power, u.Power)
	setB(&p.Water, u.Water)
	setB(&p.Cover, u.Cover)
	return p
}

// ── store ──

// Places lists a page of a city's places with their plans, ordered by name.
func (s *Store) Places(ctx context.Context, city string, p page) ([]Square, *string, error) {
	if p.After != "" {
		if err := s.pool.QueryRow(ctx, `SELECT 1 FROM places WHERE city = $1 AND id = $2`, city, p.After).Scan(new(int)); err != nil {
			if errors.Is(err, pgx.ErrNoRows) || !isUUID(p.After) {
				return nil, nil, staleCursor()
			}
			return nil, nil, fmt.Errorf("listings: places: %w", err)
		}
	}
	rows, err := s.pool.Query(ctx, squareSelect+`
		WHERE city = $1 AND ($2 = '' OR (name, id) > (SELECT name, id FROM places WHERE city = $1 AND id = NULLIF($2, '')::uuid))
		ORDER BY name, id LIMIT $3`, city, p.After, p.Limit+1)
	if err != nil {
		return nil, nil, fmt.Errorf("listings: places: %w", err)
	}
	places, err := pgx.CollectRows(rows, scanSquare)
	if err != nil {
		return nil, nil, fmt.Errorf("listings: places: %w", err)
	}
	places, more := trim(p, places)
	if err := fillPitches(ctx, s.pool, places); err != nil {
		return nil, nil, err
	}
	var last string
	if len(places) > 0 {
		last = places[len(places)-1].ID
	}
	return places, p.next(more, last), nil
}

// Square returns one place with its plan, or ENotFound.
func (s *Store) Square(ctx context.Context, id string) (Square, error) {
	return square(ctx, s.pool, id, false)
}

const squareSelect = `SELECT id::text, city, name, lat, lon, plan_w, plan_h, version, created_at, updated_at FROM places`

func scanSquare(row pgx.CollectableRow) (Square, error) {
	var sq Square
	var pw, ph float32
	err := row.Scan(&sq.ID, &sq.City, &sq.Name, &sq.Lat, &sq.Lon, &pw, &ph, &sq.Version, &sq.CreatedAt, &sq.UpdatedAt)
	sq.PlanW, sq.PlanH = float64(pw), float64(ph)
	return sq, err
}

// square loads a place and its pitches; forUpdate locks the place row, so
// that changes to one plan take turns (the overlap check needs that).
func square(ctx context.Context, q querier, id string, forUpdate bool) (Square, error) {
	if !isUUID(id) {
		return Square{}, web.Errorf(web.ENotFound, "there is no place %q", id)
	}
	sql := squareSelect + ` WHERE id = $1`
	if forUpdate {
		sql += ` FOR NO KEY UPDATE`
	}
	rows, err := q.Query(ctx, sql, id)
	if err != nil {
		return Square{}, fmt.Errorf("listings: place %s: %w", id, err)
	}
	sq, err := pgx.CollectExactlyOneRow(rows, scanSquare)
	if errors.Is(err, pgx.ErrNoRows) {
		return Square{}, web.Errorf(web.ENotFound, "there is no place %s", id)
	}
	if err != nil {
		return Square{}, fmt.Errorf("listings: place %s: %w", id, err)
	}
	places := []Square{sq}
	if err := fillPitches(ctx, q, places); err != nil {
		return Square{}, err
	}
	return places[0], nil
}

// fillPitches loads the plans of places in one query.
func fillPitches(ctx context.Context, q querier, places []Square) error {
	ids := make([]string, len(places))
	for i, p := range places {
		ids[i] = p.ID
	}
	pitches, err := loadPitches(ctx, q, ids)
	if err != nil {
		return err
	}
	for i := range places {
		places[i].Pitches = nonNil(pitches[places[i].ID])
	}
	return nil
}

// loadPitches returns the pitches on the plans of places, by place, ordered
// by code. Removed pitches are not on the plan.
func loadPitches(ctx context.Context, q querier, placeIDs []string) (map[string][]Pitch, error) {
	pitches := map[string][]Pitch{}
	if len(placeIDs) == 0 {
		return pitches, nil
	}
	rows, err := q.Query(ctx, `
		SELECT place_id::text, code, x, y, w, h, power, water, cover FROM pitches
		WHERE place_id = ANY($1::uuid[]) AND removed_at IS NULL ORDER BY place_id, code`, placeIDs)
	if err != nil {
		return nil, fmt.Errorf("listings: pitches: %w", err)
	}
	var place string
	var p Pitch
	var x, y, w, h float32
	_, err = pgx.ForEachRow(rows, []any{&place, &p.Code, &x, &y, &w, &h, &p.Power, &p.Water, &p.Cover}, func() error {
		p.X, p.Y, p.W, p.H = float64(x), float64(y), float64(w), float64(h)
		pitches[place] = append(pitches[place], p)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listings: pitches: %w", err)
	}
	return pitches, nil
}

// CreatePlace stores a place with its plan and announces it.
func (s *Store) CreatePlace(ctx context.Context, city string, np NewPlace) (Square, error) {
	var sq Square
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		id := newID()
		if _, err := tx.Exec(ctx, `INSERT INTO places (id, city, name, lat, lon, plan_w, plan_h) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			id, city, np.Name, *np.Lat, *np.Lon, *np.PlanW, *np.PlanH); err != nil {
			return fmt.Errorf("listings: create place: %w", err)
		}
		for _, p := range np.Pitches {
			if err := insertPitch(ctx, tx, city, id, p.pitch()); err != nil {
				return err
			}
		}
		var err error
		sq, err = announcePlace(ctx, tx, id)
		return err
	})
	return sq, err
}

func insertPitch(ctx context.Context, tx pgx.Tx, city, placeID string, p Pitch) error {
	_, err := tx.Exec(ctx, `
		INSERT INTO pitches (id, city, place_id, code, x, y, w, h, power, water, cover)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		newID(), city, placeID, p.Code, p.X, p.Y, p.W, p.H, p.Power, p.Water, p.Cover)
	if isDuplicate(err) {
		return web.Errorf(web.EConflict, "pitch code %s is taken on this plan", p.Code)
	}
	if err != nil {
		return fmt.Errorf("listings: add pitch %s: %w", p.Code, err)
	}
	return nil
}

// isDuplicate reports a unique index firing.
func isDuplicate(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

// announcePlace reloads a place and writes place.upserted with the whole
// plan; the change has already bumped its version.
func announcePlace(ctx context.Context, tx pgx.Tx, id string) (Square, error) {
	sq, err := square(ctx, tx, id, false)
	if err != nil {
		return Square{}, err
	}
	pitches := make([]contract.PitchV1, len(sq.Pitches))
	for i, p := range sq.Pitches {
		pitches[i] = contract.PitchV1(p)
	}
	err = recordEvent(ctx, tx, contract.TypePlaceUpserted, sq.City, "place", "upserted", "places/"+sq.ID, contract.PlaceV1{
		ID: sq.ID, City: sq.City, Name: sq.Name, Lat: sq.Lat, Lon: sq.Lon, PlanW: sq.PlanW, PlanH: sq.PlanH,
		Pitches: pitches, Version: sq.Version,
	})
	return sq, err
}

// placeForChange locks a place the principal may change: ENotFound when it
// does not exist, EForbidden when the caller does not manage its city.
func placeForChange(ctx context.Context, tx pgx.Tx, id string) (Square, error) {
	sq, err := square(ctx, tx, id, true)
	if err != nil {
		return Square{}, err
	}
	if _, err := auth.RequireManager(ctx, sq.City); err != nil {
		return Square{}, err
	}
	return sq, nil
}

// UpdatePlace changes a place's name, position or plan size.
func (s *Store) UpdatePlace(ctx context.Context, id string, u PlaceUpdate) (Square, error) {
	var sq Square
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		cur, err := placeForChange(ctx, tx, id)
		if err != nil {
			return err
		}
		if u.Version != nil && *u.Version != cur.Version {
			return staleVersion("place", *u.Version, cur.Version)
		}
		next := cur
		if u.Name != nil {
			next.Name = *u.Name
		}
		if u.Lat != nil {
			next.Lat = *u.Lat
		}
		if u.Lon != nil {
			next.Lon = *u.Lon
		}
		if u.PlanW != nil {
			next.PlanW = *u.PlanW
		}
		if u.PlanH != nil {
			next.PlanH = *u.PlanH
		}
		var f web.Fields
		for _, p := range cur.Pitches {
			if p.X+p.W > next.PlanW+planEpsilon {
				f.Add("plan_w", "would leave pitch %s outside the plan (it reaches %g m)", p.Code, p.X+p.W)
			}
			if p.Y+p.H > next.PlanH+planEpsilon {
				f.Add("plan_h", "would leave pitch %s outside the plan (it reaches %g m)", p.Code, p.Y+p.H)
			}
		}
		if err := f.Err(); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE places SET name = $3, lat = $4, lon = $5, plan_w = $6, plan_h = $7,
			version = version + 1, updated_at = now() WHERE id = $1 AND city = $2`,
			id, cur.City, next.Name, next.Lat, next.Lon, next.PlanW, next.PlanH); err != nil {
			return fmt.Errorf("listings: update place %s: %w", id, err)
		}
		sq, err = announcePlace(ctx, tx, id)
		return err
	})
	return sq, err
}

// AddPitch adds a pitch to a place's plan.
func (s *Store) AddPitch(ctx context.Context, placeID string, np NewPitch) (Pitch, error) {
	p := np.pitch()
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		cur, err := placeForChange(ctx, tx, placeID)
		if err != nil {
			return err
		}
		for _, o := range cur.Pitches {
			if o.Code == p.Code {
				return web.Errorf(web.EConflict, "pitch code %s is taken on this plan", p.Code)
			}
		}
		if len(cur.Pitches) >= maxPitchesPerPlan {
			return &web.Error{Code: web.EInvalid, Message: "the request has invalid fields",
				Fields: []web.FieldError{{Field: "code", Message: fmt.Sprintf("the plan already holds the most pitches a plan can hold (%d)", maxPitchesPerPlan)}}}
		}
		var f web.Fields
		checkOnPlan(&f, "", p, cur.PlanW, cur.PlanH, cur.Pitches)
		if err := f.Err(); err != nil {
			return err
		}
		if err := insertPitch(ctx, tx, cur.City, cur.ID, p); err != nil {
			return err
		}
		if err := bumpPlace(ctx, tx, cur); err != nil {
			return err
		}
		_, err = announcePlace(ctx, tx, cur.ID)
		return err
	})
	return p, err
}

// UpdatePitch moves, resizes, re-equips or renames a pitch. Stalls keep it:
// applications point at the pitch, not at its code.
func (s *Store) UpdatePitch(ctx context.Context, placeID, code string, u PitchUpdate) (Pitch, error) {
	var next Pitch
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		cur, err := placeForChange(ctx, tx, placeID)
		if err != nil {
			return err
		}
		var others []Pitch
		found := false
		for _, p := range cur.Pitches {
			if p.Code == code {
				next, found = u.apply(p), true
			} else {
				others = append(others, p)
			}
		}
		if !found {
			return web.Errorf(web.ENotFound, "there is no pitch %q on this plan", code)
		}
		for _, o := range others {
			if o.Code == next.Code {
				return web.Errorf(web.EConflict, "pitch code %s is taken on this plan", next.Code)
			}
		}
		var f web.Fields
		checkOnPlan(&f, "", next, cur.PlanW, cur.PlanH, others)
		if err := f.Err(); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `
			UPDATE pitches SET code = $3, x = $4, y = $5, w = $6, h = $7, power = $8, water = $9, cover = $10
			WHERE place_id = $1 AND code = $2 AND removed_at IS NULL AND city = $11`,
			cur.ID, code, next.Code, next.X, next.Y, next.W, next.H, next.Power, next.Water, next.Cover, cur.City)
		if isDuplicate(err) {
			return web.Errorf(web.EConflict, "pitch code %s is taken on this plan", next.Code)
		}
		if err != nil {
			return fmt.Errorf("listings: update pitch %s: %w", code, err)
		}
		if err := bumpPlace(ctx, tx, cur); err != nil {
			return err
		}
		sq, err := announcePlace(ctx, tx, cur.ID)
		for _, p := range sq.Pitches {
			if p.Code == next.Code {
				next = p
			}
		}
		return err
	})
	return next, err
}

// DeletePitch takes a pitch off the plan, unless a stall on a day that is not
// over is on it (accepted or offered).
func (s *Store) DeletePitch(ctx context.Context, placeID, code string, now time.Time) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		cur, err := placeForChange(ctx, tx, placeID)
		if err != nil {
			return err
		}
		var pitchID string
		err = tx.QueryRow(ctx, `SELECT id::text FROM pitches WHERE place_id = $1 AND city = $3 AND code = $2 AND removed_at IS NULL`, cur.ID, code, cur.City).Scan(&pitchID)
		if errors.Is(err, pgx.ErrNoRows) {
			return web.Errorf(web.ENotFound, "there is no pitch %q on this plan", code)
		}
		if err != nil {
			return fmt.Errorf("listings: delete pitch %s: %w", code, err)
		}
		var busy int
		if err := tx.QueryRow(ctx, `
			SELECT count(*) FROM applications a JOIN market_days d ON d.id = a.market_day_id
			WHERE a.pitch_id = $1 AND a.status IN ('accepted', 'offered')
			  AND d.status IN ('scheduled', 'open') AND d.ends_at > $2`, pitchID, now).Scan(&busy); err != nil {
			return fmt.Errorf("listings: delete pitch %s: %w", code, err)
		}
		if busy > 0 {
			return web.Errorf(web.EConflict, "pitch %s has %d stall(s) on coming market days; move them first", code, busy)
		}
		if _, err := tx.Exec(ctx, `UPDATE pitches SET removed_at = now() WHERE id = $1 AND city = $2`, pitchID, cur.City); err != nil {
			return fmt.Errorf("listings: delete pitch %s: %w", code, err)
		}
		if err := bumpPlace(ctx, tx, cur); err != nil {
			return err
		}
		_, err = announcePlace(ctx, tx, cur.ID)
		return err
	})
}

func bumpPlace(ctx context.Context, tx pgx.Tx, sq Square) error {
	_, err := tx.Exec(ctx, `UPDATE places SET version = version + 1, updated_at = now() WHERE id = $1 AND city = $2`, sq.ID, sq.City)
	if err != nil {
		return fmt.Errorf("listings: place %s: %w", sq.ID, err)
	}
	return nil
}

// ── http ──

func handlePlaces(store *Store, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := store.City(r.Context(), r.PathValue("city"))
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		p, err := readPage(r, "places", c.Slug)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		places, next, err := store.Places(r.Context(), c.Slug, p)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		web.JSON(w, http.StatusOK, pageOf[Square]{Items: places, NextCursor: next})
	})
}

func handlePlace(store *Store, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sq, err := store.Square(r.Context(), r.PathValue("id"))
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		web.JSON(w, http.StatusOK, sq)
	})
}

// managedCity authorizes a manager action on a city named in the path: 401
// without a token, 404 for an unknown city, 403 for another city's manager.
func managedCity(r *http.Request, store *Store) (City, error) {
	if _, err := auth.Require(r.Context()); err != nil {
		return City{}, err
	}
	c, err := store.City(r.Context(), r.PathValue("city"))
	if err != nil {
		return City{}, err
	}
	if _, err := auth.RequireManager(r.Context(), c.Slug); err != nil {
		return City{}, err
	}
	return c, nil
}

func handleCreatePlace(store *Store, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := managedCity(r, store)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		np, err := web.Decode[NewPlace](w, r)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		sq, err := store.CreatePlace(r.Context(), c.Slug, np)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		w.Header().Set("Location", "/api/v1/listings/places/"+sq.ID)
		web.JSON(w, http.StatusCreated, sq)
	})
}

// requireSignedIn answers 401 before anything else about a record is read.
func requireSignedIn(w http.ResponseWriter, r *http.Request, log *slog.Logger) bool {
	if _, err := auth.Require(r.Context()); err != nil {
		web.WriteError(w, r, log, err)
		return false
	}
	return true
}

func handleUpdatePlace(store *Store, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !requireSignedIn(w, r, log) {
			return
		}
		u, err := web.Decode[PlaceUpdate](w, r)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		sq, err := store.UpdatePlace(r.Context(), r.PathValue("id"), u)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		web.JSON(w, http.StatusOK, sq)
	})
}

func handleAddPitch(store *Store, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !requireSignedIn(w, r, log) {
			return
		}
		np, err := web.Decode[NewPitch](w, r)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		id := r.PathValue("id")
		p, err := store.AddPitch(r.Context(), id, np)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		w.Header().Set("Location", "/api/v1/listings/places/"+id+"/pitches/"+p.Code)
		web.JSON(w, http.StatusCreated, p)
	})
}

func handleUpdatePitch(store *Store, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !requireSignedIn(w, r, log) {
			return
		}
		u, err := web.Decode[PitchUpdate](w, r)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		p, err := store.UpdatePitch(r.Context(), r.PathValue("id"), r.PathValue("code"), u)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		web.JSON(w, http.StatusOK, p)
	})
}

func handleDeletePitch(store *Store, log *slog.Logger, now func() time.Time) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !requireSignedIn(w, r, log) {
			return
		}
		if err := store.DeletePitch(r.Context(), r.PathValue("id"), r.PathValue("code"), now()); err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}
