package segments

import (
	"fmt"
	"strings"
)

// CircleQuadSegs is how many segments a quarter of a near circle gets when
// CompileGeometry makes it a polygon: at 32 the polygon's area falls short
// of the circle's by 0.04 % (8, PostGIS's default, would be 0.64 %).
const CircleQuadSegs = 32

// CompileGeometry compiles the place an expression names into one SQL
// expression of type geometry (EPSG:4326): a within node is its polygons, a
// near node its circle as a geodesic buffer (ST_Buffer on geography), an
// area node the tenant's area of that slug (empty if there is none); or is
// their union and and their intersection. Nodes that name no place (feed,
// interest, platform, locale, device, all) and not bound nothing: an and
// takes the places of the children that bound it, and an expression that
// bounds no place at all returns ok false. As Compile, the SQL text is
// fixed fragments and placeholders only; the values travel in Args.
//
// This is where an alert goes, to be measured and held to the tenant's
// territory; who receives it is still Compile's answer.
func CompileGeometry(e *Expr, p Params) (c Condition, ok bool) {
	g := &compiler{tenant: fmt.Sprintf("$%d", p.TenantParam), base: p.ArgBase}
	sql, ok := g.geometry(e)
	if !ok {
		return Condition{}, false
	}
	return Condition{SQL: sql, Args: g.args}, true
}

// geometry is the SQL of e's place. A node that bounds none takes back the
// arguments its children added, so that no placeholder goes unused (an
// unused one has no type PostgreSQL could infer).
func (c *compiler) geometry(e *Expr) (string, bool) {
	n := len(c.args)
	g, ok := c.place(e)
	if !ok {
		c.args = c.args[:n]
	}
	return g, ok
}

func (c *compiler) place(e *Expr) (string, bool) {
	switch e.kind {
	case KindWithin:
		return fmt.Sprintf("ST_GeomFromWKB(%s, 4326)", c.arg(wkb(e.geom), "bytea")), true
	case KindNear:
		return fmt.Sprintf("ST_Buffer(ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography, %s, 'quad_segs=%d')::geometry",
			c.arg(e.circle.Lon, "float8"), c.arg(e.circle.Lat, "float8"), c.arg(e.circle.RadiusM, "float8"), CircleQuadSegs), true
	case KindArea:
		return fmt.Sprintf("COALESCE((SELECT a.geom FROM areas a WHERE a.tenant_id = %s AND a.slug = %s), "+
			"'SRID=4326;MULTIPOLYGON EMPTY'::geometry)", c.tenant, c.arg(e.value, "text")), true
	case KindOr:
		// A union is bounded only if each of its members is.
		var gs []string
		for _, ce := range e.children {
			g, ok := c.geometry(ce)
			if !ok {
				return "", false
			}
			gs = append(gs, g)
		}
		if len(gs) == 1 {
			return gs[0], true
		}
		return "ST_Union(ARRAY[" + strings.Join(gs, ", ") + "])", true
	case KindAnd:
		var gs []string
		for _, ce := range e.children {
			if g, ok := c.geometry(ce); ok {
				gs = append(gs, g)
			}
		}
		if len(gs) == 0 {
			return "", false
		}
		out := gs[0]
		for _, g := range gs[1:] {
			out = "ST_Intersection(" + out + ", " + g + ")"
		}
		return out, true
	}
	return "", false
}
