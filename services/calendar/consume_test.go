package calendar

import (
	"context"
	"testing"
	"time"

	"github.com/localeurope/piazza/pkg/bus"
	"github.com/localeurope/piazza/pkg/inbox"
	"github.com/localeurope/piazza/services/contract"
)

func TestApplyListingsEvent(t *testing.T) {
	ctx := context.Background()
	berlin := mustLoad(t, "Europe/Berlin")
	starts, ends := at(t, berlin, "2026-05-02 08:00"), at(t, berlin, "2026-05-02 13:00")
	setup := func(t *testing.T) (bus.Handler, *Store) {
		t.Helper()
		pool := openPool(t, newDatabase(t))
		return inbox.Handler(pool, consumerName, applyListingsEvent), &Store{pool: pool}
	}
	deliver := func(t *testing.T, h bus.Handler, ev bus.Event) {
		t.Helper()
		if err := h(ctx, ev, bus.Delivery{StreamSeq: 1, NumDelivered: 1, Subject: "listings.berlin.x.y"}); err != nil {
			t.Fatalf("handle %s: %v", ev.Type, err)
		}
	}

	t.Run("a market-day event puts the day on the calendar", func(t *testing.T) {
		h, s := setup(t)
		d := marketDay("berlin", "Wochenmarkt", starts, ends, 1)
		deliver(t, h, marketDayEvent(t, d))
		got, _ := entry(t, s.pool, d.ID)
		if got.City != "berlin" || got.Kind != "market_day" || got.Title != "Wochenmarkt" || got.PlaceID == nil || *got.PlaceID != d.PlaceID ||
			got.PlaceName != "Marktplatz" || !got.StartsAt.Equal(starts) || !got.EndsAt.Equal(ends) || got.Status != "scheduled" ||
			got.Source != "listings" || got.Version != 1 {
			t.Errorf("entry = %s, want the market day %s", mustJSON(t, got), mustJSON(t, d))
		}
	})

	t.Run("the same event delivered twice changes nothing the second time", func(t *testing.T) {
		h, s := setup(t)
		ev := marketDayEvent(t, marketDay("berlin", "Wochenmarkt", starts, ends, 1))
		var d contract.MarketDayV1
		if err := ev.Unmarshal(&d); err != nil {
			t.Fatal(err)
		}
		deliver(t, h, ev)
		before, updatedBefore := entry(t, s.pool, d.ID)
		deliver(t, h, ev)
		after, updatedAfter := entry(t, s.pool, d.ID)
		if mustJSON(t, before) != mustJSON(t, after) || !updatedBefore.Equal(updatedAfter) {
			t.Errorf("redelivery changed the entry: %s (updated %s) → %s (updated %s)",
				mustJSON(t, before), updatedBefore, mustJSON(t, after), updatedAfter)
		}
		if n := count(t, s.pool, `SELECT count(*) FROM inbox WHERE consumer = $1 AND event_id = $2`, consumerName, ev.ID); n != 1 {
			t.Errorf("inbox holds the event %d times, want 1", n)
		}
		if n := count(t, s.pool, `SELECT count(*) FROM entries`); n != 1 {
			t.Errorf("%d entries, want 1", n)
		}
	})

	t.Run("an older version after a newer one is ignored", func(t *testing.T) {
		h, s := setup(t)
		v1 := marketDay("berlin", "Wochenmarkt", starts, ends, 1)
		v2 := v1
		v2.MarketName, v2.Status, v2.Version = "Wochenmarkt (abgesagt)", "cancelled", 2
		deliver(t, h, marketDayEvent(t, v2))
		deliver(t, h, marketDayEvent(t, v1)) // a different event, arriving late
		got, _ := entry(t, s.pool, v1.ID)
		if got.Version != 2 || got.Status != "cancelled" || got.Title != "Wochenmarkt (abgesagt)" {
			t.Errorf("entry = %s, want version 2 to stay", mustJSON(t, got))
		}
	})

	t.Run("a newer version replaces an older one", func(t *testing.T) {
		h, s := setup(t)
		v1 := marketDay("berlin", "Wochenmarkt", starts, ends, 1)
		v2 := v1
		v2.StartsAt, v2.Version = starts.Add(time.Hour), 2
		deliver(t, h, marketDayEvent(t, v1))
		deliver(t, h, marketDayEvent(t, v2))
		got, _ := entry(t, s.pool, v1.ID)
		if got.Version != 2 || !got.StartsAt.Equal(v2.StartsAt) {
			t.Errorf("entry = %s, want version 2", mustJSON(t, got))
		}
	})

	t.Run("every market-day type is applied: changed hours, then a cancellation with its reason", func(t *testing.T) {
		h, s := setup(t)
		d := marketDay("berlin", "Wochenmarkt", starts, ends, 1)
		deliver(t, h, marketDayEvent(t, d))
		hours := d
		hours.EndsAt, hours.Version = ends.Add(time.Hour), 2
		deliver(t, h, newEvent(t, contract.TypeMarketDayHoursChanged, "market-days/"+d.ID, hours))
		cancelled := hours
		cancelled.Status, cancelled.CancelReason, cancelled.Version = "cancelled", "Storm warning", 3
		deliver(t, h, newEvent(t, contract.TypeMarketDayCancelled, "market-days/"+d.ID, cancelled))
		got, _ := entry(t, s.pool, d.ID)
		var reason string
		if err := s.pool.QueryRow(ctx, `SELECT cancel_reason FROM entries WHERE id = $1`, d.ID).Scan(&reason); err != nil {
			t.Fatal(err)
		}
		if got.Status != "cancelled" || !got.EndsAt.Equal(ends.Add(time.Hour)) || got.Version != 3 || reason != "Storm warning" {
			t.Errorf("entry = %s (reason %q), want cancelled with the new hours", mustJSON(t, got), reason)
		}
		if n := count(t, s.pool, `SELECT count(*) FROM places WHERE id = $1 AND city = 'berlin'`, d.PlaceID); n != 1 {
			t.Errorf("the market day's place is not known (%d)", n)
		}
	})

	t.Run("a city event makes the city known, and an older one does not undo a newer", func(t *testing.T) {
		h, s := setup(t)
		if _, err := s.Timezone(ctx, "berlin"); err == nil {
			t.Fatal("berlin is known before any event")
		}
		deliver(t, h, cityEvent(t, "berlin", "Europe/Berlin", 2))
		deliver(t, h, cityEvent(t, "berlin", "Europe/Lisbon", 1))
		loc, err := s.Timezone(ctx, "berlin")
		if err != nil || loc.String() != "Europe/Berlin" {
			t.Errorf("Timezone(berlin) = %v, %v; want Europe/Berlin", loc, err)
		}
	})

	t.Run("other listings events are recorded and otherwise ignored", func(t *testing.T) {
		h, s := setup(t)
		ev := newEvent(t, contract.TypeStallRegistered, "applications/x", contract.StallRegisteredV1{City: "berlin"})
		deliver(t, h, ev)
		if n := count(t, s.pool, `SELECT count(*) FROM entries`) + count(t, s.pool, `SELECT count(*) FROM cities`); n != 0 {
			t.Errorf("%d rows written for a stall event, want 0", n)
		}
		if n := count(t, s.pool, `SELECT count(*) FROM inbox WHERE event_id = $1`, ev.ID); n != 1 {
			t.Errorf("inbox rows = %d, want 1", n)
		}
	})

	t.Run("a payload that is not JSON is permanent and leaves no trace", func(t *testing.T) {
		h, s := setup(t)
		ev := newEvent(t, contract.TypeMarketDayScheduled, "market-days/x", nil)
		ev.Data = []byte("{not json")
		err := h(ctx, ev, bus.Delivery{})
		if !bus.IsPermanent(err) {
			t.Fatalf("handle = %v, want a permanent error", err)
		}
		if n := count(t, s.pool, `SELECT count(*) FROM inbox`); n != 0 {
			t.Errorf("inbox rows = %d, want 0: the failed transaction must roll back", n)
		}
	})
}
