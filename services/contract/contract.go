// Package contract is everything Piazza's services agree on over NATS: stream
// names and configurations, subjects, and the versioned event payloads. It is
// the only package services share besides pkg/.
//
// A payload type never changes incompatibly: a breaking change is a new type
// (…V2) with a new ce-type, and consumers accept the old one while it exists.
// Every payload is documented in docs/events.md.
package contract

import (
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Streams, one per publishing service.
const (
	StreamListings      = "LISTINGS"
	StreamCalendar      = "CALENDAR"
	StreamNotifications = "NOTIFICATIONS"
)

// CloudEvents sources.
const (
	SourceListings = "/piazza/listings"
	SourceCalendar = "/piazza/calendar"
	SourceNotifier = "/piazza/notifier"
)

// StreamConfig returns the configuration of one of the streams above, with
// the given replica count (1 on one machine, 3 on a NATS cluster).
func StreamConfig(name string, replicas int) jetstream.StreamConfig {
	if replicas < 1 {
		replicas = 1
	}
	cfg := jetstream.StreamConfig{
		Name:      name,
		Storage:   jetstream.FileStorage,
		Retention: jetstream.LimitsPolicy,
		Replicas:  replicas,
		// Duplicates is the window in which a republished event (same
		// Nats-Msg-Id, e.g. after a relay crash) is dropped.
		Duplicates: 10 * time.Minute,
		Discard:    jetstream.DiscardOld,
		// The outbox relays publish a backlog as atomic batches: one sync
		// of the store per batch instead of one per message.
		AllowAtomicPublish: true,
	}
	switch name {
	case StreamListings:
		cfg.Subjects = []string{"listings.>"}
		cfg.MaxAge = 30 * 24 * time.Hour
		cfg.Description = "Market listings events: cities, market days, stalls."
	case StreamCalendar:
		cfg.Subjects = []string{"calendar.>"}
		cfg.MaxAge = 30 * 24 * time.Hour
		cfg.Description = "Events calendar changes."
	case StreamNotifications:
		cfg.Subjects = []string{"notify.>"}
		// The resume window of websocket clients: a client that comes back
		// within it gets exactly what it missed, later it gets a reset.
		cfg.MaxAge = 7 * 24 * time.Hour
		cfg.MaxBytes = 4 << 30
		cfg.Description = "Notifications for residents, read by every notifier replica."
	}
	return cfg
}
