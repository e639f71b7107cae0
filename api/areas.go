package api

import (
	"net/http"
	"strings"

	"github.com/crier-push/crier/areas"
	"github.com/crier-push/crier/storage"
)

// maxAreasBody bounds an area import: all 357 Norwegian municipalities,
// simplified, are about 1.3 MB.
const maxAreasBody = 32 << 20

// areaJSON is an area as the API shows it.
type areaJSON struct {
	Slug     string         `json:"slug"`
	Name     string         `json:"name"`
	Codes    map[string]any `json:"codes"`
	Repaired bool           `json:"repaired,omitempty"`
}

// codesJSON shows codes as they are imported: {"EMMA_ID": "NO123"}, a
// list where a name has several values.
func codesJSON(codes []storage.Geocode) map[string]any {
	out := make(map[string]any, len(codes))
	for _, c := range codes {
		switch v := out[c.Name].(type) {
		case nil:
			out[c.Name] = c.Value
		case string:
			out[c.Name] = []string{v, c.Value}
		case []string:
			out[c.Name] = append(v, c.Value)
		}
	}
	return out
}

// putAreas imports a GeoJSON FeatureCollection as the tenant's areas
// (municipality only). ?slug_property= and ?name_property= name the feature
// properties to use (default slug and name); ?code_properties= the
// properties that are codes besides the "codes" object (comma-separated,
// default kommunenummer). Areas of the same slug are replaced; others stay.
func (s *Server) putAreas(w http.ResponseWriter, r *http.Request) error {
	p := principal(r.Context())
	if err := p.MayManageAreas(); err != nil {
		return err
	}
	raw, err := readBody(w, r, maxAreasBody)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	opt := areas.Options{SlugProperty: q.Get("slug_property"), NameProperty: q.Get("name_property")}
	if q.Has("code_properties") {
		opt.CodeProperties = []string{}
		for _, c := range strings.Split(q.Get("code_properties"), ",") {
			if c = strings.TrimSpace(c); c != "" {
				opt.CodeProperties = append(opt.CodeProperties, c)
			}
		}
	}
	in, err := areas.Import(r.Context(), s.db, p.TenantID, raw, opt)
	if err != nil {
		return err
	}
	s.audit(r, storage.AreasImported(p.TenantID, in))
	out := make([]areaJSON, len(in))
	for i, a := range in {
		out[i] = areaJSON{Slug: a.Slug, Name: a.Name, Codes: codesJSON(a.Codes), Repaired: a.Repaired}
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
	out := make([]areaJSON, len(list))
	for i, a := range list {
		out[i] = areaJSON{Slug: a.Slug, Name: a.Name, Codes: codesJSON(a.Codes)}
	}
	writeJSON(w, http.StatusOK, map[string]any{"areas": out})
	return nil
}
