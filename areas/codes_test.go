package areas

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/cap"
	"github.com/crier-push/crier/internal/testenv"
	"github.com/crier-push/crier/storage"
)

// collection is a FeatureCollection of small squares, one per properties
// object.
func collection(props ...string) []byte {
	var fs []string
	for i, p := range props {
		lon := 10 + float64(i)/10
		fs = append(fs, fmt.Sprintf(`{"type":"Feature","properties":%s,"geometry":{"type":"Polygon",`+
			`"coordinates":[[[%g,59],[%g,59],[%g,59.05],[%g,59]]]}}`, p, lon, lon+0.05, lon+0.05, lon))
	}
	return []byte(`{"type":"FeatureCollection","features":[` + strings.Join(fs, ",") + `]}`)
}

func gc(kv ...string) []storage.Geocode {
	var out []storage.Geocode
	for i := 0; i < len(kv); i += 2 {
		out = append(out, storage.Geocode{Name: kv[i], Value: kv[i+1]})
	}
	return out
}

// TestCodes: an area's codes are its "codes" object and its code
// properties (kommunenummer unless told otherwise).
func TestCodes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		props string
		opt   Options
		want  []storage.Geocode
	}{
		{"none", `{"slug":"a"}`, Options{}, nil},
		{"kommunenummer by default", `{"slug":"a","kommunenummer":"3907"}`, Options{}, gc("kommunenummer", "3907")},
		{"a number", `{"slug":"a","kommunenummer":3907}`, Options{}, gc("kommunenummer", "3907")},
		{"no code properties", `{"slug":"a","kommunenummer":"3907"}`, Options{CodeProperties: []string{}}, nil},
		{"other code properties", `{"slug":"a","kommunenummer":"3907","fylke":"39"}`, Options{CodeProperties: []string{"fylke"}}, gc("fylke", "39")},
		{"a codes object", `{"slug":"a","codes":{"EMMA_ID":"NO809","NUTS3":"NO0A1"}}`, Options{}, gc("EMMA_ID", "NO809", "NUTS3", "NO0A1")},
		{"both", `{"slug":"a","kommunenummer":"3907","codes":{"EMMA_ID":"NO809"}}`, Options{}, gc("kommunenummer", "3907", "EMMA_ID", "NO809")},
		{"a list", `{"slug":"a","codes":{"SAME":["039001", 39002]}}`, Options{}, gc("SAME", "039001", "SAME", "39002")},
		{"trimmed", `{"slug":"a","codes":{" EMMA_ID ":" NO809 "}}`, Options{}, gc("EMMA_ID", "NO809")},
		{"repeats dropped, the first spelling kept", `{"slug":"a","kommunenummer":"3907","codes":{"Kommunenummer":["3907","3908"]}}`,
			Options{}, gc("kommunenummer", "3907", "kommunenummer", "3908")},
		{"null", `{"slug":"a","kommunenummer":null,"codes":null}`, Options{}, nil},
	} {
		in, err := Parse(collection(tc.props), tc.opt)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if diff := cmp.Diff(tc.want, in[0].Codes, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
}

// TestBadCodes: a code that cannot be one is refused, naming it.
func TestBadCodes(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", MaxCodeValueLen+1)
	many := make([]string, MaxCodes+1)
	for i := range many {
		many[i] = fmt.Sprintf(`"%d"`, i)
	}
	for _, tc := range []struct{ props, field string }{
		{`{"slug":"a","codes":["EMMA_ID","NO809"]}`, "features[0].properties.codes"},
		{`{"slug":"a","codes":"NO809"}`, "features[0].properties.codes"},
		{`{"slug":"a","codes":{"EMMA_ID":{"v":"NO809"}}}`, "features[0].properties.codes.EMMA_ID"},
		{`{"slug":"a","codes":{"EMMA_ID":true}}`, "features[0].properties.codes.EMMA_ID"},
		{`{"slug":"a","codes":{"EMMA_ID":""}}`, "features[0].properties.codes.EMMA_ID"},
		{`{"slug":"a","codes":{"EMMA_ID":null}}`, "features[0].properties.codes.EMMA_ID"},
		{`{"slug":"a","codes":{"EMMA_ID":[]}}`, "features[0].properties.codes.EMMA_ID"},
		{`{"slug":"a","codes":{"SAME":["1",["2"]]}}`, "features[0].properties.codes.SAME[1]"},
		{`{"slug":"a","codes":{"EMMA_ID":"` + long + `"}}`, "features[0].properties.codes.EMMA_ID"},
		{`{"slug":"a","codes":{"EMMA_ID":"NO\u0000809"}}`, "features[0].properties.codes.EMMA_ID"},
		{`{"slug":"a","codes":{"a=b":"c"}}`, "features[0].properties.codes.a=b"},
		{`{"slug":"a","codes":{" ":"c"}}`, "features[0].properties.codes. "},
		{`{"slug":"a","codes":{"SAME":[` + strings.Join(many, ",") + `]}}`, fmt.Sprintf("features[0].properties.codes.SAME[%d]", MaxCodes)},
		{`{"slug":"a","kommunenummer":{"nr":"3907"}}`, "features[0].properties.kommunenummer"},
	} {
		_, err := Parse(collection(`{"slug":"ok"}`, tc.props), Options{})
		var ce *crier.Error
		if want := strings.Replace(tc.field, "features[0]", "features[1]", 1); !errors.As(err, &ce) || ce.Field != want || ce.Message == "" {
			t.Errorf("%s: %v; want an error naming %s", tc.props, err, want)
		}
	}
}

// TestGeocodeFixtures: the real geocode-only alerts (Météo-France's NUTS3
// departments, MeteoAlarm's EMMA_ID regions) are placed through areas
// imported with those codes, each CAP area through its own.
func TestGeocodeFixtures(t *testing.T) {
	t.Parallel()
	db := testenv.DB(t)
	ctx := context.Background()
	tn := testenv.Tenant(t, db, "sud", "Sud", "")
	if _, err := Import(ctx, db, tn.ID, collection(
		`{"slug":"alpes-de-haute-provence","codes":{"NUTS3":"FR821"}}`,
		`{"slug":"hautes-alpes","codes":{"nuts3":"FR822"}}`,
		`{"slug":"alpes-maritimes","codes":{"NUTS3":"FR823"}}`,
		`{"slug":"haute-garonne","codes":{"NUTS3":"FR623","INSEE":"31"}}`,
		`{"slug":"var","codes":{"NUTS3":"FR825"}}`,
		`{"slug":"sumadija","codes":{"EMMA_ID":"RS010"}}`,
		`{"slug":"beograd","codes":{"EMMA_ID":"RS001"}}`,
	), Options{}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		file string
		want []string // per info block and area, in order
	}{
		{"fr-meteofrance-geocode-only-nuts3-multiarea-fr-en.cap.xml", []string{
			"alpes-de-haute-provence", "hautes-alpes", "alpes-maritimes", "haute-garonne",
			"alpes-de-haute-provence", "hautes-alpes", "alpes-maritimes", "haute-garonne"}},
		{"rs-hidmet-meteoalarm-update-references-3lang.cap.xml", []string{"sumadija", "sumadija", "sumadija"}},
	} {
		raw, err := os.ReadFile("../cap/testdata/" + tc.file)
		if err != nil {
			t.Fatal(err)
		}
		a, err := cap.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, in := range a.Infos {
			for _, ar := range in.Areas {
				codes := make([]storage.Geocode, len(ar.Geocodes))
				for i, v := range ar.Geocodes {
					codes[i] = storage.Geocode(v)
				}
				slugs, err := db.AreasByGeocode(ctx, tn.ID, codes)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, strings.Join(slugs, "+"))
			}
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s: areas placed (-want +got):\n%s", tc.file, diff)
		}
	}
}

// TestImportNorwegianCodes: Kartverket's municipalities carry their
// kommunenummer as a code without being told.
func TestImportNorwegianCodes(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../demo/vestfold-kommuner-2024.geojson")
	if err != nil {
		t.Fatal(err)
	}
	db := testenv.DB(t)
	ctx := context.Background()
	tn := testenv.Tenant(t, db, "vestfold", "Vestfold", "")
	if _, err := Import(ctx, db, tn.ID, raw, Options{SlugProperty: "kommunenavn", NameProperty: "kommunenavn"}); err != nil {
		t.Fatal(err)
	}
	slugs, err := db.AreasByGeocode(ctx, tn.ID, gc("kommunenummer", "3907", "KOMMUNENUMMER", "3909"))
	if err != nil || !cmp.Equal(slugs, []string{"larvik", "sandefjord"}) {
		t.Errorf("kommunenummer 3907 and 3909: %v, %v; want larvik and sandefjord", slugs, err)
	}
}

// FuzzParse: no FeatureCollection panics the reader; a refusal is a
// *crier.Error, and the codes of what it takes hold their bounds.
func FuzzParse(f *testing.F) {
	f.Add(collection(`{"slug":"a","kommunenummer":"3907","codes":{"EMMA_ID":"NO809","SAME":["1",2]}}`))
	f.Add(collection(`{"slug":"a","codes":{"a=b":"c"}}`, `{"slug":"b","codes":{"X":"1","x":"1"}}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		in, err := Parse(raw, Options{})
		if err != nil {
			var ce *crier.Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %v is %T, not *crier.Error", err, err)
			}
			return
		}
		for _, a := range in {
			if len(a.Codes) > MaxCodes {
				t.Fatalf("%d codes", len(a.Codes))
			}
			seen := map[storage.Geocode]bool{}
			for _, c := range a.Codes {
				if c.Name == "" || c.Value == "" || strings.Contains(c.Name, "=") || seen[c] ||
					c.Name != strings.TrimSpace(c.Name) || c.Value != strings.TrimSpace(c.Value) {
					t.Fatalf("code %q taken", c)
				}
				seen[c] = true
			}
		}
	})
}
