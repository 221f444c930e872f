package listings

import (
	"bytes"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/localeurope/piazza/pkg/auth"
	"github.com/localeurope/piazza/pkg/auth/authtest"
	"github.com/localeurope/piazza/pkg/openapitest"
)

// specClient is an HTTP client whose every exchange is checked against
// openapi.yaml: responses must match it, and a request it rejects must not
// succeed.
func specClient(tb testing.TB) *http.Client {
	tb.Helper()
	return openapitest.Client(tb, OpenAPI())
}

// testKey signs the tests' access tokens; startService's verifier trusts it.
var testKey = authtest.Key

// token returns an access token for p, valid for an hour.
func token(tb testing.TB, p auth.Principal) string {
	tb.Helper()
	return authtest.Token(tb, p)
}

func TestOpenAPIDocument(t *testing.T) {
	openapitest.Validator(t, OpenAPI()) // parses and validates as OpenAPI 3.1
	s := startService(t, time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC))
	c := specClient(t)
	for _, path := range []string{"/api/v1/listings/cities", "/api/v1/listings/cities/ghent", "/api/v1/listings/cities/ghent/today",
		"/api/v1/listings/cities/nowhere"} {
		resp, err := c.Get(s.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	resp, err := http.Get(s.URL + "/api/v1/listings/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(got, OpenAPI()) {
		t.Fatalf("GET openapi.yaml = %d, %d bytes; want 200 and the document", resp.StatusCode, len(got))
	}
}
