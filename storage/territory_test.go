package storage_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"testing"
	"time"

	"github.com/crier-push/crier/areas"
	"github.com/crier-push/crier/internal/testenv"
	"github.com/crier-push/crier/segments"
	"github.com/crier-push/crier/storage"
)

// importKommuner imports a FeatureCollection of kommuner as the tenant's
// areas, slugs from the property given ("name": "Sandefjord" → sandefjord;
// across Norway names repeat, so "kommunenummer": 3907).
func importKommuner(t testing.TB, db *storage.DB, tenantID int64, path, slugProperty string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := areas.Import(context.Background(), db, tenantID, raw, areas.Options{SlugProperty: slugProperty, NameProperty: "name"}); err != nil {
		t.Fatalf("import %s: %v", path, err)
	}
}

const vestfold = "../demo/vestfold-kommuner-2024.geojson"

// rectKM2 is the area of a rectangle of straight longitude/latitude edges
// on the WGS84 spheroid, in closed form: a²/2 · Δλ · (q(φ2) − q(φ1)), q
// being the authalic latitude function (Snyder, Map Projections, 3-12).
func rectKM2(lon0, lat0, lon1, lat1 float64) float64 {
	const a, f = 6378137.0, 1 / 298.257223563
	e2 := f * (2 - f)
	e := math.Sqrt(e2)
	q := func(lat float64) float64 {
		s := math.Sin(lat * math.Pi / 180)
		return (1 - e2) * (s/(1-e2*s*s) + math.Atanh(e*s)/e)
	}
	return a * a / 2 * (lon1 - lon0) * math.Pi / 180 * (q(lat1) - q(lat0)) / 1e6
}

// capKM2 is the area of a spherical cap of radius r metres on the mean
// Earth sphere.
func capKM2(r float64) float64 {
	return 2 * math.Pi * segments.EarthRadius * segments.EarthRadius * (1 - math.Cos(r/segments.EarthRadius)) / 1e6
}

func rect(lon0, lat0, lon1, lat1 float64) string {
	return fmt.Sprintf(`{"within":{"type":"Polygon","coordinates":[[[%[1]g,%[2]g],[%[3]g,%[2]g],[%[3]g,%[4]g],[%[1]g,%[4]g],[%[1]g,%[2]g]]]}}`,
		lon0, lat0, lon1, lat1)
}

func near(lat, lon, r float64) string {
	return fmt.Sprintf(`{"near":{"lat":%g,"lon":%g,"radius_m":%g}}`, lat, lon, r)
}

func geometryOf(t testing.TB, seg string) storage.Geometry {
	t.Helper()
	e, err := segments.Parse([]byte(seg), segments.Options{})
	if err != nil {
		t.Fatalf("%s: %v", seg, err)
	}
	g, ok := storage.CompileGeometry(e)
	if !ok {
		t.Fatalf("%s bounds no place", seg)
	}
	return g
}

// close says whether got is within rel (a fraction) of want.
func approx(got, want, rel float64) bool { return math.Abs(got-want) <= rel*math.Abs(want) }

// TestAlertAreaAgainstTerritory: an alert's area is measured on the
// spheroid to within 0.5 % of a figure computed independently, and held
// against the union of the tenant's areas (the Vestfold kommuner): inside,
// across the coast, far away, along a neighbour's border, named; another
// tenant's areas are never this tenant's territory.
func TestAlertAreaAgainstTerritory(t *testing.T) {
	t.Parallel()
	db := testenv.DB(t)
	ctx := context.Background()
	vf := testenv.Tenant(t, db, "vestfold", "Vestfold", "Europe/Oslo")
	importKommuner(t, db, vf.ID, vestfold, "name")
	// A district inside Sandefjord: territory that overlaps itself, which
	// counts once.
	if _, err := db.PutArea(ctx, vf.ID, "andebu", "Andebu", []byte(
		`{"type":"Polygon","coordinates":[[[10.04,59.24],[10.11,59.24],[10.11,59.29],[10.04,59.29],[10.04,59.24]]]}`)); err != nil {
		t.Fatal(err)
	}
	oslo := testenv.Tenant(t, db, "oslo", "Oslo", "Europe/Oslo")
	if _, err := db.PutArea(ctx, oslo.ID, "sentrum", "Sentrum", []byte(
		`{"type":"Polygon","coordinates":[[[10.6,59.85],[10.9,59.85],[10.9,60.0],[10.6,60.0],[10.6,59.85]]]}`)); err != nil {
		t.Fatal(err)
	}
	bare := testenv.Tenant(t, db, "bare", "No areas", "Europe/Oslo")

	// Larvik as this tenant stores it, as an alert's polygon: it shares
	// its border with Sandefjord.
	var larvik string
	if err := db.Pool.QueryRow(ctx, `SELECT ST_AsGeoJSON(geom) FROM areas WHERE tenant_id = $1 AND slug = 'larvik'`,
		vf.ID).Scan(&larvik); err != nil {
		t.Fatal(err)
	}
	sandefjordOnly := testenv.Tenant(t, db, "sandefjord", "Sandefjord", "Europe/Oslo")
	var sandefjord string
	if err := db.Pool.QueryRow(ctx, `SELECT ST_AsGeoJSON(geom) FROM areas WHERE tenant_id = $1 AND slug = 'sandefjord'`,
		vf.ID).Scan(&sandefjord); err != nil {
		t.Fatal(err)
	}
	if _, err := db.PutArea(ctx, sandefjordOnly.ID, "sandefjord", "Sandefjord", []byte(sandefjord)); err != nil {
		t.Fatal(err)
	}

	inland := rectKM2(10.05, 59.25, 10.10, 59.28) // Andebu, Sandefjord
	acrossCoast := rectKM2(10.0, 58.9, 10.3, 59.1)
	tests := []struct {
		name   string
		tenant int64
		seg    string
		km2    float64 // want, within 0.5 %
		inside float64 // want, within 0.5 %; -1: strictly between 0 and km2
		has    bool
		in     bool
	}{
		{"polygon inside", vf.ID, rect(10.05, 59.25, 10.10, 59.28), inland, inland, true, true},
		{"polygon across the coast", vf.ID, rect(10.0, 58.9, 10.3, 59.1), acrossCoast, -1, true, true},
		{"polygon in Oslo", vf.ID, rect(10.70, 59.90, 10.80, 59.95), rectKM2(10.70, 59.90, 10.80, 59.95), 0, true, false},
		{"polygon at sea", vf.ID, rect(3.0, 57.0, 3.5, 57.3), rectKM2(3.0, 57.0, 3.5, 57.3), 0, true, false},
		{"circle inside", vf.ID, near(59.30, 10.40, 1000), capKM2(1000), capKM2(1000), true, true},
		{"circle in Oslo", vf.ID, near(59.91, 10.75, 5000), capKM2(5000), 0, true, false},
		{"large circle", vf.ID, near(59.2, 10.2, 100_000), capKM2(100_000), -1, true, true},
		{"two overlapping areas count once", vf.ID, `{"or":[` + rect(10.05, 59.25, 10.08, 59.28) + `,` + rect(10.07, 59.25, 10.10, 59.28) + `]}`,
			inland, inland, true, true},
		{"and is the intersection", vf.ID, `{"and":[` + rect(10.05, 59.25, 10.10, 59.28) + `,` + rect(10.07, 59.20, 10.20, 59.30) + `,{"feed":"x"}]}`,
			rectKM2(10.07, 59.25, 10.10, 59.28), rectKM2(10.07, 59.25, 10.10, 59.28), true, true},
		{"an unbounded member drops its arguments", vf.ID, `{"and":[{"or":[` + rect(3.0, 57.0, 3.5, 57.3) + `,{"interest":"x"}]},` + rect(10.05, 59.25, 10.10, 59.28) + `]}`,
			inland, inland, true, true},
		// Larvik's own polygon touches Sandefjord along their border and
		// nowhere else.
		{"the neighbour's polygon", sandefjordOnly.ID, `{"within":` + larvik + `}`, -1, 0, true, false},
		{"the tenant's own kommune", sandefjordOnly.ID, `{"within":` + sandefjord + `}`, -1, -2, true, true},
		{"named area", vf.ID, `{"area":"tonsberg"}`, -1, -2, true, true},
		{"another tenant's area name", oslo.ID, `{"area":"tonsberg"}`, 0, 0, true, false},
		{"Oslo for the Oslo tenant", oslo.ID, rect(10.70, 59.90, 10.80, 59.95), rectKM2(10.70, 59.90, 10.80, 59.95),
			rectKM2(10.70, 59.90, 10.80, 59.95), true, true},
		{"Sandefjord for the Oslo tenant", oslo.ID, rect(10.05, 59.25, 10.10, 59.28), inland, 0, true, false},
		{"a tenant without areas", bare.ID, rect(10.05, 59.25, 10.10, 59.28), inland, 0, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, err := db.AlertArea(ctx, tc.tenant, geometryOf(t, tc.seg), true)
			if err != nil {
				t.Fatal(err)
			}
			// The check alone answers the same, without the inside.
			check, err := db.AlertArea(ctx, tc.tenant, geometryOf(t, tc.seg), false)
			if err != nil {
				t.Fatal(err)
			}
			if want := (storage.AreaFacts{KM2: f.KM2, HasTerritory: f.HasTerritory, InTerritory: f.InTerritory}); check != want {
				t.Errorf("check alone: %+v, want %+v", check, want)
			}
			if f.HasTerritory != tc.has || f.InTerritory != tc.in {
				t.Errorf("has territory %v, in it %v; want %v, %v", f.HasTerritory, f.InTerritory, tc.has, tc.in)
			}
			switch {
			case tc.km2 >= 0 && !approx(f.KM2, tc.km2, 0.005):
				t.Errorf("%.4f km², want %.4f (±0.5 %%)", f.KM2, tc.km2)
			case tc.km2 < 0 && f.KM2 <= 1:
				t.Errorf("%.4f km², want more than 1", f.KM2)
			}
			switch {
			case tc.inside == -1 && !(f.InsideKM2 > 0.01*f.KM2 && f.InsideKM2 < 0.99*f.KM2):
				t.Errorf("%.4f km² inside of %.4f, want some but not all", f.InsideKM2, f.KM2)
			case tc.inside == -2 && !approx(f.InsideKM2, f.KM2, 1e-6):
				t.Errorf("%.4f km² inside, want all %.4f", f.InsideKM2, f.KM2)
			case tc.inside >= 0 && !approx(f.InsideKM2, tc.inside, 0.005) && math.Abs(f.InsideKM2-tc.inside) > 1e-9:
				t.Errorf("%.4f km² inside, want %.4f (±0.5 %%)", f.InsideKM2, tc.inside)
			}
		})
	}
}

// TestCompileGeometryUnbounded: expressions that bound no place have no
// geometry, and so no area to hold against the territory.
func TestCompileGeometryUnbounded(t *testing.T) {
	t.Parallel()
	for _, seg := range []string{
		`{"all":true}`, `{"feed":"x"}`, `{"not":` + rect(10.20, 59.12, 10.24, 59.14) + `}`,
		`{"or":[` + rect(10.20, 59.12, 10.24, 59.14) + `,{"platform":"ios"}]}`,
		`{"and":[{"feed":"x"},{"locale":"nb"}]}`,
	} {
		e, err := segments.Parse([]byte(seg), segments.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if g, ok := storage.CompileGeometry(e); ok {
			t.Errorf("%s: %q, want no geometry", seg, g.SQL)
		}
	}
}

// BenchmarkAlertArea measures the territory check, without and with the
// km² inside, with every Norwegian kommune (357, 1.2 MB of GeoJSON) as one
// tenant's territory, and with the six of Vestfold. Report: ms per check.
func BenchmarkAlertArea(b *testing.B) {
	db := testenv.DB(b)
	ctx := context.Background()
	norway := testenv.Tenant(b, db, "norway", "Norway", "Europe/Oslo")
	importKommuner(b, db, norway.ID, "../bench/no-kommuner-2024.geojson", "kommunenummer")
	vf := testenv.Tenant(b, db, "vestfold", "Vestfold", "Europe/Oslo")
	importKommuner(b, db, vf.ID, vestfold, "kommunenummer")
	if _, err := db.Pool.Exec(ctx, `ANALYZE areas`); err != nil {
		b.Fatal(err)
	}
	for _, tn := range []struct {
		name string
		id   int64
	}{{"norway", norway.ID}, {"vestfold", vf.ID}} {
		for _, c := range []struct{ name, seg string }{
			{"town polygon", rect(10.20, 59.12, 10.24, 59.14)},
			{"1km circle", near(59.267, 10.407, 1000)},
			{"Oslo polygon", rect(10.70, 59.90, 10.80, 59.95)},
			{"at sea", rect(3.0, 57.0, 3.5, 57.3)},
			{"named kommune", `{"area":"3907"}`},
			{"20km circle", near(59.2, 10.2, 20_000)},
			{"100km circle", near(59.2, 10.2, 100_000)},
		} {
			g := geometryOf(b, c.seg)
			for _, inside := range []bool{false, true} {
				name := tn.name + "/" + c.name + "/check"
				if inside {
					name += "+inside"
				}
				b.Run(name, func(b *testing.B) {
					for b.Loop() {
						if _, err := db.AlertArea(ctx, tn.id, g, inside); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64(b.Elapsed())/float64(b.N)/float64(time.Millisecond), "ms/check")
				})
			}
		}
	}
}
