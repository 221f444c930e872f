package main

// Browser tests of the events calendar: a manager creates a recurring event in
// the editor ("every first Saturday of the month"), reads the rule in plain
// words, and finds the event in the week grid on the right days at the right
// local time; moves and cancels single dates; moves through the week with the
// keyboard and filters it; anyone suggests events and follows their review.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
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
// calendar. The submitter's status page follows each one: pending, then
// approved (with a link to the week) or rejected (with the reason).
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
	suggest := func(title string) string {
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
		b.wait("the status link", `/#\/suggest-event\/ghent\/status\/[0-9a-f-]{36}\/[A-Za-z0-9_-]{32,}$/.test(document.querySelector('#submission-status a[data-link="status"]')?.href ?? '')`)
		link, _ := b.eval("read the status link", `document.querySelector('#submission-status a[data-link="status"]').href`).(string)
		return link
	}
	choirStatus := suggest("Choir on the square")
	drumStatus := suggest("Late-night drumming")
	if choirStatus == drumStatus {
		t.Fatalf("two suggestions share the status link %s", choirStatus)
	}
	statusPage := func(what, link, state string) {
		t.Helper()
		jsLink, _ := json.Marshal(link)
		b.eval("open "+what, fmt.Sprintf(`location.href = %s; true`, jsLink))
		b.wait(what, fmt.Sprintf(`document.body.dataset.route === 'suggest-event' && document.querySelector('#view[data-loaded="1"] #submission-state')?.dataset.state === %q`, state))
	}
	statusPage("the choir's status page, pending", choirStatus, "pending")
	if v := b.eval("the pending page names the event", `document.querySelector('#submission-state h2').textContent`); v != "Choir on the square" {
		t.Errorf("the status page names %v, want the choir", v)
	}
	tampered := choirStatus[:len(choirStatus)-4] + "AAAA"
	if tampered == choirStatus {
		tampered = choirStatus[:len(choirStatus)-4] + "BBBB"
	}
	statusPage("a status page with a wrong token", tampered, "unknown")

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

	// The submitters' status pages (they need no account: sign out first).
	b.click("sign out", `#signout`)
	b.wait("signed out", `document.body.dataset.signedIn !== '1'`)
	statusPage("the choir's status page, approved", choirStatus, "approved")
	b.click("see the event on the calendar", `#submission-state a[data-link="event"]`)
	b.wait("the week of the event, with it", fmt.Sprintf(
		`document.body.dataset.route === 'calendar' && !!document.querySelector('#view[data-loaded="1"] #week li.cal-entry[data-event-id="%s"]')`, choirID))
	statusPage("the drumming's status page, rejected", drumStatus, "rejected")
	if v := b.eval("the reason shows", `document.querySelector('#submission-state .cal-reason')?.textContent ?? ''`); !strings.Contains(fmt.Sprint(v), "Too late at night for the neighbours.") {
		t.Errorf("the rejected suggestion's page shows the reason %q", v)
	}
	if v := b.eval("no event link", `!!document.querySelector('#submission-state a[data-link="event"]')`); v != false {
		t.Errorf("the rejected suggestion's page links to an event")
	}
	b.noExceptions()
}

// TestBrowserCalendarWeek: a manager moves one date of a twice-weekly event
// and cancels another in the editor, and the week shows the moved one at its
// new time and the other marked cancelled. The week is one tab stop with the
// arrow keys inside it, its entries say their day and time, and the category
// filter (its choices from the API) narrows it.
func TestBrowserCalendarWeek(t *testing.T) {
	chromiumPath(t)
	p := startPiazzaWithClock(t, middayInGhent(t), newDatabase(t), t.TempDir())
	loc, err := time.LoadLocation("Europe/Brussels")
	if err != nil {
		t.Fatal(err)
	}
	day := func(d time.Time) string { return d.Format("2006-01-02") }
	// The week after next: clear of today whatever the hour.
	monday := mondayOf(time.Now().In(loc)).AddDate(0, 0, 14)
	tue, wed, thu := monday.AddDate(0, 0, 1), monday.AddDate(0, 0, 2), monday.AddDate(0, 0, 3)

	// The calendar learns of the city and its squares from listings' events.
	eventually(t, 30*time.Second, func() string {
		var places struct {
			Items []struct{ ID string } `json:"items"`
		}
		status, _, body := request(t, http.MethodGet, p.base+"/api/v1/calendar/cities/ghent/places", "", nil)
		if status != http.StatusOK || json.Unmarshal(body, &places) != nil || len(places.Items) == 0 {
			return fmt.Sprintf("the calendar's places of Ghent: %d %s", status, body)
		}
		return ""
	})
	manager := signInAPI(t, p.base, "manager.ghent@piazza.example")
	var choir, soup struct {
		ID string `json:"id"`
	}
	manager.must(http.MethodPost, "/api/v1/calendar/cities/ghent/events", map[string]any{
		"title": "Choir rehearsal", "category": "music", "address": "Sint-Baafsplein 1",
		"start": day(tue) + "T19:00", "end": day(tue) + "T21:00", "rrule": "FREQ=WEEKLY;BYDAY=TU,TH",
	}, http.StatusCreated, &choir)
	manager.must(http.MethodPost, "/api/v1/calendar/cities/ghent/events", map[string]any{
		"title": "Soup kitchen", "category": "food", "address": "Vrijdagmarkt 10",
		"start": day(wed) + "T12:00", "end": day(wed) + "T14:00",
	}, http.StatusCreated, &soup)

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

	// Move Tuesday's rehearsal to Wednesday evening; cancel Thursday's.
	b.eval("open the event in the editor", fmt.Sprintf(`location.hash = '#/manage-calendar/ghent/%s'; true`, choir.ID))
	moved := fmt.Sprintf(`#occurrences li[data-recurrence-id="%sT19:00"]`, day(tue))
	called := fmt.Sprintf(`#occurrences li[data-recurrence-id="%sT19:00"]`, day(thu))
	b.wait("the editor lists the dates", fmt.Sprintf(`document.body.dataset.route === 'calendar-editor' && !!document.querySelector('#view[data-loaded="1"] %s') && !!document.querySelector('%s')`, moved, called))
	b.click("open the move form", moved+` details summary`)
	form := moved + ` form[data-form="move-occurrence"] `
	b.fill("new start date", form+`[name="start_date"]`, day(wed))
	b.fill("new start time", form+`[name="start_time"]`, "20:00")
	b.fill("new end date", form+`[name="end_date"]`, day(wed))
	b.fill("new end time", form+`[name="end_time"]`, "22:00")
	b.click("move", form+`button[type="submit"]`)
	b.wait("the date is moved", fmt.Sprintf(`!!document.querySelector('#view[data-loaded="1"] %s button[data-action="restore-occurrence"]')`, moved))
	b.click("cancel Thursday", called+` button[data-action="cancel-occurrence"]`)
	b.wait("Thursday is cancelled", fmt.Sprintf(`document.querySelector('#view[data-loaded="1"] %s')?.dataset.status === 'cancelled'`, called))

	b.eval("open the week", fmt.Sprintf(`location.hash = '#/calendar/ghent/%s'; true`, day(tue)))
	entry := func(d time.Time, id string) string {
		return fmt.Sprintf(`document.querySelector('#week section.cal-day[data-date="%s"] li.cal-entry[data-event-id="%s"]')`, day(d), id)
	}
	b.wait("the week with the soup kitchen", fmt.Sprintf(`document.body.dataset.route === 'calendar' && document.querySelector('#view[data-loaded="1"] #calendar')?.dataset.from === '%s' && !!%s`,
		day(monday), entry(wed, soup.ID)))
	got, _ := b.eval("read the rehearsals", fmt.Sprintf(`JSON.stringify({
		tue: !!%s,
		wed: [%[2]s?.dataset.start, %[2]s?.dataset.end, %[2]s?.dataset.status],
		thu: [%[3]s?.dataset.start, %[3]s?.dataset.status, %[3]s?.querySelector('.cal-tag-cancelled')?.textContent, %[3]s?.querySelector('button').getAttribute('aria-label')],
	})`, entry(tue, choir.ID), entry(wed, choir.ID), entry(thu, choir.ID))).(string)
	var week struct {
		Tue bool
		Wed []*string
		Thu []*string
	}
	if err := json.Unmarshal([]byte(got), &week); err != nil {
		t.Fatalf("%s: %v", got, err)
	}
	str := func(v []*string, i int) string {
		if i < len(v) && v[i] != nil {
			return *v[i]
		}
		return ""
	}
	if week.Tue {
		t.Errorf("the rehearsal still shows on Tuesday %s", day(tue))
	}
	if str(week.Wed, 0) != "20:00" || str(week.Wed, 1) != "22:00" || str(week.Wed, 2) != "confirmed" {
		t.Errorf("the moved rehearsal on Wednesday: %q, want 20:00–22:00 confirmed", got)
	}
	if str(week.Thu, 0) != "19:00" || str(week.Thu, 1) != "cancelled" || str(week.Thu, 2) != "Cancelled" || !strings.Contains(str(week.Thu, 3), "Cancelled") {
		t.Errorf("Thursday's rehearsal: %q, want at 19:00, marked cancelled (and said so to screen readers)", got)
	}

	// The keyboard: one tab stop in the week, arrow keys inside it.
	active := `document.activeElement`
	b.wait("one tab stop in the week", `document.querySelectorAll('#week [data-grid-stop][tabindex="0"]').length === 1 && document.querySelectorAll('#week [data-grid-stop]').length > 7`)
	b.eval("focus what comes before the week", `document.querySelector('a[data-link="manage"]').focus(); true`)
	b.step("tab into the week", chromedp.KeyEvent(kb.Tab))
	if v := b.eval("the first day's heading has focus", active+`.closest('section.cal-day')?.dataset.date + ' ' + `+active+`.tagName`); v != day(monday)+" H2" {
		t.Errorf("Tab into the week lands on %v, want the heading of %s", v, day(monday))
	}
	key := func(what, k string) {
		t.Helper()
		b.step(what, chromedp.KeyEvent(k))
	}
	at := func() string {
		t.Helper()
		v, _ := b.eval("where the focus is", `(() => {
			const a = document.activeElement, li = a.closest('li.cal-entry'), d = a.closest('section.cal-day');
			return [d?.dataset.date ?? '', li ? li.dataset.eventId + ' ' + (li.dataset.start ?? '') : a.tagName].join(' ');
		})()`).(string)
		return v
	}
	key("right", kb.ArrowRight)
	key("right", kb.ArrowRight)
	if v := at(); v != day(wed)+" H2" {
		t.Errorf("two steps right: focus on %q, want Wednesday's heading", v)
	}
	// Wednesday: the market days' strip, then the soup kitchen at 12:00 and
	// the moved rehearsal at 20:00.
	key("down", kb.ArrowDown)
	if v := b.eval("down enters the day", `document.activeElement.closest('li.cal-entry')?.dataset.date`); v != day(wed) {
		t.Errorf("down from Wednesday's heading: focus on %q, want Wednesday's first entry", at())
	}
	key("end", kb.End)
	if v := at(); v != day(wed)+" "+choir.ID+" 20:00" {
		t.Errorf("End: focus on %q, want Wednesday's last entry, the moved rehearsal", v)
	}
	key("up", kb.ArrowUp)
	if v := at(); v != day(wed)+" "+soup.ID+" 12:00" {
		t.Errorf("up from the rehearsal: focus on %q, want the soup kitchen", v)
	}
	key("right", kb.ArrowRight)
	if v := at(); v != day(thu)+" "+choir.ID+" 19:00" {
		t.Errorf("right from Wednesday 12:00: focus on %q, want Thursday's entry nearest in time, the cancelled rehearsal", v)
	}
	key("left", kb.ArrowLeft)
	if v := at(); v != day(wed)+" "+choir.ID+" 20:00" {
		t.Errorf("left from Thursday 19:00: focus on %q, want Wednesday's entry nearest in time, the rehearsal at 20:00", v)
	}
	focus, _ := b.eval("the focused entry", `JSON.stringify({
		label: document.activeElement.getAttribute('aria-label'), visible: document.activeElement.matches(':focus-visible'),
		outline: getComputedStyle(document.activeElement).outlineStyle, stops: document.querySelectorAll('#week [tabindex="0"]').length,
		list: document.activeElement.closest('ul').getAttribute('aria-label'),
	})`).(string)
	var f struct {
		Label, Outline, List string
		Visible              bool
		Stops                int
	}
	_ = json.Unmarshal([]byte(focus), &f)
	if !strings.Contains(f.Label, "Wednesday") || !(strings.Contains(f.Label, "20:00") || strings.Contains(f.Label, "8:00 PM")) || !strings.Contains(f.Label, "Choir rehearsal") {
		t.Errorf("the entry's label %q does not say its title, day and time", f.Label)
	}
	if !strings.Contains(f.List, "Wednesday") {
		t.Errorf("the day's list is labelled %q, without its day", f.List)
	}
	if !f.Visible || f.Outline == "none" || f.Stops != 1 {
		t.Errorf("focus: visible %v, outline %q, %d tab stops; want a visible focus and one tab stop", f.Visible, f.Outline, f.Stops)
	}
	key("open", kb.Enter)
	b.wait("Enter opens the entry", fmt.Sprintf(`document.querySelector('#entry-detail')?.dataset.entryId?.startsWith('%s') && document.activeElement.getAttribute('aria-expanded') === 'true'`, choir.ID))
	key("close", kb.Escape)
	b.wait("Escape closes it, the focus stays", fmt.Sprintf(`document.querySelector('#entry-detail').hidden && document.activeElement.closest('li.cal-entry')?.dataset.eventId === '%s'`, choir.ID))

	// The category filter: its choices and counts are the API's.
	var cats struct {
		Items []struct {
			Slug     string `json:"slug"`
			Upcoming int    `json:"upcoming"`
		} `json:"items"`
	}
	getJSON(t, p.base+"/api/v1/calendar/cities/ghent/categories", http.StatusOK, &cats)
	want := map[string]string{}
	for _, c := range cats.Items {
		want[c.Slug] = fmt.Sprint(c.Upcoming)
	}
	if want["music"] != "1" || want["food"] != "1" {
		t.Fatalf("the API's categories %+v, want music and food with one each", cats.Items)
	}
	opts, _ := b.eval("read the category choices", `JSON.stringify(Object.fromEntries([...document.querySelectorAll('#cal-category option')].filter((o) => o.value).map((o) => [o.value, o.dataset.upcoming ?? ''])))`).(string)
	var shown map[string]string
	_ = json.Unmarshal([]byte(opts), &shown)
	if fmt.Sprint(shown) != fmt.Sprint(want) {
		t.Errorf("the filter offers %v, want the API's categories and counts %v", shown, want)
	}
	if v := b.eval("the food choice says its count", `document.querySelector('#cal-category option[value="food"]').textContent`); v != "Food and drink (1)" {
		t.Errorf("the food choice reads %q", v)
	}
	if v := b.eval("places come from the calendar API", `document.querySelectorAll('#cal-place option[data-upcoming]').length`); v == float64(0) {
		t.Errorf("the place filter has no places with counts")
	}
	b.fill("choose food", `#cal-category`, "food")
	b.click("apply the filter", `form[data-form="calendar-filters"] button[type="submit"]`)
	b.wait("only food in the week", fmt.Sprintf(`(() => {
		const lis = [...document.querySelectorAll('#view[data-loaded="1"] #week li.cal-entry')];
		return lis.length > 0 && lis.every((li) => li.dataset.category === 'food') && !!%s;
	})()`, entry(wed, soup.ID)))
	if v := b.eval("the subscribe link follows the filter", `document.querySelector('a[data-link="webcal-filtered"]').getAttribute('href')`); !strings.Contains(fmt.Sprint(v), "/categories/food/calendar.ics") {
		t.Errorf("the filtered feed is %v", v)
	}
	b.noExceptions()
}
