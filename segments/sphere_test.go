package segments_test

import (
	"context"
	"encoding/json"
	"math"
	"testing"

	"github.com/crier-push/crier/internal/testenv"
	"github.com/crier-push/crier/segments"
)

// box is a rectangle of dLon by dLat degrees with its south-west corner at
// lon, lat.
func box(lon, lat, dLon, dLat float64) segments.Ring {
	return rectRing(lon, lat, lon+dLon, lat+dLat)
}

// TestPolygonAreaAgainstPostGIS holds the areas the geography floor is
// decided on to PostGIS: for small polygons ST_Area(geography) itself, on
// the WGS84 ellipsoid with geodesic edges; for large ones, whose straight
// longitude/latitude edges (the ones within means) are no geodesics, the
// same polygon densified in longitude/latitude first.
func TestPolygonAreaAgainstPostGIS(t *testing.T) {
	t.Parallel()
	db := testenv.DB(t)
	tests := []struct {
		name      string
		p         segments.Polygon
		densify   bool
		tolerance float64 // relative
	}{
		{"0.01 degree square in Vestfold", segments.Polygon{box(10.2, 59.1, 0.01, 0.01)}, false, 0.001},
		{"just under 0.5 km²", segments.Polygon{box(10.2, 59.1, 0.0122, 0.0063)}, false, 0.001},
		{"just over 0.5 km²", segments.Polygon{box(10.2, 59.1, 0.0125, 0.0065)}, false, 0.001},
		{"triangle on the equator", segments.Polygon{{{Lon: 0, Lat: 0}, {Lon: 0.01, Lat: 0}, {Lon: 0, Lat: 0.01}, {Lon: 0, Lat: 0}}}, false, 0.001},
		{"Svalbard", segments.Polygon{box(15.6, 78.2, 0.05, 0.01)}, false, 0.001},
		{"south, clockwise", segments.Polygon{{{Lon: 18.4, Lat: -33.9}, {Lon: 18.4, Lat: -33.89}, {Lon: 18.42, Lat: -33.89}, {Lon: 18.4, Lat: -33.9}}}, false, 0.001},
		{"with a hole", segments.Polygon{box(10.2, 59.1, 0.02, 0.01), box(10.205, 59.102, 0.005, 0.004)}, false, 0.001},
		{"one degree square", segments.Polygon{box(10, 59, 1, 1)}, true, 0.0001},
		{"long sliver", segments.Polygon{{{Lon: 5, Lat: 58}, {Lon: 12, Lat: 64}, {Lon: 12, Lat: 64.001}, {Lon: 5, Lat: 58}}}, true, 0.0001},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g, err := json.Marshal(map[string]any{"type": "Polygon", "coordinates": tt.p})
			if err != nil {
				t.Fatal(err)
			}
			q := `SELECT ST_Area(ST_GeomFromGeoJSON($1)::geography)`
			if tt.densify {
				q = `SELECT ST_Area(ST_Segmentize(ST_GeomFromGeoJSON($1), 0.0005)::geography)`
			}
			var want float64
			if err := db.Pool.QueryRow(context.Background(), q, string(g)).Scan(&want); err != nil {
				t.Fatal(err)
			}
			got := segments.PolygonArea(tt.p)
			if math.Abs(got-want) > tt.tolerance*want {
				t.Errorf("area %.1f m², PostGIS %.1f m² (%+.4f %%)", got, want, 100*(got-want)/want)
			}
			t.Logf("area %.1f m², PostGIS %.1f m² (%+.5f %%)", got, want, 100*(got-want)/want)
		})
	}
}
