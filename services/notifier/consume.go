package notifier

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/localeurope/piazza/pkg/bus"
	"github.com/localeurope/piazza/pkg/outbox"
	"github.com/localeurope/piazza/services/contract"
)

const consumerListings = "notifier-listings"

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
// notification with its outbox row, in the consumer's transaction.
func notifyListingsEvent(ctx context.Context, tx pgx.Tx, ev bus.Event, _ bus.Delivery) error {
	switch ev.Type {
	case contract.TypeStallRegistered:
		var s contract.StallRegisteredV1
		if err := ev.Unmarshal(&s); err != nil {
			return err
		}
		return record(ctx, tx, ev, "stall.registered", s.City, []string{
			contract.Topic("city", s.City), contract.Topic("place", s.PlaceID),
			contract.Topic("market", s.MarketID), contract.Topic("vendor", s.VendorID),
		}, StallRegisteredData{
			VendorID: s.VendorID, VendorName: s.VendorName, VendorKind: s.VendorKind, MarketID: s.MarketID,
			MarketName: s.MarketName, PlaceID: s.PlaceID, PlaceName: s.PlaceName, MarketDayID: s.MarketDayID,
			Date: s.Date, Pitch: s.Pitch,
		})
	default:
		return nil
	}
}

func record(ctx context.Context, tx pgx.Tx, cause bus.Event, kind, city string, topics []string, data any) error {
	raw, err := json.Marshal(data)
	if err != nil {
		return bus.Permanent(err)
	}
	ev, err := bus.NewEvent(contract.SourceNotifier, contract.TypeNotification, "notifications/"+kind, nil)
	if err != nil {
		return err
	}
	n := contract.NotificationV1{ID: ev.ID, Kind: kind, City: city, Topics: topics, Time: ev.Time, Data: raw}
	if ev.Data, err = json.Marshal(n); err != nil {
		return bus.Permanent(err)
	}
	ev.Subject = "notifications/" + n.ID
	ev.TraceParent = cause.TraceParent
	if _, err := tx.Exec(ctx, `
		INSERT INTO notifications (id, city, kind, topics, data, cause_id) VALUES ($1, $2, $3, $4, $5, $6)`,
		n.ID, city, kind, topics, raw, cause.ID); err != nil {
		return fmt.Errorf("notifier: log notification: %w", err)
	}
	return outbox.Add(ctx, tx, contract.NotifySubject(city, kind), ev)
}
