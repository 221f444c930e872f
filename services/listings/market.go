package listings

import (
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/localeurope/piazza/pkg/web"
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
func (c City) Location() (*time.Location, error) { return time.LoadLocation(c.Timezone) }

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
	ID   string `json:"id"`
	Name string `json:"name"`
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
}

// VendorRef is the public face of a vendor.
type VendorRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Kind string `json:"kind"`
}

// Stall is an accepted application: a vendor on a pitch.
type Stall struct {
	ApplicationID string    `json:"application_id"`
	Vendor        VendorRef `json:"vendor"`
	Pitch         string    `json:"pitch"`
	Status        string    `json:"status"`
	CreatedAt     time.Time `json:"created_at"`
}

// Vendor is an artisan's or farmer's profile.
type Vendor struct {
	ID          string    `json:"id"`
	City        string    `json:"city"`
	Name        string    `json:"name"`
	Kind        string    `json:"kind"`
	Description string    `json:"description"`
	CreatedAt   time.Time `json:"created_at"`
}

// VendorKinds are the kinds a vendor can be.
var vendorKinds = map[string]bool{"farmer": true, "artisan": true, "food": true, "other": true}

// NewVendor is the body of POST /vendors.
type NewVendor struct {
	City        string `json:"city"`
	Name        string `json:"name"`
	Kind        string `json:"kind"`
	Description string `json:"description"`
}

// Validate checks a new vendor.
func (v *NewVendor) Validate() error {
	var f web.Fields
	v.Name = strings.TrimSpace(v.Name)
	switch n := utf8.RuneCountInString(v.Name); {
	case n == 0:
		f.Add("name", "is required")
	case n > 120:
		f.Add("name", "must be at most 120 characters")
	case strings.ContainsRune(v.Name, 0): // Postgres text cannot hold NUL
		f.Add("name", "must not contain NUL characters")
	}
	if !vendorKinds[v.Kind] {
		f.Add("kind", "must be one of farmer, artisan, food, other")
	}
	if v.City == "" {
		f.Add("city", "is required")
	} else if !slugRE(v.City) {
		f.Add("city", "must be a city slug such as ghent")
	}
	if utf8.RuneCountInString(v.Description) > 2000 {
		f.Add("description", "must be at most 2000 characters")
	} else if strings.ContainsRune(v.Description, 0) {
		f.Add("description", "must not contain NUL characters")
	}
	return f.Err()
}

// NewApplication is the body of POST /market-days/{id}/applications.
type NewApplication struct {
	VendorID string `json:"vendor_id"`
	Pitch    string `json:"pitch,omitempty"` // preferred pitch code; any free one when empty
}

// Validate checks a new application.
func (a *NewApplication) Validate() error {
	var f web.Fields
	if !isUUID(a.VendorID) {
		f.Add("vendor_id", "must be a vendor id (UUID)")
	}
	if len(a.Pitch) > 16 {
		f.Add("pitch", "must be a pitch code of at most 16 characters")
	} else if strings.ContainsRune(a.Pitch, 0) {
		f.Add("pitch", "must not contain NUL characters")
	}
	return f.Err()
}

// Application is a vendor's request for a stall on one market day.
type Application struct {
	ID          string    `json:"id"`
	City        string    `json:"city"`
	MarketDayID string    `json:"market_day_id"`
	VendorID    string    `json:"vendor_id"`
	Pitch       string    `json:"pitch,omitempty"`
	Status      string    `json:"status"`
	CreatedAt   time.Time `json:"created_at"`
}

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
