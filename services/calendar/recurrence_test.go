package calendar

import (
	"strings"
	"testing"
	"time"
)

func naiveAt(tb testing.TB, s string) time.Time {
	tb.Helper()
	t, ok := parseLocal(s, len(s) == len("2006-01-02"))
	if !ok {
		tb.Fatalf("bad local time %q", s)
	}
	return t
}

// weekly builds an event from the local start/end with a rule.
func weekly(tb testing.TB, tz, start, end, rule string) (*Event, *time.Location) {
	tb.Helper()
	loc := mustLoad(tb, tz)
	e := &Event{ID: "e", Title: "Jazz", Timezone: tz, Status: StatusConfirmed, RRule: rule,
		StartLocal: naiveAt(tb, start), EndLocal: naiveAt(tb, end), AllDay: len(start) == 10}
	return e, loc
}

func TestWeeklyEventKeepsLocalTimeAcrossDST(t *testing.T) {
	for _, tt := range []struct {
		tz               string
		before, after    string // Saturdays either side of a change
		offBefore, offAf int    // UTC offsets in hours
	}{
		{"Europe/Lisbon", "2026-03-28", "2026-04-04", 0, 1},
		{"Europe/Lisbon", "2026-10-24", "2026-10-31", 1, 0},
		{"Europe/Berlin", "2026-03-28", "2026-04-04", 1, 2},
		{"Europe/Berlin", "2026-10-24", "2026-10-31", 2, 1},
		{"Europe/Helsinki", "2026-03-28", "2026-04-04", 2, 3},
		{"Europe/Helsinki", "2026-10-24", "2026-10-31", 3, 2},
	} {
		t.Run(tt.tz+" "+tt.before, func(t *testing.T) {
			e, loc := weekly(t, tt.tz, "2026-01-03T10:00", "2026-01-03T12:00", "FREQ=WEEKLY;BYDAY=SA")
			s, err := e.series(loc)
			if err != nil {
				t.Fatal(err)
			}
			from := inLoc(naiveAt(t, tt.before), loc)
			occ, err := s.between(from, from.AddDate(0, 0, 8), 100)
			if err != nil {
				t.Fatal(err)
			}
			if len(occ) != 2 {
				t.Fatalf("%d occurrences, want 2", len(occ))
			}
			for i, want := range []struct {
				date string
				off  int
			}{{tt.before, tt.offBefore}, {tt.after, tt.offAf}} {
				o := occ[i]
				local := o.Start.In(loc)
				if local.Format("2006-01-02 15:04") != want.date+" 10:00" {
					t.Errorf("occurrence %d starts %s local, want %s 10:00", i, local.Format("2006-01-02 15:04"), want.date)
				}
				if _, off := local.Zone(); off != want.off*3600 {
					t.Errorf("occurrence %d has offset %d, want %dh", i, off, want.off)
				}
				if got := o.Start.UTC().Hour(); got != 10-want.off {
					t.Errorf("occurrence %d starts %02d:00 UTC, want %02d:00", i, got, 10-want.off)
				}
				if o.End.Sub(o.Start) != 2*time.Hour || o.End.In(loc).Hour() != 12 {
					t.Errorf("occurrence %d ends %s, want 12:00 local", i, o.End.In(loc))
				}
			}
		})
	}
}

func TestDailyEventOnTheNightOfTheChange(t *testing.T) {
	// 01:30 on the Berlin autumn night: the hour 02:00–03:00 happens twice,
	// and an event at 02:30 on the spring night does not exist.
	berlin := mustLoad(t, "Europe/Berlin")
	if existsIn(naiveAt(t, "2026-03-29T02:30"), berlin) {
		t.Error("02:30 on 29 March 2026 exists in Berlin; it should be skipped")
	}
	if !existsIn(naiveAt(t, "2026-10-25T02:30"), berlin) {
		t.Error("02:30 on 25 October 2026 does not exist in Berlin")
	}
	e, loc := weekly(t, "Europe/Berlin", "2026-03-27T09:00", "2026-03-27T09:30", "FREQ=DAILY;COUNT=4")
	s, err := e.series(loc)
	if err != nil {
		t.Fatal(err)
	}
	occ, err := s.between(inLoc(naiveAt(t, "2026-03-27T00:00"), loc), inLoc(naiveAt(t, "2026-04-01T00:00"), loc), 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range occ {
		got = append(got, o.Start.In(loc).Format("02 15:04 MST"))
	}
	want := "[27 09:00 CET 28 09:00 CET 29 09:00 CEST 30 09:00 CEST]"
	if s := fmtSlice(got); s != want {
		t.Errorf("occurrences = %s, want %s", s, want)
	}
	first, last := s.window()
	if !first.Equal(inLoc(naiveAt(t, "2026-03-27T09:00"), loc)) || last == nil || !last.Equal(inLoc(naiveAt(t, "2026-03-30T09:30"), loc)) {
		t.Errorf("window = %s–%v", first, last)
	}
}

func fmtSlice(s []string) string { return "[" + strings.Join(s, " ") + "]" }

func TestAllDayEventsAreWholeLocalDays(t *testing.T) {
	// The Helsinki spring-forward Sunday has 23 hours; an all-day event
	// still covers exactly that local day.
	e, loc := weekly(t, "Europe/Helsinki", "2026-03-22", "2026-03-22", "FREQ=WEEKLY;UNTIL=20260405")
	s, err := e.series(loc)
	if err != nil {
		t.Fatal(err)
	}
	occ, err := s.between(inLoc(naiveAt(t, "2026-03-01T00:00"), loc), inLoc(naiveAt(t, "2026-05-01T00:00"), loc), 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(occ) != 3 {
		t.Fatalf("%d occurrences, want 3 (UNTIL as a date includes its day)", len(occ))
	}
	if d := occ[1].End.Sub(occ[1].Start); d != 23*time.Hour {
		t.Errorf("29 March lasts %s, want 23h", d)
	}
	if occ[1].End.In(loc).Format("2006-01-02 15:04") != "2026-03-30 00:00" {
		t.Errorf("29 March ends %s", occ[1].End.In(loc))
	}
}

func TestExdateRdateAndOverrides(t *testing.T) {
	e, loc := weekly(t, "Europe/Lisbon", "2026-03-07T10:00", "2026-03-07T11:00", "FREQ=WEEKLY;BYDAY=SA;COUNT=6")
	e.ExDates = []time.Time{naiveAt(t, "2026-03-14T10:00")}
	e.RDates = []time.Time{naiveAt(t, "2026-03-18T18:00")}
	e.Overrides = []Override{
		{RecurrenceID: naiveAt(t, "2026-03-21T10:00"), Status: StatusCancelled, StartLocal: naiveAt(t, "2026-03-21T10:00"), EndLocal: naiveAt(t, "2026-03-21T11:00")},
		// moved from the last Saturday of the range to the Monday after it
		{RecurrenceID: naiveAt(t, "2026-04-04T10:00"), Status: StatusConfirmed, StartLocal: naiveAt(t, "2026-04-06T15:00"), EndLocal: naiveAt(t, "2026-04-06T16:00"), Title: "Jazz (moved)"},
	}
	s, err := e.series(loc)
	if err != nil {
		t.Fatal(err)
	}
	occ, err := s.between(inLoc(naiveAt(t, "2026-03-01T00:00"), loc), inLoc(naiveAt(t, "2026-04-05T00:00"), loc), 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range occ {
		got = append(got, o.Start.In(loc).Format("01-02T15:04")+"/"+o.Status)
	}
	want := "[03-07T10:00/confirmed 03-18T18:00/confirmed 03-21T10:00/cancelled 03-28T10:00/confirmed]"
	if fmtSlice(got) != want {
		t.Errorf("occurrences = %s, want %s", fmtSlice(got), want)
	}
	occ, _ = s.between(inLoc(naiveAt(t, "2026-04-06T00:00"), loc), inLoc(naiveAt(t, "2026-04-07T00:00"), loc), 100)
	if len(occ) != 1 || occ[0].Title != "Jazz (moved)" || !occ[0].Recur.Equal(naiveAt(t, "2026-04-04T10:00")) {
		t.Errorf("the moved occurrence is not on the Monday: %+v", occ)
	}
	if !s.isOccurrence(naiveAt(t, "2026-03-28T10:00")) || s.isOccurrence(naiveAt(t, "2026-03-14T10:00")) || s.isOccurrence(naiveAt(t, "2026-03-28T11:00")) {
		t.Error("isOccurrence disagrees with the rule, EXDATE or time of day")
	}
}

func TestRuleValidation(t *testing.T) {
	berlin := mustLoad(t, "Europe/Berlin")
	start := inLoc(naiveAt(t, "2026-05-02T10:00"), berlin)
	for _, tt := range []struct {
		rule string
		ok   bool
	}{
		{"FREQ=WEEKLY;BYDAY=SA", true},
		{"FREQ=MONTHLY;BYDAY=1SA", true},
		{"FREQ=MONTHLY;BYDAY=SA;BYSETPOS=-1", true},
		{"FREQ=WEEKLY;UNTIL=20261231T230000Z", true},
		{"FREQ=WEEKLY;UNTIL=20261231", false},
		{"FREQ=HOURLY", false},
		{"FREQ=DAILY;BYHOUR=10,12", false},
		{"FREQ=DAILY;COUNT=5000", false},
		{"FREQ=DAILY;COUNT=2;UNTIL=20261231T230000Z", false},
		{"BYDAY=SA", false},
		{"FREQ=WEEKLY;UNTIL=20990101T000000Z", false},
		{"FREQ=WEEKLY\nDTSTART:20260101T000000Z", false},
	} {
		_, msg := parseRule(tt.rule, start, false)
		if (msg == "") != tt.ok {
			t.Errorf("parseRule(%q) = %q, want ok=%v", tt.rule, msg, tt.ok)
		}
	}
}
