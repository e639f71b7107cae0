package api

import (
	"bytes"
	"cmp"
	"context"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/internal/configcheck"
)

// Defaults of the Config's limits.
const (
	// DefaultRequestTimeout bounds a request from the end of its header to
	// its answer, body included: the API's work is a few short queries.
	DefaultRequestTimeout = 10 * time.Second
	// DefaultPreviews: a preview is a count that may test every device of a
	// tenant against a polygon of thousands of vertices, a CPU of the
	// database's while it runs. Two at once leave the database and the
	// API's pool to alerts and posts, whatever a publisher's console sends.
	DefaultPreviews = 2
	// DefaultPreviewWait is how long a preview past the limit waits for a
	// turn before it is refused: long enough to smooth a console's burst,
	// short enough that a refused client learns it at once.
	DefaultPreviewWait = time.Second
)

// WithDefaults fills in the zero fields.
func (c Config) WithDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.RequestTimeout = cmp.Or(c.RequestTimeout, DefaultRequestTimeout)
	c.Previews = cmp.Or(c.Previews, DefaultPreviews)
	c.PreviewWait = cmp.Or(c.PreviewWait, DefaultPreviewWait)
	return c
}

// validate refuses a config the API cannot run with, naming the field.
func (c Config) validate() error {
	return configcheck.First("api config",
		configcheck.NotNegative("RequestTimeout", c.RequestTimeout),
		configcheck.NotNegative("Previews", c.Previews),
		configcheck.NotNegative("PreviewWait", c.PreviewWait))
}

// withDeadline gives the request's context the API's deadline: a request
// that waits on a slow database is answered 503 when it passes, and its
// queries are abandoned (the API's pool also has a statement_timeout, which
// ends them in PostgreSQL).
func (s *Server) withDeadline(r *http.Request) (*http.Request, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	return r.WithContext(ctx), cancel
}

// limitPreviews lets at most cap(s.previews) requests through to h at
// once, their authentication included: waiting previews hold no database
// connection, so a flood of them cannot keep an alert from the pool. One
// past the limit waits up to PreviewWait for a turn, then is answered 429
// with Retry-After. The body is read before a turn is taken, so a client
// sending it slowly holds none.
func (s *Server) limitPreviews(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, err := readBody(w, r, maxRequestBody)
		if err != nil {
			s.writeError(w, err)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(raw))
		wait := time.NewTimer(s.cfg.PreviewWait)
		defer wait.Stop()
		select {
		case s.previews <- struct{}{}:
		case <-wait.C:
			s.tooManyPreviews(w)
			return
		case <-r.Context().Done():
			s.tooManyPreviews(w)
			return
		}
		defer func() { <-s.previews }()
		h.ServeHTTP(w, r)
	})
}

// tooManyPreviews answers a preview refused for want of a turn.
func (s *Server) tooManyPreviews(w http.ResponseWriter) {
	s.writeError(w, &crier.Error{Code: crier.ETOOMANY, RetryAfter: time.Second,
		Message: "too many audience previews at once; try again in a second"})
}
