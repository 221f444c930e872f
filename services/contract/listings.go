package contract

import "time"

// Event types published by market-listings (ce-type), and their subjects.
const (
	TypeCityUpserted       = "eu.piazza.listings.city.upserted.v1"
	TypeMarketDayScheduled = "eu.piazza.listings.market_day.scheduled.v1"
	TypeStallRegistered    = "eu.piazza.listings.stall.registered.v1"

	TypePlaceUpserted         = "eu.piazza.listings.place.upserted.v1"
	TypeMarketUpserted        = "eu.piazza.listings.market.upserted.v1"
	TypeMarketDayHoursChanged = "eu.piazza.listings.market_day.hours_changed.v1"
	TypeMarketDayOpened       = "eu.piazza.listings.market_day.opened.v1"
	TypeMarketDayClosed       = "eu.piazza.listings.market_day.closed.v1"
	TypeMarketDayCancelled    = "eu.piazza.listings.market_day.cancelled.v1"
	TypeVendorUpserted        = "eu.piazza.listings.vendor.upserted.v1"
)

// ListingsSubject is listings.<city>.<entity>.<verb>.
func ListingsSubject(city, entity, verb string) string {
	return "listings." + city + "." + entity + "." + verb
}

// CityV1 announces a city or a change to it.
type CityV1 struct {
	Slug      string   `json:"slug"`
	Name      string   `json:"name"`
	Country   string   `json:"country"`
	Timezone  string   `json:"timezone"`
	Languages []string `json:"languages"`
	Version   int64    `json:"version"`
}

// MarketDayV1 announces a market day (one date of a market) or a change to it.
type MarketDayV1 struct {
	ID         string    `json:"id"`
	City       string    `json:"city"`
	MarketID   string    `json:"market_id"`
	MarketName string    `json:"market_name"`
	PlaceID    string    `json:"place_id"`
	PlaceName  string    `json:"place_name"`
	Date       string    `json:"date"` // local date, YYYY-MM-DD
	StartsAt   time.Time `json:"starts_at"`
	EndsAt     time.Time `json:"ends_at"`
	Timezone   string    `json:"timezone"`
	Status     string    `json:"status"` // scheduled, open, closed, cancelled
	Version    int64     `json:"version"`
	// CancelReason is set on market_day.cancelled (and on any later event of
	// a cancelled day).
	CancelReason string `json:"cancel_reason,omitempty"`
}

// MarketDayTypes are the ce-types that carry a MarketDayV1: a consumer that
// keeps a copy of market days applies each of them as an upsert by version.
var MarketDayTypes = []string{TypeMarketDayScheduled, TypeMarketDayHoursChanged, TypeMarketDayOpened,
	TypeMarketDayClosed, TypeMarketDayCancelled}

// PitchV1 is one pitch on a square's plan, in metres from the top-left corner.
type PitchV1 struct {
	Code  string  `json:"code"`
	X     float64 `json:"x"`
	Y     float64 `json:"y"`
	W     float64 `json:"w"`
	H     float64 `json:"h"`
	Power bool    `json:"power"`
	Water bool    `json:"water"`
	Cover bool    `json:"cover"`
}

// PlaceV1 announces a square with its whole pitch plan, or a change to
// either (place.upserted).
type PlaceV1 struct {
	ID      string    `json:"id"`
	City    string    `json:"city"`
	Name    string    `json:"name"`
	Lat     float64   `json:"lat"`
	Lon     float64   `json:"lon"`
	PlanW   float64   `json:"plan_w"`
	PlanH   float64   `json:"plan_h"`
	Pitches []PitchV1 `json:"pitches"`
	Version int64     `json:"version"`
}

// ScheduleEntryV1 is one weekday of a market's schedule (local times, HH:MM).
type ScheduleEntryV1 struct {
	Weekday int    `json:"weekday"` // ISO, 1 = Monday
	Opens   string `json:"opens"`
	Closes  string `json:"closes"`
}

// MarketV1 announces a market or a change to it (market.upserted).
type MarketV1 struct {
	ID          string            `json:"id"`
	City        string            `json:"city"`
	PlaceID     string            `json:"place_id"`
	PlaceName   string            `json:"place_name"`
	Name        string            `json:"name"`
	Categories  []string          `json:"categories"`
	Schedule    []ScheduleEntryV1 `json:"schedule"`
	SeasonStart string            `json:"season_start"`
	SeasonEnd   *string           `json:"season_end"` // null: open-ended
	Exceptions  []string          `json:"exceptions"`
	AutoAccept  bool              `json:"auto_accept"`
	OfferHours  int               `json:"offer_hours"`
	Description string            `json:"description"`
	Timezone    string            `json:"timezone"`
	Version     int64             `json:"version"`
}

// VendorV1 announces a vendor's public profile or a change to it
// (vendor.upserted). It never carries contact details or the owner.
type VendorV1 struct {
	ID          string   `json:"id"`
	City        string   `json:"city"`
	Name        string   `json:"name"`
	Kind        string   `json:"kind"`
	Description string   `json:"description"`
	Categories  []string `json:"categories"`
	Languages   []string `json:"languages"`
	PhotoURL    string   `json:"photo_url,omitempty"`
	Version     int64    `json:"version"`
}

// StallRegisteredV1 says a vendor has a stall (an accepted application with a
// pitch) on a market day.
type StallRegisteredV1 struct {
	ApplicationID string    `json:"application_id"`
	City          string    `json:"city"`
	MarketDayID   string    `json:"market_day_id"`
	MarketID      string    `json:"market_id"`
	MarketName    string    `json:"market_name"`
	PlaceID       string    `json:"place_id"`
	PlaceName     string    `json:"place_name"`
	Date          string    `json:"date"`
	VendorID      string    `json:"vendor_id"`
	VendorName    string    `json:"vendor_name"`
	VendorKind    string    `json:"vendor_kind"`
	Pitch         string    `json:"pitch"`
	RegisteredAt  time.Time `json:"registered_at"`
	Version       int64     `json:"version"`
}

// Event types of the application lifecycle and the live stall. Application
// events carry an ApplicationV1; stall.moved and stall.released a StallV1
// with FromPitch or Reason; the live ones a StallV1.
const (
	TypeApplicationSubmitted     = "eu.piazza.listings.application.submitted.v1"
	TypeApplicationWaitlisted    = "eu.piazza.listings.application.waitlisted.v1"
	TypeApplicationRejected      = "eu.piazza.listings.application.rejected.v1"
	TypeApplicationWithdrawn     = "eu.piazza.listings.application.withdrawn.v1"
	TypeApplicationOffered       = "eu.piazza.listings.application.offered.v1"
	TypeApplicationOfferDeclined = "eu.piazza.listings.application.offer_declined.v1"
	TypeApplicationOfferExpired  = "eu.piazza.listings.application.offer_expired.v1"

	TypeStallMoved        = "eu.piazza.listings.stall.moved.v1"
	TypeStallReleased     = "eu.piazza.listings.stall.released.v1"
	TypeStallCheckedIn    = "eu.piazza.listings.stall.checked_in.v1"
	TypeStallStatusPosted = "eu.piazza.listings.stall.status_posted.v1"
	TypeStallCheckedOut   = "eu.piazza.listings.stall.checked_out.v1"
)

// ApplicationV1 is an application after a change of state: what the vendor
// (found by vendor_account_id) and the market's managers hear of.
type ApplicationV1 struct {
	ApplicationID   string     `json:"application_id"`
	City            string     `json:"city"`
	MarketDayID     string     `json:"market_day_id"`
	MarketID        string     `json:"market_id"`
	MarketName      string     `json:"market_name"`
	PlaceID         string     `json:"place_id"`
	PlaceName       string     `json:"place_name"`
	Date            string     `json:"date"` // local date, YYYY-MM-DD
	VendorID        string     `json:"vendor_id"`
	VendorName      string     `json:"vendor_name"`
	VendorAccountID string     `json:"vendor_account_id,omitempty"` // the profile's owner; absent for profiles without one
	BatchID         string     `json:"batch_id,omitempty"`
	Status          string     `json:"status"`          // the state it entered
	Pitch           string     `json:"pitch,omitempty"` // the offered pitch (offered)
	PreferredPitch  string     `json:"preferred_pitch,omitempty"`
	Reason          string     `json:"reason,omitempty"`           // rejected; withdrawn when the vendor gave one
	OfferExpiresAt  *time.Time `json:"offer_expires_at,omitempty"` // offered
	At              time.Time  `json:"at"`
	Version         int64      `json:"version"` // the application's version
}

// StallV1 is a stall (an accepted application on a pitch) after a change:
// moved, released, or a live change (checked in, status posted, checked out).
type StallV1 struct {
	ApplicationID   string    `json:"application_id"`
	City            string    `json:"city"`
	MarketDayID     string    `json:"market_day_id"`
	MarketID        string    `json:"market_id"`
	MarketName      string    `json:"market_name"`
	PlaceID         string    `json:"place_id"`
	PlaceName       string    `json:"place_name"`
	Date            string    `json:"date"`
	VendorID        string    `json:"vendor_id"`
	VendorName      string    `json:"vendor_name"`
	VendorKind      string    `json:"vendor_kind"`
	VendorAccountID string    `json:"vendor_account_id,omitempty"`
	Pitch           string    `json:"pitch"`
	FromPitch       string    `json:"from_pitch,omitempty"` // stall.moved
	Reason          string    `json:"reason,omitempty"`     // stall.released: withdrawn or rejected
	LiveState       string    `json:"live_state"`           // expected, open, closed
	StatusText      string    `json:"status_text,omitempty"`
	At              time.Time `json:"at"`
	Version         int64     `json:"version"`
}
