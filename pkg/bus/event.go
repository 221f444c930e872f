package bus

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
)

// SpecVersion is the CloudEvents version this codec speaks.
const SpecVersion = "1.0"

// Event is a CloudEvents 1.0 event. Data is the JSON payload.
type Event struct {
	ID              string
	Source          string
	Type            string
	Subject         string
	Time            time.Time
	DataContentType string
	Data            []byte
	// TraceParent is the W3C trace context of the change that caused the
	// event; it travels as a plain traceparent header.
	TraceParent string
}

// NewEvent builds an event with a fresh UUIDv7 id and the current time, with
// payload encoded as JSON.
func NewEvent(source, typ, subject string, payload any) (Event, error) {
	data, err := json.Marshal(payload)
	if err != nil {
		return Event{}, fmt.Errorf("bus: encode %s payload: %w", typ, err)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return Event{}, fmt.Errorf("bus: new event id: %w", err)
	}
	return Event{
		ID: id.String(), Source: source, Type: typ, Subject: subject,
		Time: time.Now().UTC(), DataContentType: "application/json", Data: data,
	}, nil
}

// Unmarshal decodes the event's JSON data into v.
func (e Event) Unmarshal(v any) error {
	if err := json.Unmarshal(e.Data, v); err != nil {
		return Permanent(fmt.Errorf("bus: decode %s data of event %s: %w", e.Type, e.ID, err))
	}
	return nil
}

// Header names of the CloudEvents NATS protocol binding (binary mode) and of
// JetStream's publish deduplication.
const (
	hdrPrefix      = "ce-"
	HdrMsgID       = "Nats-Msg-Id"
	hdrContentType = "content-type"
	hdrTraceParent = "traceparent"
)

// Msg encodes the event as a NATS message on subject: attributes as ce-*
// headers (percent-encoded), the data as the body, and the id also as
// Nats-Msg-Id so that JetStream drops a duplicate publish of the same event.
func (e Event) Msg(subject string) *nats.Msg {
	h := nats.Header{}
	set := func(k, v string) {
		if v != "" {
			h[k] = []string{encodeHeaderValue(v)}
		}
	}
	set(hdrPrefix+"specversion", SpecVersion)
	set(hdrPrefix+"id", e.ID)
	set(hdrPrefix+"source", e.Source)
	set(hdrPrefix+"type", e.Type)
	set(hdrPrefix+"subject", e.Subject)
	if !e.Time.IsZero() {
		set(hdrPrefix+"time", e.Time.UTC().Format(time.RFC3339Nano))
	}
	set(hdrContentType, e.DataContentType)
	set(hdrTraceParent, e.TraceParent)
	h[HdrMsgID] = []string{e.ID}
	return &nats.Msg{Subject: subject, Header: h, Data: e.Data}
}

// Decode reads an event from a binary-mode NATS message. A message that is not
// a valid CloudEvent returns a Permanent error: redelivering it cannot help.
func Decode(msg *nats.Msg) (Event, error) {
	get := func(k string) (string, error) {
		v := headerValue(msg.Header, k)
		return decodeHeaderValue(v)
	}
	var e Event
	var errs []error
	read := func(dst *string, k string, required bool) {
		v, err := get(k)
		if err != nil {
			errs = append(errs, fmt.Errorf("header %s: %w", k, err))
			return
		}
		if required && v == "" {
			errs = append(errs, fmt.Errorf("header %s is missing", k))
		}
		*dst = v
	}
	var spec, tm string
	read(&spec, hdrPrefix+"specversion", true)
	read(&e.ID, hdrPrefix+"id", true)
	read(&e.Source, hdrPrefix+"source", true)
	read(&e.Type, hdrPrefix+"type", true)
	read(&e.Subject, hdrPrefix+"subject", false)
	read(&tm, hdrPrefix+"time", false)
	read(&e.DataContentType, hdrContentType, false)
	read(&e.TraceParent, hdrTraceParent, false)
	if spec != "" && spec != SpecVersion {
		errs = append(errs, fmt.Errorf("unsupported specversion %q", spec))
	}
	if tm != "" {
		t, err := time.Parse(time.RFC3339Nano, tm)
		if err != nil {
			errs = append(errs, fmt.Errorf("header ce-time: %w", err))
		}
		e.Time = t
	}
	if len(errs) > 0 {
		return Event{}, Permanent(fmt.Errorf("bus: not a CloudEvent on %s: %w", msg.Subject, errors.Join(errs...)))
	}
	e.Data = msg.Data
	return e, nil
}

// headerValue finds k case-insensitively: the binding says header names are
// case-insensitive, and other producers may capitalise them.
func headerValue(h nats.Header, k string) string {
	if v, ok := h[k]; ok && len(v) > 0 {
		return v[0]
	}
	for name, v := range h {
		if strings.EqualFold(name, k) && len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

// encodeHeaderValue percent-encodes as the CloudEvents HTTP and NATS bindings
// require: space, double quote, percent and everything outside printable
// ASCII, byte by byte of the UTF-8 encoding.
func encodeHeaderValue(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= 0x20 || c >= 0x7f || c == '"' || c == '%' {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func decodeHeaderValue(s string) (string, error) {
	if !strings.Contains(s, "%") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", errors.New("truncated percent-encoding")
		}
		hi, ok1 := unhex(s[i+1])
		lo, ok2 := unhex(s[i+2])
		if !ok1 || !ok2 {
			return "", fmt.Errorf("bad percent-encoding %q", s[i:i+3])
		}
		b.WriteByte(hi<<4 | lo)
		i += 2
	}
	out := b.String()
	if !utf8Valid(out) {
		return "", errors.New("percent-decoded value is not UTF-8")
	}
	return out, nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func utf8Valid(s string) bool { return utf8.ValidString(s) }
