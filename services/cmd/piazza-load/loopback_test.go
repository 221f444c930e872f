package main

import "testing"

func TestLoopbackTargets(t *testing.T) {
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"ws://127.0.0.1:8080/api/v1/notifier/ws", true},
		{"http://127.0.0.9:1", true},
		{"http://localhost:8080", true},
		{"ws://[::1]:8080/ws", true},
		{"nats://127.0.0.1:4222", true},
		{"http://10.0.0.1:8080", false},
		{"http://example.org", false},
		{"http://127.0.0.1.example.org", false},
		{"http://[::ffff:8.8.8.8]:80", false},
		{"127.0.0.1:8080", false}, // no scheme: not a URL with a host
		{"http://:8080", false},
	} {
		t.Run(tc.url, func(t *testing.T) {
			if err := checkLoopbackURL(tc.url); (err == nil) != tc.ok {
				t.Errorf("checkLoopbackURL(%q) = %v, want ok=%v", tc.url, err, tc.ok)
			}
		})
	}
}

func TestLoopbackDatabase(t *testing.T) {
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"postgres://piazza:piazza@127.0.0.1:5432/piazza?sslmode=disable", true},
		{"postgres://localhost/piazza", true},
		{"postgres:///piazza?host=/var/run/postgresql", true},
		{"postgres://db.example.org/piazza", false},
		{"postgres:///piazza?host=db.example.org", false},
	} {
		if err := checkLoopbackDB(tc.url); (err == nil) != tc.ok {
			t.Errorf("checkLoopbackDB(%q) = %v, want ok=%v", tc.url, err, tc.ok)
		}
	}
}

func TestSourceAddrs(t *testing.T) {
	got, err := sourceAddrs(3)
	if err != nil || len(got) != 3 || got[0] != "127.0.0.2" || got[2] != "127.0.0.4" {
		t.Fatalf("sourceAddrs(3) = %v, %v", got, err)
	}
	for _, a := range got {
		if !loopbackHost(a) {
			t.Errorf("%s is not loopback", a)
		}
	}
	if _, err := sourceAddrs(251); err == nil {
		t.Error("251 source addresses would leave 127.0.0.0/24")
	}
}
