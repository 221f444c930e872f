package notifier

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/localeurope/piazza/pkg/bus"
	"github.com/localeurope/piazza/pkg/outbox"
	"github.com/localeurope/piazza/pkg/zones"
	"github.com/localeurope/piazza/services/contract"
)

const consumerListings = "notifier-listings"

// listingsSubjects are the listings events the notifier reads: only those
// notifyListingsEvent acts on, so that the rest (every submission and
// waitlisting, every day scheduled) never reach it.
var listingsSubjects = []string{"listings.*.city.>", "listings.*.stall.>",
	contract.ListingsSubject("*", "market_day", "opened"), contract.ListingsSubject("*", "market_day", "cancelled"),
	contract.ListingsSubject("*", "market_day", "hours_changed"), contract.ListingsSubject("*", "application", "offered")}

// StallRegisteredData is what a client gets to render a stall.registered
// notification in its own language.
type StallRegisteredData struct {
	VendorID    string `json:"vendor_id"`
	VendorName  string `json:"vendor_name"`
	VendorKind  string `json:"vendor_kind"`
	MarketID    string `json:"market_id"`
	MarketName  string `json:"market_name"`
	PlaceID     string `json:"place_id"`
	PlaceName   string `json:"place_name"`
	MarketDayID string `json:"market_day_id"`
	Date        string `json:"date"`
	Pitch       string `json:"pitch"`
}

// notifyListingsEvent decides who hears of a listings event and records the
// notification with its outbox row, in the consumer's transaction. Events
// that concern nobody (a day scheduled weeks ahead, say) only update the
// notifier's copies.
func notifyListingsEvent(ctx context.Context, tx pgx.Tx, ev bus.Event, _ bus.Delivery) error {
	switch ev.Type {
	case contract.TypeCityUpserted:
		var c contract.CityV1
		if err := ev.Unmarshal(&c); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `
			INSERT INTO cities (slug, timezone, languages, version) VALUES ($1, $2, $3, $4)
			ON CONFLICT (slug) DO UPDATE SET timezone = excluded.timezone, languages = excluded.languages, version = excluded.version
			WHERE cities.version < excluded.version`, c.Slug, c.Timezone, c.Languages, c.Version)
		return err

	case contract.TypeStallRegistered:
		var s contract.StallRegisteredV1
		if err := ev.Unmarshal(&s); err != nil {
			return err
		}
		data := StallRegisteredData{
			VendorID: s.VendorID, VendorName: s.VendorName, VendorKind: s.VendorKind, MarketID: s.MarketID,
			MarketName: s.MarketName, PlaceID: s.PlaceID, PlaceName: s.PlaceName, MarketDayID: s.MarketDayID,
			Date: s.Date, Pitch: s.Pitch,
		}
		raw, _ := json.Marshal(data)
		if _, err := tx.Exec(ctx, `
			INSERT INTO stalls (application_id, city, date, vendor_id, data, version) VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (application_id) DO UPDATE SET data = excluded.data, date = excluded.date, released = false, version = excluded.version
			WHERE stalls.version < excluded.version`, s.ApplicationID, s.City, s.Date, s.VendorID, raw, s.Version); err != nil {
			return err
		}
		return record(ctx, tx, ev.ID, ev.TraceParent, "stall.registered", s.City, stallTopics(s.City, s.PlaceID, s.MarketID, s.VendorID),
			data, facts{"vendor": s.VendorName, "market": s.MarketName, "date": s.Date, "pitch": s.Pitch, "place": s.PlaceName})

	case contract.TypeStallReleased, contract.TypeStallMoved:
		var s contract.StallV1
		if err := ev.Unmarshal(&s); err != nil {
			return err
		}
		if ev.Type == contract.TypeStallReleased {
			_, err := tx.Exec(ctx, `UPDATE stalls SET released = true, version = $2 WHERE application_id = $1 AND version < $2`, s.ApplicationID, s.Version)
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE stalls SET data = jsonb_set(data, '{pitch}', to_jsonb($2::text)), version = $3 WHERE application_id = $1 AND version < $3`,
			s.ApplicationID, s.Pitch, s.Version)
		return err

	case contract.TypeStallCheckedIn, contract.TypeStallStatusPosted, contract.TypeStallCheckedOut:
		var s contract.StallV1
		if err := ev.Unmarshal(&s); err != nil {
			return err
		}
		kind := map[string]string{contract.TypeStallCheckedIn: "stall.checked_in",
			contract.TypeStallStatusPosted: "stall.status_posted", contract.TypeStallCheckedOut: "stall.checked_out"}[ev.Type]
		return record(ctx, tx, ev.ID, ev.TraceParent, kind, s.City, stallTopics(s.City, s.PlaceID, s.MarketID, s.VendorID), s,
			facts{"vendor": s.VendorName, "market": s.MarketName, "pitch": s.Pitch, "status": s.StatusText, "place": s.PlaceName, "date": s.Date})

	case contract.TypeMarketDayOpened, contract.TypeMarketDayCancelled, contract.TypeMarketDayHoursChanged:
		var d contract.MarketDayV1
		if err := ev.Unmarshal(&d); err != nil {
			return err
		}
		kind := map[string]string{contract.TypeMarketDayOpened: "market_day.opened",
			contract.TypeMarketDayCancelled: "market_day.cancelled", contract.TypeMarketDayHoursChanged: "market_day.hours_changed"}[ev.Type]
		return record(ctx, tx, ev.ID, ev.TraceParent, kind, d.City, []string{
			contract.Topic("city", d.City), contract.Topic("place", d.PlaceID), contract.Topic("market", d.MarketID)}, d,
			facts{"market": d.MarketName, "place": d.PlaceName, "date": d.Date, "reason": d.CancelReason, "hours": localHours(d)})

	case contract.TypeApplicationOffered:
		var a contract.ApplicationV1
		if err := ev.Unmarshal(&a); err != nil {
			return err
		}
		if a.VendorAccountID == "" {
			return nil // a profile without an owner has no one to tell
		}
		return record(ctx, tx, ev.ID, ev.TraceParent, "application.offered", a.City, []string{contract.Topic("account", a.VendorAccountID)}, a,
			facts{"market": a.MarketName, "date": a.Date, "pitch": a.Pitch, "vendor": a.VendorName})
	default:
		return nil
	}
}

const consumerCalendar = "notifier-calendar"

// notifyCalendarEvent tells the followers of a city, a place or a category
// when an event of the calendar is cancelled, or one occurrence is cancelled
// or moved. Other changes update nothing here.
func notifyCalendarEvent(ctx context.Context, tx pgx.Tx, ev bus.Event, _ bus.Delivery) error {
	if ev.Type != contract.TypeCalendarEventCancelled && ev.Type != contract.TypeCalendarEventOccurrenceChanged {
		return nil
	}
	var e contract.CalendarEventV1
	if err := ev.Unmarshal(&e); err != nil {
		return err
	}
	topics := []string{contract.Topic("city", e.City)}
	if e.Category != "" {
		topics = append(topics, contract.Topic("category", e.Category))
	}
	if e.PlaceID != "" {
		topics = append(topics, contract.Topic("place", e.PlaceID))
	}
	loc, err := zones.Load(e.Timezone)
	if err != nil {
		loc = time.UTC
	}
	local := func(t *time.Time) string {
		if t == nil {
			return ""
		}
		if e.AllDay {
			return t.In(loc).Format(time.DateOnly)
		}
		return t.In(loc).Format("2006-01-02 15:04")
	}
	f := facts{"title": e.Title, "reason_suffix": ""}
	if e.Reason != "" {
		f["reason_suffix"] = ": " + e.Reason
	}
	kind := "calendar.cancelled"
	if ev.Type == contract.TypeCalendarEventOccurrenceChanged {
		switch {
		case e.OccurrenceStatus == "cancelled":
			kind, f["when"] = "calendar.occurrence_cancelled", local(e.OccurrenceStart)
		case e.OccurrenceStartsAt != nil && e.OccurrenceStart != nil && !e.OccurrenceStartsAt.Equal(*e.OccurrenceStart):
			kind, f["was"], f["when"] = "calendar.occurrence_moved", local(e.OccurrenceStart), local(e.OccurrenceStartsAt)
		default:
			return nil // retitled or restored: not worth a notification
		}
	}
	return record(ctx, tx, ev.ID, ev.TraceParent, kind, e.City, topics, e, f)
}

func stallTopics(city, place, market, vendor string) []string {
	return []string{contract.Topic("city", city), contract.Topic("place", place),
		contract.Topic("market", market), contract.Topic("vendor", vendor)}
}

// localHours renders a day's hours in its city's timezone, e.g. 08:00–13:00.
func localHours(d contract.MarketDayV1) string {
	loc, err := zones.Load(d.Timezone)
	if err != nil {
		loc = time.UTC
	}
	return d.StartsAt.In(loc).Format("15:04") + "–" + d.EndsAt.In(loc).Format("15:04")
}

// facts fill a notification's sentence.
type facts map[string]string

// record writes a notification to the log and the outbox, in tx. causeID is
// the domain event (or job) it comes from; the text is rendered in English
// and the city's languages.
func record(ctx context.Context, tx pgx.Tx, causeID, traceParent, kind, city string, topics []string, data any, f facts) error {
	raw, err := json.Marshal(data)
	if err != nil {
		return bus.Permanent(err)
	}
	var langs []string
	if err := tx.QueryRow(ctx, `SELECT languages FROM cities WHERE slug = $1`, city).Scan(&langs); err != nil && err != pgx.ErrNoRows {
		return err
	}
	ev, err := bus.NewEvent(contract.SourceNotifier, contract.TypeNotification, "notifications/"+kind, nil)
	if err != nil {
		return err
	}
	n := contract.NotificationV1{ID: ev.ID, Kind: kind, City: city, Topics: topics, Time: ev.Time, Data: raw,
		Text: render(kind, langs, f)}
	if ev.Data, err = json.Marshal(n); err != nil {
		return bus.Permanent(err)
	}
	ev.Subject = "notifications/" + n.ID
	ev.TraceParent = traceParent
	// The log's row and the outbox's in one round trip.
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO notifications (id, city, kind, topics, data, text, cause_id) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		n.ID, city, kind, topics, raw, n.Text, causeID)
	if err := outbox.Queue(tx.Conn(), b, outbox.Entry{Subject: contract.NotifySubject(city, kind), Event: ev}); err != nil {
		return err
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("notifier: log notification: %w", err)
	}
	return nil
}
