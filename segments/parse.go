package segments

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// Error is a rejected expression: Path is the JSON path of the bad node
// ("segment.and[1].near.radius_m"), Message what is wrong with it.
type Error struct {
	Path    string
	Message string
}

func (e *Error) Error() string { return e.Path + ": " + e.Message }

// Options are who is asking and how errors are named.
type Options struct {
	// Root is the name of the expression in error paths; default "segment"
	// for Parse and "target" for ParseTarget.
	Root string
	// Organisation applies an organisation's restrictions: it may not use
	// all or device, and may name in feed only the feeds in OwnFeeds.
	Organisation bool
	OwnFeeds     []string
}

var (
	slugRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	localeRE = regexp.MustCompile(`^[a-z]{2,3}(-[a-z0-9]{1,8})*$`)
)

const slugRule = "must be a slug: a lowercase letter or digit, then up to 62 lowercase letters, digits or hyphens"

type parser struct {
	opt      Options
	leaves   int
	vertices int
}

func (p *parser) fail(path, format string, args ...any) *Error {
	return &Error{Path: path, Message: fmt.Sprintf(format, args...)}
}

// Parse reads and validates a segment expression. Every rejection is an
// *Error naming the bad node.
func Parse(data []byte, opt Options) (*Expr, error) {
	opt.Root = cmpOr(opt.Root, "segment")
	v, err := decodeJSON(data, opt.Root)
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

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func (p *parser) node(v *jv, path string, depth int) (*Expr, *Error) {
	if v.kind != 'o' {
		return nil, p.fail(path, "must be an object with one key, not %s", v.what())
	}
	if len(v.keys) != 1 {
		return nil, p.fail(path, "must have exactly one key, found %d", len(v.keys))
	}
	key, val := v.keys[0], v.vals[0]
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
		if val.kind != 'b' || !val.b {
			return nil, p.fail(kp, "must be true")
		}
		if p.opt.Organisation {
			return nil, p.fail(kp, "organisations may not send to all devices")
		}
		return All(), nil
	case KindAnd, KindOr:
		if val.kind != 'a' {
			return nil, p.fail(kp, "must be an array of segments, not %s", val.what())
		}
		if len(val.arr) == 0 {
			return nil, p.fail(kp, "must not be empty")
		}
		e := &Expr{kind: Kind(key)}
		for i, c := range val.arr {
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
		if p.opt.Organisation && !slices.Contains(p.opt.OwnFeeds, s) {
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
		if val.kind != 's' {
			return nil, p.fail(kp, "must be a string, not %s", val.what())
		}
		if msg := checkText(val.str, maxTagBytes); msg != "" {
			return nil, p.fail(kp, "%s", msg)
		}
		return Interest(val.str), nil
	case KindPlatform:
		if val.kind != 's' || (val.str != "android" && val.str != "ios") {
			return nil, p.fail(kp, `must be "android" or "ios"`)
		}
		return &Expr{kind: KindPlatform, value: val.str}, nil
	case KindLocale:
		l := ""
		if val.kind == 's' {
			l = strings.ToLower(val.str)
		}
		if !localeRE.MatchString(l) || len(l) > 35 {
			return nil, p.fail(kp, `must be a language tag such as "nb" or "nb-NO"`)
		}
		return &Expr{kind: KindLocale, value: l}, nil
	case KindDevice:
		if p.opt.Organisation {
			return nil, p.fail(kp, "organisations may not send to single devices")
		}
		if val.kind != 'a' {
			return nil, p.fail(kp, "must be an array of installation ids, not %s", val.what())
		}
		if len(val.arr) == 0 {
			return nil, p.fail(kp, "must not be empty")
		}
		if len(val.arr) > MaxDevices {
			return nil, p.fail(kp, "must list at most %d devices", MaxDevices)
		}
		e := &Expr{kind: KindDevice}
		for i, d := range val.arr {
			ip := kp + "[" + strconv.Itoa(i) + "]"
			if d.kind != 's' {
				return nil, p.fail(ip, "must be a string, not %s", d.what())
			}
			if msg := checkText(d.str, maxDeviceBytes); msg != "" {
				return nil, p.fail(ip, "%s", msg)
			}
			e.devices = append(e.devices, d.str)
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

func (p *parser) slug(v *jv, path string) (string, *Error) {
	if v.kind != 's' || !slugRE.MatchString(v.str) {
		return "", p.fail(path, slugRule)
	}
	return v.str, nil
}

// checkText bounds free text: tags and installation ids.
func checkText(s string, maxBytes int) string {
	if s == "" {
		return "must not be empty"
	}
	if len(s) > maxBytes {
		return fmt.Sprintf("must be at most %d bytes", maxBytes)
	}
	for _, r := range s {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return "must be valid UTF-8 without control characters"
		}
	}
	return ""
}

func (p *parser) number(v *jv, path string) (float64, *Error) {
	if v.kind != 'n' {
		return 0, p.fail(path, "must be a number, not %s", v.what())
	}
	f, err := strconv.ParseFloat(string(v.num), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, p.fail(path, "must be a finite number")
	}
	return f, nil
}

func (p *parser) circle(v *jv, path string) (Circle, *Error) {
	if v.kind != 'o' {
		return Circle{}, p.fail(path, `must be an object {"lat": .., "lon": .., "radius_m": ..}, not %s`, v.what())
	}
	var c Circle
	seen := map[string]bool{}
	for i, k := range v.keys {
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
		f, err := p.number(v.vals[i], kp)
		if err != nil {
			return Circle{}, err
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
	return c, nil
}

func checkCircle(c Circle, path string) *Error {
	bad := func(f float64, lo, hi float64) bool { return !(f >= lo && f <= hi) } // also NaN
	switch {
	case bad(c.Lat, -90, 90):
		return &Error{path + ".lat", "must be between -90 and 90"}
	case bad(c.Lon, -180, 180):
		return &Error{path + ".lon", "must be between -180 and 180"}
	case bad(c.RadiusM, 1, MaxRadiusM):
		return &Error{path + ".radius_m", fmt.Sprintf("must be between 1 and %d", MaxRadiusM)}
	}
	return nil
}

// wgs84 are the crs names that mean GeoJSON's own longitude/latitude.
var wgs84 = []string{"urn:ogc:def:crs:OGC:1.3:CRS84", "urn:ogc:def:crs:OGC::CRS84", "EPSG:4326", "urn:ogc:def:crs:EPSG::4326"}

func (p *parser) geometry(v *jv, path string) (MultiPolygon, bool, *Error) {
	if v.kind != 'o' {
		return nil, false, p.fail(path, "must be a GeoJSON Polygon or MultiPolygon geometry, not %s", v.what())
	}
	var typ string
	var coords *jv
	for i, k := range v.keys {
		kp, val := path+"."+k, v.vals[i]
		switch k {
		case "type":
			if val.kind != 's' || (val.str != "Polygon" && val.str != "MultiPolygon") {
				return nil, false, p.fail(kp, `must be "Polygon" or "MultiPolygon"`)
			}
			typ = val.str
		case "coordinates":
			coords = val
		case "crs":
			if !isWGS84(val) {
				return nil, false, p.fail(kp, "must name WGS84 longitude/latitude (urn:ogc:def:crs:OGC:1.3:CRS84), or be left out")
			}
		case "bbox":
			if val.kind != 'a' {
				return nil, false, p.fail(kp, "must be an array of numbers")
			}
			for j, n := range val.arr {
				if _, err := p.number(n, kp+"["+strconv.Itoa(j)+"]"); err != nil {
					return nil, false, err
				}
			}
		default:
			return nil, false, p.fail(kp, "unknown key; want type and coordinates")
		}
	}
	if typ == "" {
		return nil, false, p.fail(path+".type", "is required")
	}
	if coords == nil {
		return nil, false, p.fail(path+".coordinates", "is required")
	}
	cp := path + ".coordinates"
	var mp MultiPolygon
	if typ == "Polygon" {
		poly, err := p.polygon(coords, cp)
		if err != nil {
			return nil, false, err
		}
		mp = MultiPolygon{poly}
	} else {
		if coords.kind != 'a' || len(coords.arr) == 0 {
			return nil, false, p.fail(cp, "must be a non-empty array of polygons")
		}
		for i, c := range coords.arr {
			poly, err := p.polygon(c, cp+"["+strconv.Itoa(i)+"]")
			if err != nil {
				return nil, false, err
			}
			mp = append(mp, poly)
		}
	}
	if sub, msg := mp.validate(typ == "MultiPolygon"); msg != "" {
		return nil, false, p.fail(path+sub, "%s", msg)
	}
	return mp, typ == "Polygon", nil
}

func isWGS84(v *jv) bool {
	if v.kind != 'o' || len(v.keys) != 2 {
		return false
	}
	var typ, name string
	for i, k := range v.keys {
		switch {
		case k == "type" && v.vals[i].kind == 's':
			typ = v.vals[i].str
		case k == "properties" && v.vals[i].kind == 'o' && len(v.vals[i].keys) == 1 &&
			v.vals[i].keys[0] == "name" && v.vals[i].vals[0].kind == 's':
			name = v.vals[i].vals[0].str
		}
	}
	return typ == "name" && slices.Contains(wgs84, name)
}

func (p *parser) polygon(v *jv, path string) (Polygon, *Error) {
	if v.kind != 'a' || len(v.arr) == 0 {
		return nil, p.fail(path, "must be a non-empty array of linear rings")
	}
	var poly Polygon
	for i, rv := range v.arr {
		rp := path + "[" + strconv.Itoa(i) + "]"
		if rv.kind != 'a' {
			return nil, p.fail(rp, "must be an array of positions, not %s", rv.what())
		}
		if len(rv.arr) < 4 {
			return nil, p.fail(rp, "must have at least 4 positions")
		}
		var ring Ring
		for j, pv := range rv.arr {
			pp := rp + "[" + strconv.Itoa(j) + "]"
			p.vertices++
			if p.vertices > MaxVertices {
				return nil, p.fail(pp, "more than %d positions in the expression's geometries", MaxVertices)
			}
			pt, err := p.position(pv, pp)
			if err != nil {
				return nil, err
			}
			if len(ring) == 0 || ring[len(ring)-1] != pt {
				ring = append(ring, pt)
			}
		}
		if ring[0] != ring[len(ring)-1] {
			return nil, p.fail(rp, "must be closed: the last position must equal the first")
		}
		if len(ring) < 4 {
			return nil, p.fail(rp, "must have at least 3 distinct positions")
		}
		poly = append(poly, ring)
	}
	return poly, nil
}

func (p *parser) position(v *jv, path string) (Point, *Error) {
	if v.kind != 'a' || len(v.arr) < 2 || len(v.arr) > 3 {
		return Point{}, p.fail(path, "must be a position [longitude, latitude]")
	}
	lon, err := p.number(v.arr[0], path+"[0]")
	if err != nil {
		return Point{}, err
	}
	lat, err := p.number(v.arr[1], path+"[1]")
	if err != nil {
		return Point{}, err
	}
	if len(v.arr) == 3 {
		if _, err := p.number(v.arr[2], path+"[2]"); err != nil {
			return Point{}, err
		}
	}
	if lon < -180 || lon > 180 {
		return Point{}, p.fail(path+"[0]", "longitude must be between -180 and 180")
	}
	if lat < -90 || lat > 90 {
		return Point{}, p.fail(path+"[1]", "latitude must be between -90 and 90")
	}
	return Point{Lon: lon + 0, Lat: lat + 0}, nil // +0 turns -0 into 0
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
	opt.Root = cmpOr(opt.Root, "target")
	v, err := decodeJSON(data, opt.Root)
	if err != nil {
		return nil, err
	}
	p := &parser{opt: opt}
	path := opt.Root
	switch {
	case v.kind == 'a':
		if len(v.arr) == 0 {
			return nil, p.fail(path, "must not be empty")
		}
		if len(v.arr) > MaxLeaves {
			return nil, p.fail(path, "must name at most %d areas", MaxLeaves)
		}
		var es []*Expr
		for i, a := range v.arr {
			s, err := p.slug(a, path+"["+strconv.Itoa(i)+"]")
			if err != nil {
				return nil, err
			}
			es = append(es, Area(s))
		}
		return Or(es...), nil
	case v.kind == 'o' && slices.Contains(v.keys, "type"):
		mp, polygon, err := p.geometry(v, path)
		if err != nil {
			return nil, err
		}
		return &Expr{kind: KindWithin, geom: mp, polygon: polygon}, nil
	case v.kind == 'o':
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
	if mp.vertexCount() > MaxVertices {
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
	if sub, msg := mp.validate(true); msg != "" {
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
