// Package web serves Piazza's browser client: plain HTML, CSS and ES modules
// embedded in the binary, with no build step.
//
// Handler serves the files under static/ at the root of the URL space
// (static/index.html at "/"). Every response carries Cache-Control: no-cache
// and a strong ETag, so browsers revalidate on each load and get a cheap 304
// when nothing changed. Only GET and HEAD are allowed; any path that is not an
// embedded file (directories included) is a 404.
//
// The service worker (static/sw.js, served at /sw.js so that its scope is the
// whole site) gets its precache list and a version — a hash of every other
// file — filled in here, so that any change to the client installs a new
// worker with a fresh cache.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"net/http"
	"path"
	"slices"
	"strings"
	"sync"
	"time"
)

//go:embed static
var staticFiles embed.FS

// contentTypes is the whole list of types the client uses. It does not depend
// on the machine's /etc/mime.types, which often lacks .webmanifest.
var contentTypes = map[string]string{
	".html":        "text/html; charset=utf-8",
	".js":          "text/javascript; charset=utf-8",
	".mjs":         "text/javascript; charset=utf-8",
	".css":         "text/css; charset=utf-8",
	".json":        "application/json",
	".webmanifest": "application/manifest+json",
	".svg":         "image/svg+xml",
	".png":         "image/png",
	".ico":         "image/x-icon",
	".txt":         "text/plain; charset=utf-8",
}

// contentSecurityPolicy applies to the HTML page: everything same-origin, no
// inline script or style. connect-src names ws: and wss: because older
// browsers do not let 'self' cover the notifier's websocket.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; " +
	"img-src 'self' data:; connect-src 'self' ws: wss:; manifest-src 'self'; " +
	"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

type file struct {
	name        string
	data        []byte
	contentType string
	etag        string
}

// files indexes the embedded tree once: URL path (without the leading slash)
// to file.
var files = sync.OnceValue(func() map[string]*file {
	root, err := fs.Sub(staticFiles, "static")
	if err != nil {
		panic(err)
	}
	out := map[string]*file{}
	err = fs.WalkDir(root, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(root, p)
		if err != nil {
			return err
		}
		ct, ok := contentTypes[path.Ext(p)]
		if !ok {
			ct = "application/octet-stream"
		}
		sum := sha256.Sum256(data)
		out[p] = &file{
			name:        path.Base(p),
			data:        data,
			contentType: ct,
			etag:        `"` + hex.EncodeToString(sum[:12]) + `"`,
		}
		return nil
	})
	if err != nil {
		panic("web: reading embedded files: " + err.Error())
	}
	if sw, ok := out[serviceWorker]; ok {
		sw.data = serviceWorkerSource(sw.data, out)
		sum := sha256.Sum256(sw.data)
		sw.etag = `"` + hex.EncodeToString(sum[:12]) + `"`
	}
	return out
})

const (
	serviceWorker  = "sw.js"
	versionMarker  = "const VERSION = 'dev';"
	shellMarker    = "const SHELL = [];"
	shellEntryPath = "index.html" // precached as "/"
)

// serviceWorkerSource fills in the worker's version (a hash of every other
// file, in path order) and its precache list (every other file's URL).
func serviceWorkerSource(src []byte, all map[string]*file) []byte {
	names := make([]string, 0, len(all))
	for p := range all {
		if p != serviceWorker {
			names = append(names, p)
		}
	}
	slices.Sort(names)
	h := sha256.New()
	urls := []string{"/"}
	for _, p := range names {
		h.Write([]byte(p))
		h.Write([]byte{0})
		h.Write([]byte(all[p].etag))
		if p != shellEntryPath {
			urls = append(urls, "/"+p)
		}
	}
	version := hex.EncodeToString(h.Sum(nil)[:8])
	list, err := json.Marshal(urls)
	if err != nil {
		panic(err)
	}
	out := bytes.Replace(src, []byte(versionMarker), []byte("const VERSION = '"+version+"';"), 1)
	return bytes.Replace(out, []byte(shellMarker), []byte("const SHELL = "+string(list)+";"), 1)
}

// Handler returns the handler for the web client. Mount it at "/".
func Handler() http.Handler {
	index := files()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
			return
		}
		p := strings.TrimPrefix(r.URL.Path, "/")
		if p == "" {
			p = "index.html"
		}
		f, ok := index[p]
		if !ok {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Type", f.contentType)
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", f.etag)
		h.Set("X-Content-Type-Options", "nosniff")
		if strings.HasPrefix(f.contentType, "text/html") {
			h.Set("Content-Security-Policy", contentSecurityPolicy)
			h.Set("Referrer-Policy", "same-origin")
		}
		http.ServeContent(w, r, f.name, time.Time{}, bytes.NewReader(f.data))
	})
}
