package bus_test

import (
	"context"
	"testing"
	"time"

	"github.com/localeurope/piazza/pkg/bus"
	"github.com/localeurope/piazza/pkg/bus/bustest"
	"github.com/nats-io/nats.go/jetstream"
)

func TestEnsureStream(t *testing.T) {
	ctx := context.Background()
	_, js := bustest.Connect(t)
	cfg := jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}, Storage: jetstream.FileStorage,
		MaxAge: time.Hour, Duplicates: time.Minute, Description: "orders"}
	maxAge := func() time.Duration {
		t.Helper()
		s, err := js.Stream(ctx, "ORDERS")
		if err != nil {
			t.Fatal(err)
		}
		return s.CachedInfo().Config.MaxAge
	}

	t.Run("a reader creates a missing stream", func(t *testing.T) {
		if err := bus.EnsureStream(ctx, js, cfg, false); err != nil {
			t.Fatal(err)
		}
		if got := maxAge(); got != time.Hour {
			t.Fatalf("MaxAge = %v, want 1h", got)
		}
	})
	t.Run("a reader never changes the owner's configuration", func(t *testing.T) {
		other := cfg
		other.MaxAge = time.Minute
		if err := bus.EnsureStream(ctx, js, other, false); err != nil {
			t.Fatal(err)
		}
		if got := maxAge(); got != time.Hour {
			t.Fatalf("MaxAge = %v after a reader's call, want 1h", got)
		}
	})
	t.Run("the owner updates a changed configuration", func(t *testing.T) {
		changed := cfg
		changed.MaxAge = 2 * time.Hour
		if err := bus.EnsureStream(ctx, js, changed, true); err != nil {
			t.Fatal(err)
		}
		if got := maxAge(); got != 2*time.Hour {
			t.Fatalf("MaxAge = %v, want 2h", got)
		}
	})
	t.Run("an unchanged configuration is recognised as such", func(t *testing.T) {
		changed := cfg
		changed.MaxAge = 2 * time.Hour
		s, err := js.Stream(ctx, "ORDERS")
		if err != nil {
			t.Fatal(err)
		}
		if !bus.SameStreamConfig(s.CachedInfo().Config, changed) {
			t.Fatalf("the server's copy of the configuration does not compare equal: %+v", s.CachedInfo().Config)
		}
		if bus.SameStreamConfig(s.CachedInfo().Config, cfg) {
			t.Fatal("a different MaxAge compares equal")
		}
	})
}
