package listings

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/localeurope/piazza/pkg/web"
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
