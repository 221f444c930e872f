package listings

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/localeurope/piazza/pkg/auth"
	"github.com/localeurope/piazza/pkg/web"
	"github.com/localeurope/piazza/services/contract"
)

func TestStatusPostInterval(t *testing.T) {
	ctx := context.Background()
	owner := vendorP("acc-1")
	onTheDay := time.Date(2026, 6, 5, 6, 0, 0, 0, time.UTC) // 08:00 in Ghent
	setup := func(t *testing.T, every *time.Duration) (*Store, Application) {
		s := newStore(t)
		s.statusPostInterval = every
		day := addAutoDay(t, s, "ghent", fixtureDate, "A1")
		v := addOwnedVendor(t, s, "ghent", "Hoeve", "acc-1")
		return s, must(s.Apply(ctx, day.ID, NewApplication{VendorID: v.ID}, applyNow))
	}
	interval := func(d time.Duration) *time.Duration { return &d }

	t.Run("a store made without options keeps 30 seconds", func(t *testing.T) {
		s, app := setup(t, nil)
		must(s.PostStatus(ctx, owner, app.ID, "first", onTheDay))
		_, err := s.PostStatus(ctx, owner, app.ID, "second", onTheDay.Add(29*time.Second))
		wantCode(t, err, web.ETooMany)
		must(s.PostStatus(ctx, owner, app.ID, "third", onTheDay.Add(30*time.Second)))
	})

	t.Run("a city may set a shorter interval", func(t *testing.T) {
		s, app := setup(t, interval(5*time.Second))
		must(s.PostStatus(ctx, owner, app.ID, "first", onTheDay))
		_, err := s.PostStatus(ctx, owner, app.ID, "second", onTheDay.Add(4*time.Second))
		wantCode(t, err, web.ETooMany)
		must(s.PostStatus(ctx, owner, app.ID, "third", onTheDay.Add(5*time.Second)))
	})

	t.Run("0 lifts the limit: posts at the same instant all succeed", func(t *testing.T) {
		s, app := setup(t, interval(0))
		for i := range 5 {
			st := must(s.PostStatus(ctx, owner, app.ID, fmt.Sprintf("update %d", i), onTheDay))
			if st.StatusText != fmt.Sprintf("update %d", i) {
				t.Errorf("post %d: status %q", i, st.StatusText)
			}
		}
	})

	t.Run("default options are 30 seconds", func(t *testing.T) {
		if got := DefaultOptions().StatusPostInterval; got != 30*time.Second {
			t.Errorf("DefaultOptions().StatusPostInterval = %s, want 30s", got)
		}
	})
}

// openDayWithStalls opens an auto-accepting market day in Ghent with n
// pitches, each taken by the stall of a vendor account of its own.
func openDayWithStalls(tb testing.TB, s *Store, n int) (day marketDay, apps []Application, owners []string) {
	tb.Helper()
	codes := make([]string, n)
	for i := range codes {
		codes[i] = fmt.Sprintf("A%d", i+1)
	}
	day = addAutoDay(tb, s, "ghent", fixtureDate, codes...)
	apps, owners = make([]Application, n), make([]string, n)
	for i := range apps {
		owners[i] = fmt.Sprintf("acc-%d", i)
		v := addOwnedVendor(tb, s, "ghent", fmt.Sprintf("Stall %d", i), owners[i])
		apps[i] = must(s.Apply(context.Background(), day.ID, NewApplication{VendorID: v.ID}, applyNow))
	}
	mustExec(tb, s, `UPDATE market_days SET status = 'open' WHERE id = $1`, day.ID)
	return day, apps, owners
}

// TestStallsRaceOnOneDay: the stalls of one market day change their own live
// state at the same time without waiting for each other's transactions, and
// the interval still holds for one stall posting from several requests.
func TestStallsRaceOnOneDay(t *testing.T) {
	ctx := context.Background()
	onTheDay := time.Date(2026, 6, 5, 6, 0, 0, 0, time.UTC) // 08:00 in Ghent
	s := newStore(t)
	_, apps, owners := openDayWithStalls(t, s, 20)

	t.Run("twenty stalls check in and post at once", func(t *testing.T) {
		errs := make(chan error, 2*len(apps))
		for i, a := range apps {
			go func() {
				_, err := s.CheckIn(ctx, vendorP(owners[i]), a.ID, onTheDay)
				if err == nil {
					_, err = s.PostStatus(ctx, vendorP(owners[i]), a.ID, "open", onTheDay)
				}
				errs <- err
			}()
		}
		for range apps {
			if err := <-errs; err != nil {
				t.Error(err)
			}
		}
		for _, a := range apps {
			got := must(loadApp(ctx, s.pool, a.ID))
			if got.LiveState != liveOpen || got.StatusText != "open" {
				t.Errorf("stall %s: live %q, status %q; want open, \"open\"", got.Pitch, got.LiveState, got.StatusText)
			}
		}
	})

	t.Run("ten posts at once for one stall: one within the interval", func(t *testing.T) {
		at := onTheDay.Add(time.Minute)
		errs := make(chan error, 10)
		for i := range 10 {
			go func() {
				_, err := s.PostStatus(ctx, vendorP(owners[1]), apps[1].ID, fmt.Sprintf("post %d", i), at)
				errs <- err
			}()
		}
		ok := 0
		for range 10 {
			err := <-errs
			switch {
			case err == nil:
				ok++
			default:
				wantCode(t, err, web.ETooMany)
			}
		}
		if ok != 1 {
			t.Errorf("%d posts accepted within one interval, want 1", ok)
		}
	})
}

// TestDayEndsWhileStallsChange: closing or cancelling a day while its stalls
// check in and post (stall changes do not lock the day) leaves every stall
// closed, and no stall event is written after the day's own event.
func TestDayEndsWhileStallsChange(t *testing.T) {
	for _, end := range []string{"close", "cancel"} {
		t.Run(end, func(t *testing.T) {
			ctx := context.Background()
			onTheDay := time.Date(2026, 6, 5, 6, 0, 0, 0, time.UTC) // 08:00 in Ghent
			s := newStore(t)
			s.statusPostInterval = new(time.Duration) // 0: every post counts
			day, apps, owners := openDayWithStalls(t, s, 16)
			for i := range len(apps) / 2 {
				must(s.CheckIn(ctx, vendorP(owners[i]), apps[i].ID, onTheDay))
			}

			start := make(chan struct{})
			var wg sync.WaitGroup
			for i, a := range apps {
				wg.Go(func() {
					<-start
					if i >= len(apps)/2 {
						_, _ = s.CheckIn(ctx, vendorP(owners[i]), a.ID, onTheDay)
					}
					for n := range 20 {
						if _, err := s.PostStatus(ctx, vendorP(owners[i]), a.ID, fmt.Sprintf("post %d", n), onTheDay); err != nil {
							wantCode(t, err, web.EConflict) // the day ended
							return
						}
					}
				})
			}
			mgr := auth.WithPrincipal(ctx, managerP("mgr", "ghent"))
			wg.Go(func() {
				<-start
				// End the day once the first posts are in, while the rest
				// are still coming.
				for count(t, s, `SELECT count(*) FROM status_posts`) == 0 {
					time.Sleep(time.Millisecond)
				}
				var err error
				if end == "close" {
					_, err = s.CloseDay(mgr, day.ID, onTheDay)
				} else {
					_, err = s.CancelDay(mgr, day.ID, "storm", onTheDay)
				}
				if err != nil {
					t.Errorf("%s day: %v", end, err)
				}
			})
			close(start)
			wg.Wait()

			if n := count(t, s, `SELECT count(*) FROM applications WHERE market_day_id = $1 AND status = 'accepted' AND live_state <> 'closed'`, day.ID); n != 0 {
				t.Errorf("%d stalls are not closed after the day ended", n)
			}
			dayEvent := map[string]string{"close": contract.TypeMarketDayClosed, "cancel": contract.TypeMarketDayCancelled}[end]
			if n := count(t, s, `SELECT count(*) FROM outbox WHERE type LIKE '%.stall.%'
				AND seq > (SELECT seq FROM outbox WHERE type = $1)`, dayEvent); n != 0 {
				t.Errorf("%d stall events were written after %s", n, dayEvent)
			}
			if n := count(t, s, `SELECT count(*) FROM outbox WHERE type = $1`, contract.TypeStallStatusPosted); n == 0 {
				t.Error("no status post got through before the day ended; the race was not exercised")
			}
		})
	}
}
