package main

import (
	"math"
	"strings"
	"testing"
)

const exposition = `# HELP piazza_outbox_relay_lag_seconds Time from writing an outbox row to its PubAck.
# TYPE piazza_outbox_relay_lag_seconds histogram
piazza_outbox_relay_lag_seconds_bucket{schema="listings",le="0.001"} 0
piazza_outbox_relay_lag_seconds_bucket{schema="listings",le="0.005"} 50
piazza_outbox_relay_lag_seconds_bucket{schema="listings",le="0.01"} 90
piazza_outbox_relay_lag_seconds_bucket{schema="listings",le="0.05"} 99
piazza_outbox_relay_lag_seconds_bucket{schema="listings",le="+Inf"} 100
piazza_outbox_relay_lag_seconds_sum{schema="listings"} 0.9
piazza_outbox_relay_lag_seconds_count{schema="listings"} 100
go_memstats_heap_inuse_bytes 1.2e+07
piazza_ws_connections 19000
`

func TestMetrics(t *testing.T) {
	m, err := parseMetrics(strings.NewReader(exposition))
	if err != nil {
		t.Fatal(err)
	}
	if got := m.sum("go_memstats_heap_inuse_bytes"); got != 12e6 {
		t.Errorf("heap = %v", got)
	}
	if got := m.sum("piazza_ws_connections"); got != 19000 {
		t.Errorf("connections = %v", got)
	}
	for _, tc := range []struct {
		q    float64
		want float64
	}{{0.5, 0.005}, {0.9, 0.01}, {0.99, 0.05}, {1, math.Inf(1)}} {
		if got, n := m.histQuantile("piazza_outbox_relay_lag_seconds", tc.q); got != tc.want || n != 100 {
			t.Errorf("q%v = %v (n %d), want %v", tc.q, got, n, tc.want)
		}
	}
	t.Run("a diff is the interval's histogram", func(t *testing.T) {
		before, _ := parseMetrics(strings.NewReader(strings.ReplaceAll(exposition, "} 100", "} 60")))
		d := m.diff(before)
		if got, n := d.histQuantile("piazza_outbox_relay_lag_seconds", 0.5); n != 40 || got != math.Inf(1) {
			t.Errorf("diff: q0.5 = %v of %d", got, n)
		}
	})
}
