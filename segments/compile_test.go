package segments_test

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/crier-push/crier/segments"
)

// The only literals the compiler writes itself.
var allowedLiterals = []string{`'_'`, `'-'`, `'T********'`, `'SRID=4326;MULTIPOLYGON EMPTY'`}

var (
	literalRE     = regexp.MustCompile(`'[^']*'`)
	placeholderRE = regexp.MustCompile(`\$(\d+)`)
)

// checkSQL holds a condition to the compiler's promise: no values in the
// text, only known literals, and placeholders that are the tenant's or the
// condition's own, each of those used.
func checkSQL(t *testing.T, c segments.Condition, p segments.Params, values []string) {
	t.Helper()
	for _, v := range values {
		if strings.Contains(c.SQL, v) {
			t.Errorf("value %q appears in the SQL text: %s", v, c.SQL)
		}
	}
	for _, lit := range literalRE.FindAllString(c.SQL, -1) {
		if !slices.Contains(allowedLiterals, lit) {
			t.Errorf("unexpected literal %s in %s", lit, c.SQL)
		}
	}
	used := map[int]bool{}
	for _, m := range placeholderRE.FindAllStringSubmatch(c.SQL, -1) {
		n, _ := strconv.Atoi(m[1])
		if n != p.TenantParam && (n <= p.ArgBase || n > p.ArgBase+len(c.Args)) {
			t.Errorf("placeholder $%d is neither the tenant's ($%d) nor one of $%d..$%d", n, p.TenantParam, p.ArgBase+1, p.ArgBase+len(c.Args))
		}
		used[n] = true
	}
	for i := range c.Args {
		if !used[p.ArgBase+1+i] {
			t.Errorf("argument $%d is never used", p.ArgBase+1+i)
		}
	}
}

func TestCompileKeepsValuesOutOfSQL(t *testing.T) {
	t.Parallel()
	nasty := []string{
		`x'); DROP TABLE devices; --`, `it's`, `$1 OR true`, `\'`, `" OR true --`, `'; SELECT pg_sleep(10); --`,
	}
	var leaves []string
	for _, v := range nasty {
		j, _ := json.Marshal(v)
		leaves = append(leaves, fmt.Sprintf(`{"interest":%s}`, j), fmt.Sprintf(`{"device":[%s]}`, j))
	}
	leaves = append(leaves, `{"feed":"drop-table"}`, `{"area":"or-1-1"}`, `{"locale":"nb-no"}`, `{"platform":"ios"}`,
		`{"within":`+square+`}`, `{"near":{"lat":59.13,"lon":10.22,"radius_m":500}}`, `{"all":true}`)
	seg := `{"and":[{"or":[` + strings.Join(leaves, ",") + `]},{"not":{"or":[` + strings.Join(leaves, ",") + `]}}]}`
	e, err := segments.Parse([]byte(seg), segments.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []segments.Params{{TenantParam: 2, ArgBase: 3}, {TenantParam: 1, ArgBase: 7}} {
		c := segments.Compile(e, p)
		checkSQL(t, c, p, append(nasty, "drop-table", "or-1-1", "nb-no", "59.13", "10.22", "500"))
	}
	p := segments.Post{Feed: "drop-table", Tags: nasty, Target: e}
	checkSQL(t, segments.Compile(segments.DefaultRule(p), segments.Params{TenantParam: 2, ArgBase: 3}),
		segments.Params{TenantParam: 2, ArgBase: 3}, nasty)
	checkSQL(t, segments.Compile(segments.DefaultRule(segments.Post{FeedID: 42, Tags: nasty}), segments.Params{TenantParam: 2, ArgBase: 3}),
		segments.Params{TenantParam: 2, ArgBase: 3}, nasty)
}

func TestDefaultRule(t *testing.T) {
	t.Parallel()
	near, err := segments.Near(segments.Circle{Lat: 59.13, Lon: 10.22, RadiusM: 500})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		post segments.Post
		want string
	}{
		{segments.Post{Feed: "roads"}, `{"feed":"roads"}`},
		{segments.Post{Feed: "roads", Tags: []string{"b", "a", "b"}}, `{"or":[{"feed":"roads"},{"interest":"a"},{"interest":"b"}]}`},
		{segments.Post{Feed: "roads", FeedMandatory: true, Tags: []string{"a"}}, `{"all":true}`},
		{segments.Post{Feed: "roads", FeedMandatory: true, Target: near}, `{"near":{"lat":59.13,"lon":10.22,"radius_m":500}}`},
		{segments.Post{Feed: "roads", Tags: []string{"a"}, Target: segments.Area("larvik")},
			`{"and":[{"or":[{"feed":"roads"},{"interest":"a"}]},{"area":"larvik"}]}`},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, segments.DefaultRule(tt.post).String()); diff != "" {
			t.Errorf("DefaultRule(%+v) (-want +got):\n%s", tt.post, diff)
		}
	}
}

func ExampleCompile() {
	e, err := segments.Parse([]byte(`{"and": [
		{"or": [{"feed": "fotball"}, {"interest": "football"}, {"interest": "sport"}]},
		{"area": "sandefjord"},
		{"not": {"near": {"lat": 59.13, "lon": 10.22, "radius_m": 500}}}
	]}`), segments.Options{})
	if err != nil {
		panic(err)
	}
	// storage.Snapshot: $1 post id, $2 tenant id, $3 feed id.
	c := segments.Compile(e, segments.Params{TenantParam: 2, ArgBase: 3})
	fmt.Println(strings.ReplaceAll(c.SQL, " OR d.areas", "\n  OR d.areas"))
	fmt.Println(c.Args[:3]...)
	// Output:
	// ((d.follows && ARRAY(SELECT f.id FROM feeds f WHERE f.tenant_id = $2 AND f.slug = $4::text) OR d.interests && $5::text[]) AND ((d.place_geom IS NOT NULL AND ST_Intersects(d.place_geom, (SELECT COALESCE((SELECT a.geom FROM areas a WHERE a.tenant_id = $2 AND a.slug = $6::text), 'SRID=4326;MULTIPOLYGON EMPTY'::geometry))))
	//   OR d.areas && ARRAY(SELECT s.id FROM areas s WHERE s.tenant_id = $2 AND s.geom && (SELECT COALESCE((SELECT a.geom FROM areas a WHERE a.tenant_id = $2 AND a.slug = $6::text), 'SRID=4326;MULTIPOLYGON EMPTY'::geometry)) AND ST_Relate(s.geom, (SELECT COALESCE((SELECT a.geom FROM areas a WHERE a.tenant_id = $2 AND a.slug = $6::text), 'SRID=4326;MULTIPOLYGON EMPTY'::geometry)), 'T********'))) AND (NOT ((d.place_geom IS NOT NULL AND d.place_geom && ST_MakeEnvelope($7::float8, $8::float8, $9::float8, $10::float8, 4326) AND CASE WHEN d.place_geom @ ST_MakeEnvelope(-180, -90, 180, 90, 4326) THEN ST_DWithin(d.place_geom::geography, (SELECT ST_SetSRID(ST_MakePoint($11::float8, $12::float8), 4326)::geography), $13::float8, false) ELSE false END)
	//   OR d.areas && ARRAY(SELECT s.id FROM areas s WHERE s.tenant_id = $2 AND ST_DWithin(s.geom::geography, (SELECT ST_SetSRID(ST_MakePoint($11::float8, $12::float8), 4326)::geography), $13::float8, false)))))
	// fotball [football sport] sandefjord
}
