package segments

import (
	"cmp"
	"fmt"
	"slices"
)

// Validity of a within geometry in O(n log n) for n edges, whatever their
// shape: one sweep over all edges finds any two that cross, overlap or
// touch where they may not (Shamos and Hoey's sweep, with the points where
// edges meet examined at their events, so shared vertices cost no pairwise
// tests), and the same sweep yields which ring lies directly inside which,
// from which holes and polygons are placed. Every decision is made with the
// exact orient, so the answers are those of the pairwise definitions.

const (
	msgNoArea     = "ring encloses no area"
	msgSelf       = "ring intersects itself"
	msgRingsTouch = "ring touches or crosses another ring of its polygon"
	msgOutside    = "hole lies outside its shell"
	msgInHole     = "hole lies inside another hole"
	msgBorders    = "polygon crosses or shares a border with another polygon"
	msgOverlap    = "polygon overlaps another polygon"
)

// validate checks what PostGIS needs of a target geometry and more: rings
// are simple, no two rings of a polygon touch or cross, holes lie inside
// their shell and not inside one another, and the polygons' interiors are
// disjoint (they may touch at points, not cross or share a stretch of
// border). Rings are closed, with no position repeated next to itself. It
// returns the path suffix of the offending ring (".coordinates[i][j]") and
// a message.
func validate(mp MultiPolygon, multi bool) (string, string) {
	g := newGraph(mp, multi)
	for _, r := range g.rings {
		if signedArea(r.pts) == 0 {
			return g.ringPath(r.pi, r.ri), msgNoArea
		}
		for i := 1; i < len(r.pts); i++ {
			if r.pts[i] == r.pts[i-1] { // the readers drop them; the sweep needs them gone
				return g.ringPath(r.pi, r.ri), "ring repeats a position"
			}
		}
	}
	s, v := g.sweep(true)
	if v != nil {
		return v.path, v.msg
	}
	for pi, poly := range mp {
		if len(poly) == 1 {
			continue
		}
		// The nesting of one polygon's rings among themselves: the whole
		// geometry's, if it is one polygon; else a sweep of its own, so
		// that another polygon crossing this one at a vertex (which the
		// check of overlaps below refuses) cannot confuse it.
		pg, parent := g, []int32(nil)
		if len(mp) == 1 {
			parent = g.parents(s.below)
		} else {
			pg = newGraph(MultiPolygon{poly}, multi)
			ps, _ := pg.sweep(false)
			parent = pg.parents(ps.below)
		}
		if ri, msg := pg.holes(parent); msg != "" {
			return g.ringPath(pi, ri), msg
		}
	}
	if len(mp) == 1 {
		return "", ""
	}
	if s.overlap[0] < 0 {
		s.overlap = g.nestedOverlap(g.parents(s.below))
	}
	if s.overlap[0] >= 0 {
		return g.ringPath(s.overlap[1], 0), msgOverlap
	}
	return "", ""
}

// vring is a ring of the geometry.
type vring struct {
	pi, ri int
	pts    Ring
	off, n int32 // its edges are graph.edges[off : off+n]
	least  int32 // index of its lexicographically least vertex
	ccw    bool  // exactly, by the turn at that (convex) vertex
}

// vedge is an edge; edge off+i of a ring runs from its vertex i to i+1, so
// an edge's index also names the vertex it starts at.
type vedge struct {
	a, b Point // in ring order
	l, r Point // a and b, the lexicographically lesser first
	ring int32
}

type graph struct {
	rings []vring
	edges []vedge
	multi bool
}

func newGraph(mp MultiPolygon, multi bool) *graph {
	g := &graph{multi: multi, edges: make([]vedge, 0, vertexCount(mp))}
	for pi, poly := range mp {
		for ri, ring := range poly {
			n := len(ring) - 1
			vr := vring{pi: pi, ri: ri, pts: ring, off: int32(len(g.edges)), n: int32(n)}
			for i := 1; i < n; i++ {
				if less(ring[i], ring[vr.least]) {
					vr.least = int32(i)
				}
			}
			vr.ccw = orient(ring[(int(vr.least)+n-1)%n], ring[vr.least], ring[vr.least+1]) > 0
			for i := range n {
				e := vedge{a: ring[i], b: ring[i+1], l: ring[i], r: ring[i+1], ring: int32(len(g.rings))}
				if less(e.r, e.l) {
					e.l, e.r = e.r, e.l
				}
				g.edges = append(g.edges, e)
			}
			g.rings = append(g.rings, vr)
		}
	}
	return g
}

func (g *graph) ringPath(pi, ri int) string {
	if g.multi {
		return fmt.Sprintf(".coordinates[%d][%d]", pi, ri)
	}
	return fmt.Sprintf(".coordinates[%d]", ri)
}

// prevEdge is the edge that ends at the vertex edge e starts at.
func (g *graph) prevEdge(e int32) int32 {
	r := &g.rings[g.edges[e].ring]
	return r.off + (e-r.off+r.n-1)%r.n
}

// interiorLeft reports whether the polygon's interior lies left of ring k
// in ring order: a counter-clockwise shell or a clockwise hole.
func (g *graph) interiorLeft(k int32) bool { return (g.rings[k].ri == 0) == g.rings[k].ccw }

// regionAbove reports whether the region ring k encloses lies above edge
// e (left of it, going from l to r).
func (g *graph) regionAbove(e int32) bool {
	ed := &g.edges[e]
	return g.rings[ed.ring].ccw == (ed.a == ed.l)
}

type violation struct{ path, msg string }

// conflict is the error for edges of rings a and b meeting where they may
// not.
func (g *graph) conflict(a, b int32) *violation {
	ra, rb := &g.rings[a], &g.rings[b]
	switch {
	case a == b:
		return &violation{g.ringPath(ra.pi, ra.ri), msgSelf}
	case ra.pi == rb.pi:
		return &violation{g.ringPath(ra.pi, max(ra.ri, rb.ri)), msgRingsTouch}
	}
	// Parts of a multipolygon may touch at points, as OGC allows
	// (repaired municipal borders do), but not cross or share a stretch of
	// border.
	return &violation{g.ringPath(max(ra.pi, rb.pi), 0), msgBorders}
}

// sweep is a pass of a line across the plane, stopping at every vertex in
// lexicographic order (longitude, then latitude: a line turned a hair
// counter-clockwise from the meridian, so that no edge is parallel to it).
// The status holds the edges the line crosses, bottom to top; as long as
// no two edges have crossed left of the line, that order is well defined
// and changes only at vertices. Two edges that cross first become
// neighbours in the status, so only neighbours are tested; every other
// meeting of edges is at a vertex, and is examined there.
type sweep struct {
	g     *graph
	check bool
	t     status
	// below is, per ring, the edge right below the ring where it starts
	// (at its least vertex), noEdge for none: the ring's nesting.
	below []int32
	// overlap is the least pair of polygons whose interiors overlap at a
	// point where both boundaries pass, {-1, -1} for none.
	overlap [2]int

	// Scratch, per event.
	ev           int32
	stamp        []int32 // per ring, the last event that saw it
	verts, thrus []int32 // per ring, its vertices at and edges through the point
	seen         []int32 // the rings at the point
	thru         []int32 // edges
	ins          []int32
	rays         []ray
}

// ray is an edge leaving the event's point towards to; out if the polygon's
// interior lies counter-clockwise of it (and clockwise of the ring's other
// ray at the point).
type ray struct {
	to   Point
	ring int32
	out  bool
}

// sweep runs the sweep. With check it stops at the first edges that meet
// where they may not.
func (g *graph) sweep(check bool) (*sweep, *violation) {
	s := &sweep{g: g, check: check, t: newStatus(len(g.edges)), below: make([]int32, len(g.rings)), overlap: [2]int{-1, -1}}
	if check {
		s.stamp = make([]int32, len(g.rings))
		s.verts = make([]int32, len(g.rings))
		s.thrus = make([]int32, len(g.rings))
	}
	occ := make([]int32, len(g.edges))
	for i := range occ {
		occ[i] = int32(i)
	}
	slices.SortFunc(occ, func(x, y int32) int { return cmpPoint(g.edges[x].a, g.edges[y].a) })
	for i := 0; i < len(occ); {
		p := g.edges[occ[i]].a
		j := i + 1
		for j < len(occ) && g.edges[occ[j]].a == p {
			j++
		}
		if v := s.event(p, occ[i:j]); v != nil {
			return s, v
		}
		i = j
	}
	return s, nil
}

// event moves the line over p, the start of the vertices occs.
func (s *sweep) event(p Point, occs []int32) *violation {
	g := s.g
	s.ev++
	lower := int32(noEdge) // the edge below everything at p
	if s.check {
		// The edges already crossing the line that hold p: those ending
		// there and those passing through.
		start := s.t.first(func(e int32) bool { return orient(g.edges[e].l, g.edges[e].r, p) > 0 })
		s.thru = s.thru[:0]
		for e := start; e != noEdge; e = s.t.next(e) {
			ed := &g.edges[e]
			if orient(ed.l, ed.r, p) != 0 {
				break
			}
			if ed.r != p {
				s.thru = append(s.thru, e)
			}
		}
		if start != noEdge {
			lower = s.t.prev(start)
		} else {
			lower = s.t.last()
		}
		if v := s.meet(p, occs); v != nil {
			return v
		}
	}
	for _, o := range occs {
		for _, e := range [2]int32{g.prevEdge(o), o} {
			if g.edges[e].r == p {
				s.t.remove(e)
			}
		}
	}
	s.ins = s.ins[:0]
	for _, o := range occs {
		for _, e := range [2]int32{g.prevEdge(o), o} {
			f := &g.edges[e]
			if f.l != p {
				continue
			}
			s.t.insert(e, func(x int32) bool {
				ex := &g.edges[x]
				if o := orient(ex.l, ex.r, p); o != 0 {
					return o > 0
				}
				return orient(ex.l, ex.r, f.r) > 0
			})
			s.ins = append(s.ins, e)
		}
	}
	if s.check {
		// The neighbours that are new in the status.
		if lower != noEdge {
			if v := s.pair(lower, s.t.next(lower)); v != nil {
				return v
			}
		}
		for _, list := range [2][]int32{s.thru, s.ins} {
			for _, e := range list {
				if v := s.pair(e, s.t.next(e)); v != nil {
					return v
				}
			}
		}
	}
	for _, o := range occs {
		k := g.edges[o].ring
		r := &g.rings[k]
		if o-r.off != r.least {
			continue
		}
		// Both of the ring's edges start here; the lower one's neighbour
		// below is the edge right below the ring.
		in, out := g.prevEdge(o), o
		lowest := in
		if orient(p, g.edges[in].a, g.edges[out].b) < 0 {
			lowest = out
		}
		s.below[k] = s.t.prev(lowest)
	}
	return nil
}

// pair tests two neighbours in the status for a crossing or an overlap:
// their other meetings are at vertices.
func (s *sweep) pair(a, b int32) *violation {
	if a == noEdge || b == noEdge {
		return nil
	}
	ea, eb := &s.g.edges[a], &s.g.edges[b]
	if properCross(ea.l, ea.r, eb.l, eb.r) || collinearOverlap(ea.l, ea.r, eb.l, eb.r) {
		return s.g.conflict(ea.ring, eb.ring)
	}
	return nil
}

// meet examines the boundaries meeting at p: the vertices occs and the
// edges s.thru passing through. A ring may pass p once, turning there or
// not, without folding back; two rings of one polygon may not meet; rings
// of different polygons may touch, and do not overlap here if their
// polygons' interiors around p are apart.
func (s *sweep) meet(p Point, occs []int32) *violation {
	g := s.g
	if len(occs) == 1 && len(s.thru) == 0 { // one ring turns at p: most events
		o := occs[0]
		if angleCmp(p, g.edges[g.prevEdge(o)].a, g.edges[o].b) == 0 {
			return g.conflict(g.edges[o].ring, g.edges[o].ring)
		}
		return nil
	}
	s.seen = s.seen[:0]
	note := func(k int32) {
		if s.stamp[k] != s.ev {
			s.stamp[k], s.verts[k], s.thrus[k] = s.ev, 0, 0
			s.seen = append(s.seen, k)
		}
	}
	for _, o := range occs {
		k := g.edges[o].ring
		note(k)
		s.verts[k]++
	}
	for _, e := range s.thru {
		k := g.edges[e].ring
		note(k)
		s.thrus[k]++
	}
	for _, k := range s.seen {
		if s.verts[k]+s.thrus[k] != 1 {
			return g.conflict(k, k)
		}
	}
	if len(s.thru) > 1 { // two edges cross at p
		return g.conflict(g.edges[s.thru[0]].ring, g.edges[s.thru[1]].ring)
	}
	slices.SortFunc(s.seen, func(a, b int32) int {
		return cmp.Or(cmp.Compare(g.rings[a].pi, g.rings[b].pi), cmp.Compare(g.rings[a].ri, g.rings[b].ri))
	})
	for i := 1; i < len(s.seen); i++ {
		if g.rings[s.seen[i]].pi == g.rings[s.seen[i-1]].pi {
			return g.conflict(s.seen[i-1], s.seen[i])
		}
	}
	s.rays = s.rays[:0]
	add := func(k int32, from, to Point) {
		in, out := from, to
		if !g.interiorLeft(k) {
			in, out = out, in
		}
		s.rays = append(s.rays, ray{to: in, ring: k}, ray{to: out, ring: k, out: true})
	}
	for _, o := range occs {
		add(g.edges[o].ring, g.edges[g.prevEdge(o)].a, g.edges[o].b)
	}
	for _, t := range s.thru {
		e := &g.edges[t]
		add(e.ring, e.a, e.b)
	}
	slices.SortFunc(s.rays, func(a, b ray) int { return angleCmp(p, a.to, b.to) })
	for i := 1; i < len(s.rays); i++ {
		if angleCmp(p, s.rays[i-1].to, s.rays[i].to) == 0 { // edges leave p along one line
			return g.conflict(s.rays[i-1].ring, s.rays[i].ring)
		}
	}
	// Each polygon's interior around p is the angle counter-clockwise from
	// its out ray to its in ray; no other ray may lie inside it.
	for i, r := range s.rays {
		next := s.rays[(i+1)%len(s.rays)]
		if r.out && next.ring != r.ring {
			s.noteOverlap(g.rings[r.ring].pi, g.rings[next.ring].pi)
		}
	}
	return nil
}

func (s *sweep) noteOverlap(a, b int) {
	pair := [2]int{min(a, b), max(a, b)}
	if s.overlap[0] < 0 || pair[0] < s.overlap[0] || (pair[0] == s.overlap[0] && pair[1] < s.overlap[1]) {
		s.overlap = pair
	}
}

// parents is, per ring, the ring that directly encloses it (-1 for none),
// for rings that do not cross one another. The point just below where a
// ring starts lies in the rings that enclose it; with e the edge right
// below that point, those are e's ring if the point is in its region, and
// else the rings that enclose e's ring.
func (g *graph) parents(below []int32) []int32 {
	return chase(len(g.rings), func(k int32) (int32, int32) {
		e := below[k]
		switch {
		case e < 0:
			return -1, -1
		case g.regionAbove(e):
			return -1, g.edges[e].ring
		}
		return g.edges[e].ring, 0
	}, func(_ int32, up int32) int32 { return up })
}

// holes checks one polygon's holes, given its rings' nesting: each lies
// inside the shell and inside no other hole. It returns the first bad
// hole's index.
func (g *graph) holes(parent []int32) (int, string) {
	const shellAbove, holeAbove = 1, 2
	kind := func(k int32) uint8 {
		if g.rings[k].ri == 0 {
			return shellAbove
		}
		return holeAbove
	}
	above := chase(len(g.rings), func(k int32) (int32, uint8) {
		if parent[k] < 0 {
			return -1, 0
		}
		return parent[k], 0
	}, func(k int32, up uint8) uint8 { return up | kind(parent[k]) })
	for k, r := range g.rings {
		switch {
		case r.ri == 0:
		case above[k]&shellAbove == 0:
			return r.ri, msgOutside
		case above[k]&holeAbove != 0:
			return r.ri, msgInHole
		}
	}
	return 0, ""
}

// nestedOverlap is the least pair of polygons one of which lies in the
// other's interior, given the rings' nesting (and that no polygons overlap
// where their boundaries meet): their rings then nest as shell, own hole,
// another polygon's shell, its hole, and so on.
func (g *graph) nestedOverlap(parent []int32) [2]int {
	found := [2]int{-1, -1}
	for k, r := range g.rings {
		up := parent[k]
		if up < 0 {
			continue
		}
		u := &g.rings[up]
		if u.pi == r.pi || (r.ri == 0 && u.ri != 0) {
			continue
		}
		pair := [2]int{min(r.pi, u.pi), max(r.pi, u.pi)}
		if found[0] < 0 || pair[0] < found[0] || (pair[0] == found[0] && pair[1] < found[1]) {
			found = pair
		}
	}
	return found
}

// chase computes a value per node of a forest where a node's value is its
// own (step returns up < 0 and the value) or follows from the value of the
// node up it depends on (then, from combine): iteratively, so that deep
// nesting costs no stack.
func chase[T any](n int, step func(k int32) (up int32, own T), combine func(k int32, upValue T) T) []T {
	val := make([]T, n)
	done := make([]bool, n)
	var stack []int32
	for k := range int32(n) {
		for x := k; !done[x]; {
			up, own := step(x)
			if up < 0 {
				val[x], done[x] = own, true
				break
			}
			if !done[up] {
				stack = append(stack, x)
				x = up
				continue
			}
			val[x], done[x] = combine(x, val[up]), true
		}
		for len(stack) > 0 {
			x := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			up, _ := step(x)
			val[x], done[x] = combine(x, val[up]), true
		}
	}
	return val
}

func cmpPoint(a, b Point) int { return cmp.Or(cmp.Compare(a.Lon, b.Lon), cmp.Compare(a.Lat, b.Lat)) }

func less(a, b Point) bool { return cmpPoint(a, b) < 0 }

// angleCmp orders the directions from p to a and to b counter-clockwise,
// starting east: exactly, by half-plane and then orient.
func angleCmp(p, a, b Point) int {
	lowA := a.Lat < p.Lat || (a.Lat == p.Lat && a.Lon < p.Lon)
	lowB := b.Lat < p.Lat || (b.Lat == p.Lat && b.Lon < p.Lon)
	switch {
	case lowA && !lowB:
		return 1
	case lowB && !lowA:
		return -1
	}
	return -orient(p, a, b)
}
