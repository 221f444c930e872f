package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // zones load on any machine

	"github.com/localeurope/piazza/services/contract"
)

func TestPitchPlan(t *testing.T) {
	for _, n := range []int{1, 19, 20, 21, 100, 200} {
		t.Run(fmt.Sprintf("%d pitches lie inside the plan, apart, with codes of their own", n), func(t *testing.T) {
			w, h, pitches := pitchPlan(n)
			if len(pitches) != n {
				t.Fatalf("%d pitches, want %d", len(pitches), n)
			}
			if w < 1 || w > 1000 || h < 1 || h > 1000 {
				t.Errorf("plan %gx%g m, want each side 1 to 1000", w, h)
			}
			codes := map[string]bool{}
			for i, p := range pitches {
				if codes[p.Code] {
					t.Errorf("code %s twice", p.Code)
				}
				codes[p.Code] = true
				if p.X < 0 || p.Y < 0 || p.X+p.W > w || p.Y+p.H > h {
					t.Errorf("pitch %s at %g,%g size %gx%g is outside the %gx%g plan", p.Code, p.X, p.Y, p.W, p.H, w, h)
				}
				for _, q := range pitches[:i] {
					if p.X < q.X+q.W && q.X < p.X+p.W && p.Y < q.Y+q.H && q.Y < p.Y+p.H {
						t.Errorf("pitches %s and %s overlap", p.Code, q.Code)
					}
				}
			}
		})
	}
}

func TestPlaceSizes(t *testing.T) {
	tests := []struct {
		n, per int
		want   []int
	}{
		{40, 100, []int{40}},
		{100, 100, []int{100}},
		{250, 100, []int{100, 100, 50}},
		{1000, 100, []int{100, 100, 100, 100, 100, 100, 100, 100, 100, 100}},
		{0, 100, nil},
	}
	for _, tt := range tests {
		got := placeSizes(tt.n, tt.per)
		if fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("placeSizes(%d, %d) = %v, want %v", tt.n, tt.per, got, tt.want)
		}
	}
}

func TestLoadMarket(t *testing.T) {
	t.Run("held every weekday, all day", func(t *testing.T) {
		s := wholeWeek()
		seen := map[int]bool{}
		for _, e := range s {
			if e.Weekday < 1 || e.Weekday > 7 || seen[e.Weekday] {
				t.Errorf("weekday %d out of range or repeated", e.Weekday)
			}
			seen[e.Weekday] = true
			if e.Opens != "00:00" || e.Closes != "23:59" {
				t.Errorf("weekday %d: %s–%s, want 00:00–23:59", e.Weekday, e.Opens, e.Closes)
			}
		}
		if len(seen) != 7 {
			t.Errorf("%d weekdays, want 7", len(seen))
		}
	})
	t.Run("the season has begun by today's local date in any timezone", func(t *testing.T) {
		for _, zone := range []string{"Pacific/Kiritimati", "Europe/Brussels", "UTC", "Pacific/Niue"} {
			loc, err := time.LoadLocation(zone)
			if err != nil {
				t.Fatal(err) // time/tzdata is embedded below: every zone loads
			}
			for _, now := range []time.Time{
				time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC),
				time.Date(2026, 11, 27, 23, 59, 0, 0, time.UTC),
				time.Date(2026, 1, 1, 0, 30, 0, 0, loc),
			} {
				m := loadMarket("place", "Load", now)
				if today := now.In(loc).Format(time.DateOnly); m.SeasonStart > today {
					t.Errorf("%s at %s: season starts %s, after today %s", zone, now, m.SeasonStart, today)
				}
				if !m.AutoAccept {
					t.Error("the market does not auto-accept")
				}
			}
		}
	})
}

func TestFollowers(t *testing.T) {
	for _, tt := range []struct{ n, nv int }{{2000, 40}, {2001, 40}, {50000, 1000}, {7, 3}, {1, 1}} {
		sum, lo, hi := 0, tt.n, 0
		for i := range tt.nv {
			k := followers(tt.n, tt.nv, i)
			sum += k
			lo, hi = min(lo, k), max(hi, k)
		}
		if sum != tt.n || hi-lo > 1 {
			t.Errorf("followers(%d, %d, ·): sum %d (want %d), spread %d..%d", tt.n, tt.nv, sum, tt.n, lo, hi)
		}
		// The worker's assignment: connection g follows topic g mod nv.
		count := make([]int, tt.nv)
		for g := range tt.n {
			count[g%tt.nv]++
		}
		for i, c := range count {
			if c != followers(tt.n, tt.nv, i) {
				t.Errorf("stall %d has %d connections, followers says %d", i, c, followers(tt.n, tt.nv, i))
			}
		}
	}
}

func TestPacing(t *testing.T) {
	t.Run("due: the first at once, then one every 1/rate, up to the total", func(t *testing.T) {
		tests := []struct {
			elapsed     time.Duration
			rate, total int
			want        int
		}{
			{-time.Second, 1000, 10, 0},
			{0, 1000, 5000, 1},
			{999 * time.Microsecond, 1000, 5000, 1},
			{time.Millisecond, 1000, 5000, 2},
			{time.Second, 1000, 5000, 1001},
			{time.Hour, 1000, 5000, 5000},
			{500 * time.Millisecond, 10, 100, 6},
		}
		for _, tt := range tests {
			if got := due(tt.elapsed, tt.rate, tt.total); got != tt.want {
				t.Errorf("due(%s, %d, %d) = %d, want %d", tt.elapsed, tt.rate, tt.total, got, tt.want)
			}
		}
	})
	t.Run("pace hands out every job in order at the rate", func(t *testing.T) {
		jobs := make(chan int, 100)
		start := time.Now()
		n := pace(context.Background(), start, 1000, 50, jobs)
		took := time.Since(start)
		close(jobs)
		want := 0
		for k := range jobs {
			if k != want {
				t.Fatalf("job %d, want %d", k, want)
			}
			want++
		}
		if n != 50 || want != 50 {
			t.Errorf("handed out %d (received %d), want 50", n, want)
		}
		if took < 45*time.Millisecond {
			t.Errorf("50 jobs at 1,000/s took %s, want about 49 ms", took)
		}
	})
	t.Run("pace stops when the context ends", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if n := pace(ctx, time.Now(), 10, 100, make(chan int)); n != 0 {
			t.Errorf("handed out %d with no reader and a cancelled context", n)
		}
	})
}

// frame is a websocket notification frame as the notifier writes it.
func frame(t testing.TB, kind string, data any) []byte {
	t.Helper()
	raw, err := json.Marshal(data)
	if err != nil {
		t.Fatal(err)
	}
	n := contract.NotificationV1{ID: "n1", Kind: kind, City: "ghent", Topics: []string{"vendor:v1"}, Time: time.Now(), Data: raw,
		Text: map[string]string{"en": "Hoeve: Fresh bread"}}
	body, err := json.Marshal(n)
	if err != nil {
		t.Fatal(err)
	}
	return append(append([]byte(`{"type":"notification","seq":42,"notification":`), body...), '}')
}

func TestReceiptKey(t *testing.T) {
	stall := contract.StallV1{ApplicationID: "0199-app", City: "ghent", VendorID: "v1", StatusText: statusText(7), LiveState: "open", Version: 9}
	t.Run("a status post is keyed by its application and text, as the sender keys it", func(t *testing.T) {
		got, ok := receiptKey(frame(t, "stall.status_posted", stall))
		want := updateKey{stall: 3, app: "0199-app", text: statusText(7)}.String()
		if !ok || got != want {
			t.Errorf("receiptKey = %q, %v; want %q", got, ok, want)
		}
	})
	t.Run("two posts of one stall have different keys", func(t *testing.T) {
		a := updateKey{app: "x", text: statusText(1)}.String()
		b := updateKey{app: "x", text: statusText(2)}.String()
		if a == b {
			t.Errorf("both %q", a)
		}
	})
	t.Run("a text with escapes is keyed by its decoded value", func(t *testing.T) {
		quoted := stall
		quoted.StatusText = `Say "cheese", update #8 \ done`
		got, ok := receiptKey(frame(t, "stall.status_posted", quoted))
		want := updateKey{app: "0199-app", text: quoted.StatusText}.String()
		if !ok || got != want {
			t.Errorf("receiptKey = %q, %v; want %q", got, ok, want)
		}
	})
	t.Run("other notifications are not timed", func(t *testing.T) {
		for _, kind := range []string{"stall.checked_in", "stall.registered", "market_day.opened"} {
			if k, ok := receiptKey(frame(t, kind, stall)); ok {
				t.Errorf("%s: key %q, want none", kind, k)
			}
		}
		if k, ok := receiptKey([]byte(`{"type":"notification","seq":1,`)); ok {
			t.Errorf("a broken frame: key %q", k)
		}
	})
}

// BenchmarkReceiptKey is the load side's cost of keying one delivery.
func BenchmarkReceiptKey(b *testing.B) {
	stall := contract.StallV1{ApplicationID: "01a21b47-b681-7254-a5a7-dd96adaba1f7", City: "ghent",
		VendorID: "01a21b47-b681-7254-a5a7-dd96adaba1f8", StatusText: statusText(7), LiveState: "open", Version: 9}
	f := frame(b, "stall.status_posted", stall)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := receiptKey(f); !ok {
			b.Fatal("no key")
		}
	}
}

func TestSentTimes(t *testing.T) {
	file := filepath.Join(t.TempDir(), "sent.txt")
	sent := map[updateKey]int64{
		{stall: 0, app: "a1", text: statusText(1)}: 1_000_000,
		{stall: 1, app: "a2", text: statusText(2)}: 2_000_000,
	}
	if err := writeSent(file, sent); err != nil {
		t.Fatal(err)
	}
	w := &worker{}
	at := func(ns int64) time.Time { return time.Unix(0, ns) }
	// Two followers of a1's post (3 and 8 ms after its response); one of
	// a2's, whose frame came before the response (0); a post this run never
	// made; and a check-in.
	w.recordReceipt(frame(t, "stall.status_posted", contract.StallV1{ApplicationID: "a1", StatusText: statusText(1)}), at(4_000_000))
	w.recordReceipt(frame(t, "stall.status_posted", contract.StallV1{ApplicationID: "a1", StatusText: statusText(1)}), at(9_000_000))
	w.recordReceipt(frame(t, "stall.status_posted", contract.StallV1{ApplicationID: "a2", StatusText: statusText(2)}), at(1_500_000))
	w.recordReceipt(frame(t, "stall.status_posted", contract.StallV1{ApplicationID: "a3", StatusText: "other"}), at(1))
	w.recordReceipt(frame(t, "stall.checked_in", contract.StallV1{ApplicationID: "a1"}), at(1))
	if got := w.stats().Recorded; got != 4 {
		t.Errorf("recorded %d receipts, want 4 (the check-in is not one)", got)
	}
	h, unmatched, errText := w.latency(file)
	if errText != "" {
		t.Fatal(errText)
	}
	if h.N != 3 || unmatched != 1 {
		t.Errorf("%d matched, %d unmatched; want 3 and 1", h.N, unmatched)
	}
	if h.Max != 8*time.Millisecond {
		t.Errorf("max %s, want 8ms", h.Max)
	}
	if q := h.quantile(0); q != 0 {
		t.Errorf("min %s, want 0 (a delivery before the response)", q)
	}

	t.Run("a line without a time is an error", func(t *testing.T) {
		if _, err := readSent(strings.NewReader("a1/Fresh bread 12\nbroken\n")); err == nil {
			t.Error("no error")
		}
	})
	t.Run("the key may hold spaces", func(t *testing.T) {
		got, err := readSent(strings.NewReader("a1/Fresh bread until noon, update #3 17\n\n"))
		if err != nil || got["a1/Fresh bread until noon, update #3"] != 17 || len(got) != 1 {
			t.Errorf("readSent = %v, %v", got, err)
		}
	})
}

func TestPipelineCostAgainstTheFloor(t *testing.T) {
	servers := []watched{{name: "notifier-1", pid: 1}, {name: "notifier-2", pid: 2}, {name: "api", pid: 3}}
	if ns := notifiersOf(servers); len(ns) != 2 || ns[0].pid != 1 || ns[1].pid != 2 {
		t.Fatalf("notifiersOf: %+v", ns)
	}
	run := pipelineCost{posts: 100, deliveries: 5000, machine: 1.0, notifiers: 0.25, clients: 0.1}
	fl := deliveryCost{Deliveries: 5000, ServerCPU: 0.125, PerDeliv: 25 * time.Microsecond, ClientPerDeliv: 20 * time.Microsecond, Elapsed: time.Second}
	var out strings.Builder
	run.report(&out, fl, &options{subscribers: 50})
	for _, want := range []string{
		"RESULT floor for this pattern: 5000 deliveries, server CPU 0.12 s, 25.00 µs per delivery, 40000 deliveries/s per core-second (5000 deliveries/s achieved); clients 20.00 µs per delivery",
		"RESULT pipeline per delivery: notifiers 50.0 µs (2.0 × the floor's), load workers 20.0 µs (1.0 × the floor's clients'); machine 10.00 ms per accepted post",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}
