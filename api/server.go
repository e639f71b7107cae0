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
	// RequestTimeout is the deadline of every request's context (limits.go);
	// default DefaultRequestTimeout.
	RequestTimeout time.Duration
	// Previews is how many audience previews run at once; one past it
	// waits up to PreviewWait for a turn, then is answered 429 with
	// Retry-After. Defaults DefaultPreviews and DefaultPreviewWait.
	Previews    int
	PreviewWait time.Duration
	// Receipts takes the apps' receipts (receipts.go); nil: each request
	// writes its own. ReceiptRequests is how many receipt requests run at
	// once, default DefaultReceiptRequests.
	Receipts        ReceiptSink
	ReceiptRequests int
}

// Server serves the API.
type Server struct {
	db  *storage.DB
	pub *publish.Service
	log *slog.Logger
	cfg Config
	mux *http.ServeMux
	// previews holds a token for each preview running (limitPreviews).
	previews chan struct{}
}

// New makes the API server over the database (devices, areas, keys) and the
// publishing service (posts and alerts).
func New(db *storage.DB, pub *publish.Service, cfg Config) (*Server, error) {
	if db == nil || pub == nil {
		return nil, errors.New("api: a database and a publishing service are required")
	}
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Server{db: db, pub: pub, log: cfg.Logger, cfg: cfg, mux: http.NewServeMux(),
		previews: make(chan struct{}, cfg.Previews)}
	s.mux.Handle("PUT /v1/devices/{installation_id}", s.auth(crier.KeyApp, s.putDevice))
	s.mux.Handle("GET /v1/devices/{installation_id}", s.auth(crier.KeyApp, s.getDevice))
	s.mux.Handle("DELETE /v1/devices/{installation_id}", s.auth(crier.KeyApp, s.deleteDevice))
	s.mux.Handle("POST /v1/devices/{installation_id}/receipts", s.receiptsHandler())
	s.mux.Handle("GET /v1/devices/{installation_id}/deliveries", s.auth(crier.KeyApp, s.getDeliveries))
	s.mux.Handle("GET /v1/devices/{installation_id}/deliveries/{post}", s.auth(crier.KeyApp, s.getDelivery))
	s.mux.Handle("GET /v1/devices/{installation_id}/export", s.auth(crier.KeyApp, s.exportDevice))
	s.mux.Handle("GET /v1/devices/{installation_id}/posts/{post}", s.auth(crier.KeyApp, s.getDevicePost))
	s.mux.Handle("POST /v1/posts", s.auth(crier.KeyPublisher, s.createPost))
	s.mux.Handle("GET /v1/posts/{id}", s.auth(crier.KeyPublisher, s.getPost))
	s.mux.Handle("DELETE /v1/posts/{id}", s.auth(crier.KeyPublisher, s.cancelPost))
	s.mux.Handle("POST /v1/alerts", s.auth(crier.KeyPublisher, s.createAlert))
	s.mux.Handle("GET /v1/alerts/{id}", s.auth(crier.KeyPublisher, s.getAlert))
	s.mux.Handle("POST /v1/alerts/preview", s.limitPreviews(s.auth(crier.KeyPublisher, s.previewAlert)))
	s.mux.Handle("POST /v1/alerts/{id}/update", s.auth(crier.KeyPublisher, s.followUpAlert(crier.MsgUpdate)))
	s.mux.Handle("POST /v1/alerts/{id}/cancel", s.auth(crier.KeyPublisher, s.followUpAlert(crier.MsgCancel)))
	s.mux.Handle("POST /v1/alerts/{id}/approve", s.auth(crier.KeyPublisher, s.approveAlert))
	s.mux.Handle("GET /v1/test-devices", s.auth(crier.KeyPublisher, s.testDevices))
	s.mux.Handle("PUT /v1/test-devices", s.auth(crier.KeyPublisher, s.setTestDevices(true)))
	s.mux.Handle("DELETE /v1/test-devices", s.auth(crier.KeyPublisher, s.setTestDevices(false)))
	s.mux.Handle("POST /v1/audience/preview", s.limitPreviews(s.auth(crier.KeyPublisher, s.preview)))
	s.mux.Handle("PUT /v1/areas", s.auth(crier.KeyPublisher, s.putAreas))
	s.mux.Handle("GET /v1/areas", s.auth("", s.listAreas))
	s.mux.Handle("GET /v1/interests", s.auth("", s.listInterests))
	s.mux.Handle("PUT /v1/interests", s.auth(crier.KeyPublisher, s.putInterests))
	s.mux.Handle("PUT /v1/publishers/{slug}/interests", s.auth(crier.KeyPublisher, s.putGrants))
	s.mux.Handle("GET /v1/publishers/{slug}/limits", s.auth(crier.KeyPublisher, s.getLimits))
	s.mux.Handle("PUT /v1/publishers/{slug}/limits", s.auth(crier.KeyPublisher, s.putLimits))
	s.mux.Handle("GET /v1/keys", s.auth(crier.KeyPublisher, s.listKeys))
	s.mux.Handle("POST /v1/keys", s.auth(crier.KeyPublisher, s.createKey))
	s.mux.Handle("DELETE /v1/keys/{id}", s.auth(crier.KeyPublisher, s.revokeKey))
	s.mux.Handle("GET /v1/audit", s.auth(crier.KeyPublisher, s.getAudit))
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
	r, cancel := s.withDeadline(r)
	defer cancel()
	s.mux.ServeHTTP(w, withRequestID(w, r))
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

// ready is GET /readyz: {"status": "ok"} or, 503 with Retry-After,
// {"status": "failing"}, with each dependency's "ok" or "failing" in
// "checks".
func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	status, code, checks := "ok", http.StatusOK, map[string]string{}
	for name, p := range s.cfg.Ready {
		checks[name] = "ok"
		if err := p.Ping(ctx); err != nil {
			// The answer says what fails, never why: the error can name
			// hosts, users and addresses.
			s.log.Warn("readiness check failing", slog.String("dependency", name), slog.Any("error", err))
			checks[name] = "failing"
			status, code = "failing", http.StatusServiceUnavailable
		}
	}
	if code != http.StatusOK {
		w.Header().Set("Retry-After", "5")
	}
	writeJSON(w, code, map[string]any{"status": status, "checks": checks})
}
