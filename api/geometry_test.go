package api_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestGeometryReadAlikeOverHTTP: a polygon with the EPSG:4326 crs member,
// which area import took and segments refused before they shared one
// reader, is taken by area import, a post's target, a segment's within and
// a JSON alert's area alike; a projected crs is refused by each, naming
// the crs member.
func TestGeometryReadAlikeOverHTTP(t *testing.T) {
	t.Parallel()
	s := newEnv(t)
	s.feed(t, s.muni, "beredskap", "Beredskap", false)
	polygon := func(crs string) string {
		return `{"type":"Polygon","crs":{"type":"name","properties":{"name":"` + crs + `"}},` +
			`"coordinates":[[[10.2,59.1],[10.3,59.1],[10.3,59.2],[10.2,59.2],[10.2,59.1]]]}`
	}
	requests := []struct {
		name, method, path string
		body               func(geometry string) string
		ok                 int
		field              string // where the geometry is, in the refusal
	}{
		{"area import", "PUT", "/v1/areas", func(g string) string {
			return `{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"slug":"sentrum"},"geometry":` + g + `}]}`
		}, http.StatusOK, "features[0].geometry"},
		{"target", "POST", "/v1/posts", func(g string) string {
			return `{"feed":"beredskap","title":"Vann","body":"Stengt vann.","target":` + g + `}`
		}, http.StatusAccepted, "target"},
		{"within", "POST", "/v1/posts", func(g string) string {
			return `{"feed":"beredskap","title":"Vann","body":"Stengt vann.","segment":{"within":` + g + `}}`
		}, http.StatusAccepted, "segment.within"},
		{"alert", "POST", "/v1/alerts", func(g string) string {
			return `{"feed":"beredskap","title":"Flom","body":"Gå til høyereliggende områder.","area":` + g + `}`
		}, http.StatusAccepted, "area"},
	}
	for _, r := range requests {
		h := http.Header{"Authorization": {"Bearer " + s.MuniKey}, "Content-Type": {"application/json"}}
		for _, crs := range []string{"urn:ogc:def:crs:EPSG:4326", "urn:ogc:def:crs:EPSG::4326", "EPSG:4326"} {
			code, _, raw, err := s.send(r.method, r.path, h, r.body(polygon(crs)))
			if err != nil {
				t.Fatal(err)
			}
			if code != r.ok {
				t.Errorf("%s with crs %s: %d %s, want %d", r.name, crs, code, raw, r.ok)
			}
		}
		code, _, raw, err := s.send(r.method, r.path, h, r.body(polygon("EPSG:25832")))
		if err != nil {
			t.Fatal(err)
		}
		var e apiError
		if err := json.Unmarshal(raw, &e); err != nil {
			t.Fatalf("decode %q: %v", raw, err)
		}
		if code != http.StatusBadRequest || e.Error.Field != r.field+".crs" || !strings.Contains(e.Error.Message, "EPSG:25832") {
			t.Errorf("%s with a UTM crs: %d %s, want 400 naming %s.crs", r.name, code, raw, r.field)
		}
	}
}
