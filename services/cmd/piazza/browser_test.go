package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browserTimeout bounds each step in the browser; none is asserted.
const browserTimeout = 30 * time.Second

// TestBrowserLiveFeed opens the web client of a real piazza in headless
// Chromium and registers a stall through the API: the notification reaches
// the feed and the stall list without a reload.
func TestBrowserLiveFeed(t *testing.T) {
	chromium := chromiumPath(t)
	// The services' clock stands at 11:00 in Ghent today and runs on from
	// there, so today's markets take stalls whenever the test runs.
	p := startPiazzaWithClock(t, middayInGhent(t), newDatabase(t), t.TempDir())
	var td todayBody
	getJSON(t, p.base+"/api/v1/listings/cities/ghent/today", http.StatusOK, &td)
	if len(td.MarketDays) == 0 {
		t.Fatalf("no market day today (%s) in Ghent, which has daily markets", td.Date)
	}
	day := td.MarketDays[0]
	ctx, console := newBrowser(t, chromium)

	step := func(what string, a chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, browserTimeout)
		defer cancel()
		if err := chromedp.Do(sctx, a); err != nil {
			t.Fatalf("%s: %v\npage: %s\nbrowser console:\n%s", what, err, pageState(ctx), console.String())
		}
	}
	eval := func(what, js string) any {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, browserTimeout)
		defer cancel()
		v, err := chromedp.Run(sctx, chromedp.Evaluate[any](js))
		if err != nil {
			t.Fatalf("%s: %v\nbrowser console:\n%s", what, err, console.String())
		}
		return v
	}

	step("open Ghent and wait for the first render and the subscription", chromedp.Steps(
		chromedp.Navigate(p.base+"/#/ghent"),
		chromedp.WaitReady(chromedp.CSS(`body[data-ready="1"]`)),
	))
	eval("mark the page", `window.__marker = 42`)

	s := registerStall(t, p.base, day.ID, "Hoeve 't Groenhof")
	name, _ := json.Marshal(s.VendorName)

	step("wait for the notification in the feed", chromedp.Steps(
		chromedp.WaitReady(chromedp.CSS(`#feed li[data-seq]`)),
		voidOf(chromedp.Poll[bool](fmt.Sprintf(
			`[...document.querySelectorAll('#feed li[data-seq]')].some((li) => li.textContent.includes(%s))`, name),
			chromedp.WithPollingTimeout(browserTimeout))),
	))
	step("wait for the stall in today's list", voidOf(chromedp.Poll[bool](fmt.Sprintf(
		`document.querySelector('#stalls li[data-vendor-id="%s"]')?.textContent.includes(%s) ?? false`, s.VendorID, name),
		chromedp.WithPollingTimeout(browserTimeout))))

	if v := eval("read the mark", `window.__marker`); v != float64(42) {
		t.Errorf("window.__marker = %v after the update, want 42: the page reloaded", v)
	}
	if v := eval("read the feed entry's seq", `document.querySelector('#feed li[data-seq]').dataset.seq`); v == "" {
		t.Errorf("the feed entry has no seq")
	}
	sctx, cancel := context.WithTimeout(ctx, browserTimeout)
	defer cancel()
	state, err := chromedp.Run(sctx, chromedp.AttributeValue(chromedp.CSS("#conn-status"), "data-state"))
	if err != nil {
		t.Fatal(err)
	}
	if state.Value != "live" {
		t.Errorf(`#conn-status data-state = %q, want "live"`, state.Value)
	}
	if ex := console.exceptions(); len(ex) > 0 {
		t.Errorf("the page threw:\n%s", strings.Join(ex, "\n"))
	}
}

// middayInGhent returns a clock that reads 11:00 Brussels time today at the
// first call and advances with real time.
func middayInGhent(tb testing.TB) func() time.Time {
	tb.Helper()
	loc, err := time.LoadLocation("Europe/Brussels")
	if err != nil {
		tb.Fatal(err)
	}
	start := time.Now()
	local := start.In(loc)
	base := time.Date(local.Year(), local.Month(), local.Day(), 11, 0, 0, 0, loc)
	return func() time.Time { return base.Add(time.Since(start)) }
}

// pageState describes what the page shows, for a failure message.
func pageState(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify({
		url: location.href, ready: document.body.dataset.ready ?? null,
		conn: document.querySelector('#conn-status')?.dataset.state ?? null,
		alert: document.querySelector('#alert')?.textContent ?? null,
		feed: [...document.querySelectorAll('#feed li')].map((li) => li.dataset.seq + ' ' + li.textContent),
		stalls: [...document.querySelectorAll('#stalls li')].map((li) => li.dataset.vendorId + ' ' + li.textContent),
	})`))
	if err != nil {
		return "(unreadable: " + err.Error() + ")"
	}
	return v
}

// chromiumPath returns the browser to drive: CHROMIUM_PATH or Debian's
// chromium. Without one the test is skipped, except under CI, where it fails.
func chromiumPath(t *testing.T) string {
	t.Helper()
	path := os.Getenv("CHROMIUM_PATH")
	if path == "" {
		path = "/usr/bin/chromium"
	}
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Chromium is required under CI: %v", err)
		}
		t.Skipf("no Chromium (%v); install it (apt-get install chromium) or set CHROMIUM_PATH", err)
	}
	return path
}

// newBrowser starts a headless Chromium with a fresh profile and returns the
// context of its first tab, and the tab's console messages.
func newBrowser(t *testing.T, chromium string) (context.Context, *consoleLog) {
	t.Helper()
	profile, err := os.MkdirTemp("", "piazza-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	output := &syncBuffer{}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.NoSandbox, // tests run as root in CI
		chromedp.Headless,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(profile),
		chromedp.CombinedOutput(output),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	console := &consoleLog{}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
		wg.Wait()
		if t.Failed() {
			t.Logf("chromium output:\n%s", output.String())
		}
		// Chromium's helpers may still write to the profile for a moment
		// after the browser has gone.
		for range 50 {
			if os.RemoveAll(profile) == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	// Start the browser without a timeout: one on this first call would
	// bound the browser's whole life.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v\n%s", chromium, err, output.String())
	}
	messages := chromedp.Console(ctx)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for m, err := range messages {
			if err != nil {
				return
			}
			console.add(m)
		}
	}()
	return ctx, console
}

// consoleLog keeps what the page wrote to its console.
type consoleLog struct {
	mu       sync.Mutex
	messages []chromedp.ConsoleMessage
}

func (c *consoleLog) add(m chromedp.ConsoleMessage) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.messages = append(c.messages, m)
}

func (c *consoleLog) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	for _, m := range c.messages {
		fmt.Fprintf(&b, "%s (%s:%d)\n", m, m.URL, m.Line)
	}
	return b.String()
}

func (c *consoleLog) exceptions() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, m := range c.messages {
		if m.IsException() {
			out = append(out, m.String())
		}
	}
	return out
}

// voidOf drops an action's value so that it fits in chromedp.Steps.
func voidOf[T any](a chromedp.Action[T]) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := a(ctx, t)
		return chromedp.Void{}, err
	}
}
