package contract

import "time"

// Event types published by market-listings (ce-type), and their subjects.
const (
	TypeCityUpserted       = "eu.piazza.listings.city.upserted.v1"
	TypeMarketDayScheduled = "eu.piazza.listings.market_day.scheduled.v1"
	TypeStallRegistered    = "eu.piazza.listings.stall.registered.v1"
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
