package api

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/storage"
)

// Error is an API error as clients see it:
// {"error": {"code": ..., "message": ..., "field": ...}}.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
	// RetryAfter is the Retry-After header of a 429 or 503.
	RetryAfter time.Duration `json:"-"`
}

func (e *Error) Error() string {
	if e.Field != "" {
		return e.Field + ": " + e.Message
	}
	return e.Message
}

// statuses maps the domain's error codes to HTTP statuses: the one table.
var statuses = map[crier.Code]int{
	crier.EINVALID:      http.StatusBadRequest,
	crier.EFORBIDDEN:    http.StatusForbidden,
	crier.ENOTFOUND:     http.StatusNotFound,
	crier.ECONFLICT:     http.StatusConflict,
	crier.EDELIVERED:    http.StatusConflict,
	crier.ETOOLARGE:     http.StatusRequestEntityTooLarge,
	crier.EUNSUPPORTED:  http.StatusUnsupportedMediaType,
	crier.EUNAVAILABLE:  http.StatusServiceUnavailable,
	crier.EUNAUTHORIZED: http.StatusUnauthorized,
	crier.ETOOMANY:      http.StatusTooManyRequests,
}

// sentinels gives storage's errors their codes; the message of a not-found
// or a conflict says what was looked for, the others only what went wrong.
var sentinels = []struct {
	err    error
	code   crier.Code
	detail bool
}{
	{storage.ErrBadKey, crier.EUNAUTHORIZED, false},
	{storage.ErrNotFound, crier.ENOTFOUND, true},
	{storage.ErrConflict, crier.ECONFLICT, true},
	{storage.ErrUnavailable, crier.EUNAVAILABLE, false},
	{context.DeadlineExceeded, crier.EUNAVAILABLE, false},
}

// classify turns any error into the Error the client sees. Errors of no
// known kind are 500s, logged here with their detail and answered without it.
func classify(err error, log *slog.Logger) *Error {
	if e := crier.AsError(err); e != nil {
		return &Error{Status: statuses[e.Code], Code: string(e.Code), Field: e.Field, Message: e.Message, RetryAfter: e.RetryAfter}
	}
	for _, s := range sentinels {
		if errors.Is(err, s.err) {
			msg := s.err.Error()
			if s.detail {
				msg = err.Error()
			}
			if s.code == crier.EUNAVAILABLE {
				log.Warn("dependency unavailable", slog.Any("error", err))
			}
			return &Error{Status: statuses[s.code], Code: string(s.code), Message: msg}
		}
	}
	log.Error("internal error", slog.Any("error", err))
	return &Error{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error"}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v) //nolint:errcheck // the client went away
}

func (s *Server) writeError(w http.ResponseWriter, err error) {
	e := classify(err, s.log)
	switch {
	case e.RetryAfter > 0:
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(e.RetryAfter.Seconds()))))
	case e.Status == http.StatusServiceUnavailable || e.Status == http.StatusTooManyRequests:
		w.Header().Set("Retry-After", "5")
	}
	if e.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="crier"`)
	}
	writeJSON(w, e.Status, map[string]*Error{"error": e})
}
