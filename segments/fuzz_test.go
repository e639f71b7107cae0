package segments_test

import (
	"errors"
	"testing"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/segments"
)

// FuzzParse: Parse never panics; every rejection is an *Error with a path
// and a message; everything accepted compiles, evaluates, and re-serialises
// to a canonical form that parses back to itself.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{"all":true}`,
		`{"and":[{"feed":"fotball"},{"not":{"platform":"ios"}}]}`,
		`{"or":[{"interest":"x'); DROP TABLE devices; --"},{"locale":"nb-NO"},{"device":["a","b"]}]}`,
		`{"near":{"lat":59.13,"lon":10.22,"radius_m":500}}`,
		`{"within":` + square + `}`,
		`{"within":{"type":"MultiPolygon","coordinates":[[[[10,59],[11,59],[11,60],[10,59]]],[[[11,60],[12,60],[12,61],[11,60]]]]}}`,
		`{"within":{"type":"Polygon","coordinates":[[[10,59],[11,59],[11,60],[10,60],[10,59]],[[10.2,59.2],[10.4,59.2],[10.4,59.4],[10.2,59.2]]]}}`,
		`{"area":"sandefjord","area":"larvik"}`,
		`{"near":{"lat":1e999,"lon":0,"radius_m":1}}`,
		`[{"all":true}]`,
	} {
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, data []byte, organisation bool) {
		opt := segments.Options{OwnFeeds: []string{"fotball"}}
		if organisation {
			opt.Principal = orgPrincipal
		}
		e, err := segments.Parse(data, opt)
		if err != nil {
			var pe *crier.Error
			if !errors.As(err, &pe) {
				t.Fatalf("rejection %v (%T) is not an *Error", err, err)
			}
			if pe.Field == "" || pe.Message == "" {
				t.Fatalf("rejection without path or message: %#v", pe)
			}
			return
		}
		c := segments.Compile(e, segments.Params{TenantParam: 2, ArgBase: 3})
		if c.SQL == "" {
			t.Fatal("empty SQL")
		}
		checkSQL(t, c, segments.Params{TenantParam: 2, ArgBase: 3}, nil)
		segments.Evaluate(e, segments.Env{}, segments.Device{InstallationID: "a", Locale: "nb",
			Places: []segments.Point{{Lon: 10.05, Lat: 59.05}}})
		canonical, err := e.MarshalJSON()
		if err != nil {
			t.Fatalf("MarshalJSON: %v", err)
		}
		again, err := segments.Parse(canonical, opt)
		if err != nil {
			t.Fatalf("canonical form %s does not parse: %v", canonical, err)
		}
		if got := again.String(); got != string(canonical) {
			t.Fatalf("canonical form is not a fixpoint:\n%s\n%s", canonical, got)
		}
	})
}
