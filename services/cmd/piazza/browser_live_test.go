package main

// The residents' live page in a real browser: follow a vendor, see its stall
// light up as it checks in, lose the connection while it posts, and get
// exactly what was missed when the connection comes back.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
)

// adjustableClock reads 11:00 Brussels time today at the start, runs on with
// real time, and can be moved forward (past a rate limit, say).
type adjustableClock struct {
	now   func() time.Time
	extra atomic.Int64
}

func newAdjustableClock(tb testing.TB) *adjustableClock {
	return &adjustableClock{now: middayInGhent(tb)}
}

func (c *adjustableClock) Now() time.Time { return c.now().Add(time.Duration(c.extra.Load())) }

func (c *adjustableClock) advance(d time.Duration) { c.extra.Add(int64(d)) }

// deviceRequest calls the notifier's API as an anonymous device.
func deviceRequest(t *testing.T, base, device, method, path string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Piazza-Device", device)
	res, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, b
}

// feedEntry is one #feed entry as the page shows it.
type feedEntry struct {
	Seq      int64  `json:"seq"`
	Kind     string `json:"kind"`
	Vendor   string `json:"vendor"`
	Followed bool   `json:"followed"`
	Text     string `json:"text"`
}

func TestBrowserLiveResidentFollowsAndResumes(t *testing.T) {
	chromiumPath(t) // skip early without a browser
	clock := newAdjustableClock(t)
	p := startPiazzaWithClock(t, clock.Now, newDatabase(t), t.TempDir())
	base := p.base

	// Today's daily market in Ghent takes stalls at once (auto-accept); the
	// manager opens the day so that vendors can check in.
	var td todayBody
	getJSON(t, base+"/api/v1/listings/cities/ghent/today", http.StatusOK, &td)
	if len(td.MarketDays) == 0 {
		t.Fatalf("no market day today (%s) in Ghent, which has daily markets", td.Date)
	}
	day := td.MarketDays[0]
	manager := signInAPI(t, base, "manager.ghent@piazza.example")
	if day.Status == "scheduled" {
		manager.must(http.MethodPost, "/api/v1/listings/market-days/"+day.ID+"/open", nil, http.StatusOK, nil)
	}

	vendor := &apiClient{t: t, base: base, token: signUpVendor(t, base)}
	vendorName := "Kaasmakerij De Leie " + uuid.NewString()[:6]
	var v struct {
		ID string `json:"id"`
	}
	vendor.must(http.MethodPost, "/api/v1/listings/vendors", map[string]string{
		"city": "ghent", "name": vendorName, "kind": "artisan", "description": "Cheese from raw milk",
	}, http.StatusCreated, &v)
	var app struct {
		ID     string `json:"id"`
		Status string `json:"status"`
		Pitch  string `json:"pitch"`
	}
	vendor.must(http.MethodPost, "/api/v1/listings/market-days/"+day.ID+"/applications",
		map[string]string{"vendor_id": v.ID}, http.StatusCreated, &app)
	if app.Status != "accepted" || app.Pitch == "" {
		t.Fatalf("application %+v: want accepted on a pitch (the market auto-accepts)", app)
	}

	b := newPage(t)

	stallSel := fmt.Sprintf(`#stalls li[data-vendor-id="%s"]`, v.ID)
	pitchSel := fmt.Sprintf(`#markets article[data-market-day-id="%s"] .plan g[data-pitch="%s"]`, day.ID, app.Pitch)
	followSel := fmt.Sprintf(`%s button[data-follow-topic="vendor:%s"]`, stallSel, v.ID)

	b.step("open Ghent", chromedp.Navigate(base+"/#/ghent"))
	b.wait("first render and subscription", `document.body.dataset.ready === '1'`)
	b.wait("the stall is listed, expected, with a follow button", fmt.Sprintf(
		`document.querySelector('%s')?.dataset.liveState === 'expected' && document.querySelector('%s')?.getAttribute('aria-pressed') === 'false'`,
		stallSel, followSel))
	b.wait("the market day is grouped as on now", fmt.Sprintf(
		`document.querySelector('#markets [data-phase="now"] article[data-market-day-id="%s"]') !== null`, day.ID))

	// The app is installable: its service worker registers and activates.
	b.eval("wait for the service worker", `navigator.serviceWorker.ready.then(() => { window.__swReady = true; }); true`)
	b.wait("the service worker is ready", `window.__swReady === true`)

	// Follow the vendor, as an anonymous device.
	b.click("follow the vendor", followSel)
	b.wait("the follow button is pressed and saved", fmt.Sprintf(
		`(() => { const b = document.querySelector('%s'); return b?.getAttribute('aria-pressed') === 'true' && !b.hasAttribute('aria-busy'); })()`, followSel))
	device, _ := b.eval("read the device id", `localStorage.getItem('piazza.device')`).(string)
	if _, err := uuid.Parse(device); err != nil {
		t.Fatalf("device id %q is not a UUID", device)
	}
	status, body := deviceRequest(t, base, device, http.MethodGet, "/api/v1/notifier/follows")
	if status != http.StatusOK || !strings.Contains(string(body), `"vendor:`+v.ID+`"`) {
		t.Fatalf("GET follows as the device = %d %s, want vendor:%s", status, body, v.ID)
	}
	if pressed := b.eval("focus stays on the button", `document.activeElement?.dataset.followTopic ?? ''`); pressed != "vendor:"+v.ID {
		t.Errorf("focus is on %v after following, want the follow button", pressed)
	}

	b.eval("mark the page", `window.__marker = 42`)

	// The vendor checks in: the stall lights up, live.
	vendor.must(http.MethodPost, "/api/v1/listings/applications/"+app.ID+"/check-in", nil, http.StatusOK, nil)
	b.wait("the stall is open in the list", fmt.Sprintf(`document.querySelector('%s')?.dataset.liveState === 'open'`, stallSel))
	b.wait("the pitch is lit on the plan", fmt.Sprintf(`document.querySelector('%s')?.dataset.liveState === 'open'`, pitchSel))
	b.wait("the check-in is in the feed, marked as followed", fmt.Sprintf(
		`[...document.querySelectorAll('#feed li[data-kind="stall.checked_in"]')].some((li) => li.dataset.vendorId === '%s' && li.dataset.followed === '1')`, v.ID))

	// Drop the connection; the vendor posts twice while the page is away.
	b.eval("drop the socket", `window.__piazzaTest.dropSocket()`)
	b.wait("the page knows it is offline", `document.querySelector('#conn-status').dataset.state === 'offline'`)
	first, second := "Fresh goat cheese until noon", "Last wheels of Oude Brugge"
	vendor.must(http.MethodPost, "/api/v1/listings/applications/"+app.ID+"/status-posts", map[string]string{"text": first}, http.StatusCreated, nil)
	clock.advance(31 * time.Second) // one status every 30 seconds
	vendor.must(http.MethodPost, "/api/v1/listings/applications/"+app.ID+"/status-posts", map[string]string{"text": second}, http.StatusCreated, nil)

	// Both notifications exist before the page comes back (the follower's
	// inbox has them), so they can only reach the page by resuming.
	eventually(t, eventTimeout, func() string {
		status, body := deviceRequest(t, base, device, http.MethodGet, "/api/v1/notifier/inbox")
		if status != http.StatusOK {
			return fmt.Sprintf("inbox = %d %s", status, body)
		}
		if !strings.Contains(string(body), first) || !strings.Contains(string(body), second) {
			return "the inbox lacks the two statuses: " + string(body)
		}
		return ""
	})
	if got := b.eval("still offline", `document.querySelectorAll('#feed li[data-kind="stall.status_posted"]').length`); got != float64(0) {
		t.Fatalf("%v status entries reached the page while it was offline", got)
	}

	b.eval("restore the socket", `window.__piazzaTest.restoreSocket()`)
	b.wait("live again", `document.querySelector('#conn-status').dataset.state === 'live'`)
	b.wait("both statuses are in the feed", fmt.Sprintf(
		`document.querySelectorAll('#feed li[data-kind="stall.status_posted"][data-vendor-id="%s"]').length >= 2`, v.ID))
	b.wait("the stall shows the latest status", fmt.Sprintf(
		`document.querySelector('%s')?.textContent.includes(%q) ?? false`, stallSel, second))

	var entries []feedEntry
	raw := b.eval("read the feed", `JSON.stringify([...document.querySelectorAll('#feed li')].map((li) => ({
		seq: Number(li.dataset.seq), kind: li.dataset.kind, vendor: li.dataset.vendorId ?? '',
		followed: li.dataset.followed === '1', text: li.textContent })))`)
	if err := json.Unmarshal([]byte(raw.(string)), &entries); err != nil {
		t.Fatal(err)
	}
	seen := map[int64]bool{}
	for i, e := range entries {
		if seen[e.Seq] {
			t.Errorf("seq %d is in the feed twice: %+v", e.Seq, entries)
		}
		seen[e.Seq] = true
		if i > 0 && entries[i-1].Seq <= e.Seq {
			t.Errorf("the feed is not newest first at %d: %+v", i, entries)
		}
	}
	var mine []feedEntry // oldest first
	for _, e := range slices.Backward(entries) {
		if e.Vendor == v.ID && e.Kind != "stall.registered" {
			mine = append(mine, e)
		}
	}
	if len(mine) != 3 || mine[0].Kind != "stall.checked_in" ||
		mine[1].Kind != "stall.status_posted" || !strings.Contains(mine[1].Text, first) ||
		mine[2].Kind != "stall.status_posted" || !strings.Contains(mine[2].Text, second) {
		t.Fatalf("the vendor's entries, oldest first = %+v; want check-in, %q, %q, once each", mine, first, second)
	}
	if mine[2].Seq != mine[1].Seq+1 {
		t.Errorf("status seqs %d and %d are not consecutive", mine[1].Seq, mine[2].Seq)
	}

	var stats struct {
		Resumes, Missed, Resets int
	}
	rawStats := b.eval("read the live stats", `JSON.stringify(window.__piazzaTest.stats)`)
	if err := json.Unmarshal([]byte(rawStats.(string)), &stats); err != nil {
		t.Fatal(err)
	}
	t.Logf("live stats after the drop: %s", rawStats)
	if stats.Resumes < 1 || stats.Missed < 2 || stats.Resets != 0 {
		t.Errorf("live stats %+v: want a resume that replayed at least the 2 statuses, and no reset", stats)
	}

	// The inbox lists them too, unread; one is marked read.
	b.eval("open the inbox", `location.hash = '#/inbox'; true`)
	b.wait("the inbox lists the statuses, unread", `document.querySelector('#view[data-loaded="1"] #inbox li[data-kind="stall.status_posted"][data-read="0"]') !== null`)
	id := b.eval("the newest unread status", `document.querySelector('#inbox li[data-kind="stall.status_posted"][data-read="0"]').dataset.notificationId`)
	b.click("mark it read", fmt.Sprintf(`#inbox li[data-notification-id="%s"] button[data-mark-read]`, id))
	b.wait("it is read", fmt.Sprintf(`document.querySelector('#inbox li[data-notification-id="%s"]')?.dataset.read === '1'`, id))

	if got := b.eval("read the mark", `window.__marker`); got != float64(42) {
		t.Errorf("window.__marker = %v, want 42: the page reloaded", got)
	}
	b.noExceptions()
}
