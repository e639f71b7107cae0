package api

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/storage"
)

// keyJSON is a key as GET /v1/keys shows it: never its hash.
type keyJSON struct {
	ID     int64         `json:"id"`
	Prefix string        `json:"prefix"`
	Kind   crier.KeyKind `json:"kind"`
	// Publisher is the slug of the publisher a publisher key speaks for.
	Publisher  string     `json:"publisher,omitempty"`
	Label      string     `json:"label"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	// RevokedAt in the future is a rotation's grace: the key works until
	// then.
	RevokedAt *time.Time `json:"revoked_at"`
}

func keyOut(k storage.Key) keyJSON {
	return keyJSON{ID: k.ID, Prefix: k.Prefix, Kind: k.Kind, Publisher: k.PublisherSlug, Label: k.Label,
		CreatedAt: k.CreatedAt, LastUsedAt: k.LastUsedAt, RevokedAt: k.RevokedAt}
}

// listKeys is GET /v1/keys: the tenant's keys, revoked ones too
// (municipality only).
func (s *Server) listKeys(w http.ResponseWriter, r *http.Request) error {
	p := principal(r.Context())
	if err := p.MayManageKeys(); err != nil {
		return err
	}
	keys, err := s.db.Keys(r.Context(), p.TenantID)
	if err != nil {
		return err
	}
	out := make([]keyJSON, len(keys))
	for i, k := range keys {
		out[i] = keyOut(k)
	}
	writeJSON(w, http.StatusOK, map[string]any{"keys": out})
	return nil
}

// keyRequest is the body of POST /v1/keys.
type keyRequest struct {
	// Kind is app or publisher; publisher when a publisher is named.
	Kind crier.KeyKind `json:"kind"`
	// Publisher is the slug of the publisher a publisher key speaks for:
	// the municipality itself or one of its organisations.
	Publisher string `json:"publisher"`
	Label     string `json:"label"`
}

// newKey reads what key the body asks for in the principal's tenant.
func (s *Server) newKey(r *http.Request, b keyRequest) (storage.NewKey, error) {
	p := principal(r.Context())
	k := storage.NewKey{TenantID: p.TenantID, Label: b.Label}
	switch {
	case b.Kind == crier.KeyApp && b.Publisher != "":
		return k, crier.Invalid("publisher", "an app key speaks for no publisher")
	case b.Kind == crier.KeyApp:
		return k, nil
	case b.Kind != "" && b.Kind != crier.KeyPublisher:
		return k, crier.Invalid("kind", "must be app or publisher, not %q", b.Kind)
	case b.Publisher == "":
		return k, crier.Invalid("publisher", "is required for a publisher key: the slug of the municipality or one of its organisations")
	}
	pub, err := s.db.PublisherBySlug(r.Context(), p.TenantID, b.Publisher)
	if errors.Is(err, storage.ErrNotFound) {
		return k, crier.Invalid("publisher", "unknown publisher %q", b.Publisher)
	}
	if err != nil {
		return k, err
	}
	k.PublisherID = &pub.ID
	return k, nil
}

// createKey is POST /v1/keys: a new key of the tenant (municipality only),
// answered once with the key itself (201); only its hash is kept.
func (s *Server) createKey(w http.ResponseWriter, r *http.Request) error {
	if err := principal(r.Context()).MayManageKeys(); err != nil {
		return err
	}
	var b keyRequest
	if err := decode(w, r, &b); err != nil {
		return err
	}
	nk, err := s.newKey(r, b)
	if err != nil {
		return err
	}
	k, secret, err := s.db.CreateKey(r.Context(), actor(r), nk)
	if err != nil {
		return err
	}
	// The answer holds the key itself: no cache may keep it.
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, struct {
		keyJSON
		Key string `json:"key"`
	}{keyOut(k), secret})
	return nil
}

// revokeKey is DELETE /v1/keys/{id}: the key is refused from now on, by
// every crier process (municipality only; not the key the request came
// with). Revoking a revoked key changes nothing and answers it as it is.
func (s *Server) revokeKey(w http.ResponseWriter, r *http.Request) error {
	p := principal(r.Context())
	if err := p.MayManageKeys(); err != nil {
		return err
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return crier.Invalid("id", "must be a key id")
	}
	if err := p.MayRevokeKey(id); err != nil {
		return err
	}
	k, err := s.db.RevokeKey(r.Context(), actor(r), p.TenantID, id, 0)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, keyOut(k))
	return nil
}
