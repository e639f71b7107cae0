package segments

import (
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func rect(x0, y0, x1, y1 float64) Ring {
	return Ring{{x0, y0}, {x1, y0}, {x1, y1}, {x0, y1}, {x0, y0}}
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
		{"identical, other orientation", MultiPolygon{{Ring{{0, 0}, {0, 1}, {1, 1}, {1, 0}, {0, 0}}}}, true},
		{"neighbour along an edge", MultiPolygon{{rect(1, 0, 2, 1)}}, false},
		{"neighbour along part of an edge", MultiPolygon{{rect(1, 0.25, 2, 0.75)}}, false},
		{"corner to corner", MultiPolygon{{rect(1, 1, 2, 2)}}, false},
		{"vertex on an edge from outside", MultiPolygon{{Ring{{1, 0.5}, {2, 0}, {2, 1}, {1, 0.5}}}}, false},
		{"vertex on an edge from inside", MultiPolygon{{Ring{{1, 0.5}, {0.5, 0.2}, {0.5, 0.8}, {1, 0.5}}}}, true},
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
	pts := []Point{{0.5, 0.5}, {0, 2}, {4, 4}, {1.5, 1.5}, {1, 1.5}, {5.5, 0.5}, {4.5, 0.5}, {-1, 2}, {3, 0}}
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
	a, b, c := Point{0.1, 0.1}, Point{0.3, 0.3}, Point{0.2, 0.2}
	if got, again := orient(a, b, c), orient(b, a, c); got != -again {
		t.Errorf("orient is not antisymmetric: %d, %d", got, again)
	}
	if got := orient(Point{1, 1}, Point{3, 3}, Point{2, 2}); got != 0 {
		t.Errorf("orient of exactly collinear points = %d", got)
	}
	if got := orient(Point{0, 0}, Point{1, 0}, Point{0.5, math.SmallestNonzeroFloat64}); got != 1 {
		t.Errorf("orient of a point a denormal above the line = %d, want 1", got)
	}
}

func TestSphere(t *testing.T) {
	t.Parallel()
	oneDegree := EarthRadius * math.Pi / 180
	if got := sphereDistance(Point{0, 0}, Point{1, 0}); math.Abs(got-oneDegree) > 1e-6 {
		t.Errorf("one degree on the equator = %f m, want %f", got, oneDegree)
	}
	if got := sphereDistance(Point{10, 59}, Point{10, 59}); got != 0 {
		t.Errorf("distance to itself = %g", got)
	}
	// The arc from (0,0) to (2,0) passes 1 degree below (1,1).
	if got := arcAngle(Point{1, 1}, Point{0, 0}, Point{2, 0}) * EarthRadius; math.Abs(got-oneDegree) > 1e-3 {
		t.Errorf("arc distance = %f m, want %f", got, oneDegree)
	}
	s := prepare(MultiPolygon{{rect(10, 59, 11, 60)}})
	if !s.containsOnSphere(Point{10.5, 59.5}) || s.containsOnSphere(Point{11.5, 59.5}) {
		t.Error("containsOnSphere is wrong")
	}
	// A great-circle edge bulges poleward: a point just north of the
	// planar top edge's middle is inside on the sphere.
	if !s.containsOnSphere(Point{10.5, 60.0005}) {
		t.Error("the spherical top edge should run north of 60.0005 at 10.5")
	}
	b := Circle{Lat: 59.13, Lon: 10.22, RadiusM: 1000}.capBox()
	for _, brg := range []float64{0, 90, 180, 270, 45} {
		p := destination(Point{10.22, 59.13}, 1000, brg)
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
	return Point{lon2 * 180 / math.Pi, lat2 * 180 / math.Pi}
}

func TestWKBRoundTrip(t *testing.T) {
	t.Parallel()
	mp := MultiPolygon{{rect(0, 0, 4, 4), rect(1, 1, 2, 2)}, {rect(5, 0, 6, 1)}}
	got, err := ParseWKB(mp.wkb())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(mp, got); diff != "" {
		t.Errorf("WKB round trip (-want +got):\n%s", diff)
	}
	for _, bad := range [][]byte{nil, {1}, mp.wkb()[:20], {1, 1, 0, 0, 0, 0, 0, 0, 0}} {
		if _, err := ParseWKB(bad); err == nil {
			t.Errorf("ParseWKB(%x) accepted", bad)
		}
	}
}
