package segments_test

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/segments"
)

const square = `{"type":"Polygon","coordinates":[[[10,59],[10.1,59],[10.1,59.1],[10,59.1],[10,59]]]}`

func nested(n int, leaf string) string {
	return strings.Repeat(`{"not":`, n) + leaf + strings.Repeat(`}`, n)
}

func orOf(n int) string {
	var parts []string
	for range n {
		parts = append(parts, `{"interest":"x"}`)
	}
	return `{"or":[` + strings.Join(parts, ",") + `]}`
}

func devices(n int) string {
	var ids []string
	for i := range n {
		ids = append(ids, fmt.Sprintf("%q", fmt.Sprint("id-", i)))
	}
	return `{"device":[` + strings.Join(ids, ",") + `]}`
}

func bigRing(n int) string {
	// A polygon with n positions: a fan along a circle.
	var pts []string
	for i := range n - 1 {
		a := float64(i) / float64(n-1) * 6.283185307179586
		pts = append(pts, fmt.Sprintf("[%.9f,%.9f]", 10+0.1*cos(a), 59+0.1*sin(a)))
	}
	pts = append(pts, pts[0])
	return `{"within":{"type":"Polygon","coordinates":[[` + strings.Join(pts, ",") + `]]}}`
}

func TestParseRejects(t *testing.T) {
	t.Parallel()
	org := segments.Options{Principal: orgPrincipal, OwnFeeds: []string{"mine"}}
	tests := []struct {
		name string
		in   string
		opt  segments.Options
		want crier.Error
	}{
		{"not an object", `[]`, segments.Options{}, crier.Error{Code: crier.EINVALID, Field: "segment", Message: "must be an object with one key, not an array"}},
		{"no key", `{}`, segments.Options{}, crier.Error{Code: crier.EINVALID, Field: "segment", Message: "must have exactly one key, found 0"}},
		{"two keys", `{"feed":"a","area":"b"}`, segments.Options{}, crier.Error{Code: crier.EINVALID, Field: "segment", Message: "must have exactly one key, found 2"}},
		{"duplicate key", `{"feed":"a","feed":"b"}`, segments.Options{}, crier.Error{Code: crier.EINVALID, Field: "segment.feed", Message: "duplicate key"}},
		{"unknown node", `{"and":[{"bogus":1}]}`, segments.Options{}, crier.Error{Code: crier.EINVALID, Field: "segment.and[0].bogus", Message: "unknown segment; want one of all, and, or, not, feed, interest, area, within, near, platform, locale, device"}},
		{"trailing data", `{"all":true} {}`, segments.Options{}, crier.Error{Code: crier.EINVALID, Field: "segment", Message: "invalid JSON: data after the value"}},
		{"truncated", `{"all":`, segments.Options{}, crier.Error{Code: crier.EINVALID, Field: "segment.all", Message: "invalid JSON: unexpected end of input"}},
		{"all false", `{"all":false}`, segments.Options{}, crier.Error{Code: crier.EINVALID, Field: "segment.all", Message: "must be true"}},
		{"empty and", `{"and":[]}`, segments.Options{}, crier.Error{Code: crier.EINVALID, Field: "segment.and", Message: "must not be empty"}},
		{"or not array", `{"or":{"all":true}}`, segments.Options{}, crier.Error{Code: crier.EINVALID, Field: "segment.or", Message: "must be an array of segments, not an object"}},
		{"radius zero", `{"and":[{"feed":"a"},{"near":{"lat":59.13,"lon":10.22,"radius_m":0}}]}`, segments.Options{},
			crier.Error{Code: crier.EINVALID, Field: "segment.and[1].near.radius_m", Message: "must be between 1 and 100000"}},
		{"radius huge", `{"near":{"lat":59.13,"lon":10.22,"radius_m":100000.5}}`, segments.Options{},
			crier.Error{Code: crier.EINVALID, Field: "segment.near.radius_m", Message: "must be between 1 and 100000"}},
		{"lat range", `{"near":{"lat":91,"lon":10,"radius_m":5}}`, segments.Options{}, crier.Error{Code: crier.EINVALID, Field: "segment.near.lat", Message: "must be between -90 and 90"}},
		{"lon range", `{"near":{"lat":59,"lon":-181,"radius_m":5}}`, segments.Options{}, crier.Error{Code: crier.EINVALID, Field: "segment.near.lon", Message: "must be between -180 and 180"}},
		{"near missing", `{"near":{"lat":59,"lon":10}}`, segments.Options{}, crier.Error{Code: crier.EINVALID, Field: "segment.near.radius_m", Message: "is required"}},
		{"near unknown", `{"near":{"lat":59,"lon":10,"radius_m":5,"alt":1}}`, segments.Options{}, crier.Error{Code: crier.EINVALID, Field: "segment.near.alt", Message: "unknown key; want lat, lon and radius_m"}},
		{"near string", `{"near":{"lat":"59","lon":10,"radius_m":5}}`, segments.Options{}, crier.Error{Code: crier.EINVALID, Field: "segment.near.lat", Message: "must be a number, not a string"}},
		{"infinite", `{"near":{"lat":1e400,"lon":10,"radius_m":5}}`, segments.Options{}, crier.Error{Code: crier.EINVALID, Field: "segment.near.lat", Message: "must be a finite number"}},
		{"bad slug", `{"feed":"Bad Slug"}`, segments.Options{}, crier.Error{Code: crier.EINVALID, Field: "segment.feed", Message: "must be a slug: a lowercase letter or digit, then up to 62 lowercase letters, digits or hyphens"}},
		{"area not string", `{"area":7}`, segments.Options{}, crier.Error{Code: crier.EINVALID, Field: "segment.area", Message: "must be a slug: a lowercase letter or digit, then up to 62 lowercase letters, digits or hyphens"}},
		{"empty interest", `{"interest":""}`, segments.Options{}, crier.Error{Code: crier.EINVALID, Field: "segment.interest", Message: "must not be empty"}},
		{"long interest", `{"interest":"` + strings.Repeat("x", 65) + `"}`, segments.Options{}, crier.Error{Code: crier.EINVALID, Field: "segment.interest", Message: "must be at most 64 bytes"}},
		{"control interest", `{"interest":"a\nb"}`, segments.Options{}, crier.Error{Code: crier.EINVALID, Field: "segment.interest", Message: "must be valid UTF-8 without control characters"}},
		{"platform", `{"platform":"windows"}`, segments.Options{}, crier.Error{Code: crier.EINVALID, Field: "segment.platform", Message: `must be "android" or "ios"`}},
		{"locale", `{"locale":"norsk bokmål"}`, segments.Options{}, crier.Error{Code: crier.EINVALID, Field: "segment.locale", Message: `must be a language tag such as "nb" or "nb-NO"`}},
		{"no devices", `{"device":[]}`, segments.Options{}, crier.Error{Code: crier.EINVALID, Field: "segment.device", Message: "must not be empty"}},
		{"too many devices", devices(101), segments.Options{}, crier.Error{Code: crier.EINVALID, Field: "segment.device", Message: "must list at most 100 devices"}},
		{"device not string", `{"device":["a",3]}`, segments.Options{}, crier.Error{Code: crier.EINVALID, Field: "segment.device[1]", Message: "must be a string, not a number"}},
		{"too deep", nested(8, `{"all":true}`), segments.Options{}, crier.Error{Code: crier.EINVALID, Field: "segment" + strings.Repeat(".not", 8), Message: "nested deeper than 8 levels"}},
		{"too many leaves", orOf(65), segments.Options{}, crier.Error{Code: crier.EINVALID, Field: "segment.or[64]", Message: "more than 64 leaves in the expression"}},
		{"point", `{"within":{"type":"Point","coordinates":[10,59]}}`, segments.Options{}, crier.Error{Code: crier.EINVALID, Field: "segment.within.type", Message: `must be "Polygon" or "MultiPolygon", not "Point"`}},
		{"no type", `{"within":{"coordinates":[]}}`, segments.Options{}, crier.Error{Code: crier.EINVALID, Field: "segment.within.type", Message: `is required: "Polygon" or "MultiPolygon"`}},
		{"geometry member", `{"within":{"type":"Polygon","coordinates":[],"properties":{}}}`, segments.Options{}, crier.Error{Code: crier.EINVALID, Field: "segment.within.properties", Message: "unknown key; want type and coordinates"}},
		{"crs", `{"within":{"type":"Polygon","crs":{"type":"name","properties":{"name":"EPSG:25832"}},"coordinates":[]}}`, segments.Options{},
			crier.Error{Code: crier.EINVALID, Field: "segment.within.crs", Message: `coordinates must be WGS84 longitude/latitude (CRS84 or EPSG:4326), not "EPSG:25832"; reproject the file first (e.g. ogr2ogr -t_srs EPSG:4326)`}},
		{"not closed", `{"within":{"type":"Polygon","coordinates":[[[10,59],[11,59],[11,60],[10,60]]]}}`, segments.Options{},
			crier.Error{Code: crier.EINVALID, Field: "segment.within.coordinates[0]", Message: "must be closed: the last position must equal the first"}},
		{"short ring", `{"within":{"type":"Polygon","coordinates":[[[10,59],[11,59],[10,59]]]}}`, segments.Options{},
			crier.Error{Code: crier.EINVALID, Field: "segment.within.coordinates[0]", Message: "must have at least 4 positions, has 3"}},
		{"degenerate ring", `{"within":{"type":"Polygon","coordinates":[[[10,59],[11,59],[11,59],[10,59]]]}}`, segments.Options{},
			crier.Error{Code: crier.EINVALID, Field: "segment.within.coordinates[0]", Message: "must have at least 3 distinct positions"}},
		{"flat ring", `{"within":{"type":"Polygon","coordinates":[[[10,59],[11,59],[12,59],[10,59]]]}}`, segments.Options{},
			crier.Error{Code: crier.EINVALID, Field: "segment.within.coordinates[0]", Message: "ring encloses no area"}},
		{"longitude", `{"within":{"type":"Polygon","coordinates":[[[10,59],[181,59],[11,60],[10,59]]]}}`, segments.Options{},
			crier.Error{Code: crier.EINVALID, Field: "segment.within.coordinates[0][1][0]", Message: "longitude 181 is outside -180..180; projected coordinates such as UTM must be reprojected to WGS84 (EPSG:4326)"}},
		{"position", `{"within":{"type":"Polygon","coordinates":[[[10,59],[11],[11,60],[10,59]]]}}`, segments.Options{},
			crier.Error{Code: crier.EINVALID, Field: "segment.within.coordinates[0][1]", Message: "must be a position [longitude, latitude] (or [longitude, latitude, altitude])"}},
		{"bowtie", `{"within":{"type":"Polygon","coordinates":[[[10,59],[12,61],[12,59],[10,60],[10,59]]]}}`, segments.Options{},
			crier.Error{Code: crier.EINVALID, Field: "segment.within.coordinates[0]", Message: "ring intersects itself"}},
		{"spike", `{"within":{"type":"Polygon","coordinates":[[[10,59],[11,59],[12,59],[11,59],[11,60],[10,59]]]}}`, segments.Options{},
			crier.Error{Code: crier.EINVALID, Field: "segment.within.coordinates[0]", Message: "ring intersects itself"}},
		{"hole outside", `{"within":{"type":"Polygon","coordinates":[[[10,59],[11,59],[11,60],[10,60],[10,59]],[[12,59],[12.5,59],[12.5,59.5],[12,59]]]}}`, segments.Options{},
			crier.Error{Code: crier.EINVALID, Field: "segment.within.coordinates[1]", Message: "hole lies outside its shell"}},
		{"hole crossing", `{"within":{"type":"Polygon","coordinates":[[[10,59],[11,59],[11,60],[10,60],[10,59]],[[10.5,59.5],[11.5,59.5],[11.5,59.6],[10.5,59.5]]]}}`, segments.Options{},
			crier.Error{Code: crier.EINVALID, Field: "segment.within.coordinates[1]", Message: "ring touches or crosses another ring of its polygon"}},
		{"parts overlap", `{"within":{"type":"MultiPolygon","coordinates":[[[[10,59],[11,59],[11,60],[10,60],[10,59]]],[[[10.2,59.2],[10.4,59.2],[10.4,59.4],[10.2,59.2]]]]}}`, segments.Options{},
			crier.Error{Code: crier.EINVALID, Field: "segment.within.coordinates[1][0]", Message: "polygon overlaps another polygon"}},
		{"parts share border", `{"within":{"type":"MultiPolygon","coordinates":[[[[10,59],[11,59],[11,60],[10,60],[10,59]]],[[[11,59],[12,59],[12,60],[11,60],[11,59]]]]}}`, segments.Options{},
			crier.Error{Code: crier.EINVALID, Field: "segment.within.coordinates[1][0]", Message: "polygon crosses or shares a border with another polygon"}},
		{"too many positions", bigRing(10_001), segments.Options{}, crier.Error{Code: crier.EINVALID, Field: "segment.within.coordinates[0][10000]", Message: "more than 10000 positions in the expression's geometries"}},
		{"org all", `{"all":true}`, org, crier.Error{Code: crier.EINVALID, Field: "segment.all", Message: "organisations may not send to all devices"}},
		{"org device", `{"or":[{"feed":"mine"},{"device":["x"]}]}`, org, crier.Error{Code: crier.EINVALID, Field: "segment.or[1].device", Message: "organisations may not send to single devices"}},
		{"org other feed", `{"and":[{"feed":"mine"},{"not":{"feed":"theirs"}}]}`, org, crier.Error{Code: crier.EINVALID, Field: "segment.and[1].not.feed", Message: `feed "theirs" is not one of your feeds`}},
		{"root", `{"and":[{"feed":"mine"},{"interest":7}]}`, segments.Options{Root: "posts[0].segment"},
			crier.Error{Code: crier.EINVALID, Field: "posts[0].segment.and[1].interest", Message: "must be a string, not a number"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := segments.Parse([]byte(tt.in), tt.opt)
			var got *crier.Error
			if !errors.As(err, &got) {
				t.Fatalf("Parse(%s) = %v, want an *Error", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, *got); diff != "" {
				t.Errorf("Parse(%.200s) error (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestParseAccepts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		opt  segments.Options
		want string // canonical form
	}{
		{"all", ` { "all" : true } `, segments.Options{}, `{"all":true}`},
		{"tree", `{"and":[{"or":[{"feed":"fotball"},{"interest":"roads"}]},{"not":{"platform":"ios"}},{"locale":"NB-no"}]}`,
			segments.Options{}, `{"and":[{"or":[{"feed":"fotball"},{"interest":"roads"}]},{"not":{"platform":"ios"}},{"locale":"nb-no"}]}`},
		{"near", `{"near":{"radius_m":500,"lon":10.22,"lat":59.13}}`, segments.Options{}, `{"near":{"lat":59.13,"lon":10.22,"radius_m":500}}`},
		{"within crs84 and duplicates", `{"within":{"type":"Polygon","crs":{"type":"name","properties":{"name":"urn:ogc:def:crs:OGC:1.3:CRS84"}},"bbox":[10,59,10.1,59.1],
			"coordinates":[[[10,59,3],[10.1,59],[10.1,59],[10.1,59.1],[10,59.1],[10,59]]]}}`, segments.Options{},
			`{"within":{"type":"Polygon","coordinates":[[[10,59],[10.1,59],[10.1,59.1],[10,59.1],[10,59]]]}}`},
		{"multipolygon touching at a point", `{"within":{"type":"MultiPolygon","coordinates":[[[[10,59],[11,59],[11,60],[10,59]]],[[[11,60],[12,60],[12,61],[11,60]]]]}}`,
			segments.Options{}, `{"within":{"type":"MultiPolygon","coordinates":[[[[10,59],[11,59],[11,60],[10,59]]],[[[11,60],[12,60],[12,61],[11,60]]]]}}`},
		{"polygon with hole", `{"within":{"type":"Polygon","coordinates":[[[10,59],[11,59],[11,60],[10,60],[10,59]],[[10.2,59.2],[10.4,59.2],[10.4,59.4],[10.2,59.2]]]}}`,
			segments.Options{}, `{"within":{"type":"Polygon","coordinates":[[[10,59],[11,59],[11,60],[10,60],[10,59]],[[10.2,59.2],[10.4,59.2],[10.4,59.4],[10.2,59.2]]]}}`},
		{"devices", `{"device":["a\"b","c"]}`, segments.Options{}, `{"device":["a\"b","c"]}`},
		{"deepest", nested(7, `{"all":true}`), segments.Options{}, nested(7, `{"all":true}`)},
		{"most leaves", orOf(64), segments.Options{}, orOf(64)},
		{"org own feed", `{"and":[{"feed":"mine"},{"area":"sandefjord"}]}`, segments.Options{Principal: orgPrincipal, OwnFeeds: []string{"mine"}},
			`{"and":[{"feed":"mine"},{"area":"sandefjord"}]}`},
		{"most positions", bigRing(10_000), segments.Options{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, err := segments.Parse([]byte(tt.in), tt.opt)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			got := e.String()
			if tt.want != "" {
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("canonical form (-want +got):\n%s", diff)
				}
			}
			again, err := segments.Parse([]byte(got), tt.opt)
			if err != nil {
				t.Fatalf("Parse(canonical): %v", err)
			}
			if diff := cmp.Diff(got, again.String()); diff != "" {
				t.Errorf("canonical form is not a fixpoint (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSlugs(t *testing.T) {
	t.Parallel()
	e, err := segments.Parse([]byte(`{"or":[{"feed":"b"},{"area":"x"},{"not":{"feed":"a"}},{"and":[{"feed":"b"},{"area":"larvik"}]}]}`), segments.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"a", "b"}, e.FeedSlugs()); diff != "" {
		t.Errorf("FeedSlugs (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"larvik", "x"}, e.AreaSlugs()); diff != "" {
		t.Errorf("AreaSlugs (-want +got):\n%s", diff)
	}
}

func TestParseTarget(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    string
		wantErr *crier.Error
	}{
		{`["sandefjord","larvik"]`, `{"or":[{"area":"sandefjord"},{"area":"larvik"}]}`, nil},
		{`["sandefjord"]`, `{"area":"sandefjord"}`, nil},
		{square, `{"within":` + square + `}`, nil},
		{`{"lat":59.13,"lon":10.22,"radius_m":500}`, `{"near":{"lat":59.13,"lon":10.22,"radius_m":500}}`, nil},
		{`[]`, "", &crier.Error{Code: crier.EINVALID, Field: "target", Message: "must not be empty"}},
		{`["ok","Not Ok"]`, "", &crier.Error{Code: crier.EINVALID, Field: "target[1]", Message: "must be a slug: a lowercase letter or digit, then up to 62 lowercase letters, digits or hyphens"}},
		{`{"lat":59.13,"lon":10.22}`, "", &crier.Error{Code: crier.EINVALID, Field: "target.radius_m", Message: "is required"}},
		{`"sandefjord"`, "", &crier.Error{Code: crier.EINVALID, Field: "target", Message: `must be an array of area slugs, a GeoJSON Polygon or MultiPolygon, or {"lat", "lon", "radius_m"}`}},
	}
	for _, tt := range tests {
		e, err := segments.ParseTarget([]byte(tt.in), segments.Options{})
		if tt.wantErr != nil {
			var got *crier.Error
			if !errors.As(err, &got) {
				t.Fatalf("ParseTarget(%s) = %v, want an *Error", tt.in, err)
			}
			if diff := cmp.Diff(*tt.wantErr, *got); diff != "" {
				t.Errorf("ParseTarget(%s) error (-want +got):\n%s", tt.in, diff)
			}
			continue
		}
		if err != nil {
			t.Fatalf("ParseTarget(%s): %v", tt.in, err)
		}
		if diff := cmp.Diff(tt.want, e.String()); diff != "" {
			t.Errorf("ParseTarget(%s) (-want +got):\n%s", tt.in, diff)
		}
	}
}

func cos(a float64) float64 { return math.Cos(a) }
func sin(a float64) float64 { return math.Sin(a) }

// orgPrincipal is an organisation, for the restrictions segments apply to
// one.
var orgPrincipal = &crier.Principal{TenantID: 1, Kind: crier.KeyPublisher,
	Publisher: &crier.Publisher{ID: 7, TenantID: 1, Slug: "klubb", Role: crier.RoleOrganisation}}

// polygon is a GeoJSON Polygon of rings.
func polygon(rings ...segments.Ring) string { return polygonJSON(segments.Polygon(rings)) }

// TestGeographyFloor: an organisation targets no finer than 500 m and
// 0.5 km², in a segment or a target, and no hole finer either; the
// municipality and stored expressions have no floor.
func TestGeographyFloor(t *testing.T) {
	t.Parallel()
	muni := &crier.Principal{TenantID: 1, Kind: crier.KeyPublisher,
		Publisher: &crier.Publisher{ID: 1, TenantID: 1, Slug: "kommune", Role: crier.RoleMunicipality}}
	var (
		small   = box(10.2, 59.1, 0.0122, 0.0063)       // 0.491 km²
		large   = box(10.2, 59.1, 0.0125, 0.0065)       // 0.519 km²
		big     = box(10.2, 59.1, 0.1, 0.05)            // 31.9 km²
		tiny    = box(10.21, 59.11, 0.001, 0.001)       // 6,382 m²
		rim     = box(10.1998, 59.0998, 0.1004, 0.0504) // around big, 0.384 km² more
		refused = func(field, msg string) *crier.Error {
			return &crier.Error{Code: crier.EINVALID, Field: field, Message: msg}
		}
	)
	const (
		circle = "organisations may not target a circle smaller than 500 m"
		hole   = "organisations may not cut out a hole smaller than 0.5 km²; this one covers "
		area   = "organisations may not target an area smaller than 0.5 km²; this polygon covers "
	)
	tests := []struct {
		name      string
		target    bool // ParseTarget, else Parse
		in        string
		principal *crier.Principal
		want      *crier.Error
	}{
		{"circle of 500 m", false, `{"near":{"lat":59.13,"lon":10.22,"radius_m":500}}`, orgPrincipal, nil},
		{"circle of 499.9 m", false, `{"and":[{"feed":"mine"},{"near":{"lat":59.13,"lon":10.22,"radius_m":499.9}}]}`, orgPrincipal,
			refused("segment.and[1].near.radius_m", circle)},
		{"target circle of 100 m", true, `{"lat":59.13,"lon":10.22,"radius_m":100}`, orgPrincipal, refused("target.radius_m", circle)},
		{"municipality's circle of 1 m", false, `{"near":{"lat":59.13,"lon":10.22,"radius_m":1}}`, muni, nil},
		{"stored circle of 1 m", false, `{"near":{"lat":59.13,"lon":10.22,"radius_m":1}}`, nil, nil},
		{"polygon of 0.519 km²", false, `{"within":` + polygon(large) + `}`, orgPrincipal, nil},
		{"polygon of 0.491 km²", false, `{"within":` + polygon(small) + `}`, orgPrincipal,
			refused("segment.within.coordinates", area+"0.491 km²")},
		{"target polygon of 6382 m²", true, polygon(tiny), orgPrincipal, refused("target.coordinates", area+"6382 m²")},
		{"municipality's polygon of 6382 m²", true, polygon(tiny), muni, nil},
		{"stored polygon of 6382 m²", false, `{"within":` + polygon(tiny) + `}`, nil, nil},
		{"small hole in a big polygon", false, `{"not":{"within":` + polygon(big, tiny) + `}}`, orgPrincipal,
			refused("segment.not.within.coordinates[1]", hole+"6382 m²")},
		{"big hole leaving a thin rim", false, `{"within":` + polygon(rim, big) + `}`, orgPrincipal,
			refused("segment.within.coordinates", area+"0.384 km²")},
		{"big hole leaving a thin rim, the municipality's", false, `{"within":` + polygon(rim, big) + `}`, muni, nil},
		{"multipolygon with a small part", true, multiJSON(segments.MultiPolygon{{big}, {box(10.4, 59.1, 0.001, 0.001)}}), orgPrincipal,
			refused("target.coordinates[1]", area+"6384 m²")},
		{"multipolygon with a small hole", true, multiJSON(segments.MultiPolygon{{box(11, 59.1, 0.0125, 0.0065)}, {big, tiny}}), orgPrincipal,
			refused("target.coordinates[1][1]", hole+"6382 m²")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			parse := segments.Parse
			if tt.target {
				parse = segments.ParseTarget
			}
			_, err := parse([]byte(tt.in), segments.Options{Principal: tt.principal, OwnFeeds: []string{"mine"}})
			if diff := cmp.Diff(tt.want, crier.AsError(err)); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
		})
	}
}

// ring is a GeoJSON Polygon of one ring of n positions.
func ring(n int) string {
	return strings.TrimSuffix(strings.TrimPrefix(bigRing(n), `{"within":`), `}`)
}

// TestBudget: a post's target and segment parsed against one Budget hold
// MaxVertices positions between them, and the refusal names the position
// that ran over.
func TestBudget(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		budget        func() *segments.Budget // nil for none
		target, seg   int                     // positions, 0 for none
		wantErr       *crier.Error
		wantRemaining int
	}{
		{"each its own", nil, 6000, 6000, nil, 0},
		{"shared, within", func() *segments.Budget { return new(segments.Budget) }, 6000, 4000, nil, 0},
		{"shared, over", func() *segments.Budget { return new(segments.Budget) }, 6000, 5000,
			&crier.Error{Code: crier.EINVALID, Field: "segment.within.coordinates[0][4000]", Message: "more than 10000 positions in the request's geometries"}, 0},
		{"shared, spent on the target", func() *segments.Budget { return &segments.Budget{Max: 100} }, 101, 0,
			&crier.Error{Code: crier.EINVALID, Field: "target.coordinates[0][100]", Message: "more than 100 positions in the request's geometries"}, 0},
		{"shared, some left", func() *segments.Budget { return &segments.Budget{Max: 500} }, 100, 100, nil, 300},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opt := segments.Options{}
			if tt.budget != nil {
				opt.Budget = tt.budget()
			}
			var err error
			if tt.target > 0 {
				_, err = segments.ParseTarget([]byte(ring(tt.target)), opt)
			}
			if err == nil && tt.seg > 0 {
				_, err = segments.Parse([]byte(bigRing(tt.seg)), opt)
			}
			if diff := cmp.Diff(tt.wantErr, crier.AsError(err)); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			if opt.Budget != nil && tt.wantErr == nil {
				if got := opt.Budget.Remaining(); got != tt.wantRemaining {
					t.Errorf("Remaining() = %d, want %d", got, tt.wantRemaining)
				}
			}
		})
	}
}
