package zones

import (
	"sync"
	"testing"
	"time"
)

func TestLoadKeepsEachZone(t *testing.T) {
	first, err := Load("Europe/Brussels")
	if err != nil {
		t.Fatal(err)
	}
	again, err := Load("Europe/Brussels")
	if err != nil {
		t.Fatal(err)
	}
	if first != again {
		t.Fatal("the second load of Europe/Brussels read the zone again instead of returning the first")
	}
	// Same rules as the standard library's.
	when := time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)
	std, _ := time.LoadLocation("Europe/Brussels")
	if got, want := when.In(first).Format(time.RFC3339), when.In(std).Format(time.RFC3339); got != want {
		t.Fatalf("12:00 UTC in Brussels: %s, want %s", got, want)
	}
	other, err := Load("Europe/Lisbon")
	if err != nil || other == first || other.String() != "Europe/Lisbon" {
		t.Fatalf("Europe/Lisbon: %v, %v", other, err)
	}
}

func TestLoadRefusesWhatTheStandardLibraryRefuses(t *testing.T) {
	for _, name := range []string{"Europe/Atlantis", "../../etc/passwd", "Europe/Brussels "} {
		if loc, err := Load(name); err == nil {
			t.Errorf("Load(%q) = %v, want an error", name, loc)
		}
		if _, kept := cache.Load(name); kept {
			t.Errorf("Load(%q) kept a name that does not load", name)
		}
	}
}

func TestLoadConcurrently(t *testing.T) {
	var wg sync.WaitGroup
	locs := make([]*time.Location, 16)
	for i := range locs {
		wg.Go(func() {
			loc, err := Load("Europe/Warsaw")
			if err != nil {
				t.Error(err)
			}
			locs[i] = loc
		})
	}
	wg.Wait()
	for _, l := range locs[1:] {
		if l != locs[0] {
			t.Fatal("concurrent first loads returned different locations")
		}
	}
}

func BenchmarkLoad(b *testing.B) {
	b.Run("cached", func(b *testing.B) {
		for b.Loop() {
			if _, err := Load("Europe/Rome"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("time.LoadLocation", func(b *testing.B) {
		for b.Loop() {
			if _, err := time.LoadLocation("Europe/Rome"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
