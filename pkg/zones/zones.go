// Package zones loads IANA time zones once per process.
//
// time.LoadLocation reads and parses the zone's file from the system's
// zoneinfo (or the embedded tzdata) on every call: about 30 µs and a dozen
// allocations, which showed as a tenth of the API's CPU when every stall
// status post looked up its city's zone. A zone's rules do not change while
// the process runs (a tzdata update needs a restart anyway), so the first
// load of each name is kept.
package zones

import (
	"sync"
	"time"
)

var cache sync.Map // zone name → *time.Location

// Load returns the location named name, as time.LoadLocation does, from
// the process's cache after the first successful load. Names that fail to
// load are not kept, so bad input cannot grow the cache: it holds at most
// the zones that exist (about 600).
func Load(name string) (*time.Location, error) {
	if loc, ok := cache.Load(name); ok {
		return loc.(*time.Location), nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, err
	}
	actual, _ := cache.LoadOrStore(name, loc)
	return actual.(*time.Location), nil
}
