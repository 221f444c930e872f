package listings

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/localeurope/piazza/pkg/auth"
	"github.com/localeurope/piazza/pkg/web"
	"github.com/localeurope/piazza/services/contract"
)

// addAutoDay is addMarketDay on a market that accepts applications at once.
func addAutoDay(tb testing.TB, s *Store, city, date string, codes ...string) marketDay {
	tb.Helper()
	d := addMarketDay(tb, s, city, date, codes...)
	mustExec(tb, s, `UPDATE markets SET auto_accept = true WHERE id = $1`, d.MarketID)
	return d
}

// addReviewDay is addMarketDay on a market whose managers review each
// application (auto_accept off).
func addReviewDay(tb testing.TB, s *Store, city, date string, codes ...string) marketDay {
	tb.Helper()
	d := addMarketDay(tb, s, city, date, codes...)
	mustExec(tb, s, `UPDATE markets SET auto_accept = false WHERE id = $1`, d.MarketID)
	return d
}

// addOwnedVendor is a vendor profile owned by account.
func addOwnedVendor(tb testing.TB, s *Store, city, name, account string) Vendor {
	tb.Helper()
	v := addVendor(tb, s, city, name)
	mustExec(tb, s, `UPDATE vendors SET owner_account_id = $2 WHERE id = $1`, v.ID, account)
	return v
}

func vendorP(account string) auth.Principal {
	return auth.Principal{AccountID: account, Roles: []string{auth.RoleVendor}}
}

func managerP(account, city string) auth.Principal {
	return auth.Principal{AccountID: account, Roles: []string{auth.RoleManager}, Cities: []string{city}}
}

var ghentManager = managerP("manager-ghent", "ghent")

// must returns v, or panics (failing the test with a stack) on err. It is
// for steps that set a scene, not for what a test checks.
func must[T any](v T, err error) T {
	if err != nil {
		panic(fmt.Sprintf("unexpected error: %v", err))
	}
	return v
}

func wantStatus(tb testing.TB, a Application, status, pitch string) {
	tb.Helper()
	if a.Status != status || a.Pitch != pitch {
		tb.Fatalf("application %s is %s on %q, want %s on %q", a.ID, a.Status, a.Pitch, status, pitch)
	}
}

func reload(tb testing.TB, s *Store, id string) Application {
	tb.Helper()
	a, err := loadApp(context.Background(), s.pool, id)
	if err != nil {
		tb.Fatal(err)
	}
	return a
}

func eventsOf(tb testing.TB, s *Store, typ string) []contract.ApplicationV1 {
	tb.Helper()
	rows, err := s.pool.Query(context.Background(), `SELECT data FROM outbox WHERE type = $1 ORDER BY seq`, typ)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	var out []contract.ApplicationV1
	for rows.Next() {
		var b []byte
		var e contract.ApplicationV1
		if err := rows.Scan(&b); err != nil {
			tb.Fatal(err)
		}
		if err := json.Unmarshal(b, &e); err != nil {
			tb.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

func countType(tb testing.TB, s *Store, typ string) int {
	tb.Helper()
	return count(tb, s, `SELECT count(*) FROM outbox WHERE type = $1`, typ)
}

func TestReview(t *testing.T) {
	ctx := context.Background()

	t.Run("without auto_accept an application is pending until a manager accepts it on its preferred pitch", func(t *testing.T) {
		s := newStore(t)
		day := addReviewDay(t, s, "ghent", fixtureDate, "A1", "A2")
		v := addOwnedVendor(t, s, "ghent", "Hoeve", "acc-1")
		app := must(s.ApplyAs(ctx, &auth.Principal{AccountID: "acc-1"}, day.ID, NewApplication{VendorID: v.ID, Pitch: "A2", Note: "cheese"}, applyNow))
		wantStatus(t, app, statusPending, "")
		if app.PreferredPitch != "A2" || app.Note != "cheese" || app.MarketDay.Date != fixtureDate || app.Vendor.Name != "Hoeve" {
			t.Errorf("application = %+v", app)
		}
		acc := must(s.Accept(ctx, ghentManager, app.ID, "", applyNow))
		wantStatus(t, acc, statusAccepted, "A2")
		if acc.LiveState != liveExpected || acc.Version != 2 || acc.DecidedAt == nil {
			t.Errorf("accepted = %+v, want live_state expected, version 2, decided_at", acc)
		}
		subs := eventsOf(t, s, contract.TypeApplicationSubmitted)
		if len(subs) != 1 || subs[0].VendorAccountID != "acc-1" || subs[0].Status != statusPending {
			t.Errorf("application.submitted = %+v, want one naming acc-1", subs)
		}
		if n := len(stallEvents(t, s)); n != 1 {
			t.Errorf("%d stall.registered, want 1", n)
		}
	})

	t.Run("a vendor cannot apply for a profile it does not own", func(t *testing.T) {
		s := newStore(t)
		day := addReviewDay(t, s, "ghent", fixtureDate, "A1")
		v := addOwnedVendor(t, s, "ghent", "Hoeve", "acc-1")
		_, err := s.ApplyAs(ctx, &auth.Principal{AccountID: "acc-2"}, day.ID, NewApplication{VendorID: v.ID}, applyNow)
		wantCode(t, err, web.EForbidden)
	})

	t.Run("transitions succeed only from the right state", func(t *testing.T) {
		s := newStore(t)
		day := addReviewDay(t, s, "ghent", fixtureDate, "A1", "A2")
		owner := vendorP("acc-1")
		app := must(s.Apply(ctx, day.ID, NewApplication{VendorID: addOwnedVendor(t, s, "ghent", "V", "acc-1").ID}, applyNow))
		_, err := s.AcceptOffer(ctx, owner, app.ID, applyNow)
		wantCode(t, err, web.EConflict)
		_, err = s.DeclineOffer(ctx, owner, app.ID, applyNow)
		wantCode(t, err, web.EConflict)
		_, err = s.Move(ctx, ghentManager, app.ID, "A2", applyNow)
		wantCode(t, err, web.EConflict)
		wl := must(s.Waitlist(ctx, ghentManager, app.ID, applyNow))
		wantStatus(t, wl, statusWaitlisted, "")
		if wl.WaitlistPosition != 1 {
			t.Errorf("waitlist_position = %d, want 1", wl.WaitlistPosition)
		}
		_, err = s.Waitlist(ctx, ghentManager, app.ID, applyNow)
		wantCode(t, err, web.EConflict)
		rej := must(s.Reject(ctx, ghentManager, app.ID, "we have enough cheese", applyNow))
		if rej.Status != statusRejected || rej.Reason != "we have enough cheese" {
			t.Errorf("rejected = %+v", rej)
		}
		for name, try := range map[string]func() error{
			"accept":   func() error { _, err := s.Accept(ctx, ghentManager, app.ID, "", applyNow); return err },
			"reject":   func() error { _, err := s.Reject(ctx, ghentManager, app.ID, "again", applyNow); return err },
			"withdraw": func() error { _, err := s.Withdraw(ctx, owner, app.ID, "", applyNow); return err },
			"waitlist": func() error { _, err := s.Waitlist(ctx, ghentManager, app.ID, applyNow); return err },
			"check-in": func() error { _, err := s.CheckIn(ctx, owner, app.ID, applyNow); return err },
		} {
			if err := try(); web.ErrorCode(err) != web.EConflict {
				t.Errorf("%s a rejected application: %v, want a conflict", name, err)
			}
		}
		if got := reload(t, s, app.ID); got.Status != statusRejected || got.Version != 3 {
			t.Errorf("after refused transitions: %s version %d, want rejected version 3", got.Status, got.Version)
		}
	})

	t.Run("a manager accepts on a given pitch only if it is on the plan and free", func(t *testing.T) {
		s := newStore(t)
		day := addAutoDay(t, s, "ghent", fixtureDate, "A1", "A2")
		must(s.Apply(ctx, day.ID, NewApplication{VendorID: addVendor(t, s, "ghent", "First").ID}, applyNow))
		must(s.Apply(ctx, day.ID, NewApplication{VendorID: addVendor(t, s, "ghent", "Second").ID}, applyNow))
		late := must(s.Apply(ctx, day.ID, NewApplication{VendorID: addVendor(t, s, "ghent", "Late").ID}, applyNow))
		wantStatus(t, late, statusWaitlisted, "")
		_, err := s.Accept(ctx, ghentManager, late.ID, "Z9", applyNow)
		wantField(t, err, "pitch")
		_, err = s.Accept(ctx, ghentManager, late.ID, "A1", applyNow)
		wantCode(t, err, web.EConflict)
		_, err = s.Accept(ctx, ghentManager, late.ID, "", applyNow)
		wantCode(t, err, web.EConflict)
	})

	t.Run("moving a stall: to a free pitch, not a taken one; to its own pitch is a no-op", func(t *testing.T) {
		s := newStore(t)
		day := addAutoDay(t, s, "ghent", fixtureDate, "A1", "A2", "A3")
		a := must(s.Apply(ctx, day.ID, NewApplication{VendorID: addVendor(t, s, "ghent", "A").ID}, applyNow))
		must(s.Apply(ctx, day.ID, NewApplication{VendorID: addVendor(t, s, "ghent", "B").ID}, applyNow))
		_, err := s.Move(ctx, ghentManager, a.ID, "A2", applyNow)
		wantCode(t, err, web.EConflict)
		same := must(s.Move(ctx, ghentManager, a.ID, "A1", applyNow))
		if same.Version != a.Version || countType(t, s, contract.TypeStallMoved) != 0 {
			t.Errorf("a move to its own pitch changed version %d → %d or emitted an event", a.Version, same.Version)
		}
		moved := must(s.Move(ctx, ghentManager, a.ID, "A3", applyNow))
		wantStatus(t, moved, statusAccepted, "A3")
		if countType(t, s, contract.TypeStallMoved) != 1 {
			t.Error("no stall.moved event")
		}
	})
}

func TestWaitlistOffers(t *testing.T) {
	ctx := context.Background()
	// applyNow is 4 days before the fixture day: a 24-hour offer runs its course.
	setup := func(t *testing.T) (*Store, marketDay, []Application) {
		s := newStore(t)
		day := addAutoDay(t, s, "ghent", fixtureDate, "A1")
		var apps []Application
		for i := range 4 {
			v := addOwnedVendor(t, s, "ghent", fmt.Sprintf("V%d", i), fmt.Sprintf("acc-%d", i))
			apps = append(apps, must(s.Apply(ctx, day.ID, NewApplication{VendorID: v.ID}, applyNow.Add(time.Duration(i)*time.Minute))))
		}
		wantStatus(t, apps[0], statusAccepted, "A1")
		for _, a := range apps[1:] {
			wantStatus(t, a, statusWaitlisted, "")
		}
		return s, day, apps
	}

	t.Run("a registration joins the waitlist at its end, whatever its clock, through withdrawals and offers", func(t *testing.T) {
		s, day, apps := setup(t)
		join := func(name string, now time.Time) Application {
			t.Helper()
			v := addOwnedVendor(t, s, "ghent", name, "acc-"+name)
			a := must(s.Apply(ctx, day.ID, NewApplication{VendorID: v.ID}, now))
			wantStatus(t, a, statusWaitlisted, "")
			return a
		}
		check := func(a Application, want int) {
			t.Helper()
			if a.WaitlistPosition != want {
				t.Errorf("%s joined at %d, want %d", a.ID, a.WaitlistPosition, want)
			}
			if got := reload(t, s, a.ID).WaitlistPosition; got != want {
				t.Errorf("%s read back at %d, want %d", a.ID, got, want)
			}
		}
		// 1, 2, 3 wait; a registration with a clock behind theirs comes after them.
		check(join("late-clock", applyNow.Add(-time.Hour)), 4)
		// 1 withdraws (from the waitlist); 0 withdraws, and 2 is offered A1.
		must(s.Withdraw(ctx, vendorP("acc-1"), apps[1].ID, "", applyNow))
		must(s.Withdraw(ctx, vendorP("acc-0"), apps[0].ID, "", applyNow))
		wantStatus(t, reload(t, s, apps[2].ID), statusOffered, "A1")
		// Left waiting: 3 and late-clock.
		check(join("next", applyNow), 3)
		if got := reload(t, s, apps[3].ID).WaitlistPosition; got != 1 {
			t.Errorf("the first waiting is at %d, want 1", got)
		}
		var counted, kept int
		if err := s.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM applications WHERE market_day_id = $1 AND status = 'waitlisted'),
			(SELECT waitlisted FROM market_days WHERE id = $1)`, day.ID).Scan(&counted, &kept); err != nil {
			t.Fatal(err)
		}
		if counted != 3 || kept != counted {
			t.Errorf("the day keeps %d waitlisted, counts %d; want 3", kept, counted)
		}
	})

	t.Run("withdraw, offer, decline, next offered, take up", func(t *testing.T) {
		s, _, apps := setup(t)
		if got := reload(t, s, apps[3].ID).WaitlistPosition; got != 3 {
			t.Errorf("the last waitlisted is at position %d, want 3", got)
		}
		w := must(s.Withdraw(ctx, vendorP("acc-0"), apps[0].ID, "sick cow", applyNow))
		if w.Status != statusWithdrawn || w.Reason != "sick cow" {
			t.Errorf("withdrawn = %+v", w)
		}
		offered := reload(t, s, apps[1].ID)
		wantStatus(t, offered, statusOffered, "A1")
		if want := applyNow.Add(24 * time.Hour); offered.OfferExpiresAt == nil || !offered.OfferExpiresAt.Equal(want) {
			t.Errorf("offer expires at %v, want %v", offered.OfferExpiresAt, want)
		}
		if countType(t, s, contract.TypeStallReleased) != 1 || len(eventsOf(t, s, contract.TypeApplicationOffered)) != 1 {
			t.Error("want one stall.released and one application.offered")
		}
		// An offered application is declined, not withdrawn; nor can another vendor take it up.
		_, err := s.Withdraw(ctx, vendorP("acc-1"), apps[1].ID, "", applyNow)
		wantCode(t, err, web.EConflict)
		_, err = s.AcceptOffer(ctx, vendorP("acc-2"), apps[1].ID, applyNow)
		wantCode(t, err, web.ENotFound)
		must(s.DeclineOffer(ctx, vendorP("acc-1"), apps[1].ID, applyNow))
		wantStatus(t, reload(t, s, apps[1].ID), statusDeclined, "")
		wantStatus(t, reload(t, s, apps[2].ID), statusOffered, "A1")
		if got := reload(t, s, apps[3].ID).WaitlistPosition; got != 1 {
			t.Errorf("the last waitlisted is at position %d, want 1", got)
		}
		took := must(s.AcceptOffer(ctx, vendorP("acc-2"), apps[2].ID, applyNow.Add(time.Hour)))
		wantStatus(t, took, statusAccepted, "A1")
		if took.LiveState != liveExpected {
			t.Errorf("live_state = %q, want expected", took.LiveState)
		}
		offers := eventsOf(t, s, contract.TypeApplicationOffered)
		if len(offers) != 2 || offers[1].VendorAccountID != "acc-2" || offers[1].Pitch != "A1" || offers[1].OfferExpiresAt == nil {
			t.Errorf("application.offered events = %+v", offers)
		}
		if n := countType(t, s, contract.TypeApplicationOfferDeclined); n != 1 {
			t.Errorf("%d offer_declined events, want 1", n)
		}
		if n := len(stallEvents(t, s)); n != 2 {
			t.Errorf("%d stall.registered, want 2 (the first stall and the offer taken up)", n)
		}
	})

	t.Run("an expired offer passes to the next; taking it up late is a conflict", func(t *testing.T) {
		s, _, apps := setup(t)
		must(s.Reject(ctx, ghentManager, apps[0].ID, "no show last week", applyNow))
		wantStatus(t, reload(t, s, apps[1].ID), statusOffered, "A1")
		if n := must(s.ExpireOffers(ctx, applyNow.Add(23*time.Hour))); n != 0 {
			t.Errorf("%d offers expired early", n)
		}
		late := applyNow.Add(25 * time.Hour)
		_, err := s.AcceptOffer(ctx, vendorP("acc-1"), apps[1].ID, late)
		wantCode(t, err, web.EConflict)
		if n := must(s.ExpireOffers(ctx, late)); n != 1 {
			t.Errorf("%d offers expired, want 1", n)
		}
		wantStatus(t, reload(t, s, apps[1].ID), statusExpired, "")
		next := reload(t, s, apps[2].ID)
		wantStatus(t, next, statusOffered, "A1")
		if !next.OfferExpiresAt.Equal(late.Add(24 * time.Hour)) {
			t.Errorf("the next offer expires at %v, want %v", next.OfferExpiresAt, late.Add(24*time.Hour))
		}
		if n := countType(t, s, contract.TypeApplicationOfferExpired); n != 1 {
			t.Errorf("%d offer_expired events, want 1", n)
		}
	})

	t.Run("an offer expires at the day's start at the latest, and none is made once the day started", func(t *testing.T) {
		s, day, apps := setup(t)
		now := day.StartsAt.Add(-2 * time.Hour)
		must(s.Withdraw(ctx, vendorP("acc-0"), apps[0].ID, "", now))
		offered := reload(t, s, apps[1].ID)
		if !offered.OfferExpiresAt.Equal(day.StartsAt) {
			t.Errorf("offer expires at %v, want the day's start %v", offered.OfferExpiresAt, day.StartsAt)
		}
		must(s.ExpireOffers(ctx, day.StartsAt))
		wantStatus(t, reload(t, s, apps[1].ID), statusExpired, "")
		wantStatus(t, reload(t, s, apps[2].ID), statusWaitlisted, "")
	})
}

// race runs n functions at once and returns how many succeeded; every
// failure must be a conflict.
func race(t *testing.T, n int, fn func(i int) error) int {
	t.Helper()
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = fn(i)
		})
	}
	close(start)
	wg.Wait()
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
		} else if web.ErrorCode(err) != web.EConflict {
			t.Errorf("a racer failed with %v, want a conflict", err)
		}
	}
	return ok
}

func assertNoDoubleBooking(t *testing.T, s *Store, dayID string) {
	t.Helper()
	if n := count(t, s, `SELECT count(*) FROM (SELECT pitch_id FROM applications WHERE market_day_id = $1
		AND status IN ('accepted', 'offered') GROUP BY pitch_id HAVING count(*) > 1) twice`, dayID); n != 0 {
		t.Errorf("%d pitches held twice", n)
	}
}

func TestPitchInvariantConcurrently(t *testing.T) {
	ctx := context.Background()
	const racers = 50
	// setup: a day with pitches A1 (taken), A2 (free), A3 (taken); racers
	// pending applications and two accepted stalls.
	setup := func(t *testing.T) (*Store, marketDay, []Application, []Application) {
		s := newStore(t)
		day := addReviewDay(t, s, "ghent", fixtureDate, "A1", "A2", "A3")
		var stalls []Application
		for _, code := range []string{"A1", "A3"} {
			a := must(s.Apply(ctx, day.ID, NewApplication{VendorID: addVendor(t, s, "ghent", "Stall "+code).ID}, applyNow))
			stalls = append(stalls, must(s.Accept(ctx, ghentManager, a.ID, code, applyNow)))
		}
		pending := make([]Application, racers)
		for i := range pending {
			pending[i] = must(s.Apply(ctx, day.ID, NewApplication{VendorID: addVendor(t, s, "ghent", fmt.Sprintf("R%d", i)).ID}, applyNow))
		}
		return s, day, pending, stalls
	}

	t.Run("50 managers accepting onto the last free pitch: exactly one succeeds", func(t *testing.T) {
		s, day, pending, _ := setup(t)
		ok := race(t, racers, func(i int) error {
			pitch := ""
			if i%2 == 0 {
				pitch = "A2"
			}
			_, err := s.Accept(ctx, ghentManager, pending[i].ID, pitch, applyNow)
			return err
		})
		if ok != 1 {
			t.Errorf("%d acceptances, want 1", ok)
		}
		assertNoDoubleBooking(t, s, day.ID)
		if n := len(stallEvents(t, s)); n != 3 {
			t.Errorf("%d stall.registered, want 3", n)
		}
	})

	t.Run("accepts and moves racing for the last free pitch: exactly one succeeds", func(t *testing.T) {
		s, day, pending, stalls := setup(t)
		ok := race(t, racers, func(i int) error {
			var err error
			if i < 2 {
				_, err = s.Move(ctx, ghentManager, stalls[i].ID, "A2", applyNow)
			} else {
				_, err = s.Accept(ctx, ghentManager, pending[i].ID, "A2", applyNow)
			}
			return err
		})
		if ok != 1 {
			t.Errorf("%d successes, want 1", ok)
		}
		assertNoDoubleBooking(t, s, day.ID)
	})

	t.Run("an offer taken up while managers accept others onto its pitch: the offer wins", func(t *testing.T) {
		s, day, pending, stalls := setup(t)
		for _, a := range pending[1:] {
			must(s.Waitlist(ctx, ghentManager, a.ID, applyNow))
		}
		// Fill A2, then free A1: the first waitlisted gets the offer of A1.
		must(s.Accept(ctx, ghentManager, pending[0].ID, "A2", applyNow))
		must(s.Withdraw(ctx, auth.Principal{Roles: []string{auth.RoleAdmin}}, stalls[0].ID, "", applyNow))
		offered := reload(t, s, pending[1].ID)
		wantStatus(t, offered, statusOffered, "A1")
		ok := race(t, racers-1, func(i int) error {
			var err error
			if i == 0 {
				_, err = s.AcceptOffer(ctx, auth.Principal{Roles: []string{auth.RoleAdmin}}, offered.ID, applyNow)
			} else {
				_, err = s.Accept(ctx, ghentManager, pending[i+1].ID, "A1", applyNow)
			}
			return err
		})
		if ok != 1 {
			t.Errorf("%d successes, want 1", ok)
		}
		wantStatus(t, reload(t, s, offered.ID), statusAccepted, "A1")
		assertNoDoubleBooking(t, s, day.ID)
	})

	t.Run("a stall is withdrawn by the vendor while a manager rejects it: one wins, one offer is made", func(t *testing.T) {
		s, day, pending, stalls := setup(t)
		for _, a := range pending {
			must(s.Waitlist(ctx, ghentManager, a.ID, applyNow))
		}
		ok := race(t, 20, func(i int) error {
			var err error
			if i%2 == 0 {
				_, err = s.Withdraw(ctx, auth.Principal{Roles: []string{auth.RoleAdmin}}, stalls[0].ID, "", applyNow)
			} else {
				_, err = s.Reject(ctx, ghentManager, stalls[0].ID, "late", applyNow)
			}
			return err
		})
		if ok != 1 {
			t.Errorf("%d successes, want 1", ok)
		}
		if n := count(t, s, `SELECT count(*) FROM applications WHERE market_day_id = $1 AND status = 'offered'`, day.ID); n != 1 {
			t.Errorf("%d offers, want 1", n)
		}
		assertNoDoubleBooking(t, s, day.ID)
	})
}

func TestLive(t *testing.T) {
	ctx := context.Background()
	setup := func(t *testing.T) (*Store, marketDay, Application) {
		s := newStore(t)
		day := addAutoDay(t, s, "ghent", fixtureDate, "A1", "A2")
		v := addOwnedVendor(t, s, "ghent", "Hoeve", "acc-1")
		return s, day, must(s.Apply(ctx, day.ID, NewApplication{VendorID: v.ID}, applyNow))
	}
	owner := vendorP("acc-1")
	onTheDay := time.Date(2026, 6, 5, 6, 0, 0, 0, time.UTC) // 08:00 in Ghent

	t.Run("check-in only once the day is open, then status posts and check-out", func(t *testing.T) {
		s, day, app := setup(t)
		_, err := s.CheckIn(ctx, owner, app.ID, onTheDay)
		wantCode(t, err, web.EConflict)
		// A status may be posted on the day before the market opens.
		st := must(s.PostStatus(ctx, owner, app.ID, "Setting up, open at 8:30", onTheDay))
		if st.StatusText != "Setting up, open at 8:30" || st.LiveState != liveExpected {
			t.Errorf("stall = %+v", st)
		}
		mustExec(t, s, `UPDATE market_days SET status = 'open' WHERE id = $1`, day.ID)
		st = must(s.CheckIn(ctx, owner, app.ID, onTheDay))
		if st.LiveState != liveOpen || st.CheckedInAt == nil || !st.CheckedInAt.Equal(onTheDay) {
			t.Errorf("checked in = %+v", st)
		}
		_, err = s.CheckIn(ctx, owner, app.ID, onTheDay)
		wantCode(t, err, web.EConflict)
		_, err = s.PostStatus(ctx, owner, app.ID, "too soon", onTheDay.Add(10*time.Second))
		wantCode(t, err, web.ETooMany)
		st = must(s.PostStatus(ctx, ghentManager, app.ID, "Sold out of strawberries", onTheDay.Add(time.Minute)))
		days := must(s.MarketDays(ctx, "ghent", fixtureDate, fixtureDate))
		var got Stall
		for _, d := range days {
			if d.ID == day.ID && len(d.Stalls) == 1 {
				got = d.Stalls[0]
			}
		}
		if got.LiveState != liveOpen || got.StatusText != "Sold out of strawberries" || got.CheckedInAt == nil {
			t.Errorf("the market day's stall = %+v, want it open with its status", got)
		}
		st = must(s.CheckOut(ctx, owner, app.ID, onTheDay.Add(2*time.Hour)))
		if st.LiveState != liveClosed || st.StatusText != "" || st.CheckedOutAt == nil {
			t.Errorf("checked out = %+v", st)
		}
		_, err = s.PostStatus(ctx, owner, app.ID, "back!", onTheDay.Add(3*time.Hour))
		wantCode(t, err, web.EConflict)
		_, err = s.CheckOut(ctx, owner, app.ID, onTheDay.Add(3*time.Hour))
		wantCode(t, err, web.EConflict)
		for typ, want := range map[string]int{contract.TypeStallCheckedIn: 1, contract.TypeStallStatusPosted: 2, contract.TypeStallCheckedOut: 1} {
			if n := countType(t, s, typ); n != want {
				t.Errorf("%d %s events, want %d", n, typ, want)
			}
		}
	})

	t.Run("refused stall changes roll back on their connection, which the pool keeps, and leave the row unlocked", func(t *testing.T) {
		s, day, app := setup(t)
		mustExec(t, s, `UPDATE market_days SET status = 'open' WHERE id = $1`, day.ID)
		must(s.CheckIn(ctx, owner, app.ID, onTheDay))
		must(s.PostStatus(ctx, owner, app.ID, "Open", onTheDay))
		conns := s.pool.Stat().NewConnsCount()
		for range 3 * int(s.pool.Config().MaxConns) {
			_, err := s.CheckIn(ctx, owner, app.ID, onTheDay) // already open
			wantCode(t, err, web.EConflict)
			_, err = s.PostStatus(ctx, owner, app.ID, "again", onTheDay.Add(time.Second)) // too soon
			wantCode(t, err, web.ETooMany)
			_, err = s.PostStatus(ctx, vendorP("acc-2"), app.ID, "not mine", onTheDay.Add(time.Minute)) // another's
			wantCode(t, err, web.ENotFound)
			_, err = s.CheckOut(ctx, owner, newID(), onTheDay) // no such application
			wantCode(t, err, web.ENotFound)
		}
		if n := s.pool.Stat().NewConnsCount(); n != conns {
			t.Errorf("the pool opened %d connections for the refusals, want none", n-conns)
		}
		// No refusal left the row locked or an event behind.
		lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		st, err := s.PostStatus(lctx, owner, app.ID, "Still open", onTheDay.Add(time.Minute))
		if err != nil || st.StatusText != "Still open" {
			t.Fatalf("a status after the refusals = %+v, %v", st, err)
		}
		if n := countType(t, s, contract.TypeStallStatusPosted); n != 2 {
			t.Errorf("%d %s events, want 2", n, contract.TypeStallStatusPosted)
		}
		if n := countType(t, s, contract.TypeStallCheckedIn); n != 1 {
			t.Errorf("%d %s events, want 1", n, contract.TypeStallCheckedIn)
		}
	})

	t.Run("no status before the market day's date", func(t *testing.T) {
		s, _, app := setup(t)
		_, err := s.PostStatus(ctx, owner, app.ID, "tomorrow!", applyNow)
		wantCode(t, err, web.EConflict)
	})

	t.Run("a pending application is no stall", func(t *testing.T) {
		s := newStore(t)
		day := addReviewDay(t, s, "ghent", fixtureDate, "A1")
		mustExec(t, s, `UPDATE market_days SET status = 'open' WHERE id = $1`, day.ID)
		app := must(s.Apply(ctx, day.ID, NewApplication{VendorID: addOwnedVendor(t, s, "ghent", "V", "acc-1").ID}, applyNow))
		_, err := s.CheckIn(ctx, owner, app.ID, onTheDay)
		wantCode(t, err, web.EConflict)
	})

	t.Run("closing the day checks out open stalls", func(t *testing.T) {
		s, day, app := setup(t)
		mustExec(t, s, `UPDATE market_days SET status = 'open' WHERE id = $1`, day.ID)
		must(s.CheckIn(ctx, owner, app.ID, onTheDay))
		err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return closeStalls(ctx, tx, day.ID, onTheDay.Add(time.Hour)) })
		if err != nil {
			t.Fatal(err)
		}
		if got := reload(t, s, app.ID); got.LiveState != liveClosed || got.CheckedOutAt == nil {
			t.Errorf("after closing: %+v", got)
		}
		if n := countType(t, s, contract.TypeStallCheckedOut); n != 1 {
			t.Errorf("%d stall.checked_out, want 1", n)
		}
	})
}
