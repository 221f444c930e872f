package main

// Browser test of the events calendar: a manager creates a recurring event in
// the editor ("every first Saturday of the month"), reads the rule in plain
// words, and finds the event in the week grid on the right days at the right
// local time.

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// firstWeekdayOfMonth is the first day of month m of year y that falls on wd.
func firstWeekdayOfMonth(y int, m time.Month, wd time.Weekday) time.Time {
	d := time.Date(y, m, 1, 12, 0, 0, 0, time.UTC)
	for d.Weekday() != wd {
		d = d.AddDate(0, 0, 1)
	}
	return d
}

// mondayOf is the Monday of d's week (weeks start on Monday in the calendar).
func mondayOf(d time.Time) time.Time {
	return d.AddDate(0, 0, -((int(d.Weekday()) + 6) % 7))
}

func TestBrowserCalendarRecurringEvent(t *testing.T) {
	chromiumPath(t)
	p := startPiazzaWithClock(t, middayInGhent(t), newDatabase(t), t.TempDir())

	loc, err := time.LoadLocation("Europe/Brussels")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().In(loc)
	next := time.Date(now.Year(), now.Month(), 1, 12, 0, 0, 0, time.UTC).AddDate(0, 1, 0)
	first := firstWeekdayOfMonth(next.Year(), next.Month(), time.Saturday)
	after := next.AddDate(0, 1, 0)
	second := firstWeekdayOfMonth(after.Year(), after.Month(), time.Saturday)
	until := next.AddDate(0, 4, -1) // the last day of the month three months on
	day := func(d time.Time) string { return d.Format("2006-01-02") }
	title := "Repair café " + fmt.Sprint(now.UnixNano()%100000)
	jsTitle, _ := json.Marshal(title)

	b := newPage(t)
	b.step("use a wide viewport (the week grid)", chromedp.EmulateViewport(1400, 1000))
	b.step("open the sign-in page", chromedp.Steps(
		chromedp.Navigate(p.base+"/#/signin"),
		chromedp.WaitReady(chromedp.CSS(`#view[data-loaded="1"] form[data-form="signin"]`)),
	))
	b.fill("email", `form[data-form="signin"] [name="email"]`, "manager.ghent@piazza.example")
	b.fill("password", `form[data-form="signin"] [name="password"]`, demoPassword)
	b.click("sign in", `form[data-form="signin"] button[type="submit"]`)
	b.wait("signed in", `document.body.dataset.signedIn === '1' && document.body.dataset.route === 'manage-city'`)
	b.wait("the navigation offers the calendar", `!!document.querySelector('#nav a[data-nav="calendar"]')`)

	b.eval("open the calendar editor", `location.hash = '#/manage-calendar/ghent'; true`)
	b.wait("the editor", `document.body.dataset.route === 'calendar-editor' && !!document.querySelector('#view[data-loaded="1"] form[data-form="event"]')`)
	b.wait("the city's places to choose from", `document.querySelectorAll('form[data-form="event"] [name="place_id"] option').length > 1`)

	form := `form[data-form="event"] `
	b.fill("title", form+`[name="title"]`, title)
	b.fill("description", form+`[name="description"]`, "Bring what is broken; volunteers fix it with you.")
	b.eval("choose the first place", `(() => {
		const s = document.querySelector('form[data-form="event"] [name="place_id"]');
		s.value = s.options[1].value;
		s.dispatchEvent(new Event('change', { bubbles: true }));
		return true;
	})()`)
	b.fill("category", form+`[name="category"]`, "community")
	b.fill("organiser", form+`[name="organiser"]`, "Buurtwerk Ghent")
	b.fill("accessibility", form+`[name="accessibility"]`, "Step-free entrance")
	b.fill("start date", form+`[name="start_date"]`, day(first))
	b.fill("start time", form+`[name="start_time"]`, "10:00")
	b.fill("end date", form+`[name="end_date"]`, day(first))
	b.fill("end time", form+`[name="end_time"]`, "13:00")
	b.fill("monthly", form+`[name="freq"]`, "monthly")
	b.wait("the monthly choices show", `!document.querySelector('form[data-form="event"] [name="nth"]').closest('[hidden]')`)
	b.click("on a weekday of the month", form+`input[name="monthly"][value="nth"]`)
	b.fill("the first", form+`[name="nth"]`, "1")
	b.fill("Saturday", form+`[name="weekday"]`, "SA")
	b.click("ends on a date", form+`input[name="ends"][value="until"]`)
	b.fill("until", form+`[name="until"]`, day(until))

	b.wait("the rule in plain words", `document.querySelector('#rrule-summary')?.textContent.startsWith('Every first Saturday of the month, until ')`)
	summary, _ := b.eval("read the summary", `document.querySelector('#rrule-summary').textContent`).(string)
	if !strings.Contains(summary, fmt.Sprint(until.Year())) || !strings.Contains(summary, fmt.Sprint(until.Day())) {
		t.Errorf("summary %q does not name the last date %s", summary, day(until))
	}
	code, _ := b.eval("read the RRULE", `document.querySelector('#rrule-code').textContent`).(string)
	if !strings.HasPrefix(code, "FREQ=MONTHLY;BYDAY=1SA;UNTIL="+until.Format("20060102")) && !strings.HasPrefix(code, "FREQ=MONTHLY;BYDAY=1SA;UNTIL=") {
		t.Errorf("RRULE %q, want FREQ=MONTHLY;BYDAY=1SA;UNTIL=…", code)
	}
	if v := b.eval("the start matches the rule", `document.querySelector('#rrule-start-hint').hidden`); v != true {
		t.Errorf("the editor says the start date %s is not a first Saturday", day(first))
	}

	b.click("create the event", form+`button[type="submit"]`)
	entry := func(d time.Time) string {
		return fmt.Sprintf(`#week section.cal-day[data-date="%s"] li.cal-entry[data-kind="event"]`, day(d))
	}
	findJS := func(d time.Time) string {
		return fmt.Sprintf(`[...document.querySelectorAll('%s')].find((li) => li.textContent.includes(%s))`, entry(d), jsTitle)
	}
	b.wait("the week of the first date, with the event", fmt.Sprintf(
		`document.body.dataset.route === 'calendar' && document.querySelector('#view[data-loaded="1"] #calendar')?.dataset.from === '%s' && !!%s`,
		day(mondayOf(first)), findJS(first)))
	b.wait("the result is announced", `document.querySelector('#notice')?.dataset.kind === 'ok'`)

	checkPlaced := func(d time.Time) {
		t.Helper()
		got, _ := b.eval("read the entry", fmt.Sprintf(`(() => {
			const li = %s;
			const week = document.querySelector('#week');
			const hour = [...document.querySelectorAll('#week .cal-hour')].find((s) => s.textContent === '10:00');
			const label = li.querySelector('button').getAttribute('aria-label');
			return JSON.stringify({
				start: li.dataset.start, end: li.dataset.end, grid: getComputedStyle(week).display,
				dy: hour ? Math.round(li.getBoundingClientRect().top - hour.getBoundingClientRect().top) : null,
				label, heading: li.closest('section').querySelector('h2').textContent,
				others: [...document.querySelectorAll('#week li.cal-entry')].filter((x) => x.textContent.includes(%s)).map((x) => x.dataset.date),
			});
		})()`, findJS(d), jsTitle)).(string)
		var e struct {
			Start, End, Grid, Label, Heading string
			Dy                               *float64
			Others                           []string
		}
		if err := json.Unmarshal([]byte(got), &e); err != nil {
			t.Fatalf("entry %s: %v", got, err)
		}
		if e.Start != "10:00" || e.End != "13:00" {
			t.Errorf("%s: entry from %s to %s, want 10:00 to 13:00 Ghent time", day(d), e.Start, e.End)
		}
		if e.Grid != "grid" {
			t.Errorf("the week is laid out as %q on a wide screen, want grid", e.Grid)
		}
		if e.Dy == nil || *e.Dy < -3 || *e.Dy > 3 {
			t.Errorf("%s: the entry is %v px from the 10:00 line of the grid", day(d), e.Dy)
		}
		if !strings.Contains(e.Label, title) || !strings.Contains(e.Label, "10:00") || !strings.Contains(e.Label, "Saturday") {
			t.Errorf("%s: aria-label %q lacks the title, the weekday or the time", day(d), e.Label)
		}
		if !strings.Contains(e.Heading, "Saturday") {
			t.Errorf("%s: the day's heading %q does not say Saturday", day(d), e.Heading)
		}
		if len(e.Others) != 1 || e.Others[0] != day(d) {
			t.Errorf("the event shows on %v this week, want only %s", e.Others, day(d))
		}
	}
	checkPlaced(first)

	// "Add to my calendar" and the subscribe links of the event.
	b.click("open the event", fmt.Sprintf(`#week section.cal-day[data-date="%s"] li.cal-entry[data-kind="event"] button`, day(first)))
	b.wait("the event's details", `!!document.querySelector('#entry-detail a[data-link="ics"]')`)
	links, _ := b.eval("read the links", `JSON.stringify(Object.fromEntries([...document.querySelectorAll('#entry-detail a[data-link]')].map((a) => [a.dataset.link, a.getAttribute('href')])))`).(string)
	var l map[string]string
	_ = json.Unmarshal([]byte(links), &l)
	if !strings.HasSuffix(l["ics"], "/event.ics") || !strings.HasPrefix(l["webcal-city"], "webcal://") ||
		!strings.HasPrefix(l["webcal-place"], "webcal://") || !strings.Contains(l["webcal-category"], "/categories/community/calendar.ics") ||
		!strings.HasSuffix(l["atom"], "/feed.atom") || l["edit"] == "" {
		t.Errorf("event links %v, want ics, webcal city/place/category, atom and edit", l)
	}

	// The next first Saturday, some weeks on.
	for w := mondayOf(first).AddDate(0, 0, 7); !w.After(mondayOf(second)); w = w.AddDate(0, 0, 7) {
		b.click("next week", `button[data-action="next-week"]`)
		b.wait("the week of "+day(w), fmt.Sprintf(`document.querySelector('#view[data-loaded="1"] #calendar')?.dataset.from === '%s'`, day(w)))
		if w.Before(mondayOf(second)) {
			if v := b.eval("no occurrence this week", fmt.Sprintf(`[...document.querySelectorAll('#week li.cal-entry')].some((li) => li.textContent.includes(%s))`, jsTitle)); v != false {
				t.Errorf("the event shows in the week of %s, which has no first Saturday", day(w))
			}
		}
	}
	b.wait("the second occurrence", "!!"+findJS(second))
	checkPlaced(second)

	// Cancel that one date in the editor; the week shows it cancelled.
	b.click("open the second date", fmt.Sprintf(`#week section.cal-day[data-date="%s"] li.cal-entry[data-kind="event"] button`, day(second)))
	b.click("edit the event", `#entry-detail a[data-link="edit"]`)
	occ := fmt.Sprintf(`#occurrences li[data-recurrence-id="%sT10:00"]`, day(second))
	b.wait("the editor lists the date", fmt.Sprintf(`document.body.dataset.route === 'calendar-editor' && document.querySelector('#view[data-loaded="1"] %s')?.dataset.status === 'confirmed'`, occ))
	b.wait("the editor shows the rule in words", `document.querySelector('#rrule-summary')?.textContent.startsWith('Every first Saturday of the month, until ')`)
	b.click("cancel the date", occ+` button[data-action="cancel-occurrence"]`)
	b.wait("the date is cancelled", fmt.Sprintf(`document.querySelector('#view[data-loaded="1"] %s')?.dataset.status === 'cancelled'`, occ))
	b.eval("back to the week", fmt.Sprintf(`location.hash = '#/calendar/ghent/%s'; true`, day(second)))
	b.wait("the week shows the date cancelled", fmt.Sprintf(`(%s)?.dataset.status === 'cancelled'`, findJS(second)))
	b.noExceptions()
}

// TestBrowserCalendarSuggestAndModerate: anyone suggests an event and gets
// the status link; the city's manager finds it in the moderation queue,
// rejects it with a reason or approves it, and an approved one is on the
// calendar.
func TestBrowserCalendarSuggestAndModerate(t *testing.T) {
	chromiumPath(t)
	p := startPiazzaWithClock(t, middayInGhent(t), newDatabase(t), t.TempDir())
	loc, err := time.LoadLocation("Europe/Brussels")
	if err != nil {
		t.Fatal(err)
	}
	date := time.Now().In(loc).AddDate(0, 0, 10).Format("2006-01-02")

	b := newPage(t)
	b.step("use a phone-sized viewport (the agenda)", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateScale(2)))
	suggest := func(title string) {
		t.Helper()
		if b.eval("is a suggestion shown", `!!document.querySelector('button[data-action="suggest-another"]')`) == true {
			b.click("suggest another", `button[data-action="suggest-another"]`)
		} else {
			b.step("open the suggestion form", chromedp.Navigate(p.base+"/#/suggest-event/ghent"))
		}
		b.wait("the form", `document.body.dataset.route === 'suggest-event' && !!document.querySelector('#view[data-loaded="1"] form[data-form="suggest"]')`)
		f := `form[data-form="suggest"] `
		b.fill("title", f+`[name="title"]`, title)
		b.fill("category", f+`[name="category"]`, "music")
		b.fill("address", f+`[name="address"]`, "Sint-Baafsplein 1, Gent")
		b.fill("start date", f+`[name="start_date"]`, date)
		b.fill("start time", f+`[name="start_time"]`, "19:30")
		b.fill("end date", f+`[name="end_date"]`, date)
		b.fill("end time", f+`[name="end_time"]`, "21:00")
		b.fill("name", f+`[name="submitter_name"]`, "An Peeters")
		b.click("send", f+`button[type="submit"]`)
		b.wait("the status link", `/\/api\/v1\/calendar\/events\/[^/]+\?token=/.test(document.querySelector('#submission-status a[data-link="status"]')?.getAttribute('href') ?? '')`)
	}
	suggest("Choir on the square")
	suggest("Late-night drumming")

	b.step("open the sign-in page", chromedp.Navigate(p.base+"/#/signin"))
	b.wait("the sign-in form", `!!document.querySelector('#view[data-loaded="1"] form[data-form="signin"]')`)
	b.fill("email", `form[data-form="signin"] [name="email"]`, "manager.ghent@piazza.example")
	b.fill("password", `form[data-form="signin"] [name="password"]`, demoPassword)
	b.click("sign in", `form[data-form="signin"] button[type="submit"]`)
	b.wait("signed in", `document.body.dataset.signedIn === '1' && document.body.dataset.route === 'manage-city'`)
	b.eval("open the moderation queue", `location.hash = '#/manage-calendar/ghent/moderation'; true`)
	item := func(title string) string {
		return fmt.Sprintf(`[...document.querySelectorAll('#moderation li[data-event-id]')].find((li) => li.querySelector('h2').textContent === %q)`, title)
	}
	b.wait("both suggestions wait", fmt.Sprintf(`document.body.dataset.route === 'calendar-moderation' && !!(%s) && !!(%s)`, item("Choir on the square"), item("Late-night drumming")))
	if v := b.eval("the submitter shows", fmt.Sprintf(`(%s).textContent.includes('An Peeters')`, item("Choir on the square"))); v != true {
		t.Errorf("the manager does not see who suggested the event")
	}
	drumID, _ := b.eval("the drumming id", fmt.Sprintf(`(%s).dataset.eventId`, item("Late-night drumming"))).(string)
	b.fill("the reason", fmt.Sprintf(`#moderation li[data-event-id="%s"] form[data-form="reject"] [name="reason"]`, drumID), "Too late at night for the neighbours.")
	b.click("reject", fmt.Sprintf(`#moderation li[data-event-id="%s"] form[data-form="reject"] button[type="submit"]`, drumID))
	b.wait("the rejected one leaves the queue", fmt.Sprintf(`!(%s) && !!(%s)`, item("Late-night drumming"), item("Choir on the square")))
	choirID, _ := b.eval("the choir id", fmt.Sprintf(`(%s).dataset.eventId`, item("Choir on the square"))).(string)
	b.click("approve", fmt.Sprintf(`#moderation li[data-event-id="%s"] button[data-action="approve"]`, choirID))
	b.wait("the queue is empty", `!document.querySelector('#moderation') && !!document.querySelector('#view[data-loaded="1"] .empty')`)

	b.eval("open the calendar at that date", fmt.Sprintf(`location.hash = '#/calendar/ghent/%s'; true`, date))
	b.wait("the approved event is in the agenda at 19:30", fmt.Sprintf(
		`document.querySelector('#view[data-loaded="1"] #week section.cal-day[data-date="%s"] li.cal-entry[data-event-id="%s"]')?.dataset.start === '19:30'`, date, choirID))
	if v := b.eval("the agenda is a list on a phone", `getComputedStyle(document.querySelector('#week')).display`); v != "block" {
		t.Errorf("the week is laid out as %v on a phone, want block (an agenda)", v)
	}
	if v := b.eval("the rejected one is not", fmt.Sprintf(`!!document.querySelector('#week li.cal-entry[data-event-id="%s"]')`, drumID)); v != false {
		t.Errorf("the rejected suggestion is on the calendar")
	}
	b.noExceptions()
}
