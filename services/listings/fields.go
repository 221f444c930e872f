package listings

import (
	"context"
	"fmt"
	"net/mail"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/localeurope/piazza/pkg/bus"
	"github.com/localeurope/piazza/pkg/outbox"
	"github.com/localeurope/piazza/pkg/web"
	"github.com/localeurope/piazza/services/contract"
)

// Checks shared by the request types of places, markets and vendors. Each
// adds its complaint under the JSON path it is given.

var (
	categoryRE  = regexp.MustCompile(`^[a-z][a-z0-9-]{1,39}$`)
	languageRE  = regexp.MustCompile(`^[a-z]{2,3}(-[A-Za-z0-9]{1,8})*$`)
	pitchCodeRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,15}$`)
	localTimeRE = regexp.MustCompile(`^([01][0-9]|2[0-3]):[0-5][0-9]$`)
	phoneRE     = regexp.MustCompile(`^\+[1-9][0-9 ]{5,30}$`)
)

// checkName trims *s and requires 1–120 characters without NUL.
func checkName(f *web.Fields, field string, s *string) {
	*s = strings.TrimSpace(*s)
	switch n := utf8.RuneCountInString(*s); {
	case n == 0:
		f.Add(field, "is required")
	case n > 120:
		f.Add(field, "must be at most 120 characters")
	case strings.ContainsRune(*s, 0) || !utf8.ValidString(*s):
		f.Add(field, "must be valid text without NUL characters")
	}
}

// checkText allows up to max characters of text without NUL; blank is fine.
func checkText(f *web.Fields, field, s string, max int) {
	if utf8.RuneCountInString(s) > max {
		f.Add(field, "must be at most %d characters", max)
	} else if strings.ContainsRune(s, 0) || !utf8.ValidString(s) {
		f.Add(field, "must be valid text without NUL characters")
	}
}

func checkSlugs(f *web.Fields, field string, items []string, max int, re *regexp.Regexp, what string) {
	if len(items) > max {
		f.Add(field, "must hold at most %d items", max)
		return
	}
	seen := map[string]bool{}
	for i, c := range items {
		switch {
		case !re.MatchString(c):
			f.Add(fmt.Sprintf("%s[%d]", field, i), "must be %s", what)
		case seen[c]:
			f.Add(fmt.Sprintf("%s[%d]", field, i), "repeats %q", c)
		}
		seen[c] = true
	}
}

func checkCategories(f *web.Fields, field string, cats []string) {
	checkSlugs(f, field, cats, 20, categoryRE, "a category slug such as cheese or street-food")
}

func checkLanguages(f *web.Fields, field string, langs []string) {
	checkSlugs(f, field, langs, 20, languageRE, "a language tag such as nl or pt-BR")
}

func checkHTTPSURL(f *web.Fields, field, s string) {
	u, err := url.Parse(s)
	if len(s) > 2048 || err != nil || u.Scheme != "https" || u.Host == "" || !strings.HasPrefix(s, "https://") {
		f.Add(field, "must be an https:// URL of at most 2048 characters")
	}
}

func checkEmail(f *web.Fields, field, s string) {
	a, err := mail.ParseAddress(s)
	if len(s) > 254 || err != nil || a.Address != s || !strings.Contains(s[strings.LastIndexByte(s, '@')+1:], ".") {
		f.Add(field, "must be an email address")
	}
}

// parseDate parses a YYYY-MM-DD local date.
func parseDate(s string) (time.Time, bool) {
	t, err := time.Parse(time.DateOnly, s)
	return t, err == nil && t.Year() >= 1 && len(s) == 10
}

// parseClock parses HH:MM into the time since midnight.
func parseClock(s string) (time.Duration, bool) {
	if !localTimeRE.MatchString(s) {
		return 0, false
	}
	t, _ := time.Parse("15:04", s)
	return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute, true
}

// recordEvent writes an event of the listings service into the outbox, in the
// transaction of the change it announces.
func recordEvent(ctx context.Context, tx pgx.Tx, typ, city, entity, verb, resource string, data any) error {
	ev, err := bus.NewEvent(contract.SourceListings, typ, resource, data)
	if err != nil {
		return err
	}
	ev.TraceParent = web.TraceParent(ctx)
	return outbox.Add(ctx, tx, contract.ListingsSubject(city, entity, verb), ev)
}

// staleVersion is the conflict of a PATCH whose version is not the stored one.
func staleVersion(what string, sent, stored int64) error {
	return web.Errorf(web.EConflict, "the %s has changed since version %d (it is at version %d); reload it and try again", what, sent, stored)
}

// noChange is the error of a PATCH body that changes nothing.
func noChange() error {
	return &web.Error{Code: web.EInvalid, Message: "the request has invalid fields",
		Fields: []web.FieldError{{Field: "(body)", Message: "must change at least one field"}}}
}
