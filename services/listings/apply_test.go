package listings

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/localeurope/piazza/pkg/web"
	"github.com/localeurope/piazza/services/contract"
)

// applyNow is before every fixture market day (2026-06-05, 07:00–13:00 in Ghent).
var applyNow = time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)

const fixtureDate = "2026-06-05"

func wantCode(tb testing.TB, err error, code string) {
	tb.Helper()
	if got := web.ErrorCode(err); got != code {
		tb.Fatalf("error = %v (code %s), want code %s", err, got, code)
	}
}

func wantField(tb testing.TB, err error, field string) {
	tb.Helper()
	wantCode(tb, err, web.EInvalid)
	var e *web.Error
	errors.As(err, &e)
	for _, f := range e.Fields {
		if f.Field == field {
			return
		}
	}
	tb.Fatalf("error %v names fields %+v, want %q", err, e.Fields, field)
}

func mustApply(tb testing.TB, s *Store, dayID string, na NewApplication) Application {
	tb.Helper()
	app, err := s.Apply(context.Background(), dayID, na, applyNow)
	if err != nil {
		tb.Fatalf("Apply(%+v): %v", na, err)
	}
	return app
}

// stallEvents returns the stall.registered payloads in the outbox.
func stallEvents(tb testing.TB, s *Store) []contract.StallRegisteredV1 {
	tb.Helper()
	rows, err := s.pool.Query(context.Background(), `SELECT data FROM outbox WHERE type = $1 ORDER BY seq`, contract.TypeStallRegistered)
	if err != nil {
		tb.Fatal(err)
	}
	datas, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		tb.Fatal(err)
	}
	out := make([]contract.StallRegisteredV1, len(datas))
	for i, d := range datas {
		if err := json.Unmarshal(d, &out[i]); err != nil {
			tb.Fatal(err)
		}
	}
	return out
}

func TestApply(t *testing.T) {
	ctx := context.Background()

	t.Run("an application gets the first free pitch by code", func(t *testing.T) {
		s := newStore(t)
		day := addAutoDay(t, s, "ghent", fixtureDate, "B1", "A2", "A1")
		first := mustApply(t, s, day.ID, NewApplication{VendorID: addVendor(t, s, "ghent", "First").ID})
		second := mustApply(t, s, day.ID, NewApplication{VendorID: addVendor(t, s, "ghent", "Second").ID})
		if first.Status != "accepted" || first.Pitch != "A1" {
			t.Errorf("first application %s on %q, want accepted on A1", first.Status, first.Pitch)
		}
		if second.Status != "accepted" || second.Pitch != "A2" {
			t.Errorf("second application %s on %q, want accepted on A2", second.Status, second.Pitch)
		}
		if first.City != "ghent" || first.MarketDayID != day.ID || first.CreatedAt.IsZero() || !isUUID(first.ID) {
			t.Errorf("application = %+v, want it filled in for market day %s in ghent", first, day.ID)
		}
	})

	t.Run("an application is returned as a later read shows it", func(t *testing.T) {
		// The insert returns the application's own columns; the day, market,
		// place and vendor come from the reads under the day's lock.
		s := newStore(t)
		auto := addAutoDay(t, s, "ghent", fixtureDate, "A1")
		review := addReviewDay(t, s, "ghent", "2026-06-06", "B1")
		mustExec(t, s, `UPDATE places SET lat = 51.0553, lon = 3.7219`)
		var got []Application
		for i, day := range []string{auto.ID, auto.ID, auto.ID, review.ID} {
			got = append(got, mustApply(t, s, day, NewApplication{
				VendorID: addOwnedVendor(t, s, "ghent", fmt.Sprintf("Vendor %d", i), fmt.Sprintf("acc-%d", i)).ID, Note: "hello"}))
		}
		for i, want := range []struct {
			status string
			pos    int
		}{{"accepted", 0}, {"waitlisted", 1}, {"waitlisted", 2}, {"pending", 0}} {
			if got[i].Status != want.status || got[i].WaitlistPosition != want.pos {
				t.Errorf("application %d: %s at %d, want %s at %d", i, got[i].Status, got[i].WaitlistPosition, want.status, want.pos)
			}
			read, err := loadApp(ctx, s.pool, got[i].ID)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got[i], read) {
				t.Errorf("application %d as returned:\n%+v\nas read:\n%+v", i, got[i], read)
			}
		}
		if got[0].MarketDay.Place.Lat != 51.0553 || got[0].Vendor.Name != "Vendor 0" || got[0].Pitch != "A1" || got[0].owner != "acc-0" {
			t.Errorf("accepted application = %+v", got[0])
		}
	})

	t.Run("a preferred free pitch is honoured", func(t *testing.T) {
		s := newStore(t)
		day := addAutoDay(t, s, "ghent", fixtureDate, "A1", "A2", "B1")
		app := mustApply(t, s, day.ID, NewApplication{VendorID: addVendor(t, s, "ghent", "Picky").ID, Pitch: "B1"})
		if app.Status != "accepted" || app.Pitch != "B1" {
			t.Errorf("application %s on %q, want accepted on B1", app.Status, app.Pitch)
		}
	})

	t.Run("a taken preferred pitch is a conflict and changes nothing", func(t *testing.T) {
		s := newStore(t)
		day := addAutoDay(t, s, "ghent", fixtureDate, "A1", "A2")
		mustApply(t, s, day.ID, NewApplication{VendorID: addVendor(t, s, "ghent", "Early").ID, Pitch: "A2"})
		late := addVendor(t, s, "ghent", "Late")
		_, err := s.Apply(ctx, day.ID, NewApplication{VendorID: late.ID, Pitch: "A2"}, applyNow)
		wantCode(t, err, web.EConflict)
		if n := count(t, s, `SELECT count(*) FROM applications WHERE vendor_id = $1`, late.ID); n != 0 {
			t.Errorf("the refused vendor has %d applications, want 0", n)
		}
		if n := len(stallEvents(t, s)); n != 1 {
			t.Errorf("%d stall.registered events, want 1", n)
		}
	})

	t.Run("refusals roll back on the connection they took, which the pool keeps", func(t *testing.T) {
		s := newStore(t)
		day := addAutoDay(t, s, "ghent", fixtureDate, "A1")
		v := addVendor(t, s, "ghent", "Persistent")
		mustApply(t, s, day.ID, NewApplication{VendorID: v.ID})
		conns := s.pool.Stat().NewConnsCount()
		for range 3 * int(s.pool.Config().MaxConns) {
			_, err := s.Apply(ctx, day.ID, NewApplication{VendorID: v.ID}, applyNow) // a second application
			wantCode(t, err, web.EConflict)
			_, err = s.Apply(ctx, newID(), NewApplication{VendorID: v.ID}, applyNow) // no such day
			wantCode(t, err, web.ENotFound)
		}
		if n := s.pool.Stat().NewConnsCount(); n != conns {
			t.Errorf("the pool opened %d connections for the refusals, want none", n-conns)
		}
		// Every refusal released the day's lock: another vendor gets in.
		wl := mustApply(t, s, day.ID, NewApplication{VendorID: addVendor(t, s, "ghent", "Next").ID})
		if wl.Status != "waitlisted" || wl.WaitlistPosition != 1 {
			t.Errorf("next application %s at %d, want waitlisted at 1", wl.Status, wl.WaitlistPosition)
		}
	})

	t.Run("a pitch the square does not have is a field error", func(t *testing.T) {
		s := newStore(t)
		day := addAutoDay(t, s, "ghent", fixtureDate, "A1")
		_, err := s.Apply(ctx, day.ID, NewApplication{VendorID: addVendor(t, s, "ghent", "Lost").ID, Pitch: "Z9"}, applyNow)
		wantField(t, err, "pitch")
	})

	t.Run("a vendor cannot take a pitch twice on one market day", func(t *testing.T) {
		s := newStore(t)
		day := addAutoDay(t, s, "ghent", fixtureDate, "A1", "A2")
		v := addVendor(t, s, "ghent", "Twice")
		first := mustApply(t, s, day.ID, NewApplication{VendorID: v.ID})
		_, err := s.Apply(ctx, day.ID, NewApplication{VendorID: v.ID}, applyNow)
		wantCode(t, err, web.EConflict)
		var e *web.Error
		if errors.As(err, &e) && !strings.Contains(e.Message, first.ID) {
			t.Errorf("conflict %q does not name the existing application %s", e.Message, first.ID)
		}
		_, err = s.Apply(ctx, day.ID, NewApplication{VendorID: v.ID, Pitch: "A2"}, applyNow)
		wantCode(t, err, web.EConflict)
		if n := count(t, s, `SELECT count(*) FROM applications WHERE vendor_id = $1`, v.ID); n != 1 {
			t.Errorf("vendor has %d applications, want 1", n)
		}
	})

	t.Run("with no free pitch the application is waitlisted and no stall is announced", func(t *testing.T) {
		s := newStore(t)
		day := addAutoDay(t, s, "ghent", fixtureDate, "A1")
		mustApply(t, s, day.ID, NewApplication{VendorID: addVendor(t, s, "ghent", "Lucky").ID})
		app := mustApply(t, s, day.ID, NewApplication{VendorID: addVendor(t, s, "ghent", "Waiting").ID})
		if app.Status != "waitlisted" || app.Pitch != "" {
			t.Errorf("application %s on %q, want waitlisted on no pitch", app.Status, app.Pitch)
		}
		if n := len(stallEvents(t, s)); n != 1 {
			t.Errorf("%d stall.registered events, want 1 (the accepted one only)", n)
		}
		if n := count(t, s, `SELECT count(*) FROM outbox WHERE type = $1`, contract.TypeApplicationWaitlisted); n != 1 {
			t.Errorf("%d application.waitlisted events, want 1", n)
		}
		if n := count(t, s, `SELECT count(*) FROM outbox WHERE type = $1`, contract.TypeApplicationSubmitted); n != 2 {
			t.Errorf("%d application.submitted events, want 2", n)
		}
	})

	for _, status := range []string{"cancelled", "closed"} {
		t.Run("a "+status+" market day takes no applications", func(t *testing.T) {
			s := newStore(t)
			day := addAutoDay(t, s, "ghent", fixtureDate, "A1")
			mustExec(t, s, `UPDATE market_days SET status = $2 WHERE id = $1`, day.ID, status)
			_, err := s.Apply(ctx, day.ID, NewApplication{VendorID: addVendor(t, s, "ghent", "Hopeful").ID}, applyNow)
			wantCode(t, err, web.EConflict)
			if n := count(t, s, `SELECT count(*) FROM applications`); n != 0 {
				t.Errorf("%d applications, want 0", n)
			}
		})
	}

	t.Run("a market day that is over takes no applications", func(t *testing.T) {
		s := newStore(t)
		day := addAutoDay(t, s, "ghent", fixtureDate, "A1")
		v := addVendor(t, s, "ghent", "Late")
		for _, now := range []time.Time{day.EndsAt, day.EndsAt.Add(time.Second), day.EndsAt.AddDate(0, 0, 3)} {
			_, err := s.Apply(ctx, day.ID, NewApplication{VendorID: v.ID}, now)
			wantCode(t, err, web.EConflict)
		}
		// While it is on, it still does.
		if app, err := s.Apply(ctx, day.ID, NewApplication{VendorID: v.ID}, day.EndsAt.Add(-time.Minute)); err != nil || app.Status != "accepted" {
			t.Errorf("Apply a minute before the end = %+v, %v; want accepted", app, err)
		}
	})

	t.Run("an unknown vendor is a field error", func(t *testing.T) {
		s := newStore(t)
		day := addAutoDay(t, s, "ghent", fixtureDate, "A1")
		_, err := s.Apply(ctx, day.ID, NewApplication{VendorID: newID()}, applyNow)
		wantField(t, err, "vendor_id")
	})

	t.Run("a vendor of another city is unknown on this city's market day", func(t *testing.T) {
		s := newStore(t)
		day := addAutoDay(t, s, "ghent", fixtureDate, "A1")
		addCity(t, s, "bologna", "Europe/Rome")
		_, err := s.Apply(ctx, day.ID, NewApplication{VendorID: addVendor(t, s, "bologna", "Forno").ID}, applyNow)
		wantField(t, err, "vendor_id")
		if n := count(t, s, `SELECT count(*) FROM applications`); n != 0 {
			t.Errorf("%d applications, want 0", n)
		}
	})

	t.Run("an unknown market day is not found", func(t *testing.T) {
		s := newStore(t)
		addAutoDay(t, s, "ghent", fixtureDate, "A1")
		_, err := s.Apply(ctx, newID(), NewApplication{VendorID: addVendor(t, s, "ghent", "V").ID}, applyNow)
		wantCode(t, err, web.ENotFound)
	})

	t.Run("an accepted application writes one stall.registered event with the stall", func(t *testing.T) {
		s := newStore(t)
		day := addAutoDay(t, s, "ghent", fixtureDate, "A1", "A2")
		v := addVendor(t, s, "ghent", "Hoeve De Vlier")
		app := mustApply(t, s, day.ID, NewApplication{VendorID: v.ID, Pitch: "A2"})

		var subject, source, ceSubject string
		var data []byte
		err := s.pool.QueryRow(ctx, `SELECT subject, source, ce_subject, data FROM outbox WHERE type = $1`, contract.TypeStallRegistered).
			Scan(&subject, &source, &ceSubject, &data)
		if err != nil {
			t.Fatal(err)
		}
		if subject != "listings.ghent.stall.registered" || source != contract.SourceListings || ceSubject != "applications/"+app.ID {
			t.Errorf("outbox row on %q from %q about %q, want listings.ghent.stall.registered from %s about applications/%s",
				subject, source, ceSubject, contract.SourceListings, app.ID)
		}
		var got contract.StallRegisteredV1
		if err := json.Unmarshal(data, &got); err != nil {
			t.Fatal(err)
		}
		want := contract.StallRegisteredV1{
			ApplicationID: app.ID, City: "ghent", MarketDayID: day.ID, MarketID: day.MarketID, MarketName: day.MarketName,
			PlaceID: day.PlaceID, PlaceName: day.PlaceName, Date: fixtureDate, VendorID: v.ID, VendorName: v.Name,
			VendorKind: v.Kind, Pitch: "A2", RegisteredAt: got.RegisteredAt, Version: 1,
		}
		if got != want {
			t.Errorf("payload =\n%+v\nwant\n%+v", got, want)
		}
		if !got.RegisteredAt.Equal(app.CreatedAt) {
			t.Errorf("registered_at = %s, want the application's created_at %s", got.RegisteredAt, app.CreatedAt)
		}
	})

	t.Run("an application rolled back leaves no event behind", func(t *testing.T) {
		s := newStore(t)
		day := addAutoDay(t, s, "ghent", fixtureDate, "A1")
		v := addVendor(t, s, "ghent", "Undone")
		errUndo := errors.New("undo")
		err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			app, err := s.apply(ctx, tx, day.ID, NewApplication{VendorID: v.ID}, applyNow, applyOpts{})
			if err != nil {
				return err
			}
			var inTx int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE type = $1`, contract.TypeStallRegistered).Scan(&inTx); err != nil {
				return err
			}
			if app.Status != "accepted" || inTx != 1 {
				t.Errorf("inside the transaction: application %s, %d events; want accepted, 1", app.Status, inTx)
			}
			return errUndo
		})
		if !errors.Is(err, errUndo) {
			t.Fatalf("transaction = %v, want the rollback", err)
		}
		if n := count(t, s, `SELECT count(*) FROM applications`) + count(t, s, `SELECT count(*) FROM outbox WHERE type LIKE '%application%' OR type LIKE '%stall%'`); n != 0 {
			t.Errorf("%d applications and outbox rows after rollback, want none", n)
		}
	})
}

func TestApplyConcurrently(t *testing.T) {
	ctx := context.Background()

	t.Run("50 vendors racing for the last free pitch: one gets it, 49 are waitlisted", func(t *testing.T) {
		s := newStore(t)
		day := addAutoDay(t, s, "ghent", fixtureDate, "A1", "A2", "A3")
		mustApply(t, s, day.ID, NewApplication{VendorID: addVendor(t, s, "ghent", "Early 1").ID, Pitch: "A1"})
		mustApply(t, s, day.ID, NewApplication{VendorID: addVendor(t, s, "ghent", "Early 2").ID, Pitch: "A3"})
		const racers = 50
		vendors := make([]Vendor, racers)
		for i := range vendors {
			vendors[i] = addVendor(t, s, "ghent", fmt.Sprintf("Racer %d", i))
		}
		results := make([]Application, racers)
		errs := make([]error, racers)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i, v := range vendors {
			wg.Go(func() {
				<-start
				results[i], errs[i] = s.Apply(ctx, day.ID, NewApplication{VendorID: v.ID}, applyNow)
			})
		}
		close(start)
		wg.Wait()

		accepted, waitlisted := 0, 0
		for i, app := range results {
			if errs[i] != nil {
				t.Errorf("vendor %d: %v", i, errs[i])
				continue
			}
			switch app.Status {
			case "accepted":
				accepted++
				if app.Pitch != "A2" {
					t.Errorf("the winner got pitch %q, want the free one, A2", app.Pitch)
				}
			case "waitlisted":
				waitlisted++
			default:
				t.Errorf("vendor %d: status %q", i, app.Status)
			}
		}
		if accepted != 1 || waitlisted != racers-1 {
			t.Errorf("%d accepted, %d waitlisted; want 1 and %d", accepted, waitlisted, racers-1)
		}
		if n := count(t, s, `
			SELECT count(*) FROM (SELECT pitch_id FROM applications WHERE market_day_id = $1 AND status = 'accepted'
			GROUP BY pitch_id HAVING count(*) > 1) twice`, day.ID); n != 0 {
			t.Errorf("%d pitches booked twice", n)
		}
		if n := count(t, s, `SELECT count(*) FROM applications WHERE market_day_id = $1 AND status = 'accepted'`, day.ID); n != 3 {
			t.Errorf("%d accepted applications, want 3 (one per pitch)", n)
		}
		if n := len(stallEvents(t, s)); n != 3 {
			t.Errorf("%d stall.registered events, want 3 (one per accepted application)", n)
		}
	})

	t.Run("20 identical retries of one vendor make one application", func(t *testing.T) {
		s := newStore(t)
		day := addAutoDay(t, s, "ghent", fixtureDate, "A1", "A2")
		v := addVendor(t, s, "ghent", "Impatient")
		const retries = 20
		errs := make([]error, retries)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range retries {
			wg.Go(func() {
				<-start
				_, errs[i] = s.Apply(ctx, day.ID, NewApplication{VendorID: v.ID}, applyNow)
			})
		}
		close(start)
		wg.Wait()
		ok := 0
		for _, err := range errs {
			if err == nil {
				ok++
			} else if web.ErrorCode(err) != web.EConflict {
				t.Errorf("a retry failed with %v, want a conflict", err)
			}
		}
		if ok != 1 {
			t.Errorf("%d retries succeeded, want 1", ok)
		}
		if n := count(t, s, `SELECT count(*) FROM applications WHERE vendor_id = $1`, v.ID); n != 1 {
			t.Errorf("%d applications, want 1", n)
		}
		if n := len(stallEvents(t, s)); n != 1 {
			t.Errorf("%d stall.registered events, want 1", n)
		}
	})
}
