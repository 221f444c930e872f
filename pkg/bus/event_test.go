package bus_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/localeurope/piazza/pkg/bus"
	"github.com/nats-io/nats.go"
)

func sampleEvent(tb testing.TB) bus.Event {
	tb.Helper()
	return bus.Event{
		ID:              "0190f0a1-7c2e-7cc3-b8a5-3b6f2d2b9e01",
		Source:          "listings",
		Type:            "eu.piazza.listings.stall.checked_in.v1",
		Subject:         "Gent – Vrijdagmarkt ü",
		Time:            time.Date(2025, 3, 7, 8, 15, 30, 123456789, time.UTC),
		DataContentType: "application/json",
		Data:            []byte(`{"stall":"A-12","version":3}`),
		TraceParent:     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	}
}

func TestCodec(t *testing.T) {
	t.Run("every attribute survives an encode and decode", func(t *testing.T) {
		want := sampleEvent(t)
		got, err := bus.Decode(want.Msg("listings.ghent.stall.checked_in"))
		if err != nil {
			t.Fatalf("Decode: %v", err)
		}
		assertSameEvent(t, got, want)
	})

	t.Run("the time keeps its instant when the event was built in another zone", func(t *testing.T) {
		ev := sampleEvent(t)
		brussels := time.FixedZone("CET", 3600)
		ev.Time = time.Date(2025, 3, 7, 9, 15, 30, 5, brussels)
		got, err := bus.Decode(ev.Msg("x"))
		if err != nil {
			t.Fatalf("Decode: %v", err)
		}
		if !got.Time.Equal(ev.Time) {
			t.Errorf("time = %v, want the instant %v", got.Time, ev.Time)
		}
	})

	t.Run("optional attributes that are empty are left out and decode as empty", func(t *testing.T) {
		ev := bus.Event{ID: "id-1", Source: "calendar", Type: "eu.piazza.calendar.day.opened.v1"}
		msg := ev.Msg("calendar.ghent.day.opened")
		for _, k := range []string{"ce-subject", "ce-time", "content-type", "traceparent"} {
			if _, ok := msg.Header[k]; ok {
				t.Errorf("header %s is set for an empty attribute", k)
			}
		}
		got, err := bus.Decode(msg)
		if err != nil {
			t.Fatalf("Decode: %v", err)
		}
		assertSameEvent(t, got, ev)
	})

	t.Run("header values are percent-encoded as the binding requires", func(t *testing.T) {
		tests := []struct {
			name, value, wire string
		}{
			{"space", "a b", "a%20b"},
			{"double quote", `say "hi"`, "say%20%22hi%22"},
			{"percent", "100%", "100%25"},
			{"non-ASCII, byte by byte of its UTF-8", "Gent – Vrijdagmarkt ü", "Gent%20%E2%80%93%20Vrijdagmarkt%20%C3%BC"},
			{"control characters", "a\tb\x7f", "a%09b%7F"},
			{"printable ASCII stays as it is", "stall/A-12:pitch=3&x+y", "stall/A-12:pitch=3&x+y"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				ev := sampleEvent(t)
				ev.Subject = tc.value
				msg := ev.Msg("x")
				if got := msg.Header["ce-subject"]; len(got) != 1 || got[0] != tc.wire {
					t.Errorf("ce-subject on the wire = %q, want %q", got, tc.wire)
				}
				back, err := bus.Decode(msg)
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				if back.Subject != tc.value {
					t.Errorf("decoded subject = %q, want %q", back.Subject, tc.value)
				}
			})
		}
	})

	t.Run("headers are lower-case ce-* and content-type, and Nats-Msg-Id is the event id", func(t *testing.T) {
		ev := sampleEvent(t)
		msg := ev.Msg("listings.ghent.stall.checked_in")
		want := map[string]bool{
			"ce-specversion": true, "ce-id": true, "ce-source": true, "ce-type": true, "ce-subject": true,
			"ce-time": true, "content-type": true, "traceparent": true, bus.HdrMsgID: true,
		}
		for k := range msg.Header {
			if !want[k] {
				t.Errorf("unexpected header %q", k)
			}
			if k != bus.HdrMsgID && k != strings.ToLower(k) {
				t.Errorf("header %q is not lower case", k)
			}
			delete(want, k)
		}
		for k := range want {
			t.Errorf("header %q is missing", k)
		}
		if got := msg.Header.Get(bus.HdrMsgID); got != ev.ID {
			t.Errorf("Nats-Msg-Id = %q, want the ce-id %q", got, ev.ID)
		}
		if got := msg.Header.Get("ce-specversion"); got != bus.SpecVersion {
			t.Errorf("ce-specversion = %q, want %q", got, bus.SpecVersion)
		}
		if msg.Subject != "listings.ghent.stall.checked_in" {
			t.Errorf("subject = %q", msg.Subject)
		}
		if !bytes.Equal(msg.Data, ev.Data) {
			t.Errorf("body = %q, want the data %q", msg.Data, ev.Data)
		}
	})

	t.Run("header names are looked up case-insensitively", func(t *testing.T) {
		msg := &nats.Msg{Subject: "x", Header: nats.Header{
			"CE-SPECVERSION": {"1.0"},
			"Ce-Id":          {"id-7"},
			"Ce-Source":      {"other-producer"},
			"ce-TYPE":        {"eu.example.thing.v1"},
			"Content-Type":   {"application/json"},
			"TraceParent":    {"00-abc-def-01"},
		}, Data: []byte(`{}`)}
		got, err := bus.Decode(msg)
		if err != nil {
			t.Fatalf("Decode: %v", err)
		}
		want := bus.Event{ID: "id-7", Source: "other-producer", Type: "eu.example.thing.v1",
			DataContentType: "application/json", TraceParent: "00-abc-def-01", Data: []byte(`{}`)}
		assertSameEvent(t, got, want)
	})
}

func TestDecodeRejectsWhatIsNotACloudEvent(t *testing.T) {
	valid := func() nats.Header { return sampleEvent(t).Msg("x").Header }
	tests := []struct {
		name   string
		header func() nats.Header
	}{
		{"no headers at all", func() nats.Header { return nil }},
		{"ce-id is missing", func() nats.Header { h := valid(); delete(h, "ce-id"); return h }},
		{"ce-type is missing", func() nats.Header { h := valid(); delete(h, "ce-type"); return h }},
		{"ce-source is missing", func() nats.Header { h := valid(); delete(h, "ce-source"); return h }},
		{"ce-specversion is missing", func() nats.Header { h := valid(); delete(h, "ce-specversion"); return h }},
		{"ce-specversion is not 1.0", func() nats.Header { h := valid(); h["ce-specversion"] = []string{"0.3"}; return h }},
		{"ce-time is not RFC 3339", func() nats.Header { h := valid(); h["ce-time"] = []string{"yesterday"}; return h }},
		{"a percent sign is not followed by hex", func() nats.Header { h := valid(); h["ce-subject"] = []string{"a%zzb"}; return h }},
		{"a percent-encoding is truncated", func() nats.Header { h := valid(); h["ce-subject"] = []string{"ab%4"}; return h }},
		{"a percent-encoding ends the value", func() nats.Header { h := valid(); h["ce-subject"] = []string{"ab%"}; return h }},
		{"percent-decoding yields invalid UTF-8", func() nats.Header { h := valid(); h["ce-subject"] = []string{"%C3%28"}; return h }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := bus.Decode(&nats.Msg{Subject: "x", Header: tc.header(), Data: []byte(`{}`)})
			if err == nil {
				t.Fatal("Decode succeeded, want an error")
			}
			if !bus.IsPermanent(err) {
				t.Errorf("error %q is not permanent: redelivering it would only fail again", err)
			}
		})
	}
}

func TestEventUnmarshal(t *testing.T) {
	t.Run("decodes the JSON data", func(t *testing.T) {
		ev, err := bus.NewEvent("listings", "eu.piazza.listings.stall.checked_in.v1", "stall/A-12", map[string]int{"version": 3})
		if err != nil {
			t.Fatalf("NewEvent: %v", err)
		}
		var v struct{ Version int }
		if err := ev.Unmarshal(&v); err != nil {
			t.Fatalf("Unmarshal: %v", err)
		}
		if v.Version != 3 {
			t.Errorf("version = %d, want 3", v.Version)
		}
	})
	t.Run("bad data is a permanent error", func(t *testing.T) {
		ev := bus.Event{ID: "x", Type: "t", Data: []byte(`{"version":`)}
		var v struct{ Version int }
		if err := ev.Unmarshal(&v); !bus.IsPermanent(err) {
			t.Errorf("Unmarshal error = %v, want a permanent error", err)
		}
	})
}

func TestNewEvent(t *testing.T) {
	a, err := bus.NewEvent("listings", "eu.piazza.listings.stall.checked_in.v1", "stall/A-12", struct{}{})
	if err != nil {
		t.Fatalf("NewEvent: %v", err)
	}
	b, err := bus.NewEvent("listings", "eu.piazza.listings.stall.checked_in.v1", "stall/A-12", struct{}{})
	if err != nil {
		t.Fatalf("NewEvent: %v", err)
	}
	if a.ID == b.ID {
		t.Errorf("two events share the id %s", a.ID)
	}
	if len(a.ID) != 36 || a.ID[14] != '7' {
		t.Errorf("id %q is not a UUIDv7", a.ID)
	}
	if a.Time.IsZero() || a.Time.Location() != time.UTC {
		t.Errorf("time = %v, want a UTC timestamp", a.Time)
	}
	if a.DataContentType != "application/json" || string(a.Data) != "{}" {
		t.Errorf("data = %q as %q, want {} as application/json", a.Data, a.DataContentType)
	}
}

func TestPermanent(t *testing.T) {
	if bus.Permanent(nil) != nil {
		t.Error("Permanent(nil) is not nil")
	}
	errTest := errors.New("unknown payload version")
	base := bus.Permanent(errTest)
	if !bus.IsPermanent(base) {
		t.Error("IsPermanent(Permanent(err)) = false")
	}
	wrapped := fmt.Errorf("handling: %w", base)
	if !bus.IsPermanent(wrapped) {
		t.Error("a wrapped permanent error is not recognised")
	}
	if bus.IsPermanent(errTest) {
		t.Error("a plain error counts as permanent")
	}
}

// FuzzHeaderValue checks that any valid UTF-8 attribute value survives the
// trip through headers, and that what goes on the wire is printable ASCII
// without spaces, quotes or bare percent signs.
func FuzzHeaderValue(f *testing.F) {
	for _, s := range []string{"", "a b", `"`, "%", "%25", "Gent – Vrijdagmarkt ü", "\x00\t\r\n", "日本語", "🙂", "%zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			t.Skip("not UTF-8")
		}
		ev := bus.Event{ID: "id", Source: "src", Type: "typ", Subject: s, TraceParent: s}
		msg := ev.Msg("x")
		for _, k := range []string{"ce-subject", "traceparent"} {
			for _, v := range msg.Header[k] {
				for i := 0; i < len(v); i++ {
					if c := v[i]; c <= 0x20 || c >= 0x7f || c == '"' {
						t.Fatalf("header %s = %q holds the byte %#x", k, v, c)
					}
				}
			}
		}
		got, err := bus.Decode(msg)
		if err != nil {
			t.Fatalf("Decode(%q): %v", s, err)
		}
		if got.Subject != s || got.TraceParent != s {
			t.Fatalf("round trip of %q gave subject %q, traceparent %q", s, got.Subject, got.TraceParent)
		}
	})
}

func BenchmarkCodec(b *testing.B) {
	ev := sampleEvent(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := bus.Decode(ev.Msg("listings.ghent.stall.checked_in")); err != nil {
			b.Fatal(err)
		}
	}
}

func assertSameEvent(tb testing.TB, got, want bus.Event) {
	tb.Helper()
	if got.ID != want.ID || got.Source != want.Source || got.Type != want.Type || got.Subject != want.Subject ||
		got.DataContentType != want.DataContentType || got.TraceParent != want.TraceParent {
		tb.Errorf("attributes differ:\n got %+v\nwant %+v", got, want)
	}
	if !got.Time.Equal(want.Time) {
		tb.Errorf("time = %v, want %v", got.Time, want.Time)
	}
	if !bytes.Equal(got.Data, want.Data) {
		tb.Errorf("data = %q, want %q", got.Data, want.Data)
	}
}
