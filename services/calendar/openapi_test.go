package calendar

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/localeurope/piazza/pkg/auth"
	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
)

var (
	specOnce      sync.Once
	specValidator validator.Validator
	specErr       error
)

// spec returns a validator for openapi.yaml, built once per test binary.
func spec(tb testing.TB) validator.Validator {
	tb.Helper()
	specOnce.Do(func() {
		doc, err := libopenapi.NewDocument(OpenAPI())
		if err != nil {
			specErr = err
			return
		}
		v, errs := validator.NewValidator(doc)
		if len(errs) > 0 {
			specErr = fmt.Errorf("%v", errs)
			return
		}
		if ok, verrs := v.ValidateDocument(); !ok {
			specErr = fmt.Errorf("openapi.yaml is not a valid OpenAPI document: %v", verrs)
			return
		}
		specValidator = v
	})
	if specErr != nil {
		tb.Fatalf("openapi: %v", specErr)
	}
	return specValidator
}

// specTransport checks every exchange against openapi.yaml: each response
// must match the document (status, content type, body schema), and a request
// the document rejects must not succeed.
type specTransport struct {
	tb testing.TB
	v  validator.Validator
	mu sync.Mutex // the validator is not documented as safe for concurrent use
}

func (t *specTransport) RoundTrip(req *http.Request) (*http.Response, error) {
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
		t.tb.Errorf("openapi: the response to %s (%d) does not match openapi.yaml:\n%s\nbody: %s", what, resp.StatusCode, describe(respErrs), respBody)
	}
	if !reqOK && resp.StatusCode < 400 {
		t.tb.Errorf("openapi: %s succeeded (%d) although openapi.yaml rejects the request:\n%s", what, resp.StatusCode, describe(reqErrs))
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

// specClient is an HTTP client whose every exchange is checked against
// openapi.yaml.
func specClient(tb testing.TB) *http.Client {
	tb.Helper()
	return &http.Client{Transport: &specTransport{tb: tb, v: spec(tb)}, Timeout: 30 * time.Second}
}

// testKey signs the tests' access tokens; startService's verifier trusts it.
var testKey = func() auth.Key {
	k, err := auth.KeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	if err != nil {
		panic(err)
	}
	return k
}()

// token returns an access token for p, valid for an hour.
func token(tb testing.TB, p auth.Principal) string {
	tb.Helper()
	tok, _, err := testKey.Sign(p, time.Now(), time.Hour)
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

func TestOpenAPIDocument(t *testing.T) {
	spec(t) // parses and validates as OpenAPI 3.1
	s := startService(t, time.Date(2026, 3, 20, 10, 0, 0, 0, time.UTC))
	resp, err := http.Get(s.URL + "/api/v1/calendar/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(got, OpenAPI()) {
		t.Fatalf("GET openapi.yaml = %d, %d bytes; want 200 and the document", resp.StatusCode, len(got))
	}
}
