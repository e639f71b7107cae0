package geojson

import (
	"errors"
	"os"
	"testing"

	"github.com/crier-push/crier"
	"github.com/google/go-cmp/cmp"
)

func TestParseGeometryRejections(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, in string
		want     crier.Error
	}{
		{"not an object", `[1]`, crier.Error{Code: crier.EINVALID, Field: "g", Message: "must be a GeoJSON Polygon or MultiPolygon geometry, not an array"}},
		{"point", `{"type":"Point","coordinates":[10,59]}`, crier.Error{Code: crier.EINVALID, Field: "g.type", Message: `must be "Polygon" or "MultiPolygon", not "Point"`}},
		{"no type", `{"coordinates":[]}`, crier.Error{Code: crier.EINVALID, Field: "g.type", Message: `is required: "Polygon" or "MultiPolygon"`}},
		{"no coordinates", `{"type":"Polygon"}`, crier.Error{Code: crier.EINVALID, Field: "g.coordinates", Message: "is required"}},
		{"short ring", `{"type":"Polygon","coordinates":[[[10,59],[11,59],[10,59]]]}`, crier.Error{Code: crier.EINVALID, Field: "g.coordinates[0]", Message: "must have at least 4 positions, has 3"}},
		{"open ring", `{"type":"Polygon","coordinates":[[[10,59],[11,59],[11,60],[10,60]]]}`, crier.Error{Code: crier.EINVALID, Field: "g.coordinates[0]", Message: "must be closed: the last position must equal the first"}},
		{"projected", `{"type":"Polygon","coordinates":[[[570000,6550000],[571000,6550000],[571000,6551000],[570000,6550000]]]}`,
			crier.Error{Code: crier.EINVALID, Field: "g.coordinates[0][0][0]", Message: "longitude 570000 is outside -180..180; projected coordinates such as UTM must be reprojected to WGS84 (EPSG:4326)"}},
		{"utm crs", `{"type":"Polygon","crs":{"type":"name","properties":{"name":"EPSG:25832"}},"coordinates":[[[10,59],[11,59],[11,60],[10,59]]]}`,
			crier.Error{Code: crier.EINVALID, Field: "g.crs", Message: `coordinates must be WGS84 longitude/latitude (CRS84 or EPSG:4326), not "EPSG:25832"; reproject the file first (e.g. ogr2ogr -t_srs EPSG:4326)`}},
		{"empty multi", `{"type":"MultiPolygon","coordinates":[]}`, crier.Error{Code: crier.EINVALID, Field: "g.coordinates", Message: "must be a non-empty array of polygons"}},
		{"bad position", `{"type":"MultiPolygon","coordinates":[[[[10,59],[11],[11,60],[10,59]]]]}`, crier.Error{Code: crier.EINVALID, Field: "g.coordinates[0][0][1]", Message: "must be a position [longitude, latitude] (or [longitude, latitude, altitude])"}},
		{"unknown member", `{"type":"Polygon","coordinates":[[[10,59],[11,59],[11,60],[10,59]]],"radius":3}`, crier.Error{Code: crier.EINVALID, Field: "g.radius", Message: "unknown key; want type and coordinates"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseGeometry([]byte(c.in), "g")
			var ge *crier.Error
			if !errors.As(err, &ge) {
				t.Fatalf("error %v: want *crier.Error", err)
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
	want := MultiPolygon{{{{Lon: 10, Lat: 59}, {Lon: 11, Lat: 59}, {Lon: 11, Lat: 60}, {Lon: 10, Lat: 59}}}}
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
	var ge *crier.Error
	if !errors.As(err, &ge) || ge.Field != "features[1].geometry.type" {
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
			var ge *crier.Error
			if !errors.As(err, &ge) || ge.Field == "" || ge.Message == "" {
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
