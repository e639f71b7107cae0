package segments

import (
	"fmt"
	"strconv"
	"strings"
)

// Condition is a compiled audience: SQL over devices d with placeholders
// numbered from the base the compiler was given, and their values.
type Condition struct {
	SQL  string
	Args []any
}

// Params place a compiled condition in its statement.
type Params struct {
	// TenantParam is the number of the placeholder that holds the tenant id
	// (2 in storage.Snapshot). Slugs resolve against that tenant only.
	TenantParam int
	// ArgBase is the number of the last placeholder the statement uses
	// itself: the condition's own start at $ArgBase+1.
	ArgBase int
}

// Compile turns an expression into one SQL condition over devices d. The
// SQL text is made of fixed fragments and $n placeholders only; every value
// (slug, tag, geometry, number) travels in Args.
//
// Per-post sets are computed once per statement, not per device: feed and
// area slugs resolve in uncorrelated subqueries, geometries are decoded
// once, and the areas located in a geometry are an id array the GIN index on
// d.areas answers. Places use the GiST index on d.place_geom.
func Compile(e *Expr, p Params) Condition {
	c := &compiler{tenant: "$" + strconv.Itoa(p.TenantParam), base: p.ArgBase}
	var b strings.Builder
	c.node(&b, e)
	return Condition{SQL: b.String(), Args: c.args}
}

type compiler struct {
	tenant string
	base   int
	args   []any
}

// arg adds a value and returns its placeholder with a cast, so the
// statement's types never depend on how the driver guesses them.
func (c *compiler) arg(v any, cast string) string {
	c.args = append(c.args, v)
	return "$" + strconv.Itoa(c.base+len(c.args)) + "::" + cast
}

func (c *compiler) node(b *strings.Builder, e *Expr) {
	switch e.kind {
	case KindAll:
		b.WriteString("true")
	case KindAnd:
		c.junction(b, e.children, " AND ")
	case KindOr:
		c.or(b, e.children)
	case KindNot:
		b.WriteString("(NOT ")
		c.node(b, e.children[0])
		b.WriteString(")")
	case KindFeed:
		c.feeds(b, []string{e.value})
	case kindFeedID:
		fmt.Fprintf(b, "d.follows @> ARRAY[%s]", c.arg(e.feedID, "bigint"))
	case KindInterest:
		fmt.Fprintf(b, "d.interests @> ARRAY[%s]", c.arg(e.value, "text"))
	case KindPlatform:
		fmt.Fprintf(b, "d.platform = %s", c.arg(e.value, "text"))
	case KindLocale:
		// "nb" matches nb, nb-NO and nb_NO, in any case.
		v := c.arg(e.value, "text")
		fmt.Fprintf(b, "(replace(lower(d.locale), '_', '-') = %s OR starts_with(replace(lower(d.locale), '_', '-'), %s || '-'))", v, v)
	case KindDevice:
		fmt.Fprintf(b, "d.installation_id = ANY(%s)", c.arg(e.devices, "text[]"))
	case KindWithin:
		g := fmt.Sprintf("(SELECT ST_GeomFromWKB(%s, 4326))", c.arg(wkb(e.geom), "bytea"))
		c.located(b, g)
	case KindArea:
		g := fmt.Sprintf("(SELECT COALESCE((SELECT a.geom FROM areas a WHERE a.tenant_id = %s AND a.slug = %s), 'SRID=4326;MULTIPOLYGON EMPTY'::geometry))",
			c.tenant, c.arg(e.value, "text"))
		c.located(b, g)
	case KindNear:
		c.near(b, e.circle)
	default:
		panic(fmt.Sprintf("segments: compile %q", e.kind)) // unreachable: Expr is only built valid
	}
}

func (c *compiler) junction(b *strings.Builder, es []*Expr, op string) {
	b.WriteString("(")
	for i, ce := range es {
		if i > 0 {
			b.WriteString(op)
		}
		c.node(b, ce)
	}
	b.WriteString(")")
}

// or merges the feed and interest leaves of a union into one array test
// each, so a post with many tags costs one index lookup, not one per tag.
func (c *compiler) or(b *strings.Builder, es []*Expr) {
	var feeds, tags []string
	var rest []*Expr
	for _, ce := range es {
		switch ce.kind {
		case KindFeed:
			feeds = append(feeds, ce.value)
		case KindInterest:
			tags = append(tags, ce.value)
		default:
			rest = append(rest, ce)
		}
	}
	b.WriteString("(")
	sep := ""
	if len(feeds) > 0 {
		c.feeds(b, feeds)
		sep = " OR "
	}
	if len(tags) > 0 {
		b.WriteString(sep)
		fmt.Fprintf(b, "d.interests && %s", c.arg(tags, "text[]"))
		sep = " OR "
	}
	for _, ce := range rest {
		b.WriteString(sep)
		c.node(b, ce)
		sep = " OR "
	}
	b.WriteString(")")
}

func (c *compiler) feeds(b *strings.Builder, slugs []string) {
	if len(slugs) == 1 {
		fmt.Fprintf(b, "d.follows && ARRAY(SELECT f.id FROM feeds f WHERE f.tenant_id = %s AND f.slug = %s)",
			c.tenant, c.arg(slugs[0], "text"))
		return
	}
	fmt.Fprintf(b, "d.follows && ARRAY(SELECT f.id FROM feeds f WHERE f.tenant_id = %s AND f.slug = ANY(%s))",
		c.tenant, c.arg(slugs, "text[]"))
}

// located is "located in G": a place inside G (boundary included), or a
// subscribed area whose interior overlaps G's (DE-9IM T********: areas that
// only touch G, like neighbouring municipalities along their shared border,
// do not count). g is an uncorrelated scalar subquery: one evaluation per
// statement.
func (c *compiler) located(b *strings.Builder, g string) {
	fmt.Fprintf(b, "((d.place_geom IS NOT NULL AND ST_Intersects(d.place_geom, %s))"+
		" OR d.areas && ARRAY(SELECT s.id FROM areas s WHERE s.tenant_id = %s AND s.geom && %s AND ST_Relate(s.geom, %s, 'T********')))",
		g, c.tenant, g, g)
}

// near is "located within radius metres of a point" on the sphere: a place
// whose great-circle distance is at most the radius, or a subscribed area
// whose geography comes that close. The lon/lat box around the circle lets
// the GiST index on place_geom pick the candidates.
func (c *compiler) near(b *strings.Builder, ci Circle) {
	box := ci.capBox()
	env := fmt.Sprintf("ST_MakeEnvelope(%s, %s, %s, %s, 4326)",
		c.arg(box.minX, "float8"), c.arg(box.minY, "float8"), c.arg(box.maxX, "float8"), c.arg(box.maxY, "float8"))
	centre := fmt.Sprintf("(SELECT ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography)",
		c.arg(ci.Lon, "float8"), c.arg(ci.Lat, "float8"))
	r := c.arg(ci.RadiusM, "float8")
	// The world box guard keeps a place off the globe (only SQL by hand
	// stores one) from failing the cast to geography, and so the whole
	// statement.
	fmt.Fprintf(b, "((d.place_geom IS NOT NULL AND d.place_geom && %s"+
		" AND CASE WHEN d.place_geom @ ST_MakeEnvelope(-180, -90, 180, 90, 4326)"+
		" THEN ST_DWithin(d.place_geom::geography, %s, %s, false) ELSE false END)"+
		" OR d.areas && ARRAY(SELECT s.id FROM areas s WHERE s.tenant_id = %s AND ST_DWithin(s.geom::geography, %s, %s, false)))",
		env, centre, r, c.tenant, centre, r)
}
