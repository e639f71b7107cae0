package segments

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/geojson"
	"github.com/crier-push/crier/internal/jsontree"
)

// Options are who is asking and how errors are named.
type Options struct {
	// Root is the name of the expression in error paths; default "segment"
	// for Parse and "target" for ParseTarget.
	Root string
	// Principal, if set, is who asks: the nodes it may not use are refused
	// (crier.Principal.MayUseSegmentNode), an organisation may name in feed
	// only the feeds in OwnFeeds, and geography finer than the principal's
	// floor (crier.Principal.GeographyFloor) is refused: a near radius
	// below its radius, a within polygon or a hole of one smaller than its
	// area. Stored expressions are read without.
	Principal *crier.Principal
	OwnFeeds  []string
	// Budget, if set, is the geometry positions the request may still
	// spend, shared by every expression parsed with it: parse a post's
	// target and segment with one Budget and they hold MaxVertices
	// positions between them. Without one, an expression has MaxVertices
	// of its own.
	Budget *Budget
}

// Budget is the geometry positions one request may spend across its
// expressions. The zero value allows MaxVertices; it is not safe for
// concurrent use.
type Budget struct {
	// Max is the positions allowed in all; zero means MaxVertices.
	Max  int
	used int
}

// Remaining is how many positions are left.
func (b *Budget) Remaining() int { return max(0, b.max()-b.used) }

func (b *Budget) max() int { return cmp.Or(b.Max, MaxVertices) }

type parser struct {
	opt      Options
	leaves   int
	vertices int
}

// floor is the finest geography the principal may target: a near radius
// in metres and a polygon area in square metres, zero for no floor.
func (p *parser) floor() (radiusM, areaM2 float64) {
	if p.opt.Principal == nil {
		return 0, 0
	}
	return p.opt.Principal.GeographyFloor()
}

func (p *parser) fail(path, format string, args ...any) *crier.Error {
	return crier.Invalid(path, format, args...)
}

// may refuses a node the principal may not use.
func (p *parser) may(kind Kind, path string) *crier.Error {
	if p.opt.Principal == nil {
		return nil
	}
	if err := p.opt.Principal.MayUseSegmentNode(string(kind)); err != nil {
		return p.fail(path, "%s", crier.AsError(err).Message)
	}
	return nil
}

// Parse reads and validates a segment expression. Every rejection is an
// *crier.Error naming the bad node.
func Parse(data []byte, opt Options) (*Expr, error) {
	opt.Root = cmp.Or(opt.Root, "segment")
	v, err := decode(data, opt.Root)
	if err != nil {
		return nil, err
	}
	p := &parser{opt: opt}
	e, perr := p.node(v, opt.Root, 1)
	if perr != nil {
		return nil, perr
	}
	return e, nil
}

// maxJSONDepth bounds the nesting of the raw JSON before any grammar applies:
// enough for MaxDepth nodes with a multipolygon at the bottom.
const maxJSONDepth = 2*MaxDepth + 12

// decode reads exactly one strict JSON value: duplicate members and
// trailing data are errors named by path.
func decode(data []byte, root string) (*jsontree.Node, error) {
	return jsontree.ParseStrict(data, jsontree.Strict{Root: root, MaxBytes: MaxInputBytes, MaxDepth: maxJSONDepth})
}

func (p *parser) node(v *jsontree.Node, path string, depth int) (*Expr, *crier.Error) {
	if v.Kind != jsontree.Object {
		return nil, p.fail(path, "must be an object with one key, not %s", v.What())
	}
	if len(v.Members) != 1 {
		return nil, p.fail(path, "must have exactly one key, found %d", len(v.Members))
	}
	key, val := v.Members[0].Name, v.Members[0].Value
	kp := path + "." + key
	switch Kind(key) {
	case KindAnd, KindOr, KindNot:
		if depth >= MaxDepth {
			return nil, p.fail(kp, "nested deeper than %d levels", MaxDepth)
		}
	default:
		p.leaves++
		if p.leaves > MaxLeaves {
			return nil, p.fail(path, "more than %d leaves in the expression", MaxLeaves)
		}
	}
	switch Kind(key) {
	case KindAll:
		if val.Kind != jsontree.Bool || !val.Bool {
			return nil, p.fail(kp, "must be true")
		}
		if err := p.may(KindAll, kp); err != nil {
			return nil, err
		}
		return All(), nil
	case KindAnd, KindOr:
		if val.Kind != jsontree.Array {
			return nil, p.fail(kp, "must be an array of segments, not %s", val.What())
		}
		if len(val.Items) == 0 {
			return nil, p.fail(kp, "must not be empty")
		}
		e := &Expr{kind: Kind(key)}
		for i, c := range val.Items {
			ce, err := p.node(c, kp+"["+strconv.Itoa(i)+"]", depth+1)
			if err != nil {
				return nil, err
			}
			e.children = append(e.children, ce)
		}
		return e, nil
	case KindNot:
		ce, err := p.node(val, kp, depth+1)
		if err != nil {
			return nil, err
		}
		return Not(ce), nil
	case KindFeed:
		s, err := p.slug(val, kp)
		if err != nil {
			return nil, err
		}
		if p.opt.Principal != nil && p.opt.Principal.IsOrganisation() && !slices.Contains(p.opt.OwnFeeds, s) {
			return nil, p.fail(kp, "feed %q is not one of your feeds", s)
		}
		return Feed(s), nil
	case KindArea:
		s, err := p.slug(val, kp)
		if err != nil {
			return nil, err
		}
		return Area(s), nil
	case KindInterest:
		if val.Kind != jsontree.String {
			return nil, p.fail(kp, "must be a string, not %s", val.What())
		}
		if err := crier.CheckWord(kp, val.Str, maxTagBytes); err != nil {
			return nil, err.(*crier.Error)
		}
		return Interest(val.Str), nil
	case KindPlatform:
		if val.Kind != jsontree.String || (val.Str != "android" && val.Str != "ios") {
			return nil, p.fail(kp, `must be "android" or "ios"`)
		}
		return &Expr{kind: KindPlatform, value: val.Str}, nil
	case KindLocale:
		l := ""
		if val.Kind == jsontree.String {
			l = strings.ToLower(val.Str)
		}
		if !crier.ValidLocale(l) {
			return nil, p.fail(kp, `must be a language tag such as "nb" or "nb-NO"`)
		}
		return &Expr{kind: KindLocale, value: l}, nil
	case KindDevice:
		if err := p.may(KindDevice, kp); err != nil {
			return nil, err
		}
		if val.Kind != jsontree.Array {
			return nil, p.fail(kp, "must be an array of installation ids, not %s", val.What())
		}
		if len(val.Items) == 0 {
			return nil, p.fail(kp, "must not be empty")
		}
		if len(val.Items) > MaxDevices {
			return nil, p.fail(kp, "must list at most %d devices", MaxDevices)
		}
		e := &Expr{kind: KindDevice}
		for i, d := range val.Items {
			ip := kp + "[" + strconv.Itoa(i) + "]"
			if d.Kind != jsontree.String {
				return nil, p.fail(ip, "must be a string, not %s", d.What())
			}
			if err := crier.CheckWord(ip, d.Str, maxDeviceBytes); err != nil {
				return nil, err.(*crier.Error)
			}
			e.devices = append(e.devices, d.Str)
		}
		return e, nil
	case KindWithin:
		mp, polygon, err := p.geometry(val, kp)
		if err != nil {
			return nil, err
		}
		return &Expr{kind: KindWithin, geom: mp, polygon: polygon}, nil
	case KindNear:
		c, err := p.circle(val, kp)
		if err != nil {
			return nil, err
		}
		return &Expr{kind: KindNear, circle: c}, nil
	}
	return nil, p.fail(kp, "unknown segment; want one of all, and, or, not, feed, interest, area, within, near, platform, locale, device")
}

func (p *parser) slug(v *jsontree.Node, path string) (string, *crier.Error) {
	if v.Kind != jsontree.String || !crier.ValidSlug(v.Str) {
		return "", p.fail(path, crier.SlugRule)
	}
	return v.Str, nil
}

func (p *parser) circle(v *jsontree.Node, path string) (Circle, *crier.Error) {
	if v.Kind != jsontree.Object {
		return Circle{}, p.fail(path, `must be an object {"lat": .., "lon": .., "radius_m": ..}, not %s`, v.What())
	}
	var c Circle
	seen := map[string]bool{}
	for _, m := range v.Members {
		k := m.Name
		kp := path + "." + k
		var dst *float64
		switch k {
		case "lat":
			dst = &c.Lat
		case "lon":
			dst = &c.Lon
		case "radius_m":
			dst = &c.RadiusM
		default:
			return Circle{}, p.fail(kp, "unknown key; want lat, lon and radius_m")
		}
		f, err := m.Value.Float(kp)
		if err != nil {
			return Circle{}, crier.AsError(err)
		}
		*dst = f
		seen[k] = true
	}
	for _, k := range []string{"lat", "lon", "radius_m"} {
		if !seen[k] {
			return Circle{}, p.fail(path+"."+k, "is required")
		}
	}
	if err := checkCircle(c, path); err != nil {
		return Circle{}, err
	}
	if r, _ := p.floor(); c.RadiusM < r {
		return Circle{}, p.fail(path+".radius_m", "organisations may not target a circle smaller than %g m", r)
	}
	return c, nil
}

func checkCircle(c Circle, path string) *crier.Error {
	bad := func(f float64, lo, hi float64) bool { return !(f >= lo && f <= hi) } // also NaN
	switch {
	case bad(c.Lat, -90, 90):
		return crier.Invalid(path+".lat", "must be between -90 and 90")
	case bad(c.Lon, -180, 180):
		return crier.Invalid(path+".lon", "must be between -180 and 180")
	case bad(c.RadiusM, 1, MaxRadiusM):
		return crier.Invalid(path+".radius_m", "must be between 1 and %d", MaxRadiusM)
	}
	return nil
}

func (p *parser) geometry(v *jsontree.Node, path string) (MultiPolygon, bool, *crier.Error) {
	limit := geojson.Options{MaxPositions: MaxVertices, Count: &p.vertices}
	if b := p.opt.Budget; b != nil {
		limit = geojson.Options{MaxPositions: b.max(), Count: &b.used, Scope: "the request's geometries"}
	}
	mp, polygon, err := geojson.ReadGeometry(v, path, limit)
	if err != nil {
		return nil, false, crier.AsError(err)
	}
	if sub, msg := validate(mp, !polygon); msg != "" {
		return nil, false, p.fail(path+sub, "%s", msg)
	}
	if err := p.coarse(mp, polygon, path); err != nil {
		return nil, false, err
	}
	return mp, polygon, nil
}

// coarse refuses a valid geometry with a polygon, or a hole, smaller than
// the principal's floor: a small hole in a large polygon singles out a
// small area as surely as a small polygon does (by not, or by and with the
// polygon's shell).
func (p *parser) coarse(mp MultiPolygon, polygon bool, path string) *crier.Error {
	_, floor := p.floor()
	if floor <= 0 {
		return nil
	}
	for pi, poly := range mp {
		pp := path + ".coordinates"
		if !polygon {
			pp += "[" + strconv.Itoa(pi) + "]"
		}
		if a := polygonArea(poly); a < floor {
			return p.fail(pp, "organisations may not target an area smaller than %s; this polygon covers %s", areaText(floor), areaText(a))
		}
		for ri := 1; ri < len(poly); ri++ {
			if a := ringArea(poly[ri]); a < floor {
				return p.fail(pp+"["+strconv.Itoa(ri)+"]", "organisations may not cut out a hole smaller than %s; this one covers %s", areaText(floor), areaText(a))
			}
		}
	}
	return nil
}

// areaText is an area in square metres for a message: in km² from a
// hundredth of one, else in m².
func areaText(m2 float64) string {
	if m2 >= 10_000 {
		return strconv.FormatFloat(m2/1e6, 'g', 3, 64) + " km²"
	}
	return strconv.FormatFloat(m2, 'f', 0, 64) + " m²"
}

// ParseTarget reads a post's geographic target, one of
//
//	["sandefjord", "larvik"]                          area slugs
//	{"type": "Polygon", "coordinates": ...}            GeoJSON Polygon or MultiPolygon
//	{"lat": 59.13, "lon": 10.22, "radius_m": 500}      point and radius
//
// as the expression "located in any of the areas", within or near. Errors
// are rooted at opt.Root, default "target".
func ParseTarget(data []byte, opt Options) (*Expr, error) {
	opt.Root = cmp.Or(opt.Root, "target")
	v, err := decode(data, opt.Root)
	if err != nil {
		return nil, err
	}
	p := &parser{opt: opt}
	path := opt.Root
	switch {
	case v.Kind == jsontree.Array:
		if len(v.Items) == 0 {
			return nil, p.fail(path, "must not be empty")
		}
		if len(v.Items) > MaxLeaves {
			return nil, p.fail(path, "must name at most %d areas", MaxLeaves)
		}
		var es []*Expr
		for i, a := range v.Items {
			s, err := p.slug(a, path+"["+strconv.Itoa(i)+"]")
			if err != nil {
				return nil, err
			}
			es = append(es, Area(s))
		}
		return Or(es...), nil
	case v.Kind == jsontree.Object && v.Get("type") != nil:
		mp, polygon, err := p.geometry(v, path)
		if err != nil {
			return nil, err
		}
		return &Expr{kind: KindWithin, geom: mp, polygon: polygon}, nil
	case v.Kind == jsontree.Object:
		c, err := p.circle(v, path)
		if err != nil {
			return nil, err
		}
		return &Expr{kind: KindNear, circle: c}, nil
	}
	return nil, p.fail(path, "must be an array of area slugs, a GeoJSON Polygon or MultiPolygon, or {\"lat\", \"lon\", \"radius_m\"}")
}

// Within is the devices located in a geometry, validated as Parse validates
// a within node.
func Within(mp MultiPolygon) (*Expr, error) {
	p := &parser{opt: Options{Root: "within"}}
	for i, poly := range mp {
		if len(poly) == 0 {
			return nil, p.fail(fmt.Sprintf("within.coordinates[%d]", i), "must be a non-empty array of linear rings")
		}
		for j, r := range poly {
			rp := fmt.Sprintf("within.coordinates[%d][%d]", i, j)
			if len(r) < 4 || r[0] != r[len(r)-1] {
				return nil, p.fail(rp, "must be closed with at least 4 positions")
			}
			for _, pt := range r {
				if !(pt.Lon >= -180 && pt.Lon <= 180 && pt.Lat >= -90 && pt.Lat <= 90) {
					return nil, p.fail(rp, "positions must be longitude/latitude")
				}
			}
		}
	}
	if len(mp) == 0 {
		return nil, p.fail("within.coordinates", "must be a non-empty array of polygons")
	}
	if vertexCount(mp) > MaxVertices {
		return nil, p.fail("within", "more than %d positions", MaxVertices)
	}
	// Drop consecutive duplicate positions, as Parse does.
	clean := make(MultiPolygon, len(mp))
	for i, poly := range mp {
		for j, r := range poly {
			var ring Ring
			for _, pt := range r {
				if len(ring) == 0 || ring[len(ring)-1] != pt {
					ring = append(ring, pt)
				}
			}
			if len(ring) < 4 {
				return nil, p.fail(fmt.Sprintf("within.coordinates[%d][%d]", i, j), "must have at least 3 distinct positions")
			}
			clean[i] = append(clean[i], ring)
		}
	}
	mp = clean
	if sub, msg := validate(mp, true); msg != "" {
		return nil, p.fail("within"+sub, "%s", msg)
	}
	return &Expr{kind: KindWithin, geom: mp}, nil
}

// Near is the devices located within a circle.
func Near(c Circle) (*Expr, error) {
	if err := checkCircle(c, "near"); err != nil {
		return nil, err
	}
	return &Expr{kind: KindNear, circle: c}, nil
}
