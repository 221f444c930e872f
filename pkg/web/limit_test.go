package web

import (
	"net/http/httptest"
	"testing"
)

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
