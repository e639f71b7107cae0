package areas

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/internal/testenv"
)

func TestSlugify(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"Færder": "faerder", "Tønsberg": "tonsberg", "Nord-Fron": "nord-fron", "3907": "3907",
		"  Bø i  Telemark ": "bo-i-telemark", "Våler (Østfold)": "valer-ostfold", "!!!": "", "Guovdageaidnu - Kautokeino": "guovdageaidnu-kautokeino",
	} {
		if got := Slugify(in); got != want {
			t.Errorf("Slugify(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestImportNorwegianMunicipalities imports all 357 real borders as one
// tenant's areas: every one is stored as a valid MultiPolygon.
func TestImportNorwegianMunicipalities(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../bench/no-kommuner-2024.geojson")
	if err != nil {
		t.Fatal(err)
	}
	db := testenv.DB(t)
	ctx := context.Background()
	tn := testenv.Tenant(t, db, "norge", "Norge", "")
	in, err := Import(ctx, db, tn.ID, raw, Options{SlugProperty: "kommunenummer", NameProperty: "kommunenavn"})
	if err != nil {
		t.Fatal(err)
	}
	if len(in) != 357 {
		t.Fatalf("imported %d, want 357", len(in))
	}
	var n, valid int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE ST_IsValid(geom) AND NOT ST_IsEmpty(geom))
		FROM areas WHERE tenant_id = $1`, tn.ID).Scan(&n, &valid); err != nil {
		t.Fatal(err)
	}
	if n != 357 || valid != 357 {
		t.Errorf("%d areas stored, %d valid; want 357 and 357", n, valid)
	}
	var name string
	if err := db.Pool.QueryRow(ctx, `SELECT name FROM areas WHERE tenant_id = $1 AND slug = '3907'`, tn.ID).Scan(&name); err != nil || name != "Sandefjord" {
		t.Errorf("area 3907: %q, %v", name, err)
	}
	// Importing again replaces, it does not duplicate.
	if _, err := Import(ctx, db, tn.ID, raw, Options{SlugProperty: "kommunenummer", NameProperty: "kommunenavn"}); err != nil {
		t.Fatal(err)
	}
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM areas WHERE tenant_id = $1`, tn.ID).Scan(&n); err != nil || n != 357 {
		t.Errorf("after a second import: %d areas, %v", n, err)
	}
}

func TestImportRepairsOrRejects(t *testing.T) {
	t.Parallel()
	db := testenv.DB(t)
	ctx := context.Background()
	tn := testenv.Tenant(t, db, "t", "T", "")
	// A bow tie: self-intersecting, repaired into two triangles.
	bowtie := `{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"name":"Sløyfa"},
		"geometry":{"type":"Polygon","coordinates":[[[10,59],[10.1,59.1],[10.1,59],[10,59.1],[10,59]]]}}]}`
	in, err := Import(ctx, db, tn.ID, []byte(bowtie), Options{SlugProperty: "name"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff("sloyfa", in[0].Slug); diff != "" || !in[0].Repaired {
		t.Errorf("bow tie: slug %q repaired %v; want sloyfa, repaired", in[0].Slug, in[0].Repaired)
	}
	// A ring with no area: nothing polygonal is left, so it is refused, and
	// the whole import with it.
	flat := `{"type":"FeatureCollection","features":[
		{"type":"Feature","properties":{"name":"ok"},"geometry":{"type":"Polygon","coordinates":[[[10,59],[11,59],[11,60],[10,59]]]}},
		{"type":"Feature","properties":{"name":"flat"},"geometry":{"type":"Polygon","coordinates":[[[10,59],[10.5,59],[11,59],[10,59]]]}}]}`
	_, err = Import(ctx, db, tn.ID, []byte(flat), Options{SlugProperty: "name"})
	var ae *crier.Error
	if !errors.As(err, &ae) || ae.Field != "features[1].geometry" {
		t.Fatalf("flat ring: %v; want an error naming features[1].geometry", err)
	}
	var n int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM areas WHERE tenant_id = $1 AND slug = 'ok'`, tn.ID).Scan(&n); err != nil || n != 0 {
		t.Errorf("a refused import stored %d areas (%v)", n, err)
	}
	// Duplicate slugs and missing properties name the feature.
	dup := `{"type":"FeatureCollection","features":[
		{"type":"Feature","properties":{"name":"A"},"geometry":{"type":"Polygon","coordinates":[[[10,59],[11,59],[11,60],[10,59]]]}},
		{"type":"Feature","properties":{"name":"a"},"geometry":{"type":"Polygon","coordinates":[[[10,59],[11,59],[11,60],[10,59]]]}},
		{"type":"Feature","properties":{},"geometry":{"type":"Polygon","coordinates":[[[10,59],[11,59],[11,60],[10,59]]]}}]}`
	_, err = Parse([]byte(dup), Options{SlugProperty: "name"})
	if !errors.As(err, &ae) || ae.Field != "features[1].properties.name" {
		t.Fatalf("duplicate: %v", err)
	}
}
