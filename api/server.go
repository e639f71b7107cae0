// Package api is crier's HTTP API (/v1, JSON, bearer API keys): devices
// register their tokens and choices, publishers post, and anyone with the
// right key reads a post's delivery status. Errors are mapped from domain
// errors in one table (errors.go).
package api

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"github.com/crier-push/crier/storage"
)

// Enqueuer puts tasks on asynq queues; *asynq.Client is one.
type Enqueuer interface {
	EnqueueContext(ctx context.Context, task *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error)
}

// Pinger is a dependency readiness can check.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Config tunes the API.
type Config struct {
	Logger *slog.Logger
	Now    func() time.Time
	// Ready lists what /readyz checks, by name.
	Ready map[string]Pinger
}

// Server serves the API.
type Server struct {
	db  *storage.DB
	enq Enqueuer
	log *slog.Logger
	now func() time.Time
	cfg Config
	mux *http.ServeMux
}

// New makes the API server.
func New(db *storage.DB, enq Enqueuer, cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{db: db, enq: enq, log: cfg.Logger, now: cfg.Now, cfg: cfg, mux: http.NewServeMux()}
	s.mux.Handle("PUT /v1/devices/{installation_id}", s.auth(storage.KeyApp, s.putDevice))
	s.mux.Handle("GET /v1/devices/{installation_id}", s.auth(storage.KeyApp, s.getDevice))
	s.mux.Handle("DELETE /v1/devices/{installation_id}", s.auth(storage.KeyApp, s.deleteDevice))
	s.mux.Handle("POST /v1/posts", s.auth(storage.KeyPublisher, s.createPost))
	s.mux.Handle("GET /v1/posts/{id}", s.auth(storage.KeyPublisher, s.getPost))
	s.mux.Handle("DELETE /v1/posts/{id}", s.auth(storage.KeyPublisher, s.cancelPost))
	s.mux.Handle("POST /v1/alerts", s.auth(storage.KeyPublisher, s.createAlert))
	s.mux.Handle("POST /v1/audience/preview", s.auth(storage.KeyPublisher, s.preview))
	s.mux.Handle("PUT /v1/areas", s.auth(storage.KeyPublisher, s.putAreas))
	s.mux.Handle("GET /v1/areas", s.auth("", s.listAreas))
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.mux.HandleFunc("GET /readyz", s.ready)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, &Error{Status: http.StatusNotFound, Code: "not_found", Message: "no such endpoint: " + r.Method + " " + r.URL.Path})
	})
	return s
}

// ServeHTTP serves the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			s.log.Error("panic in handler", slog.Any("panic", v), slog.String("path", r.URL.Path))
			s.writeError(w, &Error{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error"})
		}
	}()
	s.mux.ServeHTTP(w, r)
}

type principalKey struct{}

func principal(ctx context.Context) storage.Principal {
	p, _ := ctx.Value(principalKey{}).(storage.Principal)
	return p
}

// auth checks the bearer key and that it is of the kind the endpoint needs
// ("" for any kind).
func (s *Server) auth(kind string, h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, key, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(key) == "" {
			s.writeError(w, &Error{Status: http.StatusUnauthorized, Code: "unauthorized",
				Message: "an Authorization: Bearer <api key> header is required"})
			return
		}
		p, err := s.db.Authenticate(r.Context(), strings.TrimSpace(key))
		if err != nil {
			s.writeError(w, err)
			return
		}
		if kind != "" && p.Kind != kind {
			s.writeError(w, forbidden("", "this endpoint needs a %s key, not a %s key", kind, p.Kind))
			return
		}
		if err := h(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p))); err != nil {
			s.writeError(w, err)
		}
	})
}

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	status := map[string]string{}
	code := http.StatusOK
	for name, p := range s.cfg.Ready {
		if err := p.Ping(ctx); err != nil {
			status[name] = err.Error()
			code = http.StatusServiceUnavailable
		} else {
			status[name] = "ok"
		}
	}
	if code != http.StatusOK {
		w.Header().Set("Retry-After", "5")
	}
	writeJSON(w, code, status)
}
