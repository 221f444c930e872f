package listings

import (
	"time"

	"github.com/google/uuid"
	"github.com/localeurope/piazza/pkg/zones"
)

// City is a city of the network.
type City struct {
	Slug      string   `json:"slug"`
	Name      string   `json:"name"`
	Country   string   `json:"country"`
	Timezone  string   `json:"timezone"`
	Languages []string `json:"languages"`
}

// Location loads the city's timezone.
func (c City) Location() (*time.Location, error) { return zones.Load(c.Timezone) }

// Place is a square with a pitch plan.
type Place struct {
	ID   string  `json:"id"`
	Name string  `json:"name"`
	Lat  float64 `json:"lat"`
	Lon  float64 `json:"lon"`
}

// Pitch is one stall space on a place's plan, in metres from the plan's
// top-left corner.
type Pitch struct {
	Code  string  `json:"code"`
	X     float64 `json:"x"`
	Y     float64 `json:"y"`
	W     float64 `json:"w"`
	H     float64 `json:"h"`
	Power bool    `json:"power"`
	Water bool    `json:"water"`
	Cover bool    `json:"cover"`
}

// MarketRef names a market.
type MarketRef struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	Categories []string `json:"categories,omitempty"`
}

// MarketDay is one date of a market, with its plan and stalls.
type MarketDay struct {
	ID       string    `json:"id"`
	City     string    `json:"city"`
	Date     string    `json:"date"`
	Status   string    `json:"status"`
	StartsAt time.Time `json:"starts_at"`
	EndsAt   time.Time `json:"ends_at"`
	Market   MarketRef `json:"market"`
	Place    Place     `json:"place"`
	PlanW    float64   `json:"plan_w"`
	PlanH    float64   `json:"plan_h"`
	Pitches  []Pitch   `json:"pitches"`
	Stalls   []Stall   `json:"stalls"`
	Version  int64     `json:"version"`

	Timezone     string     `json:"timezone,omitempty"`
	Opens        string     `json:"opens,omitempty"`  // local HH:MM
	Closes       string     `json:"closes,omitempty"` // local HH:MM
	HoursChanged bool       `json:"hours_changed"`
	CancelReason string     `json:"cancel_reason,omitempty"`
	OpenedAt     *time.Time `json:"opened_at,omitempty"`
	ClosedAt     *time.Time `json:"closed_at,omitempty"`
	CancelledAt  *time.Time `json:"cancelled_at,omitempty"`
}

// VendorRef is the public face of a vendor.
type VendorRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Kind string `json:"kind"`
}

// Stall (an accepted application with its live state) is in live.go.

// Vendor, NewVendor and their validation are in vendors.go.

// NewApplication and Application are in applications.go.

func slugRE(s string) bool {
	if len(s) < 2 || len(s) > 41 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func isUUID(s string) bool {
	_, err := uuid.Parse(s)
	return err == nil && len(s) == 36
}
