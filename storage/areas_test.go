package storage_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/crier-push/crier/internal/testenv"
	"github.com/crier-push/crier/storage"
)

// square is a small GeoJSON polygon south-west of (lon, lat).
func square(lon, lat float64) []byte {
	return fmt.Appendf(nil, `{"type":"Polygon","coordinates":[[[%g,%g],[%g,%g],[%g,%g],[%g,%g],[%g,%g]]]}`,
		lon-0.01, lat-0.01, lon, lat-0.01, lon, lat, lon-0.01, lat, lon-0.01, lat-0.01)
}

func codes(kv ...string) []storage.Geocode {
	var out []storage.Geocode
	for i := 0; i < len(kv); i += 2 {
		out = append(out, storage.Geocode{Name: kv[i], Value: kv[i+1]})
	}
	return out
}

// TestAreasByGeocode: areas are found by the codes they carry, names
// without case and values exactly, only in their own tenant; a new import
// replaces an area's codes.
func TestAreasByGeocode(t *testing.T) {
	t.Parallel()
	db := testenv.DB(t)
	ctx := context.Background()
	t1 := testenv.Tenant(t, db, "vestfold", "Vestfold", "")
	t2 := testenv.Tenant(t, db, "telemark", "Telemark", "")
	if err := db.ImportAreas(ctx, t1.ID, []storage.AreaInput{
		{Slug: "sandefjord", Name: "Sandefjord", GeoJSON: square(10.2, 59.1), Codes: codes("kommunenummer", "3907", "EMMA_ID", "NO809")},
		{Slug: "larvik", Name: "Larvik", GeoJSON: square(10.0, 59.0), Codes: codes("kommunenummer", "3909", "EMMA_ID", "NO809")},
		{Slug: "horten", Name: "Horten", GeoJSON: square(10.4, 59.4), Codes: codes("kommunenummer", "3901", "SAME", "1", "SAME", "2")},
		{Slug: "faerder", Name: "Færder", GeoJSON: square(10.4, 59.2)},
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.ImportAreas(ctx, t2.ID, []storage.AreaInput{
		{Slug: "sandefjord", Name: "Not Sandefjord", GeoJSON: square(9.6, 59.2), Codes: codes("kommunenummer", "3907")},
		{Slug: "skien", Name: "Skien", GeoJSON: square(9.6, 59.2), Codes: codes("kommunenummer", "4003")},
	}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		tenant int64
		codes  []storage.Geocode
		want   []string
	}{
		{"one code", t1.ID, codes("kommunenummer", "3907"), []string{"sandefjord"}},
		{"the name in another case", t1.ID, codes("KommuneNummer", "3907"), []string{"sandefjord"}},
		{"a code two areas carry", t1.ID, codes("emma_id", "NO809"), []string{"larvik", "sandefjord"}},
		{"the value in another case", t1.ID, codes("EMMA_ID", "no809"), nil},
		{"the value with a space", t1.ID, codes("kommunenummer", "3907 "), nil},
		{"the value under another name", t1.ID, codes("NUTS3", "3907"), nil},
		{"several codes: their union", t1.ID, codes("kommunenummer", "3901", "kommunenummer", "3909", "x", "y"), []string{"horten", "larvik"}},
		{"one of several values of a name", t1.ID, codes("SAME", "2"), []string{"horten"}},
		{"another tenant's code", t1.ID, codes("kommunenummer", "4003"), nil},
		{"the other tenant", t2.ID, codes("kommunenummer", "3907", "kommunenummer", "3909"), []string{"sandefjord"}},
		{"no codes", t1.ID, nil, nil},
	} {
		got, err := db.AreasByGeocode(ctx, tc.tenant, tc.codes)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}

	list, err := db.Areas(ctx, t1.ID)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]storage.Geocode{}
	for _, a := range list {
		got[a.Slug] = a.Codes
	}
	want := map[string][]storage.Geocode{
		"sandefjord": codes("EMMA_ID", "NO809", "kommunenummer", "3907"),
		"larvik":     codes("EMMA_ID", "NO809", "kommunenummer", "3909"),
		"horten":     codes("kommunenummer", "3901", "SAME", "1", "SAME", "2"),
		"faerder":    nil,
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("codes listed (-want +got):\n%s", diff)
	}

	// Importing an area again replaces its codes.
	if err := db.ImportAreas(ctx, t1.ID, []storage.AreaInput{
		{Slug: "sandefjord", Name: "Sandefjord", GeoJSON: square(10.2, 59.1), Codes: codes("kommunenummer", "3907")},
	}); err != nil {
		t.Fatal(err)
	}
	if got, err := db.AreasByGeocode(ctx, t1.ID, codes("EMMA_ID", "NO809")); err != nil || !cmp.Equal(got, []string{"larvik"}) {
		t.Errorf("after re-importing sandefjord without its EMMA_ID: %v, %v; want [larvik]", got, err)
	}
}
