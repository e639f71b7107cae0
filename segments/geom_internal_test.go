package segments

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func rect(x0, y0, x1, y1 float64) Ring {
	return Ring{{Lon: x0, Lat: y0}, {Lon: x1, Lat: y0}, {Lon: x1, Lat: y1}, {Lon: x0, Lat: y1}, {Lon: x0, Lat: y0}}
}

func TestInteriorsIntersect(t *testing.T) {
	t.Parallel()
	unit := MultiPolygon{{rect(0, 0, 1, 1)}}
	tests := []struct {
		name string
		b    MultiPolygon
		want bool
	}{
		{"identical", unit, true},
		{"identical, other orientation", MultiPolygon{{Ring{{Lon: 0, Lat: 0}, {Lon: 0, Lat: 1}, {Lon: 1, Lat: 1}, {Lon: 1, Lat: 0}, {Lon: 0, Lat: 0}}}}, true},
		{"neighbour along an edge", MultiPolygon{{rect(1, 0, 2, 1)}}, false},
		{"neighbour along part of an edge", MultiPolygon{{rect(1, 0.25, 2, 0.75)}}, false},
		{"corner to corner", MultiPolygon{{rect(1, 1, 2, 2)}}, false},
		{"vertex on an edge from outside", MultiPolygon{{Ring{{Lon: 1, Lat: 0.5}, {Lon: 2, Lat: 0}, {Lon: 2, Lat: 1}, {Lon: 1, Lat: 0.5}}}}, false},
		{"vertex on an edge from inside", MultiPolygon{{Ring{{Lon: 1, Lat: 0.5}, {Lon: 0.5, Lat: 0.2}, {Lon: 0.5, Lat: 0.8}, {Lon: 1, Lat: 0.5}}}}, true},
		{"inside, sharing an edge", MultiPolygon{{rect(0, 0, 0.5, 0.5)}}, true},
		{"contains", MultiPolygon{{rect(-1, -1, 2, 2)}}, true},
		{"contained", MultiPolygon{{rect(0.25, 0.25, 0.75, 0.75)}}, true},
		{"crossing", MultiPolygon{{rect(0.5, -1, 0.6, 2)}}, true},
		{"in the hole", MultiPolygon{{rect(-1, -1, 2, 2), rect(-0.5, -0.5, 1.5, 1.5)}}, false},
		{"hole's rim on the edges", MultiPolygon{{rect(-1, -1, 2, 2), rect(0, 0, 1, 1)}}, false},
		{"apart", MultiPolygon{{rect(3, 3, 4, 4)}}, false},
	}
	for _, tt := range tests {
		a, b := prepare(unit), prepare(tt.b)
		if got := interiorsIntersect(a, b); got != tt.want {
			t.Errorf("%s: interiorsIntersect(unit, b) = %v, want %v", tt.name, got, tt.want)
		}
		if got := interiorsIntersect(b, a); got != tt.want {
			t.Errorf("%s: interiorsIntersect(b, unit) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestLocate(t *testing.T) {
	t.Parallel()
	s := prepare(MultiPolygon{{rect(0, 0, 4, 4), rect(1, 1, 2, 2)}, {rect(5, 0, 6, 1)}})
	pts := []Point{{Lon: 0.5, Lat: 0.5}, {Lon: 0, Lat: 2}, {Lon: 4, Lat: 4}, {Lon: 1.5, Lat: 1.5}, {Lon: 1, Lat: 1.5}, {Lon: 5.5, Lat: 0.5}, {Lon: 4.5, Lat: 0.5}, {Lon: -1, Lat: 2}, {Lon: 3, Lat: 0}}
	want := []int{1, 0, 0, -1, 0, 1, -1, -1, 0}
	var got []int
	for _, p := range pts {
		got = append(got, s.locate(p))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("locate (-want +got):\n%s", diff)
	}
}

func TestOrientExact(t *testing.T) {
	t.Parallel()
	a, b, c := Point{Lon: 0.1, Lat: 0.1}, Point{Lon: 0.3, Lat: 0.3}, Point{Lon: 0.2, Lat: 0.2}
	if got, again := orient(a, b, c), orient(b, a, c); got != -again {
		t.Errorf("orient is not antisymmetric: %d, %d", got, again)
	}
	if got := orient(Point{Lon: 1, Lat: 1}, Point{Lon: 3, Lat: 3}, Point{Lon: 2, Lat: 2}); got != 0 {
		t.Errorf("orient of exactly collinear points = %d", got)
	}
	if got := orient(Point{Lon: 0, Lat: 0}, Point{Lon: 1, Lat: 0}, Point{Lon: 0.5, Lat: math.SmallestNonzeroFloat64}); got != 1 {
		t.Errorf("orient of a point a denormal above the line = %d, want 1", got)
	}
}

// TestOrientAgainstRationals holds orient's filter and expansions to
// rational arithmetic on points that are nearly or exactly collinear, at
// every scale down to the subnormal.
func TestOrientAgainstRationals(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(3, 5))
	ulps := func(f float64, n int) float64 {
		for range n {
			f = math.Nextafter(f, math.Inf(1))
		}
		for range -n {
			f = math.Nextafter(f, math.Inf(-1))
		}
		return f
	}
	for i := range 5_000 {
		scale := []float64{1, 10, 100}[r.IntN(3)]
		if i%8 == 0 { // rarely: rationals of a thousand bits are slow
			scale = math.Pow(10, -float64(r.IntN(330)))
		}
		a := Point{Lon: (r.Float64()*2 - 1) * scale, Lat: (r.Float64()*2 - 1) * scale}
		b := Point{Lon: (r.Float64()*2 - 1) * scale, Lat: (r.Float64()*2 - 1) * scale}
		k := r.Float64() * 2
		c := Point{Lon: a.Lon + k*(b.Lon-a.Lon), Lat: a.Lat + k*(b.Lat-a.Lat)}
		c = Point{Lon: ulps(c.Lon, r.IntN(5)-2), Lat: ulps(c.Lat, r.IntN(5)-2)}
		for _, p := range [][3]Point{{a, b, c}, {c, a, b}, {b, c, a}} {
			if got, want := orient(p[0], p[1], p[2]), orientRat(p[0], p[1], p[2]); got != want {
				t.Fatalf("orient(%v, %v, %v) = %d, exactly %d", p[0], p[1], p[2], got, want)
			}
		}
	}
}

func TestSphere(t *testing.T) {
	t.Parallel()
	oneDegree := EarthRadius * math.Pi / 180
	if got := sphereDistance(Point{Lon: 0, Lat: 0}, Point{Lon: 1, Lat: 0}); math.Abs(got-oneDegree) > 1e-6 {
		t.Errorf("one degree on the equator = %f m, want %f", got, oneDegree)
	}
	if got := sphereDistance(Point{Lon: 10, Lat: 59}, Point{Lon: 10, Lat: 59}); got != 0 {
		t.Errorf("distance to itself = %g", got)
	}
	// The arc from (0,0) to (2,0) passes 1 degree below (1,1).
	if got := arcAngle(Point{Lon: 1, Lat: 1}, Point{Lon: 0, Lat: 0}, Point{Lon: 2, Lat: 0}) * EarthRadius; math.Abs(got-oneDegree) > 1e-3 {
		t.Errorf("arc distance = %f m, want %f", got, oneDegree)
	}
	s := prepare(MultiPolygon{{rect(10, 59, 11, 60)}})
	if !s.containsOnSphere(Point{Lon: 10.5, Lat: 59.5}) || s.containsOnSphere(Point{Lon: 11.5, Lat: 59.5}) {
		t.Error("containsOnSphere is wrong")
	}
	// A great-circle edge bulges poleward: a point just north of the
	// planar top edge's middle is inside on the sphere.
	if !s.containsOnSphere(Point{Lon: 10.5, Lat: 60.0005}) {
		t.Error("the spherical top edge should run north of 60.0005 at 10.5")
	}
	b := Circle{Lat: 59.13, Lon: 10.22, RadiusM: 1000}.capBox()
	for _, brg := range []float64{0, 90, 180, 270, 45} {
		p := destination(Point{Lon: 10.22, Lat: 59.13}, 1000, brg)
		if !(b.contains(p)) {
			t.Errorf("cap box %+v misses %+v at bearing %v", b, p, brg)
		}
	}
}

// destination is the point d metres from p at a bearing, on the sphere.
func destination(p Point, d, bearing float64) Point {
	lat1, lon1 := p.Lat*math.Pi/180, p.Lon*math.Pi/180
	ad, th := d/EarthRadius, bearing*math.Pi/180
	lat2 := math.Asin(math.Sin(lat1)*math.Cos(ad) + math.Cos(lat1)*math.Sin(ad)*math.Cos(th))
	lon2 := lon1 + math.Atan2(math.Sin(th)*math.Sin(ad)*math.Cos(lat1), math.Cos(ad)-math.Sin(lat1)*math.Sin(lat2))
	return Point{Lon: lon2 * 180 / math.Pi, Lat: lat2 * 180 / math.Pi}
}

func TestWKBRoundTrip(t *testing.T) {
	t.Parallel()
	mp := MultiPolygon{{rect(0, 0, 4, 4), rect(1, 1, 2, 2)}, {rect(5, 0, 6, 1)}}
	got, err := ParseWKB(wkb(mp))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(mp, got); diff != "" {
		t.Errorf("WKB round trip (-want +got):\n%s", diff)
	}
	for _, bad := range [][]byte{nil, {1}, wkb(mp)[:20], {1, 1, 0, 0, 0, 0, 0, 0, 0}} {
		if _, err := ParseWKB(bad); err == nil {
			t.Errorf("ParseWKB(%x) accepted", bad)
		}
	}
}
