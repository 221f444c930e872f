package notifier

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/localeurope/piazza/pkg/bus"
	"github.com/localeurope/piazza/services/contract"
)

// apply runs one listings event through the consumer's handler, as the
// consume loop would (without the inbox, which has its own tests).
func apply(tb testing.TB, pool *pgxpool.Pool, typ string, payload any) {
	tb.Helper()
	ev, err := bus.NewEvent(contract.SourceListings, typ, "test", payload)
	if err != nil {
		tb.Fatal(err)
	}
	if err := pgx.BeginFunc(context.Background(), pool, func(tx pgx.Tx) error {
		return notifyListingsEvent(context.Background(), tx, ev, bus.Delivery{})
	}); err != nil {
		tb.Fatalf("%s: %v", typ, err)
	}
}

type logged struct {
	Kind   string
	Topics []string
	Text   map[string]string
}

func notificationsOf(tb testing.TB, pool *pgxpool.Pool, kind string) []logged {
	tb.Helper()
	rows, err := pool.Query(context.Background(), `SELECT kind, topics, coalesce(text, '{}') FROM notifications WHERE kind = $1 ORDER BY created_at`, kind)
	if err != nil {
		tb.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[logged])
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

func TestNotifications(t *testing.T) {
	pool := openPool(t, newDatabase(t))
	apply(t, pool, contract.TypeCityUpserted, contract.CityV1{Slug: "ghent", Name: "Gent", Country: "BE",
		Timezone: "Europe/Brussels", Languages: []string{"nl", "en"}, Version: 1})
	stall := contract.StallV1{ApplicationID: uuid.NewString(), City: "ghent", MarketDayID: uuid.NewString(),
		MarketID: uuid.NewString(), MarketName: "Vrijdagmarkt", PlaceID: uuid.NewString(), PlaceName: "Vrijdagmarkt",
		Date: "2026-05-01", VendorID: uuid.NewString(), VendorName: "Hoeve De Vlier", VendorKind: "farmer", Pitch: "B2",
		LiveState: "open", StatusText: "sold out of strawberries", Version: 3}

	t.Run("a check-in tells the city, square, market and vendor followers, in English and Dutch", func(t *testing.T) {
		apply(t, pool, contract.TypeStallCheckedIn, stall)
		got := notificationsOf(t, pool, "stall.checked_in")
		if len(got) != 1 {
			t.Fatalf("%d notifications, want 1", len(got))
		}
		n := got[0]
		if len(n.Topics) != 4 || n.Topics[3] != "vendor:"+stall.VendorID {
			t.Fatalf("topics %v", n.Topics)
		}
		if n.Text["en"] != "Hoeve De Vlier is open at Vrijdagmarkt, pitch B2" || n.Text["nl"] != "Hoeve De Vlier is open op Vrijdagmarkt, standplaats B2" {
			t.Fatalf("text %v", n.Text)
		}
		if _, ok := n.Text["it"]; ok {
			t.Fatal("Italian text for a Flemish city")
		}
	})
	t.Run("a status post carries the vendor's words", func(t *testing.T) {
		apply(t, pool, contract.TypeStallStatusPosted, stall)
		got := notificationsOf(t, pool, "stall.status_posted")
		if len(got) != 1 || got[0].Text["en"] != "Hoeve De Vlier at Vrijdagmarkt: “sold out of strawberries”" {
			t.Fatalf("%+v", got)
		}
	})
	t.Run("a cancelled day gives its reason, a changed day its new local hours", func(t *testing.T) {
		day := contract.MarketDayV1{ID: uuid.NewString(), City: "ghent", MarketID: stall.MarketID, MarketName: "Vrijdagmarkt",
			PlaceID: stall.PlaceID, PlaceName: "Vrijdagmarkt", Date: "2026-07-03", Timezone: "Europe/Brussels",
			StartsAt: time.Date(2026, 7, 3, 6, 0, 0, 0, time.UTC), EndsAt: time.Date(2026, 7, 3, 12, 0, 0, 0, time.UTC),
			Status: "cancelled", CancelReason: "storm warning", Version: 2}
		apply(t, pool, contract.TypeMarketDayCancelled, day)
		day.Status, day.Version = "scheduled", 3
		apply(t, pool, contract.TypeMarketDayHoursChanged, day)
		if got := notificationsOf(t, pool, "market_day.cancelled"); len(got) != 1 || got[0].Text["en"] != "Vrijdagmarkt on 2026-07-03 is cancelled: storm warning" {
			t.Fatalf("%+v", got)
		}
		if got := notificationsOf(t, pool, "market_day.hours_changed"); len(got) != 1 || got[0].Text["en"] != "Vrijdagmarkt on 2026-07-03 now runs 08:00–14:00" {
			t.Fatalf("%+v", got)
		}
	})
	t.Run("a day merely scheduled tells nobody", func(t *testing.T) {
		apply(t, pool, contract.TypeMarketDayScheduled, contract.MarketDayV1{ID: uuid.NewString(), City: "ghent", Version: 1})
		if n := count(t, pool, `SELECT count(*) FROM notifications WHERE kind LIKE 'market_day.scheduled%'`); n != 0 {
			t.Fatalf("%d notifications", n)
		}
	})
	t.Run("a waitlist offer goes to the vendor's account only", func(t *testing.T) {
		account := uuid.NewString()
		apply(t, pool, contract.TypeApplicationOffered, contract.ApplicationV1{ApplicationID: uuid.NewString(), City: "ghent",
			MarketName: "Vrijdagmarkt", Date: "2026-05-08", VendorID: stall.VendorID, VendorAccountID: account, Status: "offered", Version: 2})
		got := notificationsOf(t, pool, "application.offered")
		if len(got) != 1 || len(got[0].Topics) != 1 || got[0].Topics[0] != "account:"+account {
			t.Fatalf("%+v", got)
		}
	})
}

func TestTomorrowReminder(t *testing.T) {
	pool := openPool(t, newDatabase(t))
	ctx := context.Background()
	apply(t, pool, contract.TypeCityUpserted, contract.CityV1{Slug: "ghent", Timezone: "Europe/Brussels", Languages: []string{"nl", "en"}, Version: 1})
	register := func(date string) contract.StallRegisteredV1 {
		s := contract.StallRegisteredV1{ApplicationID: uuid.NewString(), City: "ghent", MarketDayID: uuid.NewString(),
			MarketID: uuid.NewString(), MarketName: "Vrijdagmarkt", PlaceID: uuid.NewString(), PlaceName: "Vrijdagmarkt",
			Date: date, VendorID: uuid.NewString(), VendorName: "Kaasmakerij Het Hof", VendorKind: "food", Pitch: "A3", Version: 1}
		apply(t, pool, contract.TypeStallRegistered, s)
		return s
	}
	tomorrow := register("2026-05-02")
	released := register("2026-05-02")
	apply(t, pool, contract.TypeStallReleased, contract.StallV1{ApplicationID: released.ApplicationID, City: "ghent", Reason: "withdrawn", Version: 2})
	register("2026-05-03") // the day after tomorrow

	// 16:30 in Ghent (CEST, UTC+2) on 1 May: too early.
	if n, err := RemindDue(ctx, pool, time.Date(2026, 5, 1, 14, 30, 0, 0, time.UTC)); err != nil || n != 0 {
		t.Fatalf("at 16:30 sent %d (%v), want 0", n, err)
	}
	// 17:05: the one stall tomorrow that was not released.
	if n, err := RemindDue(ctx, pool, time.Date(2026, 5, 1, 15, 5, 0, 0, time.UTC)); err != nil || n != 1 {
		t.Fatalf("at 17:05 sent %d (%v), want 1", n, err)
	}
	if n, err := RemindDue(ctx, pool, time.Date(2026, 5, 1, 15, 6, 0, 0, time.UTC)); err != nil || n != 0 {
		t.Fatalf("a minute later sent %d (%v), want 0: each stall is announced once", n, err)
	}
	got := notificationsOf(t, pool, "vendor.tomorrow")
	if len(got) != 1 || got[0].Topics[0] != "vendor:"+tomorrow.VendorID ||
		got[0].Text["nl"] != "Kaasmakerij Het Hof staat morgen op Vrijdagmarkt (standplaats A3)" {
		t.Fatalf("%+v", got)
	}
	var data StallRegisteredData
	if err := pool.QueryRow(ctx, `SELECT data FROM notifications WHERE kind = 'vendor.tomorrow'`).Scan(&data); err != nil || data.Date != "2026-05-02" {
		t.Fatalf("data %+v, %v", data, err)
	}
}

func TestCalendarNotifications(t *testing.T) {
	pool := openPool(t, newDatabase(t))
	apply(t, pool, contract.TypeCityUpserted, contract.CityV1{Slug: "berlin", Timezone: "Europe/Berlin", Languages: []string{"de", "en"}, Version: 1})
	applyCal := func(typ string, e contract.CalendarEventV1) {
		t.Helper()
		ev, err := bus.NewEvent(contract.SourceCalendar, typ, "events/"+e.ID, e)
		if err != nil {
			t.Fatal(err)
		}
		if err := pgx.BeginFunc(context.Background(), pool, func(tx pgx.Tx) error {
			return notifyCalendarEvent(context.Background(), tx, ev, bus.Delivery{})
		}); err != nil {
			t.Fatal(err)
		}
	}
	was := time.Date(2026, 3, 27, 17, 0, 0, 0, time.UTC) // 18:00 in Berlin
	moved := time.Date(2026, 3, 28, 17, 0, 0, 0, time.UTC)
	e := contract.CalendarEventV1{ID: uuid.NewString(), City: "berlin", Title: "Jazz im Hof", Category: "music",
		PlaceID: uuid.NewString(), Timezone: "Europe/Berlin", Status: "confirmed", Version: 2}

	applyCal(contract.TypeCalendarEventCreated, e) // not a notification
	occ := e
	occ.OccurrenceStart, occ.OccurrenceStartsAt, occ.OccurrenceStatus = &was, &moved, "confirmed"
	applyCal(contract.TypeCalendarEventOccurrenceChanged, occ)
	occ.OccurrenceStartsAt, occ.OccurrenceStatus = &was, "cancelled"
	applyCal(contract.TypeCalendarEventOccurrenceChanged, occ)
	e.Status, e.Reason = "cancelled", "the courtyard is closed"
	applyCal(contract.TypeCalendarEventCancelled, e)

	if n := count(t, pool, `SELECT count(*) FROM notifications`); n != 3 {
		t.Fatalf("%d notifications, want 3 (moved, occurrence cancelled, series cancelled)", n)
	}
	if got := notificationsOf(t, pool, "calendar.occurrence_moved"); len(got) != 1 ||
		got[0].Text["de"] != "Jazz im Hof am 2026-03-27 18:00 wird auf 2026-03-28 18:00 verlegt" ||
		len(got[0].Topics) != 3 || got[0].Topics[1] != "category:music" {
		t.Fatalf("moved: %+v", got)
	}
	if got := notificationsOf(t, pool, "calendar.occurrence_cancelled"); len(got) != 1 || got[0].Text["en"] != "Jazz im Hof on 2026-03-27 18:00 is cancelled" {
		t.Fatalf("occurrence cancelled: %+v", got)
	}
	if got := notificationsOf(t, pool, "calendar.cancelled"); len(got) != 1 || got[0].Text["en"] != "Jazz im Hof is cancelled: the courtyard is closed" {
		t.Fatalf("cancelled: %+v", got)
	}
}
