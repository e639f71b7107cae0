package segments

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sort"

	"github.com/crier-push/crier/geojson"
)

// The geometry types are geojson's, the one reader's: a within node's and
// an area's geometry.
type (
	Point        = geojson.Point
	Ring         = geojson.Ring
	Polygon      = geojson.Polygon
	MultiPolygon = geojson.MultiPolygon
)

// Circle is a near target: every point within RadiusM metres of the centre
// on the sphere.
type Circle struct {
	Lat, Lon, RadiusM float64
}

// orient is the sign of the turn a→b→c: 1 left (counter-clockwise), -1
// right, 0 collinear. It is exact: a floating-point filter decides the clear
// cases and exact arithmetic the rest (orientExact), so the predicates below
// agree with GEOS's robust ones on every input.
func orient(a, b, c Point) int {
	l := (b.Lon - a.Lon) * (c.Lat - a.Lat)
	r := (b.Lat - a.Lat) * (c.Lon - a.Lon)
	// Shewchuk's bound on the error of det (ccwerrboundA), which holds
	// while the products are normal numbers.
	if math.Abs(l) >= 0x1p-1000 && math.Abs(r) >= 0x1p-1000 {
		det, bound := l-r, 3.3306690738754716e-16*(math.Abs(l)+math.Abs(r))
		switch {
		case det > bound:
			return 1
		case det < -bound:
			return -1
		}
	}
	// A point that is one of the segment's ends lies on its line: exactly,
	// and common (a ring's neighbouring edges share a vertex), so it is
	// answered before the exact arithmetic.
	if c == a || c == b || a == b {
		return 0
	}
	// A difference of floats is zero exactly when they are equal, and
	// otherwise has the right sign; a product with a zero factor is zero. So
	// when one product has a zero factor, the other's factors give the sign
	// (common: edges along a meridian or a parallel).
	switch dx, dy := b.Lon-a.Lon, b.Lat-a.Lat; {
	case dx == 0 || c.Lat == a.Lat:
		if dy == 0 || c.Lon == a.Lon {
			return 0
		}
		return -sign(dy) * sign(c.Lon-a.Lon)
	case dy == 0 || c.Lon == a.Lon:
		return sign(dx) * sign(c.Lat-a.Lat)
	}
	return orientExact(a, b, c)
}

func sign(f float64) int {
	switch {
	case f > 0:
		return 1
	case f < 0:
		return -1
	}
	return 0
}

// onSegment reports whether p lies on the closed segment a-b.
func onSegment(p, a, b Point) bool {
	return math.Min(a.Lon, b.Lon) <= p.Lon && p.Lon <= math.Max(a.Lon, b.Lon) &&
		math.Min(a.Lat, b.Lat) <= p.Lat && p.Lat <= math.Max(a.Lat, b.Lat) &&
		orient(a, b, p) == 0
}

// properCross reports whether segments a and b cross at a single point
// interior to both.
func properCross(a0, a1, b0, b1 Point) bool {
	return orient(a0, a1, b0)*orient(a0, a1, b1) < 0 && orient(b0, b1, a0)*orient(b0, b1, a1) < 0
}

type bbox struct{ minX, minY, maxX, maxY float64 }

func emptyBox() bbox { return bbox{math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)} }

func (b *bbox) add(p Point) {
	b.minX, b.maxX = math.Min(b.minX, p.Lon), math.Max(b.maxX, p.Lon)
	b.minY, b.maxY = math.Min(b.minY, p.Lat), math.Max(b.maxY, p.Lat)
}

func (b bbox) overlaps(o bbox) bool {
	return b.minX <= o.maxX && o.minX <= b.maxX && b.minY <= o.maxY && o.minY <= b.maxY
}

func (b bbox) contains(p Point) bool {
	return b.minX <= p.Lon && p.Lon <= b.maxX && b.minY <= p.Lat && p.Lat <= b.maxY
}

func segBox(a, b Point) bbox {
	return bbox{math.Min(a.Lon, b.Lon), math.Min(a.Lat, b.Lat), math.Max(a.Lon, b.Lon), math.Max(a.Lat, b.Lat)}
}

// edge is a directed boundary segment with the polygon's interior on its
// left.
type edge struct {
	a, b Point
	box  bbox
}

// shape is a MultiPolygon prepared for the predicates: its edges oriented
// interior-left (shells counter-clockwise, holes clockwise) and its vertices.
type shape struct {
	edges []edge
	verts []Point
	box   bbox
}

func signedArea(r Ring) float64 {
	var s float64
	for i := 0; i+1 < len(r); i++ {
		s += r[i].Lon*r[i+1].Lat - r[i+1].Lon*r[i].Lat
	}
	return s / 2
}

func prepare(mp MultiPolygon) *shape {
	s := &shape{box: emptyBox()}
	for _, poly := range mp {
		for ri, ring := range poly {
			ccw := signedArea(ring) > 0
			reverse := (ri == 0) != ccw // shells counter-clockwise, holes clockwise
			for i := 0; i+1 < len(ring); i++ {
				a, b := ring[i], ring[i+1]
				if reverse {
					a, b = b, a
				}
				if a == b {
					continue
				}
				s.edges = append(s.edges, edge{a: a, b: b, box: segBox(a, b)})
				s.verts = append(s.verts, ring[i])
				s.box.add(ring[i])
			}
		}
	}
	return s
}

// locate tells where p lies: 1 in the interior, 0 on the boundary, -1
// outside. Even-odd crossing count over every ring, so holes and the parts
// of a multipolygon need no special case for valid geometries.
func (s *shape) locate(p Point) int {
	if !s.box.contains(p) {
		return -1
	}
	inside := false
	for _, e := range s.edges {
		// An edge wholly above, below or left of p neither holds p nor
		// crosses the ray from p to the right.
		if e.box.minY > p.Lat || e.box.maxY < p.Lat || e.box.maxX < p.Lon {
			continue
		}
		if onSegment(p, e.a, e.b) {
			return 0
		}
		if (e.a.Lat > p.Lat) != (e.b.Lat > p.Lat) {
			o := orient(e.a, e.b, p)
			if (e.b.Lat > e.a.Lat) == (o > 0) {
				inside = !inside
			}
		}
	}
	if inside {
		return 1
	}
	return -1
}

// interiorsIntersect reports whether the interiors of two valid polygonal
// shapes share a point: the DE-9IM pattern T******** (ST_Relate(a, b,
// 'T********')). Shapes that only touch, at points or along shared borders,
// do not.
//
// Without a proper crossing of the boundaries, an overlap of the interiors
// shows on a boundary: either a stretch of one boundary runs through the
// other's interior, or a stretch of the two boundaries coincides with both
// interiors on the same side.
func interiorsIntersect(a, b *shape) bool {
	if !a.box.overlaps(b.box) {
		return false
	}
	for _, ea := range a.edges {
		if !ea.box.overlaps(b.box) {
			continue
		}
		for _, eb := range b.edges {
			if ea.box.overlaps(eb.box) && properCross(ea.a, ea.b, eb.a, eb.b) {
				return true
			}
		}
	}
	return boundaryEntersInterior(a, b) || boundaryEntersInterior(b, a)
}

// boundaryEntersInterior assumes no proper crossings. It splits each edge of
// a at the vertices of b on it; each piece then lies wholly inside,
// outside, or on the boundary of b.
func boundaryEntersInterior(a, b *shape) bool {
	var cuts []Point
	for _, ea := range a.edges {
		if !ea.box.overlaps(b.box) {
			continue
		}
		cuts = append(cuts[:0], ea.a, ea.b)
		for _, v := range b.verts {
			if ea.box.contains(v) && v != ea.a && v != ea.b && onSegment(v, ea.a, ea.b) {
				cuts = append(cuts, v)
			}
		}
		dx, dy := ea.b.Lon-ea.a.Lon, ea.b.Lat-ea.a.Lat
		t := func(p Point) float64 { return (p.Lon-ea.a.Lon)*dx + (p.Lat-ea.a.Lat)*dy }
		sort.Slice(cuts, func(i, j int) bool { return t(cuts[i]) < t(cuts[j]) })
		for i := 0; i+1 < len(cuts); i++ {
			p, q := cuts[i], cuts[i+1]
			if p == q {
				continue
			}
			shared, same := false, false
			pq := segBox(p, q)
			for _, eb := range b.edges {
				if eb.box.overlaps(pq) && onSegment(p, eb.a, eb.b) && onSegment(q, eb.a, eb.b) {
					shared = true
					same = (q.Lon-p.Lon)*(eb.b.Lon-eb.a.Lon)+(q.Lat-p.Lat)*(eb.b.Lat-eb.a.Lat) > 0
					break
				}
			}
			if shared {
				if same {
					return true
				}
				continue
			}
			if b.locate(Point{Lon: (p.Lon + q.Lon) / 2, Lat: (p.Lat + q.Lat) / 2}) == 1 {
				return true
			}
		}
	}
	return false
}

// vertexCount is the number of positions in a geometry.
func vertexCount(mp MultiPolygon) int {
	n := 0
	for _, p := range mp {
		for _, r := range p {
			n += len(r)
		}
	}
	return n
}

// collinearOverlap reports whether two segments share a stretch of positive
// length.
func collinearOverlap(a0, a1, b0, b1 Point) bool {
	if orient(a0, a1, b0) != 0 || orient(a0, a1, b1) != 0 {
		return false
	}
	// Project on the segment's longer axis and compare the intervals.
	key := func(p Point) float64 { return p.Lat }
	if math.Abs(a1.Lon-a0.Lon) >= math.Abs(a1.Lat-a0.Lat) {
		key = func(p Point) float64 { return p.Lon }
	}
	lo := math.Max(math.Min(key(a0), key(a1)), math.Min(key(b0), key(b1)))
	hi := math.Min(math.Max(key(a0), key(a1)), math.Max(key(b0), key(b1)))
	return lo < hi
}

// WKB: the compiler hands geometries to PostGIS as well-known binary, so the
// database sees exactly the float64s the evaluator sees.

const (
	wkbPolygon      = 3
	wkbMultiPolygon = 6
)

func wkb(mp MultiPolygon) []byte {
	n := 9
	for _, p := range mp {
		n += 9
		for _, r := range p {
			n += 4 + 16*len(r)
		}
	}
	b := make([]byte, 0, n)
	le := binary.LittleEndian
	b = append(b, 1)
	b = le.AppendUint32(b, wkbMultiPolygon)
	b = le.AppendUint32(b, uint32(len(mp)))
	for _, p := range mp {
		b = append(b, 1)
		b = le.AppendUint32(b, wkbPolygon)
		b = le.AppendUint32(b, uint32(len(p)))
		for _, r := range p {
			b = le.AppendUint32(b, uint32(len(r)))
			for _, pt := range r {
				b = le.AppendUint64(b, math.Float64bits(pt.Lon))
				b = le.AppendUint64(b, math.Float64bits(pt.Lat))
			}
		}
	}
	return b
}

// ParseWKB decodes a 2D Polygon or MultiPolygon in (ISO or extended)
// well-known binary, as ST_AsBinary returns an area's geometry, so a Go
// Env can hold exactly what the database holds.
func ParseWKB(b []byte) (MultiPolygon, error) {
	r := wkbReader{b: b}
	order, typ := r.header()
	var mp MultiPolygon
	switch typ {
	case wkbPolygon:
		mp = MultiPolygon{r.polygon(order)}
	case wkbMultiPolygon:
		n := r.u32(order)
		if n > uint32(len(b)) {
			return nil, errors.New("wkb: bad polygon count")
		}
		for i := uint32(0); i < n && r.err == nil; i++ {
			o, t := r.header()
			if t != wkbPolygon && r.err == nil {
				r.err = fmt.Errorf("wkb: multipolygon member of type %d", t)
			}
			mp = append(mp, r.polygon(o))
		}
	default:
		if r.err == nil {
			r.err = fmt.Errorf("wkb: geometry type %d is not a polygon or multipolygon", typ)
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	return mp, nil
}

type wkbReader struct {
	b   []byte
	err error
}

func (r *wkbReader) take(n int) []byte {
	if r.err != nil || len(r.b) < n {
		if r.err == nil {
			r.err = errors.New("wkb: truncated")
		}
		return make([]byte, n)
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *wkbReader) u32(o binary.ByteOrder) uint32 { return o.Uint32(r.take(4)) }

func (r *wkbReader) header() (binary.ByteOrder, uint32) {
	var o binary.ByteOrder = binary.LittleEndian
	if r.take(1)[0] == 0 {
		o = binary.BigEndian
	}
	t := r.u32(o)
	if t&0x20000000 != 0 { // EWKB SRID flag
		r.u32(o)
	}
	if t&0xC0000000 != 0 && r.err == nil {
		r.err = errors.New("wkb: only 2D geometries")
	}
	return o, t & 0x0FFFFFFF
}

func (r *wkbReader) polygon(o binary.ByteOrder) Polygon {
	n := r.u32(o)
	if n > uint32(len(r.b)) {
		r.err = errors.New("wkb: bad ring count")
		return nil
	}
	p := make(Polygon, 0, n)
	for i := uint32(0); i < n && r.err == nil; i++ {
		m := r.u32(o)
		if uint64(m)*16 > uint64(len(r.b)) {
			r.err = errors.New("wkb: bad point count")
			return nil
		}
		ring := make(Ring, m)
		for j := range ring {
			ring[j] = Point{Lon: math.Float64frombits(o.Uint64(r.take(8))), Lat: math.Float64frombits(o.Uint64(r.take(8)))}
		}
		p = append(p, ring)
	}
	return p
}
