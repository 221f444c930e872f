package listings

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/localeurope/piazza/pkg/bus"
	"github.com/localeurope/piazza/pkg/outbox"
	"github.com/localeurope/piazza/pkg/web"
	"github.com/localeurope/piazza/services/contract"
)

// eventKind is a ce-type with the entity and verb of its subject.
type eventKind struct{ typ, entity, verb string }

var (
	typeSubmitted     = eventKind{contract.TypeApplicationSubmitted, "application", "submitted"}
	typeWaitlisted    = eventKind{contract.TypeApplicationWaitlisted, "application", "waitlisted"}
	typeRejected      = eventKind{contract.TypeApplicationRejected, "application", "rejected"}
	typeWithdrawn     = eventKind{contract.TypeApplicationWithdrawn, "application", "withdrawn"}
	typeOffered       = eventKind{contract.TypeApplicationOffered, "application", "offered"}
	typeOfferDeclined = eventKind{contract.TypeApplicationOfferDeclined, "application", "offer_declined"}
	typeOfferExpired  = eventKind{contract.TypeApplicationOfferExpired, "application", "offer_expired"}

	typeStallMoved      = eventKind{contract.TypeStallMoved, "stall", "moved"}
	typeStallReleased   = eventKind{contract.TypeStallReleased, "stall", "released"}
	typeStallCheckedIn  = eventKind{contract.TypeStallCheckedIn, "stall", "checked_in"}
	typeStallPosted     = eventKind{contract.TypeStallStatusPosted, "stall", "status_posted"}
	typeStallCheckedOut = eventKind{contract.TypeStallCheckedOut, "stall", "checked_out"}
)

// newEntry makes an outbox entry of kind k about subject.
func newEntry(ctx context.Context, city string, k eventKind, subject string, data any) (outbox.Entry, error) {
	ev, err := bus.NewEvent(contract.SourceListings, k.typ, subject, data)
	if err != nil {
		return outbox.Entry{}, err
	}
	ev.TraceParent = web.TraceParent(ctx)
	return outbox.Entry{Subject: contract.ListingsSubject(city, k.entity, k.verb), Event: ev}, nil
}

// emitApplication records an application event for a in its current state.
func emitApplication(ctx context.Context, tx pgx.Tx, d dayInfo, a Application, k eventKind, at time.Time) error {
	e, err := applicationEntry(ctx, d, a, k, at)
	if err != nil {
		return err
	}
	return outbox.AddAll(ctx, tx, e)
}

func applicationEntry(ctx context.Context, d dayInfo, a Application, k eventKind, at time.Time) (outbox.Entry, error) {
	return newEntry(ctx, d.City, k, "applications/"+a.ID, contract.ApplicationV1{
		ApplicationID: a.ID, City: a.City, MarketDayID: d.ID, MarketID: d.MarketID, MarketName: d.MarketName,
		PlaceID: d.PlaceID, PlaceName: d.PlaceName, Date: d.Date, VendorID: a.VendorID, VendorName: a.Vendor.Name,
		VendorAccountID: a.owner, BatchID: a.BatchID, Status: a.Status, Pitch: a.Pitch, PreferredPitch: a.PreferredPitch,
		Reason: a.Reason, OfferExpiresAt: a.OfferExpiresAt, At: at.UTC(), Version: a.Version,
	})
}

// emitStallRegistered announces an accepted application (a stall) in the
// payload the notifier has always consumed.
func emitStallRegistered(ctx context.Context, tx pgx.Tx, d dayInfo, a Application, at time.Time) error {
	e, err := stallRegisteredEntry(ctx, d, a, at)
	if err != nil {
		return err
	}
	return outbox.AddAll(ctx, tx, e)
}

func stallRegisteredEntry(ctx context.Context, d dayInfo, a Application, at time.Time) (outbox.Entry, error) {
	return newEntry(ctx, d.City, eventKind{contract.TypeStallRegistered, "stall", "registered"}, "applications/"+a.ID,
		contract.StallRegisteredV1{
			ApplicationID: a.ID, City: a.City, MarketDayID: d.ID, MarketID: d.MarketID, MarketName: d.MarketName,
			PlaceID: d.PlaceID, PlaceName: d.PlaceName, Date: d.Date, VendorID: a.VendorID, VendorName: a.Vendor.Name,
			VendorKind: a.Vendor.Kind, Pitch: a.Pitch, RegisteredAt: at.UTC(), Version: a.Version,
		})
}

// emitStall records a stall event; pitch, fromPitch and reason fill the
// fields of moved and released.
func emitStall(ctx context.Context, tx pgx.Tx, d dayInfo, a Application, k eventKind, pitch, fromPitch, reason string, at time.Time) error {
	e, err := stallEntry(ctx, d, a, k, pitch, fromPitch, reason, at)
	if err != nil {
		return err
	}
	return outbox.AddAll(ctx, tx, e)
}

// stallEntries returns a, after a live change of kind k, with the event
// that announces it.
func stallEntries(ctx context.Context, d dayInfo, a Application, k eventKind, at time.Time) (Application, []outbox.Entry, error) {
	e, err := stallEntry(ctx, d, a, k, a.Pitch, "", "", at)
	if err != nil {
		return a, nil, err
	}
	return a, []outbox.Entry{e}, nil
}

func stallEntry(ctx context.Context, d dayInfo, a Application, k eventKind, pitch, fromPitch, reason string, at time.Time) (outbox.Entry, error) {
	live := a.LiveState
	if live == "" {
		live = "closed" // a released stall is no longer live
	}
	return newEntry(ctx, d.City, k, "applications/"+a.ID, contract.StallV1{
		ApplicationID: a.ID, City: a.City, MarketDayID: d.ID, MarketID: d.MarketID, MarketName: d.MarketName,
		PlaceID: d.PlaceID, PlaceName: d.PlaceName, Date: d.Date, VendorID: a.VendorID, VendorName: a.Vendor.Name,
		VendorKind: a.Vendor.Kind, VendorAccountID: a.owner, Pitch: pitch, FromPitch: fromPitch, Reason: reason,
		LiveState: live, StatusText: a.StatusText, At: at.UTC(), Version: a.Version,
	})
}
