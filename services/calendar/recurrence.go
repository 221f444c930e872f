package calendar

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/teambition/rrule-go"
)

// Limits of a series: they bound the work of expanding one.
const (
	maxDates       = 200  // EXDATEs, RDATEs
	maxOverrides   = 500  // changed occurrences of one series
	maxCount       = 1000 // COUNT in an RRULE
	maxUntilYears  = 20   // UNTIL at most this long after the start
	maxOccurrences = 5000 // occurrences expanded for one query
)

const (
	localLayout = "2006-01-02T15:04"
	dateLayout  = time.DateOnly
)

// inLoc reads the naive (wall-clock) time n in loc. A wall-clock time that
// does not exist (a spring-forward gap) is normalised forward by Go.
func inLoc(n time.Time, loc *time.Location) time.Time {
	return time.Date(n.Year(), n.Month(), n.Day(), n.Hour(), n.Minute(), n.Second(), 0, loc)
}

// naive is t's wall clock in its own location, as a UTC time.
func naive(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), 0, time.UTC)
}

// existsIn reports whether the wall-clock time n exists in loc (it is not
// skipped by a daylight-saving change).
func existsIn(n time.Time, loc *time.Location) bool { return naive(inLoc(n, loc)).Equal(n) }

func parseLocal(s string, allDay bool) (time.Time, bool) {
	if allDay {
		t, err := time.Parse(dateLayout, s)
		return t, err == nil
	}
	t, err := time.Parse(localLayout, s)
	if err != nil {
		if t, err = time.Parse("2006-01-02T15:04:05", s); err != nil || t.Second() != 0 {
			return time.Time{}, false
		}
	}
	return t, true
}

func formatLocal(n time.Time, allDay bool) string {
	if allDay {
		return n.Format(dateLayout)
	}
	return n.Format(localLayout)
}

// ruleChars is what an RRULE value may hold (RFC 5545 RECUR).
var ruleChars = regexp.MustCompile(`^[A-Z0-9=;,+\-]+$`)

// parseRule checks an RRULE value (without "RRULE:") for an event that
// starts at dtstart, and returns its options with DTSTART set. Rules more
// frequent than daily, or with BYHOUR/BYMINUTE/BYSECOND, are refused: an
// occurrence's time of day is the event's start time, which keeps one
// occurrence per day at most and every expansion cheap.
func parseRule(rule string, dtstart time.Time, allDay bool) (*rrule.ROption, string) {
	if len(rule) > 500 || !ruleChars.MatchString(rule) {
		return nil, "must be an RFC 5545 RRULE value such as FREQ=WEEKLY;BYDAY=SA"
	}
	seen := map[string]bool{}
	for _, part := range strings.Split(rule, ";") {
		name, value, ok := strings.Cut(part, "=")
		if !ok || value == "" {
			return nil, "must be NAME=VALUE pairs separated by ';'"
		}
		if seen[name] {
			return nil, fmt.Sprintf("names %s twice", name)
		}
		seen[name] = true
		switch name {
		case "FREQ":
			switch value {
			case "DAILY", "WEEKLY", "MONTHLY", "YEARLY":
			default:
				return nil, "FREQ must be DAILY, WEEKLY, MONTHLY or YEARLY"
			}
		case "UNTIL":
			if allDay && len(value) != 8 {
				return nil, "UNTIL of an all-day event must be a date (YYYYMMDD)"
			}
			if !allDay && (len(value) != 16 || !strings.HasSuffix(value, "Z")) {
				return nil, "UNTIL of a timed event must be a UTC date-time (YYYYMMDDTHHMMSSZ)"
			}
		case "COUNT":
			if n, err := strconv.Atoi(value); err != nil || n < 1 || n > maxCount {
				return nil, fmt.Sprintf("COUNT must be 1 to %d", maxCount)
			}
		case "INTERVAL", "BYDAY", "BYMONTHDAY", "BYYEARDAY", "BYWEEKNO", "BYMONTH", "BYSETPOS", "WKST":
		default:
			return nil, fmt.Sprintf("%s is not supported (supported: FREQ, UNTIL, COUNT, INTERVAL, BYDAY, BYMONTHDAY, BYYEARDAY, BYWEEKNO, BYMONTH, BYSETPOS, WKST)", name)
		}
	}
	if !seen["FREQ"] {
		return nil, "FREQ is required"
	}
	if seen["COUNT"] && seen["UNTIL"] {
		return nil, "COUNT and UNTIL must not both be given"
	}
	opt, err := rrule.StrToROptionInLocation(rule, dtstart.Location())
	if err != nil {
		return nil, "is not a valid RRULE: " + err.Error()
	}
	if allDay && !opt.Until.IsZero() { // a DATE UNTIL includes its whole day
		opt.Until = time.Date(opt.Until.Year(), opt.Until.Month(), opt.Until.Day(), 23, 59, 59, 0, dtstart.Location())
	}
	if !opt.Until.IsZero() && opt.Until.After(dtstart.AddDate(maxUntilYears, 0, 0)) {
		return nil, fmt.Sprintf("UNTIL must be at most %d years after the start", maxUntilYears)
	}
	opt.Dtstart = dtstart
	return opt, ""
}

// series is an event's recurrence set, resolved in its timezone.
type series struct {
	e       *Event
	loc     *time.Location
	set     *rrule.Set
	bounded bool // the set is finite
}

func (e *Event) series(loc *time.Location) (*series, error) {
	dtstart := inLoc(e.StartLocal, loc)
	set := &rrule.Set{}
	bounded := true
	if e.RRule != "" {
		opt, msg := parseRule(e.RRule, dtstart, e.AllDay)
		if msg != "" {
			return nil, fmt.Errorf("calendar: event %s: rrule %s", e.ID, msg)
		}
		r, err := rrule.NewRRule(*opt)
		if err != nil {
			return nil, fmt.Errorf("calendar: event %s: rrule: %w", e.ID, err)
		}
		set.RRule(r)
		bounded = opt.Count > 0 || !opt.Until.IsZero()
	} else {
		set.RDate(dtstart)
	}
	for _, d := range e.RDates {
		set.RDate(inLoc(d, loc))
	}
	for _, d := range e.ExDates {
		set.ExDate(inLoc(d, loc))
	}
	return &series{e: e, loc: loc, set: set, bounded: bounded}, nil
}

// end is the end of an occurrence that starts at start, unless overridden:
// all-day occurrences last the event's number of days (nominal days, so a
// day of 23 or 25 hours is still one day); timed ones last the first
// occurrence's exact duration (RFC 5545 §3.8.5.3).
func (s *series) end(start time.Time) time.Time {
	if s.e.AllDay {
		days := int(s.e.EndLocal.Sub(s.e.StartLocal).Hours()/24) + 1
		return time.Date(start.Year(), start.Month(), start.Day()+days, 0, 0, 0, 0, s.loc)
	}
	return start.Add(inLoc(s.e.EndLocal, s.loc).Sub(inLoc(s.e.StartLocal, s.loc)))
}

// maxDuration bounds the length of any occurrence, overrides included.
func (s *series) maxDuration() time.Duration {
	d := s.end(inLoc(s.e.StartLocal, s.loc)).Sub(inLoc(s.e.StartLocal, s.loc)) + 2*time.Hour
	for _, o := range s.e.Overrides {
		if od := s.overrideEnd(o).Sub(inLoc(o.StartLocal, s.loc)); od+2*time.Hour > d {
			d = od + 2*time.Hour
		}
	}
	return d
}

func (s *series) overrideEnd(o Override) time.Time {
	if s.e.AllDay {
		return inLoc(o.EndLocal, s.loc).AddDate(0, 0, 1)
	}
	return inLoc(o.EndLocal, s.loc)
}

// isOccurrence reports whether the naive local time recur is an occurrence
// of the series (before overrides).
func (s *series) isOccurrence(recur time.Time) bool {
	t := inLoc(recur, s.loc)
	for _, got := range s.set.Between(t.Add(-time.Second), t.Add(time.Second), true) {
		if got.Equal(t) {
			return true
		}
	}
	return false
}

// occurrence is one expanded occurrence.
type occurrence struct {
	Recur      time.Time // naive original start: the RECURRENCE-ID
	Start, End time.Time
	Status     string
	Title      string
	Sequence   int
	Overridden bool
}

// between expands the occurrences that overlap [from, to), with overrides
// applied, in start order; at most limit (more is an error the caller
// reports as "narrow the range").
func (s *series) between(from, to time.Time, limit int) ([]occurrence, error) {
	overrides := make(map[time.Time]Override, len(s.e.Overrides))
	for _, o := range s.e.Overrides {
		overrides[o.RecurrenceID] = o
	}
	starts := s.set.Between(from.Add(-s.maxDuration()), to, true)
	seen := make(map[time.Time]bool, len(starts))
	for _, st := range starts {
		seen[naive(st)] = true
	}
	for recur := range overrides { // an occurrence moved into the range from outside it
		if !seen[recur] && s.isOccurrence(recur) {
			starts = append(starts, inLoc(recur, s.loc))
			seen[recur] = true
		}
	}
	var out []occurrence
	for _, st := range starts {
		o := occurrence{Recur: naive(st), Start: st, End: s.end(st), Status: s.e.Status, Title: s.e.Title, Sequence: s.e.Sequence}
		if ov, ok := overrides[o.Recur]; ok {
			o.Start, o.End, o.Overridden, o.Sequence = inLoc(ov.StartLocal, s.loc), s.overrideEnd(ov), true, ov.Sequence
			if s.e.Status != StatusCancelled { // a cancelled series cancels every occurrence
				o.Status = ov.Status
			}
			if ov.Title != "" {
				o.Title = ov.Title
			}
		}
		if !overlaps(o.Start, o.End, from, to) {
			continue
		}
		if len(out) == limit {
			return nil, errTooMany
		}
		out = append(out, o)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out, nil
}

func overlaps(start, end, from, to time.Time) bool {
	if !start.Before(to) {
		return false
	}
	return end.After(from) || (end.Equal(start) && !start.Before(from))
}

// window returns the first start and the last end of any occurrence; last is
// nil when the series never ends.
func (s *series) window() (time.Time, *time.Time) {
	first := inLoc(s.e.StartLocal, s.loc)
	for _, d := range s.e.RDates {
		if t := inLoc(d, s.loc); t.Before(first) {
			first = t
		}
	}
	for _, o := range s.e.Overrides {
		if t := inLoc(o.StartLocal, s.loc); t.Before(first) {
			first = t
		}
	}
	if !s.bounded {
		return first, nil
	}
	var last time.Time
	next := s.set.Iterator()
	for t, ok := next(); ok; t, ok = next() {
		if e := s.end(t); e.After(last) {
			last = e
		}
	}
	for _, o := range s.e.Overrides {
		if e := s.overrideEnd(o); e.After(last) {
			last = e
		}
	}
	if last.IsZero() { // every occurrence excluded
		last = first
	}
	return first, &last
}
