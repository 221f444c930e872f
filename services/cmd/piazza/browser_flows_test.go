package main

// Browser tests of the vendor's and the manager's pages: a real piazza, a
// headless Chromium, and the web client driven the way a person would use it.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
)

const demoPassword = "piazza-demo"

// page drives one browser tab and fails the test with what the page shows.
type page struct {
	t       *testing.T
	ctx     context.Context
	console *consoleLog
}

func newPage(t *testing.T) *page {
	t.Helper()
	ctx, console := newBrowser(t, chromiumPath(t))
	return &page{t: t, ctx: ctx, console: console}
}

func (p *page) step(what string, a chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, browserTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, a); err != nil {
		p.t.Fatalf("%s: %v\npage: %s\nbrowser console:\n%s", what, err, flowState(p.ctx), p.console.String())
	}
}

func (p *page) eval(what, js string) any {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, browserTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[any](js))
	if err != nil {
		p.t.Fatalf("%s: %v\npage: %s\nbrowser console:\n%s", what, err, flowState(p.ctx), p.console.String())
	}
	return v
}

// wait polls a JavaScript condition until it is true.
func (p *page) wait(what, js string) {
	p.t.Helper()
	p.step(what, voidOf(chromedp.Poll[bool](js, chromedp.WithPollingTimeout(browserTimeout))))
}

// fill sets a form control's value as typing would, firing input events.
func (p *page) fill(what, selector, value string) {
	p.t.Helper()
	sel, _ := json.Marshal(selector)
	val, _ := json.Marshal(value)
	p.eval(what, fmt.Sprintf(`(() => {
		const c = document.querySelector(%s);
		if (!c) throw new Error('no ' + %s);
		c.focus();
		c.value = %s;
		c.dispatchEvent(new Event('input', { bubbles: true }));
		c.dispatchEvent(new Event('change', { bubbles: true }));
		return true;
	})()`, sel, sel, val))
}

// click clicks the element as a mouse would. The page may redraw the element
// between the query and the click; then it tries again.
func (p *page) click(what, selector string) {
	p.t.Helper()
	for attempt := 0; ; attempt++ {
		ctx, cancel := context.WithTimeout(p.ctx, browserTimeout)
		err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(selector)))
		cancel()
		if err == nil {
			return
		}
		if attempt < 3 && strings.Contains(err.Error(), "Could not find node") {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		p.t.Fatalf("%s: %v\npage: %s\nbrowser console:\n%s", what, err, flowState(p.ctx), p.console.String())
	}
}

func (p *page) noExceptions() {
	p.t.Helper()
	if ex := p.console.exceptions(); len(ex) > 0 {
		p.t.Errorf("the page threw:\n%s", strings.Join(ex, "\n"))
	}
}

// flowState describes the page for a failure message.
func flowState(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify({
		url: location.href, route: document.body.dataset.route ?? null,
		signedIn: document.body.dataset.signedIn ?? null, roles: document.body.dataset.roles ?? null,
		loaded: document.querySelector('#view')?.dataset.loaded ?? null,
		notice: document.querySelector('#notice')?.textContent ?? null,
		alert: document.querySelector('#alert')?.textContent ?? null,
		view: (document.querySelector('#view')?.innerText ?? '').slice(0, 1500),
	})`))
	if err != nil {
		return "(unreadable: " + err.Error() + ")"
	}
	return v
}

// apiClient calls the API as one account.
type apiClient struct {
	t     *testing.T
	base  string
	token string
}

func signInAPI(t *testing.T, base, email string) *apiClient {
	t.Helper()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	postJSON(t, base+"/api/v1/accounts/signin", map[string]string{"email": email, "password": demoPassword}, http.StatusOK, &tok)
	return &apiClient{t: t, base: base, token: tok.AccessToken}
}

func signUpAPI(t *testing.T, base, name string) *apiClient {
	t.Helper()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	email := fmt.Sprintf("%s@example.test", uuid.NewString()[:8])
	postJSON(t, base+"/api/v1/accounts/signup", map[string]string{"email": email, "password": "a long enough password", "name": name}, http.StatusCreated, &tok)
	return &apiClient{t: t, base: base, token: tok.AccessToken}
}

// do sends a request with the account's token (and an Idempotency-Key on a
// POST) and returns the status and body.
func (c *apiClient) do(method, path string, body any) (int, []byte, http.Header) {
	c.t.Helper()
	var rd *strings.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = strings.NewReader(string(b))
	} else {
		rd = strings.NewReader("")
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if method == http.MethodPost {
		req.Header.Set("Idempotency-Key", uuid.NewString())
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	res, err := httpClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		c.t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return res.StatusCode, b, res.Header
}

// must sends a request, requires want and decodes the answer into out.
func (c *apiClient) must(method, path string, body any, want int, out any) {
	c.t.Helper()
	status, b, _ := c.do(method, path, body)
	if status != want {
		c.t.Fatalf("%s %s = %d, want %d; body: %s", method, path, status, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			c.t.Fatalf("%s %s: decoding %s: %v", method, path, b, err)
		}
	}
}

// requireFlowRoutes skips the test while the listings routes the pages need
// are not served yet: an unknown route is answered by the web client's
// handler (text, 404 or 405), a known one with problem+json.
func requireFlowRoutes(t *testing.T, base string, c *apiClient) {
	t.Helper()
	id := uuid.NewString()
	var missing []string
	for _, r := range []struct{ method, path string }{
		{http.MethodGet, "/api/v1/listings/vendors/mine"},
		{http.MethodPatch, "/api/v1/listings/markets/" + id},
		{http.MethodGet, "/api/v1/listings/market-days/" + id + "/applications"},
		{http.MethodGet, "/api/v1/listings/vendors/" + id + "/applications"},
		{http.MethodPost, "/api/v1/listings/applications/" + id + "/accept"},
		{http.MethodPost, "/api/v1/listings/market-days/" + id + "/open"},
		{http.MethodPost, "/api/v1/listings/applications/" + id + "/check-in"},
		{http.MethodPost, "/api/v1/listings/applications/" + id + "/status-posts"},
	} {
		status, _, h := c.do(r.method, r.path, map[string]any{})
		if status == http.StatusMethodNotAllowed || !strings.Contains(h.Get("Content-Type"), "json") {
			missing = append(missing, r.method+" "+r.path)
		}
	}
	if len(missing) > 0 {
		t.Skipf("the listings service does not serve these routes yet:\n%s", strings.Join(missing, "\n"))
	}
}

type flowApp struct {
	ID        string `json:"id"`
	Status    string `json:"status"`
	Pitch     string `json:"pitch"`
	LiveState string `json:"live_state"`
}

// manualReview turns auto-accept off on day's market, so that applications
// wait for a manager.
func manualReview(t *testing.T, manager *apiClient, marketID string) {
	t.Helper()
	manager.must(http.MethodPatch, "/api/v1/listings/markets/"+marketID, map[string]any{"auto_accept": false}, http.StatusOK, nil)
}

// TestBrowserVendorFlow: a vendor signs up in the UI, creates a profile,
// applies for a date of a Ghent market and sees it pending; a manager
// accepts it and opens the day; on a phone the vendor checks in and posts a
// status, and the residents' page shows the stall open with the status.
func TestBrowserVendorFlow(t *testing.T) {
	chromiumPath(t)
	p := startPiazzaWithClock(t, middayInGhent(t), newDatabase(t), t.TempDir())
	manager := signInAPI(t, p.base, "manager.ghent@piazza.example")
	requireFlowRoutes(t, p.base, manager)
	day, today := openMarketDay(t, p.base, p.now())
	if !today {
		t.Fatalf("no Ghent market day left today at 11:00")
	}
	manualReview(t, manager, day.Market.ID)

	b := newPage(t)
	b.step("use a phone-sized viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateScale(3)))

	// Sign up.
	email := fmt.Sprintf("kaas-%s@example.test", uuid.NewString()[:8])
	b.step("open the sign-up page", chromedp.Steps(
		chromedp.Navigate(p.base+"/#/signup"),
		chromedp.WaitReady(chromedp.CSS(`#view[data-loaded="1"] form[data-form="signup"]`)),
	))
	b.wait("focus is on the page heading", `document.activeElement === document.querySelector('#view h1')`)
	b.fill("name", `form[data-form="signup"] [name="name"]`, "Anna Peeters")
	b.fill("email", `form[data-form="signup"] [name="email"]`, email)
	b.fill("password", `form[data-form="signup"] [name="password"]`, "kaas en brood 2026")
	b.click("sign up", `form[data-form="signup"] button[type="submit"]`)
	b.wait("signed in, on the vendor page with the profile form",
		`document.body.dataset.signedIn === '1' && document.body.dataset.route === 'vendor' && !!document.querySelector('#view[data-loaded="1"] form[data-form="profile"]')`)
	if v := b.eval("the refresh token is kept", `localStorage.getItem('piazza.refresh') !== null`); v != true {
		t.Errorf("no refresh token in localStorage after sign-up")
	}

	// The profile: first an invalid photo address, shown next to its field.
	form := `form[data-form="profile"]`
	b.fill("city", form+` [name="city"]`, "ghent")
	b.fill("name", form+` [name="name"]`, "Kaasmakerij Anna")
	b.fill("kind", form+` [name="kind"]`, "farmer")
	b.fill("categories", form+` [name="categories"]`, "cheese, dairy")
	b.fill("description", form+` [name="description"]`, "Raw-milk cheese from Lovendegem.")
	b.fill("languages", form+` [name="languages"]`, "nl, en")
	b.fill("photo", form+` [name="photo_url"]`, "http://not-https.example/photo.jpg")
	b.fill("contact email", form+` [name="contact_email"]`, "anna@example.test")
	b.click("create the profile", form+` button[type="submit"]`)
	b.wait("the photo field shows its error", `(() => {
		const f = document.querySelector('form[data-form="profile"] [data-field="photo_url"]');
		return !!f && !f.querySelector('.field-error').hidden && f.querySelector('input').getAttribute('aria-invalid') === 'true';
	})()`)
	b.fill("photo", form+` [name="photo_url"]`, "")
	b.click("create the profile", form+` button[type="submit"]`)
	b.wait("the profile card", `!!document.querySelector('#view[data-loaded="1"] #vendor-profile[data-vendor-id]')`)
	vendorID, _ := b.eval("vendor id", `document.querySelector('#vendor-profile').dataset.vendorId`).(string)

	// Browse Ghent's markets and apply for today's date.
	b.click("find a market", `a[data-action="browse"]`)
	b.wait("the markets of Ghent", fmt.Sprintf(`!!document.querySelector('#view[data-loaded="1"] #markets-list li[data-market-id="%s"]')`, day.Market.ID))
	b.click("apply to the market", fmt.Sprintf(`#markets-list li[data-market-id="%s"] a[data-action="apply"]`, day.Market.ID))
	dateBox := fmt.Sprintf(`form[data-form="apply"] input[name="date"][value="%s"]`, day.Date)
	b.wait("the dates of the market", fmt.Sprintf(`!!document.querySelector('#view[data-loaded="1"] %s')`, dateBox))
	b.click("choose today's date", dateBox)
	b.click("send the application", `form[data-form="apply"] button[type="submit"]`)
	b.wait("the application's result", fmt.Sprintf(`document.querySelector('#apply-result li[data-date="%s"]')?.dataset.status === 'pending'`, day.Date))
	b.wait("the result is announced", `document.querySelector('#notice')?.dataset.kind === 'ok'`)
	b.click("see the applications", `a[data-action="see-applications"]`)
	appSel := fmt.Sprintf(`#applications li[data-date="%s"]`, day.Date)
	b.wait("the application is pending", fmt.Sprintf(`document.querySelector('#view[data-loaded="1"] %s')?.dataset.status === 'pending'`, appSel))
	appID, _ := b.eval("application id", fmt.Sprintf(`document.querySelector('%s').dataset.applicationId`, appSel)).(string)

	// The manager accepts it and opens the day (through the API).
	var accepted flowApp
	manager.must(http.MethodPost, "/api/v1/listings/applications/"+appID+"/accept", map[string]any{}, http.StatusOK, &accepted)
	if accepted.Status != "accepted" || accepted.Pitch == "" {
		t.Fatalf("accepted application %+v", accepted)
	}
	var d marketDay
	getJSON(t, p.base+"/api/v1/listings/market-days/"+day.ID, http.StatusOK, &d)
	if d.Status == "scheduled" {
		manager.must(http.MethodPost, "/api/v1/listings/market-days/"+day.ID+"/open", nil, http.StatusOK, nil)
	}

	// On the day, from the phone: check in and post a status.
	panel := fmt.Sprintf(`.live-panel[data-application-id="%s"]`, appID)
	b.step("reload the vendor page", chromedp.Steps(
		chromedp.Reload(),
		chromedp.WaitReady(chromedp.CSS(`#view[data-loaded="1"] `+panel+`[data-day-status="open"]`)),
	))
	b.wait("still signed in after a reload (the refresh token)", `document.body.dataset.signedIn === '1'`)
	b.wait("the application shows accepted on its pitch", fmt.Sprintf(
		`document.querySelector('%s')?.dataset.status === 'accepted' && document.querySelector('%s')?.dataset.pitch === %q`, appSel, appSel, accepted.Pitch))
	b.click("check in", panel+` button[data-action="check-in"]`)
	b.wait("checked in", fmt.Sprintf(`document.querySelector('#view[data-loaded="1"] %s')?.dataset.liveState === 'open'`, panel))
	status := "Fresh goat cheese until noon"
	b.fill("status text", panel+` form[data-form="status"] [name="text"]`, status)
	b.click("post the status", panel+` form[data-form="status"] button[type="submit"]`)
	b.wait("the status shows on the panel", fmt.Sprintf(`(document.querySelector('%s .live-current')?.textContent ?? '').includes(%q)`, panel, status))
	if v := b.eval("page width", `document.documentElement.scrollWidth <= window.innerWidth`); v != true {
		t.Errorf("the vendor page scrolls sideways at 390 px")
	}

	// Residents see the stall open, with the status.
	b.step("open the residents' page", chromedp.Navigate(p.base+"/#/ghent"))
	stallSel := fmt.Sprintf(`#stalls li[data-vendor-id="%s"]`, vendorID)
	b.wait("the stall is open on the residents' page", fmt.Sprintf(
		`document.querySelector('%s')?.dataset.liveState === 'open' && document.querySelector('%s').textContent.includes(%q)`, stallSel, stallSel, status))
	b.noExceptions()
}

// TestBrowserManagerFlow: the Ghent manager signs in, opens a market day,
// selects a pending application and taps a free pitch on the plan: the
// application is accepted on that pitch.
func TestBrowserManagerFlow(t *testing.T) {
	chromiumPath(t)
	p := startPiazzaWithClock(t, middayInGhent(t), newDatabase(t), t.TempDir())
	manager := signInAPI(t, p.base, "manager.ghent@piazza.example")
	requireFlowRoutes(t, p.base, manager)
	day, _ := openMarketDay(t, p.base, p.now())
	manualReview(t, manager, day.Market.ID)

	vendor := signUpAPI(t, p.base, "Bart De Smet")
	var v struct {
		ID string `json:"id"`
	}
	vendor.must(http.MethodPost, "/api/v1/listings/vendors", map[string]any{
		"city": "ghent", "name": "Bakkerij De Smet", "kind": "food", "description": "Sourdough bread", "categories": []string{"bread"},
	}, http.StatusCreated, &v)
	var app flowApp
	vendor.must(http.MethodPost, "/api/v1/listings/market-days/"+day.ID+"/applications", map[string]any{"vendor_id": v.ID}, http.StatusCreated, &app)
	if app.Status != "pending" {
		t.Fatalf("application %+v, want pending", app)
	}

	b := newPage(t)
	b.step("open the sign-in page", chromedp.Steps(
		chromedp.Navigate(p.base+"/#/signin"),
		chromedp.WaitReady(chromedp.CSS(`#view[data-loaded="1"] form[data-form="signin"]`)),
	))
	b.fill("email", `form[data-form="signin"] [name="email"]`, "manager.ghent@piazza.example")
	b.fill("password", `form[data-form="signin"] [name="password"]`, demoPassword)
	b.click("sign in", `form[data-form="signin"] button[type="submit"]`)
	b.wait("on the manager's market days of Ghent", fmt.Sprintf(
		`document.body.dataset.route === 'manage-city' && !!document.querySelector('#view[data-loaded="1"] #days li[data-market-day-id="%s"]')`, day.ID))
	b.wait("the navigation offers managing", `!!document.querySelector('#nav a[data-nav="manage"][aria-current="page"]')`)
	b.click("open the market day", fmt.Sprintf(`#days li[data-market-day-id="%s"] a`, day.ID))

	item := fmt.Sprintf(`#review li[data-application-id="%s"]`, app.ID)
	b.wait("the application to review", fmt.Sprintf(`document.querySelector('#view[data-loaded="1"] %s')?.dataset.status === 'pending'`, item))
	if v := b.eval("pitches are labelled buttons", `[...document.querySelectorAll('#pitch-plan g.pitch')].every((g) => g.getAttribute('role') === 'button' && g.getAttribute('aria-label') && g.hasAttribute('tabindex'))`); v != true {
		t.Errorf("the pitches of the plan are not labelled buttons")
	}
	b.click("select the application", item+` button[data-action="select"]`)
	b.wait("the application is selected", fmt.Sprintf(`document.querySelector('%s')?.dataset.selected === '1'`, item))
	pitch, _ := b.eval("a free pitch", `document.querySelector('#pitch-plan g.pitch[data-state="free"]')?.dataset.pitch ?? ''`).(string)
	if pitch == "" {
		t.Fatal("no free pitch on the plan")
	}
	b.click("tap the free pitch", fmt.Sprintf(`#pitch-plan g.pitch[data-pitch="%s"] rect`, pitch))
	b.wait("the application is accepted on that pitch", fmt.Sprintf(
		`(() => { const li = document.querySelector('%s'); return li?.dataset.status === 'accepted' && li.dataset.pitch === %q; })()`, item, pitch))
	b.wait("the pitch shows taken", fmt.Sprintf(`document.querySelector('#pitch-plan g.pitch[data-pitch="%s"]')?.dataset.state === 'taken'`, pitch))
	b.wait("the result is announced", `document.querySelector('#notice')?.dataset.kind === 'ok'`)

	var d marketDay
	getJSON(t, p.base+"/api/v1/listings/market-days/"+day.ID, http.StatusOK, &d)
	found := false
	for _, s := range d.Stalls {
		if s.ApplicationID == app.ID && s.Pitch == pitch {
			found = true
		}
	}
	if !found {
		t.Errorf("market day stalls %+v, want application %s on pitch %s", d.Stalls, app.ID, pitch)
	}
	b.noExceptions()
}

// TestBrowserSignIn: sign-in errors show on the form, a field error from the
// server shows next to its field, the session survives a reload through the
// refresh token, navigation follows the role, and signing out forgets it.
func TestBrowserSignIn(t *testing.T) {
	chromiumPath(t)
	p := startPiazzaWithClock(t, middayInGhent(t), newDatabase(t), t.TempDir())
	b := newPage(t)

	b.step("open the sign-in page", chromedp.Steps(
		chromedp.Navigate(p.base+"/#/signin"),
		chromedp.WaitReady(chromedp.CSS(`#view[data-loaded="1"] form[data-form="signin"]`)),
	))
	b.fill("email", `form[data-form="signin"] [name="email"]`, "vendor@piazza.example")
	b.fill("password", `form[data-form="signin"] [name="password"]`, "not the password")
	b.click("sign in", `form[data-form="signin"] button[type="submit"]`)
	b.wait("the form says why", `(document.querySelector('form[data-form="signin"] [data-form-error]')?.textContent ?? '') !== ''`)
	b.fill("password", `form[data-form="signin"] [name="password"]`, demoPassword)
	b.click("sign in", `form[data-form="signin"] button[type="submit"]`)
	b.wait("signed in as a vendor, on the vendor page", `document.body.dataset.signedIn === '1' && document.body.dataset.roles.split(' ').includes('vendor') && document.body.dataset.route === 'vendor'`)
	b.wait("the navigation has the vendor's links and no manager's", `!!document.querySelector('#nav a[data-nav="vendor"]') && !document.querySelector('#nav a[data-nav="manage"]') && !!document.querySelector('#signout')`)

	b.step("reload", chromedp.Reload())
	b.wait("still signed in after a reload", `document.body.dataset.signedIn === '1' && !!document.querySelector('#signout')`)

	b.click("sign out", `#signout`)
	b.wait("signed out, on the residents' page", `document.body.dataset.signedIn === '0' && document.body.dataset.route === 'today' && localStorage.getItem('piazza.refresh') === null`)

	b.step("a manager's page asks to sign in", chromedp.Navigate(p.base+"/#/manage/ghent"))
	b.wait("on the sign-in form", `document.body.dataset.route === 'signin' && !!document.querySelector('#view[data-loaded="1"] form[data-form="signin"]')`)
	b.fill("email", `form[data-form="signin"] [name="email"]`, "manager.ghent@piazza.example")
	b.fill("password", `form[data-form="signin"] [name="password"]`, demoPassword)
	b.click("sign in", `form[data-form="signin"] button[type="submit"]`)
	b.wait("back on the page asked for", `document.body.dataset.route === 'manage-city' && location.hash === '#/manage/ghent' && !!document.querySelector('#nav a[data-nav="manage"]')`)
	b.click("sign out", `#signout`)
	b.wait("signed out", `document.body.dataset.signedIn === '0' && document.body.dataset.route === 'today'`)

	b.step("open the sign-up page", chromedp.Steps(
		chromedp.Navigate(p.base+"/#/signup"),
		chromedp.WaitReady(chromedp.CSS(`#view[data-loaded="1"] form[data-form="signup"]`)),
	))
	b.fill("name", `form[data-form="signup"] [name="name"]`, "Short Password")
	b.fill("email", `form[data-form="signup"] [name="email"]`, "short@example.test")
	b.fill("password", `form[data-form="signup"] [name="password"]`, "short")
	b.click("sign up", `form[data-form="signup"] button[type="submit"]`)
	b.wait("the password's error is next to it", `(() => {
		const f = document.querySelector('form[data-form="signup"] [data-field="password"]');
		return !!f && !f.querySelector('.field-error').hidden && f.querySelector('input').getAttribute('aria-invalid') === 'true'
			&& document.activeElement === f.querySelector('input');
	})()`)

	b.step("the residents' page still works", chromedp.Navigate(p.base+"/#/ghent"))
	b.wait("today is rendered and live", `document.body.dataset.ready === '1' && document.body.dataset.route === 'today' && !document.querySelector('#today-page').hidden`)
	b.noExceptions()
}
