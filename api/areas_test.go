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

// TestAPIAreaCodes: codes come in with PUT /v1/areas (the "codes" object
// and the code properties) and are shown by GET /v1/areas; a bad one is a
// 400 naming it.
func TestAPIAreaCodes(t *testing.T) {
	t.Parallel()
	s := newEnv(t)
	square := `"geometry":{"type":"Polygon","coordinates":[[[10,59],[10.1,59],[10.1,59.1],[10,59]]]}`
	body := `{"type":"FeatureCollection","features":[
		{"type":"Feature","properties":{"slug":"sandefjord","kommunenummer":"3907","fylke":"39","codes":{"EMMA_ID":"NO809","SAME":["1","2"]}},` + square + `},
		{"type":"Feature","properties":{"slug":"larvik"},` + square + `}]}`
	type area struct {
		Slug  string         `json:"slug"`
		Codes map[string]any `json:"codes"`
	}
	var put struct{ Areas []area }
	code, b := s.putRaw("/v1/areas", s.MuniKey, []byte(body))
	if err := json.Unmarshal(b, &put); code != http.StatusOK || err != nil {
		t.Fatalf("import: %d %s", code, b)
	}
	want := []area{
		{"sandefjord", map[string]any{"kommunenummer": "3907", "EMMA_ID": "NO809", "SAME": []any{"1", "2"}}},
		{"larvik", map[string]any{}},
	}
	if diff := cmp.Diff(want, put.Areas); diff != "" {
		t.Errorf("imported (-want +got):\n%s", diff)
	}
	var list struct{ Areas []area }
	if code := s.do("GET", "/v1/areas", s.AppKey, nil, &list); code != http.StatusOK {
		t.Fatalf("list: %d", code)
	}
	if diff := cmp.Diff([]area{want[1], want[0]}, list.Areas); diff != "" {
		t.Errorf("listed (-want +got):\n%s", diff)
	}

	// ?code_properties= names other properties; empty, none.
	put.Areas = nil
	code, b = s.putRaw("/v1/areas?code_properties=fylke,+kommunenummer", s.MuniKey, []byte(body))
	if err := json.Unmarshal(b, &put); code != http.StatusOK || err != nil ||
		!cmp.Equal(put.Areas[0].Codes, map[string]any{"fylke": "39", "kommunenummer": "3907", "EMMA_ID": "NO809", "SAME": []any{"1", "2"}}) {
		t.Errorf("code_properties=fylke,kommunenummer: %d %s", code, b)
	}
	put.Areas = nil // json.Unmarshal would merge into the old maps
	code, b = s.putRaw("/v1/areas?code_properties=", s.MuniKey, []byte(body))
	if err := json.Unmarshal(b, &put); code != http.StatusOK || err != nil ||
		!cmp.Equal(put.Areas[0].Codes, map[string]any{"EMMA_ID": "NO809", "SAME": []any{"1", "2"}}) {
		t.Errorf("code_properties=: %d %s", code, b)
	}

	for _, c := range []struct{ props, field string }{
		{`{"slug":"x","codes":["EMMA_ID"]}`, "features[0].properties.codes"},
		{`{"slug":"x","codes":{"EMMA_ID":{}}}`, "features[0].properties.codes.EMMA_ID"},
		{`{"slug":"x","codes":{"SAME":["1",""]}}`, "features[0].properties.codes.SAME[1]"},
		{`{"slug":"x","kommunenummer":true}`, "features[0].properties.kommunenummer"},
	} {
		var e struct {
			Error struct{ Code, Field, Message string }
		}
		code, b := s.putRaw("/v1/areas", s.MuniKey, []byte(`{"type":"FeatureCollection","features":[{"type":"Feature","properties":`+c.props+`,`+square+`}]}`))
		if err := json.Unmarshal(b, &e); err != nil || code != http.StatusBadRequest || e.Error.Field != c.field || e.Error.Message == "" {
			t.Errorf("%s: %d %s; want 400 naming %s", c.props, code, b, c.field)
		}
	}
}
