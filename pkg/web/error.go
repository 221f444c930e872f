package web

import (
	"errors"
	"fmt"
	"net/http"
)

// Error codes. Each maps to exactly one HTTP status in Status.
const (
	EInvalid      = "invalid"      // the request is malformed or fails validation
	ENotFound     = "not_found"    // the resource does not exist (or is not visible to the caller)
	EConflict     = "conflict"     // the request conflicts with the current state
	EUnauthorized = "unauthorized" // no or bad credentials
	EForbidden    = "forbidden"    // credentials are fine, the action is not allowed
	ETooLarge     = "too_large"    // the body is larger than allowed
	EUnsupported  = "unsupported"  // wrong media type
	ETooMany      = "rate_limited" // slow down
	EUnavailable  = "unavailable"  // a dependency is down; try again
	EInternal     = "internal"     // a bug or an unexpected failure; never shows details
)

// Error is the one error type that carries a code a client can act on. Domain
// code returns it (directly or wrapped); WriteError turns it into problem+json.
type Error struct {
	Code    string
	Message string
	Fields  []FieldError
}

// FieldError names one invalid field of a request.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

func (e *Error) Error() string {
	if len(e.Fields) > 0 {
		return fmt.Sprintf("%s: %s (%d field errors)", e.Code, e.Message, len(e.Fields))
	}
	return e.Code + ": " + e.Message
}

// Errorf returns an *Error with the code and a formatted message that is safe
// to show to a client.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Fields collects field errors while validating; Err returns nil when empty.
type Fields []FieldError

// Add records a field error.
func (f *Fields) Add(field, format string, args ...any) {
	*f = append(*f, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

// Err returns an EInvalid *Error holding the field errors, or nil.
func (f Fields) Err() error {
	if len(f) == 0 {
		return nil
	}
	return &Error{Code: EInvalid, Message: "the request has invalid fields", Fields: f}
}

// ErrorCode returns the code of the first *Error in err's chain, or EInternal.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EInternal
}

// Status maps an error code to its HTTP status. It is the only place that does.
func Status(code string) int {
	switch code {
	case EInvalid:
		return http.StatusUnprocessableEntity
	case ENotFound:
		return http.StatusNotFound
	case EConflict:
		return http.StatusConflict
	case EUnauthorized:
		return http.StatusUnauthorized
	case EForbidden:
		return http.StatusForbidden
	case ETooLarge:
		return http.StatusRequestEntityTooLarge
	case EUnsupported:
		return http.StatusUnsupportedMediaType
	case ETooMany:
		return http.StatusTooManyRequests
	case EUnavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}
