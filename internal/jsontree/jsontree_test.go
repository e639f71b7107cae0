package jsontree

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/crier-push/crier"
)

// FuzzParse: the scanner and encoding/json's tokens read every input into
// the same tree, or both refuse it with the same error.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{"message":{"token":"emu-ok-1","notification":{"title":"Flom","body":"Evakuer nå."},"data":{"post_id":"42"},"android":{"priority":"high","ttl":"3600s","notification":{"channel_id":"crier_emergency"}}}}`,
		`{"validate_only":true,"message":{"topic":"news"}}`,
		` [1, -2.5e+3, 0, true, false, null, "x", [], {}, [{"a":[]}]] `,
		`{"a":"\u00e6\n","b\"":1}`,
		`{"a":1,"a":2}`,
		"{\"a\":\"\xff\"}",
		`{"a":}`, `[1,]`, `{"a" 1}`, `"x" "y"`, `01`, `-`, `1e`, ``, `nul`, `{"a":1}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, gerr := Parse(b)
		r := &reader{src: b}
		want, werr := parseTokens(r, b)
		if (gerr == nil) != (werr == nil) {
			t.Fatalf("%q: scanner error %v, encoding/json error %v", b, gerr, werr)
		}
		if gerr != nil {
			if gerr.Error() != werr.Error() {
				t.Fatalf("%q: errors differ: %v / %v", b, gerr, werr)
			}
			return
		}
		if g, w := Dump(got), Dump(want); g != w {
			t.Fatalf("%q:\nscanner  %s\njson     %s", b, g, w)
		}
		// The strict reader refuses or reads the same tree either way.
		strict, serr := ParseStrict(b, Strict{Root: "x", MaxDepth: 30})
		if serr == nil && Dump(strict) != Dump(got) {
			t.Fatalf("%q: strict tree differs", b)
		}
		if serr != nil && crier.AsError(serr) == nil {
			t.Fatalf("%q: strict error %v (%T) is not a *crier.Error", b, serr, serr)
		}
	})
}

func TestParseStrict(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in   string
		want crier.Error
	}{
		{`{"a":{"b":1,"b":2}}`, crier.Error{Code: crier.EINVALID, Field: "x.a.b", Message: "duplicate key"}},
		{`{"a":{"b":"\u00e6","b":2}}`, crier.Error{Code: crier.EINVALID, Field: "x.a.b", Message: "duplicate key"}},
		{`{"a":{"c":`, crier.Error{Code: crier.EINVALID, Field: "x.a.c", Message: "invalid JSON: unexpected end of input"}},
		{`{"a":1} {}`, crier.Error{Code: crier.EINVALID, Field: "x", Message: "invalid JSON: data after the value"}},
		{`[[[[1]]]]`, crier.Error{Code: crier.EINVALID, Field: "x[0][0][0]", Message: "JSON nested more than 3 levels deep"}},
		{`[[["\u00e6"]]]`, crier.Error{Code: crier.EINVALID, Field: "x[0][0][0]", Message: "JSON nested more than 3 levels deep"}},
	} {
		_, err := ParseStrict([]byte(c.in), Strict{Root: "x", MaxDepth: 3})
		e := crier.AsError(err)
		if e == nil {
			t.Errorf("%s: error %v, want %v", c.in, err, c.want)
			continue
		}
		if diff := cmp.Diff(c.want, *e); diff != "" {
			t.Errorf("%s (-want +got):\n%s", c.in, diff)
		}
	}
}
