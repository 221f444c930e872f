package calendar

import "time"

// Entry is one thing on a city's calendar in a date range: a market day
// (kind market_day, from listings) or one occurrence of a calendar event
// (kind event). Market-day entries keep the fields they always had.
type Entry struct {
	ID        string    `json:"id"`
	City      string    `json:"city"`
	Kind      string    `json:"kind"`
	Title     string    `json:"title"`
	PlaceID   *string   `json:"place_id"`
	PlaceName string    `json:"place_name"`
	StartsAt  time.Time `json:"starts_at"`
	EndsAt    time.Time `json:"ends_at"`
	Status    string    `json:"status"`
	Source    string    `json:"source"`
	Version   int64     `json:"version"`

	// Fields of calendar events (also set, where they apply, on market days).
	EventID      string  `json:"event_id,omitempty"`
	RecurrenceID *string `json:"recurrence_id"` // the occurrence's original local start; null when not recurring
	AllDay       bool    `json:"all_day"`
	Start        string  `json:"start"` // local, in the city's timezone
	End          string  `json:"end"`
	Category     string  `json:"category"`
	Address      string  `json:"address"`
	Description  string  `json:"description"`
	Organiser    string  `json:"organiser"`
	ImageURL     string  `json:"image_url"`
	Sequence     int     `json:"sequence"`
	Overridden   bool    `json:"overridden"`
	CancelReason string  `json:"cancel_reason,omitempty"`
	Editable     bool    `json:"editable"` // false for market days: they are changed in listings

	updatedAt time.Time
}

// marketCategory is the category of market days, for filters and feeds.
const marketCategory = "market"

// Statuses of a calendar event series.
const (
	StatusPending   = "pending_review"
	StatusRejected  = "rejected"
	StatusConfirmed = "confirmed"
	StatusTentative = "tentative"
	StatusCancelled = "cancelled"
)

// Link is a labelled URL on an event.
type Link struct {
	Title string `json:"title"`
	URL   string `json:"url"`
}

// Place names one of the city's places.
type Place struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Event is a calendar event series. Local times are "naive": wall-clock
// fields in a time.Time with location UTC, meant in Timezone.
type Event struct {
	ID            string
	City          string
	UID           string
	Title         string
	Description   string
	PlaceID       *string
	PlaceName     string
	Address       string
	Category      string
	Organiser     string
	ImageURL      string
	Links         []Link
	Accessibility string
	AllDay        bool
	StartLocal    time.Time
	EndLocal      time.Time // all-day: the last day (inclusive)
	Timezone      string
	RRule         string
	ExDates       []time.Time
	RDates        []time.Time
	Overrides     []Override
	Status        string
	Reason        string
	Sequence      int
	Version       int64
	SubmitterName string
	SubmitterMail string
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// Override is one changed occurrence of a recurring event.
type Override struct {
	RecurrenceID time.Time // naive: the occurrence's original local start
	Status       string
	StartLocal   time.Time
	EndLocal     time.Time
	Title        string
	Sequence     int
	UpdatedAt    time.Time
}
