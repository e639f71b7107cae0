package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/crier-push/crier/storage"
)

// Error is an API error as clients see it:
// {"error": {"code": ..., "message": ..., "field": ...}}.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

func (e *Error) Error() string {
	if e.Field != "" {
		return e.Field + ": " + e.Message
	}
	return e.Message
}

// invalid is a 400 naming the field and the reason.
func invalid(field, format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "invalid_request", Field: field, Message: fmt.Sprintf(format, args...)}
}

// forbidden is a 403.
func forbidden(field, format string, args ...any) *Error {
	return &Error{Status: http.StatusForbidden, Code: "forbidden", Field: field, Message: fmt.Sprintf(format, args...)}
}

// errUnavailable marks failures of a service we depend on; the client should
// come back later.
var errUnavailable = errors.New("service temporarily unavailable")

// codes maps domain errors to HTTP answers: the one table.
var codes = []struct {
	err    error
	status int
	code   string
}{
	{storage.ErrBadKey, http.StatusUnauthorized, "unauthorized"},
	{storage.ErrNotFound, http.StatusNotFound, "not_found"},
	{storage.ErrConflict, http.StatusConflict, "conflict"},
	{errUnavailable, http.StatusServiceUnavailable, "unavailable"},
	{context.DeadlineExceeded, http.StatusServiceUnavailable, "unavailable"},
}

// classify turns any error into the Error the client sees. Errors of no
// known kind are 500s, logged here with their detail and answered without it.
func classify(err error, log *slog.Logger) *Error {
	var ae *Error
	if errors.As(err, &ae) {
		return ae
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) || pgconn.Timeout(err) {
		err = fmt.Errorf("%w: %w", errUnavailable, err)
	}
	for _, c := range codes {
		if errors.Is(err, c.err) {
			msg := c.err.Error()
			if c.status == http.StatusNotFound || c.status == http.StatusConflict {
				msg = err.Error()
			}
			if c.status == http.StatusServiceUnavailable {
				log.Warn("dependency unavailable", slog.Any("error", err))
			}
			return &Error{Status: c.status, Code: c.code, Message: msg}
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
	if e.Status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "5")
	}
	if e.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="crier"`)
	}
	writeJSON(w, e.Status, map[string]*Error{"error": e})
}
