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
