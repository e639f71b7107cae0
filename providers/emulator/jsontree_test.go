package emulator

import (
	"bytes"
	"fmt"
	"testing"
)

// FuzzParseJSON: the emulator's own scanner and encoding/json's tokens
// read every input into the same tree, or both refuse it.
func FuzzParseJSON(f *testing.F) {
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
		got, gerr := parseJSON(b)
		want, werr := parseJSONTokens(b)
		if (gerr == nil) != (werr == nil) {
			t.Fatalf("%q: scanner error %v, encoding/json error %v", b, gerr, werr)
		}
		if gerr != nil {
			if gerr.Error() != werr.Error() {
				t.Fatalf("%q: errors differ: %v / %v", b, gerr, werr)
			}
			return
		}
		if g, w := dump(got), dump(want); g != w {
			t.Fatalf("%q:\nscanner  %s\njson     %s", b, g, w)
		}
	})
}

// dump renders every field of a tree.
func dump(n *node) string {
	var b bytes.Buffer
	var walk func(*node)
	walk = func(n *node) {
		fmt.Fprintf(&b, "(%d %q %q %v raw=%q", n.kind, n.str, n.num, n.boolean, n.raw)
		for _, m := range n.members {
			fmt.Fprintf(&b, " %q:", m.name)
			walk(m.value)
		}
		for _, it := range n.items {
			b.WriteString(" ")
			walk(it)
		}
		b.WriteString(")")
	}
	walk(n)
	return b.String()
}

func BenchmarkParseJSON(b *testing.B) {
	body := []byte(`{"message":{"token":"emu-ok-123456","notification":{"title":"Benchmark","body":"Til alle innbyggere."},"data":{"post_id":"42"},"android":{"priority":"high","notification":{"channel_id":"crier_official"}}}}`)
	for _, p := range []struct {
		name  string
		parse func([]byte) (*node, error)
	}{{"scanner", parseJSON}, {"tokens", parseJSONTokens}} {
		b.Run(p.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := p.parse(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
