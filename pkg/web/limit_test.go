package web

import (
	"net/http/httptest"
	"strconv"
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	t0 := time.Date(2026, 5, 2, 9, 0, 0, 0, time.UTC)

	t.Run("a key gets its burst at once, then is refused", func(t *testing.T) {
		l := NewLimiter(10*time.Second, 3)
		for i := range 3 {
			if !l.Allow("vera@example.org", t0) {
				t.Fatalf("attempt %d of the burst was refused", i+1)
			}
		}
		if l.Allow("vera@example.org", t0) {
			t.Error("the attempt after the burst was allowed")
		}
	})

	t.Run("keys have separate buckets", func(t *testing.T) {
		l := NewLimiter(10*time.Second, 1)
		if !l.Allow("a", t0) || !l.Allow("b", t0) {
			t.Error("a fresh key was refused")
		}
		if l.Allow("a", t0) {
			t.Error("key a's second attempt was allowed")
		}
	})

	t.Run("tokens come back one per interval as the clock advances", func(t *testing.T) {
		l := NewLimiter(10*time.Second, 3)
		for range 3 {
			l.Allow("k", t0)
		}
		if l.Allow("k", t0.Add(9*time.Second)) {
			t.Error("allowed before an interval passed")
		}
		if !l.Allow("k", t0.Add(10*time.Second)) {
			t.Error("refused after one interval")
		}
		if l.Allow("k", t0.Add(10*time.Second)) {
			t.Error("one interval refilled more than one token")
		}
		// Long idle refills the bucket to its burst, not beyond.
		later := t0.Add(time.Hour)
		for i := range 3 {
			if !l.Allow("k", later) {
				t.Fatalf("after an idle hour, attempt %d was refused", i+1)
			}
		}
		if l.Allow("k", later) {
			t.Error("an idle hour refilled beyond the burst")
		}
	})

	t.Run("idle keys are forgotten once there are very many", func(t *testing.T) {
		l := NewLimiter(time.Second, 1)
		for i := range 50_001 {
			l.Allow(strconv.Itoa(i), t0)
		}
		l.Allow("new", t0.Add(time.Minute))
		if n := len(l.buckets); n != 1 {
			t.Errorf("%d buckets after the sweep, want only the new key's", n)
		}
	})
}

func TestClientIP(t *testing.T) {
	for _, tt := range []struct{ remote, want string }{
		{"192.0.2.7:51234", "192.0.2.7"},
		{"[2001:db8::1]:443", "2001:db8::1"},
		{"unix-socket", "unix-socket"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tt.remote
		r.Header.Set("X-Forwarded-For", "203.0.113.9") // not trusted
		if got := ClientIP(r); got != tt.want {
			t.Errorf("ClientIP(%q) = %q, want %q", tt.remote, got, tt.want)
		}
	}
}
