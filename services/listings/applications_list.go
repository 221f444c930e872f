package listings

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/localeurope/piazza/pkg/auth"
	"github.com/localeurope/piazza/pkg/web"
)

// Lists of applications and batches, paginated by keyset (page.go): the
// cursor names the last item seen, and the next page starts after its sort
// key.

// appFilter narrows a list of applications.
type appFilter struct {
	Statuses        []string
	From, To        string // local dates of the market day, inclusive
	MarketID, Batch string
}

// readAppFilter reads status=, and for a vendor's list also from=, to=,
// market_id= and batch_id=.
func readAppFilter(r *http.Request, vendorList bool) (appFilter, error) {
	var f web.Fields
	q := r.URL.Query()
	var af appFilter
	if v := q.Get("status"); v != "" || q.Has("status") {
		for _, st := range strings.Split(v, ",") {
			if !slices.Contains(applicationStatuses, st) {
				f.Add("status", "must be a comma-separated list of %s", strings.Join(applicationStatuses, ", "))
				break
			}
			if !slices.Contains(af.Statuses, st) {
				af.Statuses = append(af.Statuses, st)
			}
		}
	}
	if vendorList {
		for _, d := range []struct {
			name string
			to   *string
		}{{"from", &af.From}, {"to", &af.To}} {
			if v := q.Get(d.name); v != "" {
				if t, err := time.Parse(time.DateOnly, v); err != nil || t.Year() < 1 {
					f.Add(d.name, "must be a date like 2026-05-01")
				}
				*d.to = v
			}
		}
		for _, d := range []struct {
			name string
			to   *string
		}{{"market_id", &af.MarketID}, {"batch_id", &af.Batch}} {
			if v := q.Get(d.name); v != "" {
				if !isUUID(v) {
					f.Add(d.name, "must be a UUID")
				}
				*d.to = v
			}
		}
	}
	return af, f.Err()
}

func (af appFilter) key() []string {
	return []string{strings.Join(af.Statuses, ","), af.From, af.To, af.MarketID, af.Batch}
}

// DayApplications lists a market day's applications for its managers,
// oldest first.
func (s *Store) DayApplications(ctx context.Context, who auth.Principal, dayID string, af appFilter, p page) ([]Application, *string, error) {
	var city string
	err := s.pool.QueryRow(ctx, `SELECT city FROM market_days WHERE id = $1`, dayID).Scan(&city)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil, web.Errorf(web.ENotFound, "there is no market day %s", dayID)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("listings: day applications: %w", err)
	}
	if !who.Manages(city) {
		return nil, nil, web.Errorf(web.EForbidden, "only the city's market managers may review applications")
	}
	if p.After != "" && !s.applicationExists(ctx, p.After) {
		return nil, nil, staleCursor()
	}
	rows, err := s.pool.Query(ctx, appSelect+`
		WHERE a.market_day_id = $1 AND (cardinality($2::text[]) = 0 OR a.status = ANY($2::text[]))
		  AND ($3 = '' OR (a.created_at, a.id) > (SELECT c.created_at, c.id FROM applications c WHERE c.id = nullif($3, '')::uuid))
		ORDER BY a.created_at, a.id LIMIT $4`, dayID, nonNil(af.Statuses), p.After, p.Limit+1)
	return collectApps(rows, err, p)
}

// VendorApplications lists a vendor's applications by market day date, for
// its owner, a manager of its city or an admin.
func (s *Store) VendorApplications(ctx context.Context, who auth.Principal, vendorID string, af appFilter, p page) ([]Application, *string, error) {
	if err := s.mayReadVendor(ctx, who, vendorID); err != nil {
		return nil, nil, err
	}
	if p.After != "" && !s.applicationExists(ctx, p.After) {
		return nil, nil, staleCursor()
	}
	rows, err := s.pool.Query(ctx, appSelect+`
		WHERE a.vendor_id = $1 AND (cardinality($2::text[]) = 0 OR a.status = ANY($2::text[]))
		  AND ($3 = '' OR d.date >= $3::date) AND ($4 = '' OR d.date <= $4::date)
		  AND ($5 = '' OR d.market_id = nullif($5, '')::uuid) AND ($6 = '' OR a.batch_id = nullif($6, '')::uuid)
		  AND ($7 = '' OR (d.date, a.created_at, a.id) > (
		      SELECT cd.date, c.created_at, c.id FROM applications c JOIN market_days cd ON cd.id = c.market_day_id
		      WHERE c.id = nullif($7, '')::uuid))
		ORDER BY d.date, a.created_at, a.id LIMIT $8`,
		vendorID, nonNil(af.Statuses), af.From, af.To, af.MarketID, af.Batch, p.After, p.Limit+1)
	return collectApps(rows, err, p)
}

func collectApps(rows pgx.Rows, err error, p page) ([]Application, *string, error) {
	if err != nil {
		return nil, nil, fmt.Errorf("listings: applications: %w", err)
	}
	apps, err := pgx.CollectRows(rows, scanApp)
	if err != nil {
		return nil, nil, fmt.Errorf("listings: applications: %w", err)
	}
	apps, more := trim(p, apps)
	var last string
	if len(apps) > 0 {
		last = apps[len(apps)-1].ID
	}
	return apps, p.next(more, last), nil
}

func (s *Store) applicationExists(ctx context.Context, id string) bool {
	if !isUUID(id) {
		return false
	}
	var ok bool
	_ = s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM applications WHERE id = $1)`, id).Scan(&ok)
	return ok
}

// mayReadVendor answers ENotFound unless who may read the vendor's
// applications and batches.
func (s *Store) mayReadVendor(ctx context.Context, who auth.Principal, vendorID string) error {
	var city, owner string
	err := s.pool.QueryRow(ctx, `SELECT city, coalesce(owner_account_id, '') FROM vendors WHERE id = $1`, vendorID).Scan(&city, &owner)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && !mayReadVendorRecords(who, owner, city)) {
		return web.Errorf(web.ENotFound, "there is no vendor %s", vendorID)
	}
	if err != nil {
		return fmt.Errorf("listings: vendor %s: %w", vendorID, err)
	}
	return nil
}

// VendorBatches lists a vendor's batches, newest first, without their items.
func (s *Store) VendorBatches(ctx context.Context, who auth.Principal, vendorID, status string, p page, now time.Time) ([]Batch, *string, error) {
	if err := s.mayReadVendor(ctx, who, vendorID); err != nil {
		return nil, nil, err
	}
	if p.After != "" {
		var ok bool
		if isUUID(p.After) {
			_ = s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM application_batches WHERE id = $1)`, p.After).Scan(&ok)
		}
		if !ok {
			return nil, nil, staleCursor()
		}
	}
	// ended is worked out on read, so filter in SQL on what is stored and
	// settle here: an active filter must leave out batches that have ended.
	rows, err := s.pool.Query(ctx, batchSelect+`
		WHERE b.vendor_id = $1 AND ($2 = '' OR b.status = $2 OR ($2 = 'ended' AND b.status = 'active'))
		  AND ($3 = '' OR (b.created_at, b.id) < (SELECT c.created_at, c.id FROM application_batches c WHERE c.id = nullif($3, '')::uuid))
		ORDER BY b.created_at DESC, b.id DESC`, vendorID, status, p.After)
	if err != nil {
		return nil, nil, fmt.Errorf("listings: batches: %w", err)
	}
	all, err := pgx.CollectRows(rows, scanBatch)
	if err != nil {
		return nil, nil, fmt.Errorf("listings: batches: %w", err)
	}
	batches := make([]Batch, 0, p.Limit+1)
	for _, b := range all {
		loc, _ := s.cityLocation(ctx, b.City)
		b.settle(Today(now, loc))
		if status != "" && b.Status != status {
			continue
		}
		if batches = append(batches, b); len(batches) > p.Limit {
			break
		}
	}
	batches, more := trim(p, batches)
	var last string
	if len(batches) > 0 {
		last = batches[len(batches)-1].ID
	}
	return batches, p.next(more, last), nil
}

func (s *Store) cityLocation(ctx context.Context, city string) (*time.Location, error) {
	c, err := s.City(ctx, city)
	if err != nil {
		return time.UTC, err
	}
	loc, err := c.Location()
	if err != nil {
		return time.UTC, err
	}
	return loc, nil
}
