package listings

import (
	"encoding/base64"
	"encoding/json"
	"hash/fnv"
	"net/http"
	"strconv"
	"strings"

	"github.com/localeurope/piazza/pkg/web"
)

// Lists are paginated by keyset: a cursor names the last item of the previous
// page (by id, or slug for cities) and the filters it was issued for. The
// next page is what sorts after that item's sort key, so an item is listed
// exactly once even while items are added.

const (
	defaultLimit = 50
	maxLimit     = 100
)

// page is a list request's page: its size and, after the first page, the key
// of the last item already seen.
type page struct {
	Limit  int
	After  string // "" on the first page
	filter string
}

type cursorBody struct {
	After  string `json:"a"`
	Filter string `json:"f"`
}

// readPage reads limit= and cursor=. filters identify the list (route and
// query filters); a cursor issued for other filters is refused.
func readPage(r *http.Request, filters ...string) (page, error) {
	var f web.Fields
	q := r.URL.Query()
	p := page{Limit: defaultLimit, filter: filterHash(filters)}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit {
			f.Add("limit", "must be a whole number from 1 to %d", maxLimit)
		}
		p.Limit = n
	}
	if v := q.Get("cursor"); v != "" {
		c, ok := decodeCursor(v)
		if !ok {
			f.Add("cursor", "is not a cursor of this list; start again without it")
		} else if c.Filter != p.filter {
			f.Add("cursor", "was issued for other filters; start again without it")
		} else {
			p.After = c.After
		}
	}
	return p, f.Err()
}

func decodeCursor(s string) (cursorBody, bool) {
	var c cursorBody
	if len(s) > 512 {
		return c, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || json.Unmarshal(raw, &c) != nil || c.After == "" || len(c.After) > 64 {
		return c, false
	}
	return c, true
}

// next returns the cursor after last when the page is full, or nil. Callers
// fetch Limit+1 rows and pass whether there were more.
func (p page) next(more bool, last string) *string {
	if !more {
		return nil
	}
	raw, _ := json.Marshal(cursorBody{After: last, Filter: p.filter})
	s := base64.RawURLEncoding.EncodeToString(raw)
	return &s
}

// staleCursor is the error for a cursor whose item no longer exists.
func staleCursor() error {
	return &web.Error{Code: web.EInvalid, Message: "the request has invalid fields",
		Fields: []web.FieldError{{Field: "cursor", Message: "is stale; start again without it"}}}
}

func filterHash(filters []string) string {
	h := fnv.New64a()
	h.Write([]byte(strings.Join(filters, "\x00")))
	return strconv.FormatUint(h.Sum64(), 36)
}

// trim cuts a Limit+1 result to the page and reports whether there is more.
func trim[T any](p page, items []T) ([]T, bool) {
	if len(items) > p.Limit {
		return items[:p.Limit], true
	}
	return nonNil(items), false
}

// pageOf is the JSON shape of a page.
type pageOf[T any] struct {
	Items      []T     `json:"items"`
	NextCursor *string `json:"next_cursor"`
}
