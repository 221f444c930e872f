package contract

import (
	"encoding/json"
	"time"
)

// TypeNotification is the ce-type of a notification for residents.
const TypeNotification = "eu.piazza.notifier.notification.v1"

// NotifySubject is notify.<city>.<kind>, with dots in kind kept as tokens
// (notify.ghent.stall.registered).
func NotifySubject(city, kind string) string { return "notify." + city + "." + kind }

// Topic names what a resident can follow: "city:ghent", "place:<uuid>",
// "market:<uuid>", "vendor:<uuid>", "category:<slug>", and "account:<uuid>",
// which only that account's own connections receive.
func Topic(kind, id string) string { return kind + ":" + id }

// NotificationV1 is one notification. Topics lists everyone who should hear
// of it; Data carries the facts a client renders in its own language.
type NotificationV1 struct {
	ID     string          `json:"id"`
	Kind   string          `json:"kind"` // e.g. stall.registered
	City   string          `json:"city"`
	Topics []string        `json:"topics"`
	Time   time.Time       `json:"time"`
	Data   json.RawMessage `json:"data"`
	// Text is the notification as a sentence, by language (BCP 47): English
	// and the city's languages.
	Text map[string]string `json:"text,omitempty"`
}
