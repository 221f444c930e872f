package contract

import "time"

// Event types published by the events calendar (ce-type). Each carries a
// CalendarEventV1 and goes to calendar.<city>.event.<verb>.
const (
	TypeCalendarEventCreated           = "eu.piazza.calendar.event.created.v1"
	TypeCalendarEventUpdated           = "eu.piazza.calendar.event.updated.v1"
	TypeCalendarEventCancelled         = "eu.piazza.calendar.event.cancelled.v1"
	TypeCalendarEventOccurrenceChanged = "eu.piazza.calendar.event.occurrence_changed.v1"
	TypeCalendarEventSubmitted         = "eu.piazza.calendar.event.submitted.v1"
	TypeCalendarEventApproved          = "eu.piazza.calendar.event.approved.v1"
	TypeCalendarEventRejected          = "eu.piazza.calendar.event.rejected.v1"
)

// CalendarEventVerbs maps each calendar event type to its subject verb.
var CalendarEventVerbs = map[string]string{
	TypeCalendarEventCreated:           "created",
	TypeCalendarEventUpdated:           "updated",
	TypeCalendarEventCancelled:         "cancelled",
	TypeCalendarEventOccurrenceChanged: "occurrence_changed",
	TypeCalendarEventSubmitted:         "submitted",
	TypeCalendarEventApproved:          "approved",
	TypeCalendarEventRejected:          "rejected",
}

// CalendarSubject is calendar.<city>.<entity>.<verb>.
func CalendarSubject(city, entity, verb string) string {
	return "calendar." + city + "." + entity + "." + verb
}

// CalendarEventV1 is a calendar event (a series, possibly recurring) after a
// change. Residents following the city, the place or the category hear of
// created, approved, updated, cancelled and occurrence_changed; submitted and
// rejected concern only the city's managers (the event is not public).
type CalendarEventV1 struct {
	ID        string `json:"id"`
	UID       string `json:"uid"` // the iCalendar UID
	City      string `json:"city"`
	Title     string `json:"title"`
	Category  string `json:"category"`
	PlaceID   string `json:"place_id,omitempty"` // one of the city's places; empty for a free address
	PlaceName string `json:"place_name,omitempty"`
	Address   string `json:"address,omitempty"`
	// Status of the series: pending_review, rejected, confirmed, tentative, cancelled.
	Status   string    `json:"status"`
	AllDay   bool      `json:"all_day"`
	StartsAt time.Time `json:"starts_at"` // the first occurrence
	EndsAt   time.Time `json:"ends_at"`
	Timezone string    `json:"timezone"`
	RRule    string    `json:"rrule,omitempty"`
	// OccurrenceStart is set on occurrence_changed: the original start (the
	// RECURRENCE-ID) of the one occurrence that changed, with its new state.
	OccurrenceStart    *time.Time `json:"occurrence_start,omitempty"`
	OccurrenceStatus   string     `json:"occurrence_status,omitempty"` // confirmed, tentative, cancelled
	OccurrenceStartsAt *time.Time `json:"occurrence_starts_at,omitempty"`
	OccurrenceEndsAt   *time.Time `json:"occurrence_ends_at,omitempty"`
	Reason             string     `json:"reason,omitempty"` // rejected, cancelled
	Sequence           int        `json:"sequence"`         // the iCalendar SEQUENCE
	Version            int64      `json:"version"`          // the event's version
	At                 time.Time  `json:"at"`
}
