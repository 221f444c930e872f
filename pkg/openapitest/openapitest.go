// Package openapitest checks HTTP exchanges against an OpenAPI 3.1
// document in tests: every response must match the document, and a request
// the document rejects must not succeed. Services use it to keep their
// openapi.yaml and their handlers honest with each other.
//
// It is for tests only; it must never be linked into the piazza binary.
package openapitest

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
)

var (
	mu         sync.Mutex
	validators = map[[32]byte]validator.Validator{}
)

// Validator returns a validator for doc, built once per test binary; the
// test fails if doc is not a valid OpenAPI document.
func Validator(tb testing.TB, doc []byte) validator.Validator {
	tb.Helper()
	key := sha256.Sum256(doc)
	mu.Lock()
	defer mu.Unlock()
	if v, ok := validators[key]; ok {
		return v
	}
	d, err := libopenapi.NewDocument(doc)
	if err != nil {
		tb.Fatalf("openapi: %v", err)
	}
	v, errs := validator.NewValidator(d)
	if len(errs) > 0 {
		tb.Fatalf("openapi: %v", errs)
	}
	if ok, verrs := v.ValidateDocument(); !ok {
		tb.Fatalf("openapi: the document is not valid OpenAPI: %v", verrs)
	}
	validators[key] = v
	return v
}

// transport checks every exchange against the document.
type transport struct {
	tb testing.TB
	v  validator.Validator
	mu sync.Mutex // the validator is not documented as safe for concurrent use
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		var err error
		if body, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
		req.Body.Close()
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	respBody, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(respBody))

	check := req.Clone(req.Context())
	check.Body = io.NopCloser(bytes.NewReader(body))
	checkResp := *resp
	checkResp.Body = io.NopCloser(bytes.NewReader(respBody))
	t.mu.Lock()
	reqOK, reqErrs := t.v.ValidateHttpRequest(check)
	check.Body = io.NopCloser(bytes.NewReader(body))
	respOK, respErrs := t.v.ValidateHttpResponse(check, &checkResp)
	t.mu.Unlock()
	what := req.Method + " " + req.URL.Path
	if !respOK {
		t.tb.Errorf("openapi: the response to %s (%d) does not match the document:\n%s\nbody: %s", what, resp.StatusCode, describe(respErrs), respBody)
	}
	if !reqOK && resp.StatusCode < 400 {
		t.tb.Errorf("openapi: %s succeeded (%d) although the document rejects the request:\n%s", what, resp.StatusCode, describe(reqErrs))
	}
	return resp, nil
}

func describe[E interface{ Error() string }](errs []E) string {
	var b strings.Builder
	for _, e := range errs {
		fmt.Fprintf(&b, "  - %s\n", e.Error())
	}
	return b.String()
}

// Client returns an HTTP client whose every exchange is checked against doc.
func Client(tb testing.TB, doc []byte) *http.Client {
	tb.Helper()
	return &http.Client{Transport: &transport{tb: tb, v: Validator(tb, doc)}, Timeout: 30 * time.Second}
}
