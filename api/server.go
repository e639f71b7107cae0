// Package api is crier's HTTP API (/v1, JSON, bearer API keys): devices
// register their tokens and choices, publishers post, and anyone with the
// right key reads a post's delivery status. Handlers decode, call one
// service method (package publish for posts and alerts), and encode;
// errors map from the domain's codes in one table (errors.go).
package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/publish"
	"github.com/crier-push/crier/storage"
)

// Pinger is a dependency readiness can check.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Config tunes the API.
type Config struct {
	Logger *slog.Logger
	// Ready lists what /readyz checks, by name.
	Ready map[string]Pinger
}

// Server serves the API.
type Server struct {
	db  *storage.DB
	pub *publish.Service
	log *slog.Logger
	cfg Config
	mux *http.ServeMux
}

// New makes the API server over the database (devices, areas, keys) and the
// publishing service (posts and alerts).
func New(db *storage.DB, pub *publish.Service, cfg Config) (*Server, error) {
	if db == nil || pub == nil {
		return nil, errors.New("api: a database and a publishing service are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{db: db, pub: pub, log: cfg.Logger, cfg: cfg, mux: http.NewServeMux()}
	s.mux.Handle("PUT /v1/devices/{installation_id}", s.auth(crier.KeyApp, s.putDevice))
	s.mux.Handle("GET /v1/devices/{installation_id}", s.auth(crier.KeyApp, s.getDevice))
	s.mux.Handle("DELETE /v1/devices/{installation_id}", s.auth(crier.KeyApp, s.deleteDevice))
	s.mux.Handle("POST /v1/posts", s.auth(crier.KeyPublisher, s.createPost))
	s.mux.Handle("GET /v1/posts/{id}", s.auth(crier.KeyPublisher, s.getPost))
	s.mux.Handle("DELETE /v1/posts/{id}", s.auth(crier.KeyPublisher, s.cancelPost))
	s.mux.Handle("POST /v1/alerts", s.auth(crier.KeyPublisher, s.createAlert))
	s.mux.Handle("POST /v1/audience/preview", s.auth(crier.KeyPublisher, s.preview))
	s.mux.Handle("PUT /v1/areas", s.auth(crier.KeyPublisher, s.putAreas))
	s.mux.Handle("GET /v1/areas", s.auth("", s.listAreas))
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.mux.HandleFunc("GET /readyz", s.ready)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, crier.Errorf(crier.ENOTFOUND, "", "no such endpoint: %s %s", r.Method, r.URL.Path))
	})
	return s, nil
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

// principal is who the request speaks for, as auth found it.
func principal(ctx context.Context) crier.Principal {
	p, _ := ctx.Value(principalKey{}).(crier.Principal)
	return p
}

// auth checks the bearer key and that it is of the kind the endpoint needs
// ("" for any kind).
func (s *Server) auth(kind crier.KeyKind, h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, key, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(key) == "" {
			s.writeError(w, crier.Errorf(crier.EUNAUTHORIZED, "", "an Authorization: Bearer <api key> header is required"))
			return
		}
		p, err := s.db.Authenticate(r.Context(), strings.TrimSpace(key))
		if err != nil {
			s.writeError(w, err)
			return
		}
		if kind != "" && p.Kind != kind {
			s.writeError(w, crier.Forbidden("", "this endpoint needs a %s key, not a %s key", kind, p.Kind))
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
