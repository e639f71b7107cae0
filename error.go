package crier

import (
	"errors"
	"fmt"
	"time"
)

// Code classifies an Error; the API maps each code to an HTTP status in one
// table.
type Code string

// The error codes.
const (
	EINVALID      Code = "invalid_request"        // the input is wrong: Field says where
	EFORBIDDEN    Code = "forbidden"              // the principal may not do this
	ENOTFOUND     Code = "not_found"              // no such thing (in this tenant)
	ECONFLICT     Code = "conflict"               // it clashes with what is stored
	ETOOLARGE     Code = "too_large"              // the input is over its size limit
	EUNSUPPORTED  Code = "unsupported_media_type" // the input is in a format not read here
	EUNAVAILABLE  Code = "unavailable"            // a service crier needs is down: come back later
	EDELIVERED    Code = "already_delivered"      // nothing is left to cancel
	EUNAUTHORIZED Code = "unauthorized"           // no valid key
	ETOOMANY      Code = "too_many_requests"      // over a rate limit: Error.RetryAfter says when to come back
)

// Error is the one error type of crier's rules and parsers: a code, the
// field (a JSON path such as "segment.and[1].near.radius_m", or an XML
// path such as "alert.info[0].area"), and the reason.
type Error struct {
	Code    Code
	Field   string
	Message string
	// RetryAfter, for ETOOMANY and EUNAVAILABLE, is when to try again.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	if e.Field != "" {
		return e.Field + ": " + e.Message
	}
	return e.Message
}

// Errorf makes an Error.
func Errorf(code Code, field, format string, args ...any) *Error {
	return &Error{Code: code, Field: field, Message: fmt.Sprintf(format, args...)}
}

// Invalid is a refusal of bad input, naming the field and the reason.
func Invalid(field, format string, args ...any) *Error {
	return Errorf(EINVALID, field, format, args...)
}

// Forbidden is a refusal of something the principal may not do.
func Forbidden(field, format string, args ...any) *Error {
	return Errorf(EFORBIDDEN, field, format, args...)
}

// AsError finds the *Error in err's chain, nil if there is none.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}

// ErrorCode is the code of err's *Error, "" if it has none.
func ErrorCode(err error) Code {
	if e := AsError(err); e != nil {
		return e.Code
	}
	return ""
}
