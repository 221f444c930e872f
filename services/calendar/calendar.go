package calendar

import "time"

// Entry is one thing on a city's calendar.
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
}
