package api

import (
	"net/http"

	"github.com/crier-push/crier/publish"
)

// listInterests is GET /v1/interests: the tenant's catalogue, for the app
// to offer and for publishers to tag posts with.
func (s *Server) listInterests(w http.ResponseWriter, r *http.Request) error {
	list, err := s.pub.Interests(r.Context(), principal(r.Context()))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"interests": list})
	return nil
}

// putInterests is PUT /v1/interests: the municipality replaces the
// catalogue.
func (s *Server) putInterests(w http.ResponseWriter, r *http.Request) error {
	var b struct {
		Interests []publish.Interest `json:"interests"`
	}
	if err := decode(w, r, &b); err != nil {
		return err
	}
	if err := s.pub.PutInterests(r.Context(), principal(r.Context()), b.Interests); err != nil {
		return err
	}
	return s.listInterests(w, r)
}

// putGrants is PUT /v1/publishers/{slug}/interests: the municipality sets
// the interests an organisation may tag its posts with.
func (s *Server) putGrants(w http.ResponseWriter, r *http.Request) error {
	var b struct {
		Interests []string `json:"interests"`
	}
	if err := decode(w, r, &b); err != nil {
		return err
	}
	slug := r.PathValue("slug")
	if err := s.pub.GrantInterests(r.Context(), principal(r.Context()), slug, b.Interests); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"publisher": slug, "interests": nonNil(b.Interests)})
	return nil
}
