package segments

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"testing"
)

// TestValidateAgainstPairwise holds the sweep to the pairwise checks it
// replaced (agreesWithPairwise), on random small geometries snapped to a
// coarse grid so that they are full of shared vertices, collinear edges,
// vertices on edges and touching rings.
func TestValidateAgainstPairwise(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(7, 11))
	const n = 4_000
	reasons := map[string]int{}
	same := 0
	for i := range n {
		mp := randomGeometry(r)
		msg, exact := agreesWithPairwise(t, mp, len(mp) > 1 || r.IntN(2) == 0)
		reasons[msg]++
		if exact {
			same++
		}
		if t.Failed() {
			t.Fatalf("case %d", i)
		}
	}
	t.Logf("%d geometries, %d answered exactly as the pairwise checks; reasons %v", n, same, reasons)
	if reasons[""] < n/20 {
		t.Errorf("only %d of %d random geometries are valid: the test exercises too little", reasons[""], n)
	}
}

// FuzzValidate holds validate to the pairwise checks on geometries made of
// the input's bytes: each a vertex on a grid of 16 by 16 cells, 0xFE
// starting a ring and 0xFF a polygon.
func FuzzValidate(f *testing.F) {
	f.Add([]byte{0x00, 0x04, 0x44, 0x40, 0xfe, 0x11, 0x31, 0x33, 0xff, 0x44, 0x48, 0x88})
	f.Add([]byte{0x00, 0x22, 0x02, 0x20, 0xff, 0x00, 0x02, 0x22})
	f.Fuzz(func(t *testing.T, data []byte) {
		var mp MultiPolygon
		var p Polygon
		var ring Ring
		endRing := func() {
			if len(ring) > 0 && ring[len(ring)-1] != ring[0] {
				ring = append(ring, ring[0])
			}
			if len(ring) >= 4 {
				p = append(p, ring)
			}
			ring = nil
		}
		endPolygon := func() {
			endRing()
			if len(p) > 0 {
				mp = append(mp, p)
			}
			p = nil
		}
		for _, b := range data {
			switch b {
			case 0xfe:
				endRing()
			case 0xff:
				endPolygon()
			default:
				pt := Point{Lon: 10 + float64(b%16)/16, Lat: 59 + float64(b/16)/16}
				if len(ring) == 0 || ring[len(ring)-1] != pt {
					ring = append(ring, pt)
				}
			}
		}
		endPolygon()
		if len(mp) > 0 {
			agreesWithPairwise(t, mp, len(mp) > 1)
		}
	})
}

// agreesWithPairwise holds validate to pairwiseValidate on one geometry:
// both accept it, or both refuse it at the same stage: a ring without area
// or repeating a position, rings meeting where they may not, a misplaced
// hole (the same hole, for the same reason), or polygons overlapping (the
// polygon named overlaps another). Which of several meetings is named may
// differ. It returns the pairwise reason and whether the answers are the
// same.
func agreesWithPairwise(t *testing.T, mp MultiPolygon, multi bool) (string, bool) {
	t.Helper()
	stage := map[string]int{"": 0, msgNoArea: 1, msgSelf: 2, msgRingsTouch: 2, msgBorders: 2, msgOutside: 3, msgInHole: 3, msgOverlap: 4}
	for _, poly := range mp {
		for _, r := range poly {
			for i := 1; i < len(r); i++ {
				if r[i] == r[i-1] { // the readers drop repeats; pairwiseValidate took them
					return "", true
				}
			}
		}
	}
	gotPath, gotMsg := validate(mp, multi)
	wantPath, wantMsg := pairwiseValidate(mp, multi)
	bad := stage[gotMsg] != stage[wantMsg]
	switch stage[wantMsg] {
	case 1, 3:
		bad = bad || gotPath != wantPath || gotMsg != wantMsg
	case 4:
		bad = bad || !overlapsAnother(mp, gotPath)
	}
	if bad {
		t.Errorf("validate = %q %q, pairwise %q %q\n%v", gotPath, gotMsg, wantPath, wantMsg, mp)
	}
	return wantMsg, gotPath == wantPath && gotMsg == wantMsg
}

// overlapsAnother reports whether the polygon a path names overlaps
// another of the geometry.
func overlapsAnother(mp MultiPolygon, path string) bool {
	var pi, ri int
	if _, err := fmt.Sscanf(path, ".coordinates[%d][%d]", &pi, &ri); err != nil || pi >= len(mp) {
		return false
	}
	for pj := range mp {
		if pj != pi && interiorsIntersect(prepare(mp[pi:pi+1]), prepare(mp[pj:pj+1])) {
			return true
		}
	}
	return false
}

// randomGeometry is one to four polygons of up to three holes: rings of
// any shape on a grid of a few cells, or (more often valid, and so testing
// the placing of holes and polygons) rectangles and diamonds, holes within
// their shell's box.
func randomGeometry(r *rand.Rand) MultiPolygon {
	if r.IntN(3) == 0 {
		return nestedGeometry(r)
	}
	var mp MultiPolygon
	boxed := r.IntN(2) == 0
	for range 1 + r.IntN(4) {
		if !boxed {
			p := Polygon{randomRing(r, 8)}
			for range r.IntN(4) {
				p = append(p, randomRing(r, 8))
			}
			mp = append(mp, p)
			continue
		}
		x0, y0 := r.IntN(12), r.IntN(12)
		x1, y1 := x0+2+r.IntN(8), y0+2+r.IntN(8)
		p := Polygon{boxRing(r, x0, y0, x1, y1)}
		for range r.IntN(3) {
			hx0, hy0 := x0+r.IntN(x1-x0), y0+r.IntN(y1-y0)
			hx1, hy1 := hx0+1+r.IntN(x1-hx0), hy0+1+r.IntN(y1-hy0)
			p = append(p, boxRing(r, hx0, hy0, hx1, hy1))
			if hx1-hx0 > 2 && hy1-hy0 > 2 && r.IntN(3) == 0 { // a hole in the hole
				p = append(p, boxRing(r, hx0+1, hy0+1, hx1-1, hy1-1))
			}
		}
		mp = append(mp, p)
	}
	return mp
}

// nestedGeometry is polygons each in the hole of the next, from the inside
// out; some holes are left out, some touch what is inside them, and some
// rings are diamonds, which cut or touch the rings around them.
func nestedGeometry(r *rand.Rand) MultiPolygon {
	x0, y0 := 20, 20
	x1, y1 := x0+1+r.IntN(3), y0+1+r.IntN(3)
	var mp MultiPolygon
	for i := range 2 + r.IntN(3) {
		if i > 0 {
			m := r.IntN(3) / 2 // mostly apart, sometimes touching
			x0, y0, x1, y1 = x0-m, y0-m, x1+m, y1+m
		}
		var hole Ring
		if i > 0 && r.IntN(4) != 0 {
			hole = boxRing(r, x0, y0, x1, y1)
		}
		g := 1 + r.IntN(2)
		x0, y0, x1, y1 = x0-g, y0-g, x1+g, y1+g
		p := Polygon{boxRing(r, x0, y0, x1, y1)}
		if hole != nil {
			p = append(p, hole)
		}
		mp = append(mp, p)
	}
	r.Shuffle(len(mp), func(i, j int) { mp[i], mp[j] = mp[j], mp[i] })
	return mp
}

// boxRing is the rectangle of grid cells or the diamond inscribed in it,
// in either orientation.
func boxRing(r *rand.Rand, x0, y0, x1, y1 int) Ring {
	at := func(x, y int) Point { return Point{Lon: 10 + float64(x)/16, Lat: 59 + float64(y)/16} }
	ring := Ring{at(x0, y0), at(x1, y0), at(x1, y1), at(x0, y1)}
	if r.IntN(3) == 0 {
		x0, y0, x1, y1 = 2*x0, 2*y0, 2*x1, 2*y1 // on the half grid, so the diamond's vertices are grid points
		half := func(x, y int) Point { return Point{Lon: 10 + float64(x)/32, Lat: 59 + float64(y)/32} }
		ring = Ring{half((x0+x1)/2, y0), half(x1, (y0+y1)/2), half((x0+x1)/2, y1), half(x0, (y0+y1)/2)}
	}
	if r.IntN(2) == 0 {
		ring[1], ring[3] = ring[3], ring[1]
	}
	return append(ring, ring[0])
}

func randomRing(r *rand.Rand, grid int) Ring {
	at := func(x, y int) Point { return Point{Lon: 10 + float64(x)/8, Lat: 59 + float64(y)/8} }
	for {
		var ring Ring
		switch r.IntN(4) {
		case 0: // a rectangle
			x0, y0 := r.IntN(grid), r.IntN(grid)
			x1, y1 := x0+1+r.IntN(grid/2), y0+1+r.IntN(grid/2)
			ring = Ring{at(x0, y0), at(x1, y0), at(x1, y1), at(x0, y1)}
		case 1: // a triangle
			for range 3 {
				ring = append(ring, at(r.IntN(grid), r.IntN(grid)))
			}
		default: // star-shaped around a cell, snapped: sometimes not simple
			cx, cy := float64(r.IntN(grid)), float64(r.IntN(grid))
			k := 3 + r.IntN(6)
			var as []float64
			for range k {
				as = append(as, r.Float64()*2*math.Pi)
			}
			sort.Float64s(as)
			for _, a := range as {
				rad := 0.5 + r.Float64()*float64(grid)/3
				ring = append(ring, at(int(math.Round(cx+rad*math.Cos(a))), int(math.Round(cy+rad*math.Sin(a)))))
			}
		}
		if r.IntN(2) == 0 {
			for i, j := 0, len(ring)-1; i < j; i, j = i+1, j-1 {
				ring[i], ring[j] = ring[j], ring[i]
			}
		}
		// Close it and drop repeated neighbours, as the readers do.
		ring = append(ring, ring[0])
		var out Ring
		for _, p := range ring {
			if len(out) == 0 || out[len(out)-1] != p {
				out = append(out, p)
			}
		}
		if len(out) >= 4 {
			return out
		}
	}
}

// pairwiseValidate is validate as it was, comparing edges, rings and
// polygons pairwise: the reference validate is held to.
func pairwiseValidate(mp MultiPolygon, multi bool) (string, string) {
	ringPath := func(pi, ri int) string {
		if multi {
			return fmt.Sprintf(".coordinates[%d][%d]", pi, ri)
		}
		return fmt.Sprintf(".coordinates[%d]", ri)
	}
	type seg struct {
		a, b   Point
		box    bbox
		pi, ri int
		i, n   int // edge index in its ring, ring edge count
	}
	var segs []seg
	for pi, poly := range mp {
		for ri, ring := range poly {
			if signedArea(ring) == 0 {
				return ringPath(pi, ri), "ring encloses no area"
			}
			n := len(ring) - 1
			for i := 0; i < n; i++ {
				segs = append(segs, seg{ring[i], ring[i+1], segBox(ring[i], ring[i+1]), pi, ri, i, n})
			}
		}
	}
	// Sweep along x: only segments whose x-ranges overlap are compared.
	sort.Slice(segs, func(i, j int) bool { return segs[i].box.minX < segs[j].box.minX })
	for i := range segs {
		s := segs[i]
		for j := i + 1; j < len(segs) && segs[j].box.minX <= s.box.maxX; j++ {
			t := segs[j]
			if !s.box.overlaps(t.box) || !segmentsIntersect(s.a, s.b, t.a, t.b) {
				continue
			}
			if s.pi == t.pi && s.ri == t.ri {
				// Neighbours in a ring share one vertex; they may meet
				// nowhere else, so no fold back along the same line.
				next := (s.i+1)%s.n == t.i
				prev := (t.i+1)%t.n == s.i
				if (next || prev) && !(next && prev) {
					var shared, sFar, tFar Point
					if next {
						shared, sFar, tFar = s.b, s.a, t.b
					} else {
						shared, sFar, tFar = s.a, s.b, t.a
					}
					if orient(sFar, shared, tFar) != 0 || !collinearFoldBack(sFar, shared, tFar) {
						continue
					}
				}
				p, r := ringPath(s.pi, s.ri), "ring intersects itself"
				return p, r
			}
			if s.pi == t.pi {
				return ringPath(s.pi, max(s.ri, t.ri)), "ring touches or crosses another ring of its polygon"
			}
			// Parts of a multipolygon may touch at points, as OGC allows
			// (repaired municipal borders do), but not cross or share a
			// stretch of border.
			if properCross(s.a, s.b, t.a, t.b) || collinearOverlap(s.a, s.b, t.a, t.b) {
				return ringPath(max(s.pi, t.pi), 0), "polygon crosses or shares a border with another polygon"
			}
		}
	}
	shapes := make([]*shape, len(mp))
	for pi, poly := range mp {
		shapes[pi] = prepare(MultiPolygon{poly})
		shell := prepare(MultiPolygon{poly[:1]})
		for ri := 1; ri < len(poly); ri++ {
			if shell.locate(poly[ri][0]) != 1 {
				return ringPath(pi, ri), "hole lies outside its shell"
			}
			for rj := 1; rj < len(poly); rj++ {
				if rj != ri && prepare(MultiPolygon{Polygon{poly[rj]}}).locate(poly[ri][0]) == 1 {
					return ringPath(pi, ri), "hole lies inside another hole"
				}
			}
		}
	}
	for pi := range mp {
		for pj := pi + 1; pj < len(mp); pj++ {
			if interiorsIntersect(shapes[pi], shapes[pj]) {
				return ringPath(pj, 0), "polygon overlaps another polygon"
			}
		}
	}
	return "", ""
}

// segmentsIntersect reports whether the closed segments share any point.
func segmentsIntersect(a0, a1, b0, b1 Point) bool {
	o1, o2 := orient(a0, a1, b0), orient(a0, a1, b1)
	o3, o4 := orient(b0, b1, a0), orient(b0, b1, a1)
	if o1*o2 < 0 && o3*o4 < 0 {
		return true
	}
	return (o1 == 0 && onSegment(b0, a0, a1)) || (o2 == 0 && onSegment(b1, a0, a1)) ||
		(o3 == 0 && onSegment(a0, b0, b1)) || (o4 == 0 && onSegment(a1, b0, b1))
}

// collinearFoldBack reports whether, with a, m, c collinear, the path a→m→c
// turns back on itself (c lies on the same side of m as a).
func collinearFoldBack(a, m, c Point) bool {
	return (a.Lon-m.Lon)*(c.Lon-m.Lon)+(a.Lat-m.Lat)*(c.Lat-m.Lat) > 0
}
