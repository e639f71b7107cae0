package api_test

import (
	"encoding/json"
	"net/http"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// putRaw puts a GeoJSON body.
func (e *env) putRaw(path, key string, body []byte) (int, []byte) {
	e.t.Helper()
	h := http.Header{"Authorization": {"Bearer " + key}, "Content-Type": {"application/geo+json"}}
	code, _, raw, err := e.send("PUT", path, h, string(body))
	if err != nil {
		e.t.Fatal(err)
	}
	return code, raw
}

func TestAPIAreas(t *testing.T) {
	t.Parallel()
	s := newEnv(t)
	vestfold, err := os.ReadFile("../demo/vestfold-kommuner-2024.geojson")
	if err != nil {
		t.Fatal(err)
	}
	if code, b := s.putRaw("/v1/areas?slug_property=kommunenavn&name_property=kommunenavn", s.OrgKey, vestfold); code != http.StatusForbidden {
		t.Errorf("organisation importing areas: %d %s, want 403", code, b)
	}
	if code, b := s.putRaw("/v1/areas?slug_property=kommunenavn&name_property=kommunenavn", s.MuniKey, vestfold); code != http.StatusOK {
		t.Fatalf("import: %d %s", code, b)
	}
	var list struct {
		Areas []struct{ Slug, Name string }
	}
	if code := s.do("GET", "/v1/areas", s.AppKey, nil, &list); code != http.StatusOK {
		t.Fatalf("list: %d", code)
	}
	var slugs []string
	for _, a := range list.Areas {
		slugs = append(slugs, a.Slug)
	}
	if diff := cmp.Diff([]string{"faerder", "holmestrand", "horten", "larvik", "sandefjord", "tonsberg"}, slugs); diff != "" {
		t.Errorf("areas (-want +got):\n%s", diff)
	}

	bad := []struct {
		name, body, field string
	}{
		{"not json", `{`, "$"},
		{"a line", `{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"slug":"x"},"geometry":{"type":"LineString","coordinates":[[10,59],[11,59]]}}]}`, "features[0].geometry.type"},
		{"projected", `{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"slug":"x"},"geometry":{"type":"Polygon","coordinates":[[[570000,6550000],[571000,6550000],[571000,6551000],[570000,6550000]]]}}]}`, "features[0].geometry.coordinates[0][0][0]"},
		{"no slug", `{"type":"FeatureCollection","features":[{"type":"Feature","properties":{},"geometry":{"type":"Polygon","coordinates":[[[10,59],[11,59],[11,60],[10,59]]]}}]}`, "features[0].properties.slug"},
		{"flat", `{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"slug":"x"},"geometry":{"type":"Polygon","coordinates":[[[10,59],[10.5,59],[11,59],[10,59]]]}}]}`, "features[0].geometry"},
	}
	for _, c := range bad {
		var e struct {
			Error struct{ Code, Field, Message string }
		}
		code, b := s.putRaw("/v1/areas", s.MuniKey, []byte(c.body))
		if err := json.Unmarshal(b, &e); err != nil || code != http.StatusBadRequest || e.Error.Field != c.field || e.Error.Message == "" {
			t.Errorf("%s: %d %s; want 400 naming %s", c.name, code, b, c.field)
		}
	}
}
