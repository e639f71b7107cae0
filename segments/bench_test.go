package segments_test

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/crier-push/crier/segments"
)

// BenchmarkParseWithin checks a "within" polygon of n positions, as an alert
// area of a national warning system brings them (NWS's has 8,253): the
// check that rings are simple and polygons apart is the cost.
func BenchmarkParseWithin(b *testing.B) {
	for _, n := range []int{100, 1000, 9000} {
		var sb strings.Builder
		sb.WriteString(`{"within": {"type": "Polygon", "coordinates": [[`)
		for k := range n {
			a := 2 * math.Pi * float64(k) / float64(n)
			fmt.Fprintf(&sb, "[%.7f, %.7f],", 10.2167+0.02*math.Cos(a), 59.1312+0.01*math.Sin(a))
		}
		fmt.Fprintf(&sb, "[%.7f, %.7f]]]}}", 10.2167+0.02, 59.1312)
		raw := []byte(sb.String())
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := segments.Parse(raw, segments.Options{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
