package segments_test

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/segments"
)

// adversarial is a within geometry made to be slow to validate, and the
// answer Parse must give for it: "" for accepted, else the error.
type adversarial struct {
	name       string
	geometry   string
	field, msg string
}

// The adversarial shapes stay within the bounds a publisher may send
// (MaxVertices positions, MaxInputBytes of JSON); each is the worst case of
// some way of checking validity: many holes (pairwise hole tests), a ring
// of long nearly parallel edges whose boxes all overlap (box filters and
// sweeps that compare all edges spanning the same x), thousands of polygons
// meeting at one point (pairwise polygon tests), deep nesting, and shapes
// whose one defect shows only at the end.
func adversarialShapes() []adversarial {
	accept := func(name, g string) adversarial { return adversarial{name: name, geometry: g} }
	reject := func(name, g, field, msg string) adversarial {
		return adversarial{name: name, geometry: g, field: "segment.within" + field, msg: msg}
	}
	const (
		selfCross  = "ring intersects itself"
		ringsTouch = "ring touches or crosses another ring of its polygon"
		outside    = "hole lies outside its shell"
		inHole     = "hole lies inside another hole"
		overlap    = "polygon overlaps another polygon"
	)
	allButLast := func(mp segments.MultiPolygon) segments.MultiPolygon { return mp[:len(mp)-1] }
	return []adversarial{
		accept("holes/2000 triangles", polygonJSON(holeGrid(40, 50, 2000, false))),
		accept("holes/1999 squares", polygonJSON(holeGrid(40, 50, 1999, true))),
		reject("holes/last outside the shell", polygonJSON(append(holeGrid(40, 50, 1999, false), triangle(11, 59, 0.0006))),
			".coordinates[2000]", outside),
		reject("holes/last inside a big hole", polygonJSON(holeInHole()), ".coordinates[1990]", inHole),
		reject("holes/2000 touching the shell at one point", polygonJSON(holeFan(2000)), ".coordinates[1]", ringsTouch),
		accept("ring/sea urchin of 9998 vertices", polygonJSON(segments.Polygon{urchin(9998, false)})),
		reject("ring/sea urchin touching itself", polygonJSON(segments.Polygon{urchin(9998, true)}), ".coordinates[0]", selfCross),
		accept("ring/comb of 2499 near-touching teeth", polygonJSON(segments.Polygon{comb(2499)})),
		accept("ring/ribbon of 9993 long parallel edges", polygonJSON(segments.Polygon{ribbon(4996, 1e-7, false)})),
		accept("ring/ribbon folds a few ulps apart", polygonJSON(segments.Polygon{ribbon(4996, 4e-15, false)})),
		reject("ring/ribbon crossing itself at the end", polygonJSON(segments.Polygon{ribbon(4996, 1e-7, true)}), ".coordinates[0]", selfCross),
		accept("multi/2000 squares apart", multiJSON(squareGrid(40, 50, false))),
		accept("multi/2000 squares touching at corners", multiJSON(squareGrid(80, 50, true))),
		accept("multi/2499 triangles meeting at one point", multiJSON(pinwheel(2499, false))),
		reject("multi/pinwheel, last triangle inside another", multiJSON(pinwheel(2499, true)), ".coordinates[2498][0]", overlap),
		accept("multi/1000 nested polygons", multiJSON(concentric(1000, -1))),
		reject("multi/nested polygons, one without its hole", multiJSON(concentric(1000, 500)), ".coordinates[500][0]", overlap),
		reject("multi/last square covering the others", multiJSON(append(allButLast(squareGrid(40, 50, false)),
			segments.Polygon{rectRing(9.99, 58.99, 10.05, 59.06)})), ".coordinates[1999][0]", overlap),
	}
}

func polygonJSON(p segments.Polygon) string {
	b, err := json.Marshal(struct {
		Type        string           `json:"type"`
		Coordinates segments.Polygon `json:"coordinates"`
	}{"Polygon", p})
	if err != nil {
		panic(err)
	}
	return string(b)
}

func multiJSON(mp segments.MultiPolygon) string { return string(mp.JSON()) }

func rectRing(x0, y0, x1, y1 float64) segments.Ring {
	return segments.Ring{{Lon: x0, Lat: y0}, {Lon: x1, Lat: y0}, {Lon: x1, Lat: y1}, {Lon: x0, Lat: y1}, {Lon: x0, Lat: y0}}
}

func triangle(x, y, s float64) segments.Ring {
	return segments.Ring{{Lon: x, Lat: y}, {Lon: x + s, Lat: y}, {Lon: x, Lat: y + s}, {Lon: x, Lat: y}}
}

// holeGrid is a shell over nx by ny cells of 0.001 degrees, with a small
// square or triangle hole in each of the first n cells.
func holeGrid(nx, ny, n int, squares bool) segments.Polygon {
	const cell = 0.001
	p := segments.Polygon{rectRing(10, 59, 10+cell*float64(nx), 59+cell*float64(ny))}
	for k := range n {
		x, y := 10+cell*float64(k%nx)+0.0002, 59+cell*float64(k/nx)+0.0002
		if squares {
			p = append(p, rectRing(x, y, x+0.0006, y+0.0006))
		} else {
			p = append(p, triangle(x, y, 0.0006))
		}
	}
	return p
}

// holeInHole is a grid of holes on the left, one big hole on the right,
// and a last hole inside the big one.
func holeInHole() segments.Polygon {
	p := holeGrid(40, 50, 1988, false)
	p[0] = rectRing(10, 59, 10.08, 59.05)
	p = append(p, rectRing(10.045, 59.005, 10.075, 59.045))
	return append(p, triangle(10.05, 59.01, 0.01))
}

// holeFan is n triangular holes whose apex lies on the shell's bottom edge.
func holeFan(n int) segments.Polygon {
	p := segments.Polygon{rectRing(10, 59, 10.1, 59.1)}
	apex := segments.Point{Lon: 10.05, Lat: 59}
	for k := range n {
		a0 := math.Pi * (float64(k) + 0.1) / float64(n)
		a1 := math.Pi * (float64(k) + 0.9) / float64(n)
		p = append(p, segments.Ring{apex, {Lon: apex.Lon + 0.04*math.Cos(a0), Lat: apex.Lat + 0.04*math.Sin(a0)},
			{Lon: apex.Lon + 0.04*math.Cos(a1), Lat: apex.Lat + 0.04*math.Sin(a1)}, apex})
	}
	return p
}

// urchin is a star of n vertices whose spikes start a micro-degree from
// the centre, so every edge runs from the centre to the rim and the edges'
// boxes overlap. touching puts two inner vertices on the centre itself.
func urchin(n int, touching bool) segments.Ring {
	c := segments.Point{Lon: 10, Lat: 59}
	var r segments.Ring
	for k := range n {
		rad := 0.1
		if k%2 == 1 {
			rad = 1e-6
		}
		a := 2 * math.Pi * float64(k) / float64(n)
		r = append(r, segments.Point{Lon: c.Lon + rad*math.Cos(a), Lat: c.Lat + rad*math.Sin(a)})
	}
	if touching {
		r[1], r[n/2+1] = c, c
	}
	return append(r, r[0])
}

// comb is a spine with n teeth 0.1 degrees long and 1e-5 wide, a
// nano-degree apart.
func comb(n int) segments.Ring {
	const w, gap, h = 1e-5, 1e-9, 0.1
	r := segments.Ring{{Lon: 10, Lat: 58.999}}
	x := 10.0
	for range n {
		r = append(r, segments.Point{Lon: x, Lat: 59}, segments.Point{Lon: x, Lat: 59 + h},
			segments.Point{Lon: x + w, Lat: 59 + h}, segments.Point{Lon: x + w, Lat: 59})
		x += w + gap
	}
	r = append(r, segments.Point{Lon: x - gap, Lat: 58.999})
	return append(r, r[0])
}

// ribbon is a ring folded m+1 times along the diagonal: edges 0.7 degrees
// long, 1.4h degrees apart, all of whose boxes overlap; with h a few ulps,
// no turn between them is clear without exact arithmetic. crossing moves
// the last fold so that it crosses the one before.
func ribbon(m int, h float64, crossing bool) segments.Ring {
	const l, big = 0.5, 0.01
	at := func(n, u float64) segments.Point { // n across the ribbon, u along it
		return segments.Point{Lon: 10 + n + u, Lat: 59 - n + u}
	}
	var r segments.Ring
	for k := 0; k <= m; k++ {
		n := float64(k) * h
		if crossing && k == m {
			n = (float64(m) - 1.5) * h
		}
		r = append(r, at(n, 0), at(float64(k)*h, l))
	}
	top := float64(m)*h + big
	r = append(r, at(top, l), at(top, -big), at(-big, -big), r[0])
	return r
}

// squareGrid is a square in each cell of 0.001 degrees; touching puts full
// cells in a checkerboard, meeting at their corners.
func squareGrid(nx, ny int, touching bool) segments.MultiPolygon {
	const cell = 0.001
	x := func(i int) float64 { return 10 + cell*float64(i) }
	y := func(j int) float64 { return 59 + cell*float64(j) }
	var mp segments.MultiPolygon
	for j := range ny {
		for i := range nx {
			switch {
			case !touching:
				mp = append(mp, segments.Polygon{rectRing(x(i)+0.0002, y(j)+0.0002, x(i)+0.0008, y(j)+0.0008)})
			case (i+j)%2 == 0: // corners computed once, so neighbours share them exactly
				mp = append(mp, segments.Polygon{rectRing(x(i), y(j), x(i+1), y(j+1))})
			}
		}
	}
	return mp
}

// pinwheel is n triangles around one common vertex; inside makes the last
// a smaller copy of the one before, inside it.
func pinwheel(n int, inside bool) segments.MultiPolygon {
	c := segments.Point{Lon: 10, Lat: 59}
	at := func(a, rad float64) segments.Point {
		return segments.Point{Lon: c.Lon + rad*math.Cos(a), Lat: c.Lat + rad*math.Sin(a)}
	}
	var mp segments.MultiPolygon
	for k := range n {
		a0 := 2 * math.Pi * float64(k) / float64(n)
		a1 := a0 + 0.8*2*math.Pi/float64(n)
		rad := 0.01
		if inside && k == n-1 {
			a0 -= 2 * math.Pi / float64(n)
			a1 -= 2 * math.Pi / float64(n)
			a0, a1, rad = a0+0.1*(a1-a0), a1-0.1*(a1-a0), 0.005
		}
		mp = append(mp, segments.Polygon{{c, at(a0, rad), at(a1, rad), c}})
	}
	return mp
}

// concentric is n square rings, each polygon in the hole of the next;
// polygon without (if not -1) has no hole.
func concentric(n, without int) segments.MultiPolygon {
	const d = 1e-4
	sq := func(s float64) segments.Ring { return rectRing(10-s, 59-s, 10+s, 59+s) }
	var mp segments.MultiPolygon
	for k := range n {
		p := segments.Polygon{sq(float64(2*k+2) * d)}
		if k != without {
			p = append(p, sq(float64(2*k+1)*d))
		}
		mp = append(mp, p)
	}
	return mp
}

func TestAdversarialGeometry(t *testing.T) {
	t.Parallel()
	for _, s := range adversarialShapes() {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			raw := []byte(`{"within":` + s.geometry + `}`)
			_, err := segments.Parse(raw, segments.Options{})
			if s.msg == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			want := crier.Error{Code: crier.EINVALID, Field: s.field, Message: s.msg}
			got := crier.AsError(err)
			if got == nil {
				t.Fatalf("accepted, want %v", &want)
			}
			if diff := cmp.Diff(want, *got); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
		})
	}
}

// BenchmarkAdversarialGeometry parses each adversarial shape: validity
// checking must stay near-linear whatever the shape.
func BenchmarkAdversarialGeometry(b *testing.B) {
	for _, s := range adversarialShapes() {
		raw := []byte(`{"within":` + s.geometry + `}`)
		b.Run(s.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				segments.Parse(raw, segments.Options{}) //nolint:errcheck // half of them are refused by design
			}
		})
	}
}
