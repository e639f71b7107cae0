package geojson

import (
	"errors"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseGeometryRejections(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, in string
		want     Error
	}{
		{"not an object", `[1]`, Error{"g", "must be a GeoJSON Polygon or MultiPolygon object: not a JSON object but array"}},
		{"point", `{"type":"Point","coordinates":[10,59]}`, Error{"g.type", `must be Polygon or MultiPolygon, not "Point"`}},
		{"no type", `{"coordinates":[]}`, Error{"g.type", "is required: Polygon or MultiPolygon"}},
		{"no coordinates", `{"type":"Polygon"}`, Error{"g.coordinates", "is required"}},
		{"short ring", `{"type":"Polygon","coordinates":[[[10,59],[11,59],[10,59]]]}`, Error{"g.coordinates[0]", "a ring needs at least 4 positions, has 3"}},
		{"open ring", `{"type":"Polygon","coordinates":[[[10,59],[11,59],[11,60],[10,60]]]}`, Error{"g.coordinates[0]", "a ring must end where it starts"}},
		{"projected", `{"type":"Polygon","coordinates":[[[570000,6550000],[571000,6550000],[571000,6551000],[570000,6550000]]]}`,
			Error{"g.coordinates[0][0]", "[570000, 6.55e+06] is not a WGS84 [lon, lat] position (lon within ±180, lat within ±90); projected coordinates such as UTM must be reprojected to EPSG:4326"}},
		{"utm crs", `{"type":"Polygon","crs":{"type":"name","properties":{"name":"EPSG:25832"}},"coordinates":[[[10,59],[11,59],[11,60],[10,59]]]}`,
			Error{"g.crs", `coordinates must be WGS84 longitude/latitude (CRS84 or EPSG:4326), not "EPSG:25832"; reproject the file first (e.g. ogr2ogr -t_srs EPSG:4326)`}},
		{"empty multi", `{"type":"MultiPolygon","coordinates":[]}`, Error{"g.coordinates", "must hold at least one polygon"}},
		{"bad position", `{"type":"MultiPolygon","coordinates":[[[[10,59],[11],[11,60],[10,59]]]]}`, Error{"g.coordinates[0][0][1]", "a position is [lon, lat] (or [lon, lat, alt])"}},
		{"unknown member", `{"type":"Polygon","coordinates":[[[10,59],[11,59],[11,60],[10,59]]],"radius":3}`, Error{"g", `must be a GeoJSON Polygon or MultiPolygon object: unknown field "radius"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseGeometry([]byte(c.in), "g")
			var ge *Error
			if !errors.As(err, &ge) {
				t.Fatalf("error %v: want *Error", err)
			}
			if diff := cmp.Diff(c.want, *ge); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseGeometryPolygon(t *testing.T) {
	t.Parallel()
	m, err := ParseGeometry([]byte(`{"type":"Polygon","coordinates":[[[10,59,0],[11,59,0],[11,60,0],[10,59,0]]]}`), "g")
	if err != nil {
		t.Fatal(err)
	}
	want := MultiPolygon{{{{10, 59}, {11, 59}, {11, 60}, {10, 59}}}}
	if diff := cmp.Diff(want, m); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if got := string(m.JSON()); got != `{"type":"MultiPolygon","coordinates":[[[[10,59],[11,59],[11,60],[10,59]]]]}` {
		t.Errorf("JSON %s", got)
	}
}

func TestParseNorwegianMunicipalities(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../bench/no-kommuner-2024.geojson")
	if err != nil {
		t.Fatal(err)
	}
	fs, err := ParseFeatureCollection(raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 357 {
		t.Fatalf("%d features, want 357", len(fs))
	}
	if fs[0].Properties["kommunenummer"] == nil {
		t.Errorf("properties of the first feature: %v", fs[0].Properties)
	}
}

func TestParseFeatureCollectionNamesTheFeature(t *testing.T) {
	t.Parallel()
	in := `{"type":"FeatureCollection","features":[
		{"type":"Feature","properties":{"name":"a"},"geometry":{"type":"Polygon","coordinates":[[[10,59],[11,59],[11,60],[10,59]]]}},
		{"type":"Feature","properties":{"name":"b"},"geometry":{"type":"LineString","coordinates":[[10,59],[11,59]]}}]}`
	_, err := ParseFeatureCollection([]byte(in))
	var ge *Error
	if !errors.As(err, &ge) || ge.Path != "features[1].geometry.type" {
		t.Fatalf("error %v: want one naming features[1].geometry.type", err)
	}
}

func FuzzParseFeatureCollection(f *testing.F) {
	f.Add([]byte(`{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"name":"a"},"geometry":{"type":"Polygon","coordinates":[[[10,59],[11,59],[11,60],[10,59]]]}}]}`))
	f.Add([]byte(`{"type":"FeatureCollection","crs":{"type":"name","properties":{"name":"EPSG:25832"}},"features":[]}`))
	f.Add([]byte(`{"type":"MultiPolygon","coordinates":[[[[10,59],[11,59],[11,60],[10,59]]]]}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		fs, err := ParseFeatureCollection(raw)
		if err != nil {
			var ge *Error
			if !errors.As(err, &ge) || ge.Path == "" || ge.Message == "" {
				t.Fatalf("rejection %v is not a clear *Error", err)
			}
			return
		}
		for _, f := range fs {
			if _, err := ParseGeometry(f.Geometry.JSON(), "g"); err != nil {
				t.Fatalf("a parsed geometry does not parse again: %v", err)
			}
		}
	})
}
