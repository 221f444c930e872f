package web

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
)

// MaxBodyBytes is the default limit for a JSON request body.
const MaxBodyBytes = 64 << 10

// Validator is implemented by request types that check themselves.
type Validator interface {
	Validate() error
}

// Decode reads one JSON value from r's body into a T, rejecting unknown
// fields, trailing data, bodies over MaxBodyBytes and non-JSON media types.
// If T implements Validator, its Validate error is returned as is.
func Decode[T any](w http.ResponseWriter, r *http.Request) (T, error) {
	var v T
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return v, Errorf(EUnsupported, "the body must be application/json")
		}
	}
	body := http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return v, decodeError(err)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		if err != nil {
			if de := decodeError(err); ErrorCode(de) == ETooLarge {
				return v, de
			}
		}
		return v, Errorf(EInvalid, "the body must hold exactly one JSON value")
	}
	if val, ok := any(&v).(Validator); ok {
		if err := val.Validate(); err != nil {
			return v, err
		}
	}
	return v, nil
}

func decodeError(err error) error {
	var (
		syntax   *json.SyntaxError
		typ      *json.UnmarshalTypeError
		maxBytes *http.MaxBytesError
	)
	switch {
	case errors.As(err, &maxBytes):
		return Errorf(ETooLarge, "the body is larger than %d bytes", maxBytes.Limit)
	case errors.As(err, &syntax):
		return Errorf(EInvalid, "the body is not valid JSON (at byte %d)", syntax.Offset)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "(body)"
		}
		return &Error{Code: EInvalid, Message: "the request has invalid fields",
			Fields: []FieldError{{Field: field, Message: "must be " + jsonKind(typ.Type.Kind().String())}}}
	case errors.Is(err, io.EOF):
		return Errorf(EInvalid, "the body is empty")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return Errorf(EInvalid, "the body is truncated JSON")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return &Error{Code: EInvalid, Message: "the request has invalid fields",
			Fields: []FieldError{{Field: name, Message: "is not a known field"}}}
	default:
		return Errorf(EInvalid, "the body could not be read")
	}
}

// jsonKind names the JSON type a Go kind decodes from, with its article.
func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "slice", "array":
		return "an array"
	case "map", "struct":
		return "an object"
	default:
		return "a number"
	}
}

// JSON writes v as JSON with the status.
func JSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Problem is an RFC 9457 problem details body.
type Problem struct {
	Type     string       `json:"type"`
	Title    string       `json:"title"`
	Status   int          `json:"status"`
	Detail   string       `json:"detail,omitempty"`
	Instance string       `json:"instance,omitempty"`
	Code     string       `json:"code"`
	Errors   []FieldError `json:"errors,omitempty"`
	// RequestID lets a user quote the failing request to an operator.
	RequestID string `json:"request_id,omitempty"`
}

// WriteError writes err as application/problem+json. Errors without a code are
// logged with the request and reported as a bare 500: their text never
// reaches the client.
func WriteError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	var e *Error
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		// The client went away; nobody reads this answer. 499 is the
		// de-facto code for it (nginx), and keeps it out of the 5xx counts.
		log.DebugContext(r.Context(), "request cancelled by the client", "path", r.URL.Path, "request_id", RequestID(r.Context()))
		w.WriteHeader(499)
		return
	}
	if !errors.As(err, &e) {
		log.ErrorContext(r.Context(), "request failed", "err", err, "method", r.Method, "path", r.URL.Path, "request_id", RequestID(r.Context()))
		e = &Error{Code: EInternal, Message: "something went wrong on our side; please try again"}
	}
	status := Status(e.Code)
	p := Problem{
		Type:      "https://piazza.example/problems/" + e.Code,
		Title:     http.StatusText(status),
		Status:    status,
		Detail:    e.Message,
		Instance:  r.URL.Path,
		Code:      e.Code,
		Errors:    e.Fields,
		RequestID: RequestID(r.Context()),
	}
	if status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "1")
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(p)
}
