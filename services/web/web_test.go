package web

import (
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, method, target string, header map[string]string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, res *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestIndex(t *testing.T) {
	res := get(t, Handler(), http.MethodGet, "/", nil)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET / = %d, want 200", res.StatusCode)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("Content-Type = %q, want text/html", ct)
	}
	if cc := res.Header.Get("Cache-Control"); cc != "no-cache" {
		t.Errorf("Cache-Control = %q, want no-cache", cc)
	}
	if res.Header.Get("Content-Security-Policy") == "" {
		t.Error("no Content-Security-Policy on the page")
	}
	html := body(t, res)
	for _, want := range []string{
		`id="app"`,
		`<main id="main"`,
		`<script type="module" src="/app.js">`,
		`<link rel="manifest" href="/manifest.webmanifest">`,
		`id="feed"`, `aria-live="polite"`,
		`id="stalls"`, `id="conn-status"`,
		`<label for="city-select"`, `<label for="lang-select"`,
		`id="view"`, `id="today-page"`, `id="nav-list"`, `id="notice"`,
	} {
		if !strings.Contains(html, want) {
			t.Errorf("index.html lacks %s", want)
		}
	}
}

func TestContentTypes(t *testing.T) {
	h := Handler()
	for target, want := range map[string]string{
		"/app.js":               "text/javascript",
		"/js/api.js":            "text/javascript",
		"/js/today.js":          "text/javascript",
		"/sw.js":                "text/javascript",
		"/style.css":            "text/css",
		"/i18n/en.json":         "application/json",
		"/languages.json":       "application/json",
		"/manifest.webmanifest": "application/manifest+json",
		"/icon.svg":             "image/svg+xml",
		"/index.html":           "text/html",
	} {
		res := get(t, h, http.MethodGet, target, nil)
		if res.StatusCode != http.StatusOK {
			t.Errorf("GET %s = %d, want 200", target, res.StatusCode)
			continue
		}
		if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, want) {
			t.Errorf("GET %s: Content-Type = %q, want %s", target, ct, want)
		}
		if cc := res.Header.Get("Cache-Control"); cc != "no-cache" {
			t.Errorf("GET %s: Cache-Control = %q, want no-cache", target, cc)
		}
		if res.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: no X-Content-Type-Options: nosniff", target)
		}
	}
}

func TestNotFound(t *testing.T) {
	h := Handler()
	for _, target := range []string{
		"/missing.js", "/i18n/", "/i18n", "/i18n/xx.json", "/static/index.html",
		"/../web.go", "/web.go", "//app.js", "/app.js/",
	} {
		if res := get(t, h, http.MethodGet, target, nil); res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", target, res.StatusCode)
		}
	}
}

func TestMethodsAndRevalidation(t *testing.T) {
	h := Handler()
	if res := get(t, h, http.MethodPost, "/app.js", nil); res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /app.js = %d, want 405", res.StatusCode)
	}
	head := get(t, h, http.MethodHead, "/app.js", nil)
	if head.StatusCode != http.StatusOK || body(t, head) != "" {
		t.Errorf("HEAD /app.js = %d with a body, want 200 and none", head.StatusCode)
	}
	etag := head.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	res := get(t, h, http.MethodGet, "/app.js", map[string]string{"If-None-Match": etag})
	if res.StatusCode != http.StatusNotModified {
		t.Errorf("conditional GET = %d, want 304", res.StatusCode)
	}
}

func TestManifest(t *testing.T) {
	h := Handler()
	var m struct {
		Name       string `json:"name"`
		StartURL   string `json:"start_url"`
		Display    string `json:"display"`
		ThemeColor string `json:"theme_color"`
		Icons      []struct {
			Src  string `json:"src"`
			Type string `json:"type"`
		} `json:"icons"`
	}
	if err := json.Unmarshal([]byte(body(t, get(t, h, http.MethodGet, "/manifest.webmanifest", nil))), &m); err != nil {
		t.Fatalf("manifest is not JSON: %v", err)
	}
	if m.Name == "" || m.StartURL == "" || m.Display != "standalone" || m.ThemeColor == "" || len(m.Icons) == 0 {
		t.Errorf("manifest incomplete: %+v", m)
	}
	for _, icon := range m.Icons {
		if res := get(t, h, http.MethodGet, icon.Src, nil); res.StatusCode != http.StatusOK {
			t.Errorf("icon %s = %d", icon.Src, res.StatusCode)
		}
	}
}

// The service worker is served at the root (its scope is the whole site) as
// JavaScript that browsers revalidate, with its version and precache list
// filled in: every file of the client, each of them served.
func TestServiceWorker(t *testing.T) {
	h := Handler()
	res := get(t, h, http.MethodGet, "/sw.js", nil)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /sw.js = %d, want 200", res.StatusCode)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/javascript") {
		t.Errorf("Content-Type = %q, want text/javascript", ct)
	}
	if cc := res.Header.Get("Cache-Control"); cc != "no-cache" {
		t.Errorf("Cache-Control = %q, want no-cache", cc)
	}
	src := body(t, res)
	version := regexp.MustCompile(`const VERSION = '([0-9a-f]{16})';`).FindStringSubmatch(src)
	if version == nil {
		t.Errorf("sw.js has no filled-in VERSION")
	}
	m := regexp.MustCompile(`const SHELL = (\[.*?\]);`).FindStringSubmatch(src)
	if m == nil {
		t.Fatal("sw.js has no filled-in SHELL")
	}
	var shell []string
	if err := json.Unmarshal([]byte(m[1]), &shell); err != nil {
		t.Fatalf("SHELL is not a JSON list: %v", err)
	}
	for _, want := range []string{"/", "/app.js", "/js/today.js", "/js/live.js", "/style.css", "/i18n/en.json",
		"/i18n/nl.json", "/i18n/it.json", "/languages.json", "/manifest.webmanifest", "/icon.svg"} {
		if !slices.Contains(shell, want) {
			t.Errorf("SHELL lacks %s: %v", want, shell)
		}
	}
	if slices.Contains(shell, "/sw.js") {
		t.Error("the worker precaches itself")
	}
	for _, u := range shell {
		if res := get(t, h, http.MethodGet, u, nil); res.StatusCode != http.StatusOK {
			t.Errorf("precached %s = %d", u, res.StatusCode)
		}
	}
	// The ETag follows the filled-in body.
	etag := res.Header.Get("ETag")
	if res := get(t, h, http.MethodGet, "/sw.js", map[string]string{"If-None-Match": etag}); res.StatusCode != http.StatusNotModified {
		t.Errorf("conditional GET /sw.js = %d, want 304", res.StatusCode)
	}
	// The app registers it.
	app := body(t, get(t, h, http.MethodGet, "/app.js", nil))
	if !strings.Contains(app, "serviceWorker.register('/sw.js'") {
		t.Error("app.js does not register /sw.js")
	}
}

// The version changes whenever any other file does.
func TestServiceWorkerVersionFollowsFiles(t *testing.T) {
	src := []byte("const VERSION = 'dev';\nconst SHELL = [];\n")
	a := map[string]*file{"app.js": {etag: `"1"`}, "index.html": {etag: `"2"`}}
	b := map[string]*file{"app.js": {etag: `"1"`}, "index.html": {etag: `"3"`}}
	x, y := string(serviceWorkerSource(src, a)), string(serviceWorkerSource(src, b))
	if x == y {
		t.Errorf("same worker for different files:\n%s", x)
	}
	if !strings.Contains(x, `const SHELL = ["/","/app.js"];`) {
		t.Errorf("worker = %s, want SHELL [\"/\",\"/app.js\"]", x)
	}
}

// catalog fetches one message catalog over HTTP and decodes it.
func catalog(t *testing.T, h http.Handler, lang string) map[string]string {
	t.Helper()
	res := get(t, h, http.MethodGet, "/i18n/"+lang+".json", nil)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /i18n/%s.json = %d", lang, res.StatusCode)
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(body(t, res)), &m); err != nil {
		t.Fatalf("%s.json is not a flat JSON object of strings: %v", lang, err)
	}
	return m
}

// catalogLangs lists the languages that have a catalog in static/i18n.
func catalogLangs(t *testing.T) []string {
	t.Helper()
	entries, err := fs.ReadDir(staticFiles, "static/i18n")
	if err != nil {
		t.Fatal(err)
	}
	var langs []string
	for _, e := range entries {
		if !e.IsDir() && path.Ext(e.Name()) == ".json" {
			langs = append(langs, strings.TrimSuffix(e.Name(), ".json"))
		}
	}
	slices.Sort(langs)
	return langs
}

var placeholder = regexp.MustCompile(`\{(\w+)\}`)

// catalogProblems compares a catalog with the reference one: missing and
// extra keys, empty messages, and placeholders that differ.
func catalogProblems(ref, got map[string]string) []string {
	var problems []string
	for k, want := range ref {
		msg, ok := got[k]
		switch {
		case !ok:
			problems = append(problems, "missing key "+k)
		case strings.TrimSpace(msg) == "":
			problems = append(problems, "empty message "+k)
		case !slices.Equal(placeholders(want), placeholders(msg)):
			problems = append(problems, "placeholders of "+k+" differ: "+strings.Join(placeholders(msg), ",")+" vs "+strings.Join(placeholders(want), ","))
		}
	}
	for k := range got {
		if _, ok := ref[k]; !ok {
			problems = append(problems, "extra key "+k)
		}
	}
	slices.Sort(problems)
	return problems
}

func placeholders(msg string) []string {
	var names []string
	for _, m := range placeholder.FindAllStringSubmatch(msg, -1) {
		names = append(names, m[1])
	}
	slices.Sort(names)
	return slices.Compact(names)
}

func TestCatalogsMatchEnglish(t *testing.T) {
	h := Handler()
	en := catalog(t, h, "en")
	if len(en) == 0 {
		t.Fatal("en.json is empty")
	}
	langs := catalogLangs(t)
	for _, want := range []string{"en", "it", "nl"} {
		if !slices.Contains(langs, want) {
			t.Errorf("no catalog for %s", want)
		}
	}
	for _, lang := range langs {
		for _, p := range catalogProblems(en, catalog(t, h, lang)) {
			t.Errorf("%s.json: %s", lang, p)
		}
	}
	// Vendor kinds and market-day statuses the API sends.
	for _, k := range []string{
		"vendor.kind.farmer", "vendor.kind.artisan", "vendor.kind.food", "vendor.kind.other",
		"market_day.status.scheduled", "market_day.status.open", "market_day.status.closed", "market_day.status.cancelled",
		"application.status.pending", "application.status.accepted", "application.status.waitlisted",
		"application.status.rejected", "application.status.withdrawn", "application.status.offered",
		"application.status.declined", "application.status.expired",
		"stall.live.expected", "stall.live.open", "stall.live.closed",
		"apply.skip.already_applied", "apply.skip.pitch_taken", "apply.skip.day_cancelled", "apply.skip.day_over",
	} {
		if _, ok := en[k]; !ok {
			t.Errorf("en.json lacks %s", k)
		}
	}
}

// The checker itself must catch a missing key, an extra key and a changed
// placeholder, or the test above proves nothing.
func TestCatalogProblemsDetects(t *testing.T) {
	ref := map[string]string{"a": "A {x}", "b": "B"}
	for name, c := range map[string]struct {
		got  map[string]string
		want string
	}{
		"missing":     {map[string]string{"a": "A {x}"}, "missing key b"},
		"extra":       {map[string]string{"a": "A {x}", "b": "B", "c": "C"}, "extra key c"},
		"placeholder": {map[string]string{"a": "A {y}", "b": "B"}, "placeholders of a differ"},
		"empty":       {map[string]string{"a": "A {x}", "b": " "}, "empty message b"},
	} {
		problems := catalogProblems(ref, c.got)
		if len(problems) != 1 || !strings.HasPrefix(problems[0], c.want) {
			t.Errorf("%s: problems = %q, want one starting %q", name, problems, c.want)
		}
	}
	if p := catalogProblems(ref, map[string]string{"a": "Ä {x}", "b": "Bé"}); len(p) != 0 {
		t.Errorf("a complete catalog has problems: %q", p)
	}
}

// languages.json tells the client which catalogs exist; it must list exactly
// the files in static/i18n.
func TestLanguagesListMatchesCatalogs(t *testing.T) {
	var l struct{ Languages []string }
	if err := json.Unmarshal([]byte(body(t, get(t, Handler(), http.MethodGet, "/languages.json", nil))), &l); err != nil {
		t.Fatal(err)
	}
	got := slices.Clone(l.Languages)
	slices.Sort(got)
	if want := catalogLangs(t); !slices.Equal(got, want) {
		t.Errorf("languages.json lists %v, static/i18n has %v", got, want)
	}
}

// scripts returns every JavaScript module of the client, by URL path.
func scripts(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := fs.WalkDir(staticFiles, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || path.Ext(p) != ".js" {
			return err
		}
		out["/"+strings.TrimPrefix(p, "static/")] = body(t, get(t, Handler(), http.MethodGet, "/"+strings.TrimPrefix(p, "static/"), nil))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := out["/app.js"]; !ok || len(out) < 2 {
		t.Fatalf("found scripts %v; want app.js and its modules", out)
	}
	return out
}

// Every module a script imports is served.
func TestModulesResolve(t *testing.T) {
	h := Handler()
	importRE := regexp.MustCompile(`(?m)^\s*(?:import|export)\s[^'"]*?from\s+'([^']+)'|^\s*import\s+'([^']+)'`)
	for p, src := range scripts(t) {
		for _, m := range importRE.FindAllStringSubmatch(src, -1) {
			spec := m[1] + m[2]
			if !strings.HasPrefix(spec, "./") && !strings.HasPrefix(spec, "../") {
				t.Errorf("%s imports %q: only relative modules, no external requests", p, spec)
				continue
			}
			target := path.Join(path.Dir(p), spec)
			res := get(t, h, http.MethodGet, target, nil)
			if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/javascript") {
				t.Errorf("%s imports %s: GET %s = %d %s", p, spec, target, res.StatusCode, res.Header.Get("Content-Type"))
			}
		}
	}
}

// Every key the markup and the scripts name literally must be in en.json.
func TestKeysUsedExist(t *testing.T) {
	h := Handler()
	en := catalog(t, h, "en")
	html := body(t, get(t, h, http.MethodGet, "/", nil))
	var used []string
	for _, m := range regexp.MustCompile(`data-i18n="([^"]+)"`).FindAllStringSubmatch(html, -1) {
		used = append(used, m[1])
	}
	for _, js := range scripts(t) {
		for _, m := range regexp.MustCompile(`\bt[n]?\(\s*'([^']+)'`).FindAllStringSubmatch(js, -1) {
			used = append(used, m[1])
		}
	}
	if len(used) < 10 {
		t.Fatalf("found only %d keys in use; is the pattern stale?", len(used))
	}
	for _, k := range used {
		if _, ok := en[k]; ok {
			continue
		}
		if _, ok := en[k+".other"]; ok { // plural: tn('stalls.count', n)
			continue
		}
		t.Errorf("key %q is used but not in en.json", k)
	}
}
