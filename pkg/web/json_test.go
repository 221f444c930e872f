package web_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/localeurope/piazza/pkg/web"
)

type stallRequest struct {
	Name    string   `json:"name"`
	Pitches int      `json:"pitches"`
	Tags    []string `json:"tags"`
	Market  struct {
		City string `json:"city"`
	} `json:"market"`
}

var errNoName = &web.Error{Code: web.EInvalid, Message: "the request has invalid fields",
	Fields: []web.FieldError{{Field: "name", Message: "is required"}}}

func (s stallRequest) Validate() error {
	if s.Name == "" {
		return errNoName
	}
	return nil
}

func decode(tb testing.TB, contentType, body string) (stallRequest, error) {
	tb.Helper()
	r := httptest.NewRequest(http.MethodPost, "/api/v1/stalls", strings.NewReader(body))
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	return web.Decode[stallRequest](httptest.NewRecorder(), r)
}

func TestDecode(t *testing.T) {
	t.Run("reads a valid body", func(t *testing.T) {
		got, err := decode(t, "application/json", `{"name":"Kaas Van Gent","pitches":2,"tags":["cheese"],"market":{"city":"ghent"}}`)
		if err != nil {
			t.Fatalf("Decode: %v", err)
		}
		if got.Name != "Kaas Van Gent" || got.Pitches != 2 || len(got.Tags) != 1 || got.Market.City != "ghent" {
			t.Errorf("decoded %+v", got)
		}
	})

	for _, ct := range []string{"", "application/json; charset=utf-8", "application/merge-patch+json"} {
		t.Run("accepts the content type "+quoteOrNone(ct), func(t *testing.T) {
			if _, err := decode(t, ct, `{"name":"a"}`); err != nil {
				t.Errorf("Decode: %v", err)
			}
		})
	}

	tests := []struct {
		name      string
		ct, body  string
		code      string
		field     string // the field error expected, if any
		fieldMsg  string
		detailHas string
	}{
		{name: "an unknown field is a field error naming it", body: `{"name":"a","colour":"red"}`,
			code: web.EInvalid, field: "colour", fieldMsg: "is not a known field"},
		{name: "a value of the wrong type is a field error naming the field", body: `{"name":"a","pitches":"three"}`,
			code: web.EInvalid, field: "pitches", fieldMsg: "must be a number"},
		{name: "a nested value of the wrong type names its path", body: `{"name":"a","market":{"city":7}}`,
			code: web.EInvalid, field: "market.city", fieldMsg: "must be a string"},
		{name: "a body of the wrong type is a field error on the body", body: `["a"]`,
			code: web.EInvalid, field: "(body)", fieldMsg: "must be an object"},
		{name: "a syntax error says where", body: `{"name" "a"}`, code: web.EInvalid, detailHas: "not valid JSON (at byte"},
		{name: "truncated JSON is invalid", body: `{"name":`, code: web.EInvalid, detailHas: "truncated"},
		{name: "an empty body is invalid", body: ``, code: web.EInvalid, detailHas: "empty"},
		{name: "two JSON values are invalid", body: `{"name":"a"}{"name":"b"}`, code: web.EInvalid, detailHas: "exactly one JSON value"},
		{name: "trailing garbage is invalid", body: `{"name":"a"} x`, code: web.EInvalid, detailHas: "exactly one JSON value"},
		{name: "a body over MaxBodyBytes is too large", body: `{"name":"` + strings.Repeat("x", web.MaxBodyBytes) + `"}`,
			code: web.ETooLarge, detailHas: "larger than"},
		{name: "trailing data past MaxBodyBytes is too large", body: `{"name":"a"}` + strings.Repeat(" ", web.MaxBodyBytes),
			code: web.ETooLarge},
		{name: "a body that is not JSON is an unsupported media type", ct: "text/plain", body: `{"name":"a"}`, code: web.EUnsupported},
		{name: "form data is an unsupported media type", ct: "application/x-www-form-urlencoded", body: `name=a`, code: web.EUnsupported},
		{name: "a malformed content type is an unsupported media type", ct: "application/", body: `{"name":"a"}`, code: web.EUnsupported},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ct := tc.ct
			if ct == "" {
				ct = "application/json"
			}
			_, err := decode(t, ct, tc.body)
			var e *web.Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v, want a *web.Error", err)
			}
			if e.Code != tc.code {
				t.Errorf("code = %q, want %q (%v)", e.Code, tc.code, e)
			}
			if tc.field != "" {
				if len(e.Fields) != 1 || e.Fields[0].Field != tc.field || e.Fields[0].Message != tc.fieldMsg {
					t.Errorf("fields = %+v, want %s %q", e.Fields, tc.field, tc.fieldMsg)
				}
			}
			if !strings.Contains(e.Message, tc.detailHas) {
				t.Errorf("message %q does not say %q", e.Message, tc.detailHas)
			}
		})
	}

	t.Run("too large maps to 413 and unsupported to 415", func(t *testing.T) {
		if s := web.Status(web.ETooLarge); s != http.StatusRequestEntityTooLarge {
			t.Errorf("ETooLarge status = %d", s)
		}
		if s := web.Status(web.EUnsupported); s != http.StatusUnsupportedMediaType {
			t.Errorf("EUnsupported status = %d", s)
		}
	})

	t.Run("the request type's own validation error is returned as is", func(t *testing.T) {
		_, err := decode(t, "application/json", `{"pitches":1}`)
		if err != errNoName {
			t.Errorf("err = %v, want the Validate error itself", err)
		}
	})
}

func quoteOrNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
