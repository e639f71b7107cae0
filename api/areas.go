package api

import (
	"net/http"

	"github.com/crier-push/crier/areas"
	"github.com/crier-push/crier/storage"
)

// maxAreasBody bounds an area import: all 357 Norwegian municipalities,
// simplified, are about 1.3 MB.
const maxAreasBody = 32 << 20

// putAreas imports a GeoJSON FeatureCollection as the tenant's areas
// (municipality only). ?slug_property= and ?name_property= name the feature
// properties to use (default slug and name). Areas of the same slug are
// replaced; others stay.
func (s *Server) putAreas(w http.ResponseWriter, r *http.Request) error {
	p := principal(r.Context())
	if err := p.MayManageAreas(); err != nil {
		return err
	}
	raw, err := readBody(w, r, maxAreasBody)
	if err != nil {
		return err
	}
	in, err := areas.Import(r.Context(), s.db, p.TenantID, raw, areas.Options{
		SlugProperty: r.URL.Query().Get("slug_property"), NameProperty: r.URL.Query().Get("name_property")})
	if err != nil {
		return err
	}
	s.audit(r, storage.AreasImported(p.TenantID, in))
	type areaJSON struct {
		Slug     string `json:"slug"`
		Name     string `json:"name"`
		Repaired bool   `json:"repaired,omitempty"`
	}
	out := make([]areaJSON, len(in))
	for i, a := range in {
		out[i] = areaJSON{Slug: a.Slug, Name: a.Name, Repaired: a.Repaired}
	}
	writeJSON(w, http.StatusOK, map[string]any{"imported": len(in), "areas": out})
	return nil
}

// listAreas lists the tenant's areas: apps show them to residents, and
// publishers target them.
func (s *Server) listAreas(w http.ResponseWriter, r *http.Request) error {
	list, err := s.db.Areas(r.Context(), principal(r.Context()).TenantID)
	if err != nil {
		return err
	}
	type areaJSON struct {
		Slug string `json:"slug"`
		Name string `json:"name"`
	}
	out := make([]areaJSON, len(list))
	for i, a := range list {
		out[i] = areaJSON{Slug: a.Slug, Name: a.Name}
	}
	writeJSON(w, http.StatusOK, map[string]any{"areas": out})
	return nil
}
