// Package geojson is crier's one reader of GeoJSON: Polygon and
// MultiPolygon geometries in WGS84 longitude/latitude, alone, inside a
// segment or a target, or as the features of a FeatureCollection. Area
// import, segments' within, post targets and alerts all read geometry here,
// with one type and one set of rules: shape, ranges, closed rings of at
// least three distinct positions, and WGS84 only. Every refusal is a
// *crier.Error naming the JSON path of the bad value. Whether rings cross
// themselves is not decided here: area import has PostGIS repair them, and
// segments refuse them (their Go evaluator must agree with PostGIS).
package geojson

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/internal/jsontree"
)

// Point is a WGS84 position in degrees.
type Point struct {
	Lon, Lat float64
}

// MarshalJSON writes the position as GeoJSON does: [lon, lat].
func (p Point) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 40)
	b = append(b, '[')
	b = strconv.AppendFloat(b, p.Lon, 'g', -1, 64)
	b = append(b, ',')
	b = strconv.AppendFloat(b, p.Lat, 'g', -1, 64)
	return append(b, ']'), nil
}

// Ring is a closed ring of positions: the first equals the last.
type Ring []Point

// Polygon is a shell followed by its holes.
type Polygon []Ring

// MultiPolygon is a set of polygons; a Polygon is read as a MultiPolygon
// of one.
type MultiPolygon []Polygon

// Vertices counts the positions.
func (m MultiPolygon) Vertices() int {
	n := 0
	for _, p := range m {
		for _, r := range p {
			n += len(r)
		}
	}
	return n
}

// JSON is the geometry as a GeoJSON MultiPolygon.
func (m MultiPolygon) JSON() []byte {
	b, _ := json.Marshal(struct {
		Type        string       `json:"type"`
		Coordinates MultiPolygon `json:"coordinates"`
	}{"MultiPolygon", m})
	return b
}

// Options bound what a reader takes.
type Options struct {
	// MaxPositions bounds the positions read, counting those *Count holds
	// already (a segment's other within nodes); zero for no bound. Count,
	// if set, is added every position read.
	MaxPositions int
	Count        *int
	// Scope names what MaxPositions bounds, in its error; default "the
	// expression's geometries".
	Scope string
}

// MaxDepth bounds the nesting of the JSON a geometry is read from.
const MaxDepth = 32

// wgs84 are the names of GeoJSON's own longitude/latitude in the
// (deprecated) crs member.
var wgs84 = []string{"urn:ogc:def:crs:OGC:1.3:CRS84", "urn:ogc:def:crs:OGC::CRS84", "urn:ogc:def:crs:EPSG::4326",
	"urn:ogc:def:crs:EPSG:4326", "EPSG:4326"}

// ParseGeometry reads a Polygon or MultiPolygon geometry object. path names
// it in errors (e.g. "segment.within").
func ParseGeometry(raw []byte, path string) (MultiPolygon, error) {
	n, err := jsontree.ParseStrict(raw, jsontree.Strict{Root: path, MaxDepth: MaxDepth})
	if err != nil {
		return nil, err
	}
	mp, _, err := ReadGeometry(n, path, Options{})
	return mp, err
}

// ReadGeometry reads a Polygon or MultiPolygon geometry object from a
// tree; polygon is true when it was a Polygon.
func ReadGeometry(n *jsontree.Node, path string, opt Options) (mp MultiPolygon, polygon bool, err error) {
	r := &reader{opt: opt, count: opt.Count}
	if r.count == nil {
		r.count = new(int)
	}
	return r.geometry(n, path)
}

type reader struct {
	opt   Options
	count *int
}

func fail(path, format string, args ...any) error { return crier.Invalid(path, format, args...) }

func (r *reader) geometry(n *jsontree.Node, path string) (MultiPolygon, bool, error) {
	if n.Kind != jsontree.Object {
		return nil, false, fail(path, "must be a GeoJSON Polygon or MultiPolygon geometry, not %s", n.What())
	}
	var typ string
	var coords *jsontree.Node
	for _, m := range n.Members {
		kp, v := path+"."+m.Name, m.Value
		switch m.Name {
		case "type":
			if v.Kind != jsontree.String || (v.Str != "Polygon" && v.Str != "MultiPolygon") {
				return nil, false, fail(kp, `must be "Polygon" or "MultiPolygon", not %s`, v)
			}
			typ = v.Str
		case "coordinates":
			coords = v
		case "crs":
			if err := checkCRS(v, kp); err != nil {
				return nil, false, err
			}
		case "bbox":
			if v.Kind != jsontree.Array {
				return nil, false, fail(kp, "must be an array of numbers")
			}
			for j, it := range v.Items {
				if _, err := it.Float(kp + "[" + strconv.Itoa(j) + "]"); err != nil {
					return nil, false, err
				}
			}
		default:
			return nil, false, fail(kp, "unknown key; want type and coordinates")
		}
	}
	switch {
	case typ == "":
		return nil, false, fail(path+".type", `is required: "Polygon" or "MultiPolygon"`)
	case coords == nil:
		return nil, false, fail(path+".coordinates", "is required")
	}
	cp := path + ".coordinates"
	if typ == "Polygon" {
		p, err := r.polygon(coords, cp)
		if err != nil {
			return nil, false, err
		}
		return MultiPolygon{p}, true, nil
	}
	if coords.Kind != jsontree.Array || len(coords.Items) == 0 {
		return nil, false, fail(cp, "must be a non-empty array of polygons")
	}
	mp := make(MultiPolygon, 0, len(coords.Items))
	for i, c := range coords.Items {
		p, err := r.polygon(c, cp+"["+strconv.Itoa(i)+"]")
		if err != nil {
			return nil, false, err
		}
		mp = append(mp, p)
	}
	return mp, false, nil
}

// checkCRS accepts only a named CRS that is WGS84 longitude/latitude.
func checkCRS(n *jsontree.Node, path string) error {
	if n.Kind == jsontree.Null {
		return nil
	}
	props, name := n.Get("properties"), n.Get("properties").Get("name")
	if n.Kind != jsontree.Object || len(n.Members) != 2 || n.Get("type") == nil || n.Get("type").Str != "name" ||
		props == nil || len(props.Members) != 1 || name == nil || name.Kind != jsontree.String {
		return fail(path, `must be a named CRS {"type": "name", "properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}}, or be left out`)
	}
	for _, w := range wgs84 {
		if strings.EqualFold(name.Str, w) {
			return nil
		}
	}
	return fail(path, "coordinates must be WGS84 longitude/latitude (CRS84 or EPSG:4326), not %q; reproject the file first (e.g. ogr2ogr -t_srs EPSG:4326)", name.Str)
}

func (r *reader) polygon(n *jsontree.Node, path string) (Polygon, error) {
	if n.Kind != jsontree.Array || len(n.Items) == 0 {
		return nil, fail(path, "must be a non-empty array of linear rings")
	}
	p := make(Polygon, 0, len(n.Items))
	for i, rn := range n.Items {
		ring, err := r.ring(rn, path+"["+strconv.Itoa(i)+"]")
		if err != nil {
			return nil, err
		}
		p = append(p, ring)
	}
	return p, nil
}

// ring reads a linear ring: at least four positions, closed, and at least
// three distinct once repeated neighbours are dropped (they are).
func (r *reader) ring(n *jsontree.Node, path string) (Ring, error) {
	if n.Kind != jsontree.Array {
		return nil, fail(path, "must be an array of positions, not %s", n.What())
	}
	if len(n.Items) < 4 {
		return nil, fail(path, "must have at least 4 positions, has %d", len(n.Items))
	}
	ring := make(Ring, 0, len(n.Items))
	for j, pn := range n.Items {
		*r.count++
		if r.opt.MaxPositions > 0 && *r.count > r.opt.MaxPositions {
			return nil, fail(path+"["+strconv.Itoa(j)+"]", "more than %d positions in %s", r.opt.MaxPositions,
				cmp.Or(r.opt.Scope, "the expression's geometries"))
		}
		pt, err := position(pn, path, j)
		if err != nil {
			return nil, err
		}
		if len(ring) == 0 || ring[len(ring)-1] != pt {
			ring = append(ring, pt)
		}
	}
	if ring[0] != ring[len(ring)-1] {
		return nil, fail(path, "must be closed: the last position must equal the first")
	}
	if len(ring) < 4 {
		return nil, fail(path, "must have at least 3 distinct positions")
	}
	return ring, nil
}

// position reads position j of the ring at path. Paths are built only for
// errors: a geometry has thousands of positions.
func position(n *jsontree.Node, ring string, j int) (Point, error) {
	at := func(sub string) string { return ring + "[" + strconv.Itoa(j) + "]" + sub }
	if n.Kind != jsontree.Array || len(n.Items) < 2 || len(n.Items) > 3 {
		return Point{}, fail(at(""), "must be a position [longitude, latitude] (or [longitude, latitude, altitude])")
	}
	var v [3]float64
	for i, it := range n.Items {
		f, err := it.Float("")
		if err != nil { // again, to name it
			_, err = it.Float(at("[" + strconv.Itoa(i) + "]"))
			return Point{}, err
		}
		v[i] = f
	}
	lon, lat := v[0], v[1]
	const reproject = "; projected coordinates such as UTM must be reprojected to WGS84 (EPSG:4326)"
	if lon < -180 || lon > 180 {
		return Point{}, fail(at("[0]"), "longitude %g is outside -180..180"+reproject, lon)
	}
	if lat < -90 || lat > 90 {
		return Point{}, fail(at("[1]"), "latitude %g is outside -90..90"+reproject, lat)
	}
	return Point{Lon: flush(lon), Lat: flush(lat)}, nil
}

// flush reads -0 as 0, and magnitudes below 2^-400 degrees (1e-120; a
// millimetre is 1e-8) as 0, so that no product of two coordinate
// differences underflows: segments decides its geometric predicates
// exactly, and quickly only for such numbers.
func flush(f float64) float64 {
	if math.Abs(f) < 0x1p-400 {
		return 0
	}
	return f
}

// Feature is one feature of a collection.
type Feature struct {
	Properties map[string]any
	Geometry   MultiPolygon
}

// MaxCollectionDepth bounds the nesting of a FeatureCollection: its
// geometries and whatever its properties hold.
const MaxCollectionDepth = 64

// ParseFeatureCollection reads a FeatureCollection whose features are
// Polygons or MultiPolygons. Errors name the feature by index.
func ParseFeatureCollection(raw []byte) ([]Feature, error) {
	// The document itself is "$" in errors; what is in it is named from
	// there ("features[3].geometry").
	root, err := jsontree.ParseStrict(raw, jsontree.Strict{Root: "$", MaxDepth: MaxCollectionDepth})
	if e := crier.AsError(err); e != nil && strings.HasPrefix(e.Field, "$.") {
		return nil, fail(strings.TrimPrefix(e.Field, "$."), "%s", e.Message)
	}
	if err != nil {
		return nil, err
	}
	if root.Kind != jsontree.Object {
		return nil, fail("$", "must be a GeoJSON FeatureCollection, not %s", root.What())
	}
	if err := members(root, "", "type", "features", "crs", "name", "bbox"); err != nil {
		return nil, err
	}
	if t := root.Get("type"); t == nil || t.Str != "FeatureCollection" {
		return nil, fail("type", "must be \"FeatureCollection\"")
	}
	if crs := root.Get("crs"); crs != nil {
		if err := checkCRS(crs, "crs"); err != nil {
			return nil, err
		}
	}
	fs := root.Get("features")
	if fs == nil || fs.Kind != jsontree.Array || len(fs.Items) == 0 {
		return nil, fail("features", "must be an array of at least one feature")
	}
	out := make([]Feature, 0, len(fs.Items))
	for i, fn := range fs.Items {
		f, err := feature(fn, fmt.Sprintf("features[%d]", i))
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}

func feature(n *jsontree.Node, path string) (Feature, error) {
	if n.Kind != jsontree.Object {
		return Feature{}, fail(path, "must be a GeoJSON Feature, not %s", n.What())
	}
	if err := members(n, path, "type", "id", "properties", "geometry", "bbox"); err != nil {
		return Feature{}, err
	}
	if t := n.Get("type"); t == nil || t.Str != "Feature" {
		return Feature{}, fail(path+".type", "must be \"Feature\"")
	}
	var f Feature
	if p := n.Get("properties"); p != nil && p.Kind != jsontree.Null {
		if p.Kind != jsontree.Object {
			return Feature{}, fail(path+".properties", "must be an object, not %s", p.What())
		}
		if err := json.Unmarshal(p.Raw, &f.Properties); err != nil {
			return Feature{}, fail(path+".properties", "must be an object: %v", err)
		}
	}
	g := n.Get("geometry")
	if g == nil || g.Kind == jsontree.Null {
		return Feature{}, fail(path+".geometry", "is required")
	}
	mp, _, err := ReadGeometry(g, path+".geometry", Options{})
	if err != nil {
		return Feature{}, err
	}
	f.Geometry = mp
	return f, nil
}

// members refuses members other than the allowed ones.
func members(n *jsontree.Node, path string, allowed ...string) error {
	for _, m := range n.Members {
		if !contains(allowed, m.Name) {
			return fail(strings.TrimPrefix(path+"."+m.Name, "."), "unknown member; want %s", strings.Join(allowed, ", "))
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
