package segments

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// The rules by which a device is in a post's audience, as a delivery
// records them ("why did I get this?").
const (
	WhyFeed       = "feed"        // follows the post's feed
	WhyInterest   = "interest"    // has an interest in one of the post's tags (which: the detail)
	WhyMandatory  = "mandatory"   // the feed is one the municipality sends to everyone
	WhySegment    = "segment"     // the municipality's segment chose it
	WhyAlert      = "alert"       // located in an emergency alert's area
	WhyIncident   = "incident"    // received an earlier message of the alert's incident
	WhyTestDevice = "test_device" // an exercise or test, sent to the tenant's test devices only
)

// How a device is located in a post's area.
const (
	ViaPlace = "place" // one of its places (the detail: the place's name)
	ViaArea  = "area"  // an area it subscribed to (the detail: the area's slug)
)

// Why is what decides, device by device, the rule that put a device in a
// post's audience: the same inputs as AudienceOf.
type Why struct {
	// Rule is the rule when it is the same for every device (mandatory,
	// segment, alert, test_device); empty for opt-ins, where each device's
	// rule is the feed or one of Tags.
	Rule string
	Feed string
	Tags []string
	// Located are the places the audience is located in (areas, polygons,
	// circles), outside any negation; the first a device is in is recorded.
	Located []*Expr
}

// WhyOf is the rule of the audience AudienceOf makes of the same inputs.
// Emergency posts are alerts, and exercises go to test devices only.
func WhyOf(p Post, target, segment *Expr) Why {
	if target != nil {
		p.Target = target
	}
	w := Why{Feed: p.Feed, Tags: slices.Compact(slices.Sorted(slices.Values(p.Tags)))}
	switch {
	case p.Exercise:
		w.Rule = WhyTestDevice
	case p.Emergency:
		w.Rule = WhyAlert
	case segment != nil && !p.Organisation:
		w.Rule = WhySegment
	case p.FeedMandatory && !p.Organisation:
		w.Rule = WhyMandatory
	}
	for _, e := range []*Expr{p.Target, segment} {
		if e != nil {
			w.Located = append(w.Located, located(e)...)
		}
	}
	return w
}

// located are the located leaves of e not under a negation.
func located(e *Expr) []*Expr {
	switch e.kind {
	case KindArea, KindWithin, KindNear:
		return []*Expr{e}
	case KindAnd, KindOr:
		var out []*Expr
		for _, c := range e.children {
			out = append(out, located(c)...)
		}
		return out
	}
	return nil
}

// WhyText is a delivery's recorded reason: rule, detail (the interest),
// the area of the post it is located in (an area's slug, or empty for a
// polygon or circle), how (ViaPlace, ViaArea or empty), and the place's
// name or subscribed area's slug. The name comes last: it is free text.
type WhyText struct {
	Rule, Detail, Area, Via, Name string
}

// ParseWhy reads a recorded reason (CompileWhy's text).
func ParseWhy(s string) WhyText {
	f := strings.SplitN(s, "|", 5)
	for len(f) < 5 {
		f = append(f, "")
	}
	return WhyText{Rule: f[0], Detail: f[1], Area: f[2], Via: f[3], Name: f[4]}
}

// CompileWhy turns a Why into an SQL text expression over devices d (with
// the same placeholders' rules as Compile): the reason recorded for each
// device the audience holds. It is evaluated only for those devices, and a
// post without a located audience and with a fixed rule costs a constant.
func CompileWhy(w Why, p Params) Condition {
	c := &compiler{tenant: "$" + strconv.Itoa(p.TenantParam), base: p.ArgBase}
	var b strings.Builder
	b.WriteString("(")
	if w.Rule != "" {
		b.WriteString(c.arg(w.Rule+"||", "text"))
	} else {
		c.optIn(&b, w)
	}
	b.WriteString(" || ")
	if len(w.Located) == 0 {
		b.WriteString("'||'")
	} else {
		b.WriteString("COALESCE(")
		for _, e := range w.Located {
			c.whereIn(&b, e)
			b.WriteString(", ")
		}
		b.WriteString("'||')")
	}
	b.WriteString(")")
	return Condition{SQL: b.String(), Args: c.args}
}

// optIn is "feed||" for a follower of the feed, else "interest|", the
// first of the post's tags the device is interested in, and "|".
func (c *compiler) optIn(b *strings.Builder, w Why) {
	feed := "false"
	if w.Feed != "" {
		var fb strings.Builder
		c.feeds(&fb, []string{w.Feed})
		feed = fb.String()
	}
	fmt.Fprintf(b, "CASE WHEN %s THEN 'feed||' ELSE 'interest|' || coalesce((SELECT t FROM unnest(d.interests) t WHERE t = ANY(%s) ORDER BY t LIMIT 1), '') || '|' END",
		feed, c.arg(w.Tags, "text[]"))
}

// whereIn is "area|via|name" for the first place of the device inside e,
// else the first subscribed area of it that e holds, else NULL.
func (c *compiler) whereIn(b *strings.Builder, e *Expr) {
	area := "''::text"
	var g string
	switch e.kind {
	case KindWithin:
		g = fmt.Sprintf("(SELECT ST_GeomFromWKB(%s, 4326))", c.arg(wkb(e.geom), "bytea"))
	case KindArea:
		area = c.arg(e.value, "text")
		g = fmt.Sprintf("(SELECT COALESCE((SELECT a.geom FROM areas a WHERE a.tenant_id = %s AND a.slug = %s), 'SRID=4326;MULTIPOLYGON EMPTY'::geometry))",
			c.tenant, area)
	}
	// The place's point, built from the stored places (their order is the
	// resident's), guarded as in near against a point off the globe.
	pt := "ST_SetSRID(ST_MakePoint((pl->>'lon')::float8, (pl->>'lat')::float8), 4326)"
	var inPlace, inArea string
	if e.kind == KindNear {
		centre := fmt.Sprintf("(SELECT ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography)",
			c.arg(e.circle.Lon, "float8"), c.arg(e.circle.Lat, "float8"))
		r := c.arg(e.circle.RadiusM, "float8")
		inPlace = fmt.Sprintf("abs((pl->>'lat')::float8) <= 90 AND abs((pl->>'lon')::float8) <= 180 AND ST_DWithin(%s::geography, %s, %s, false)", pt, centre, r)
		inArea = fmt.Sprintf("ST_DWithin(s.geom::geography, %s, %s, false)", centre, r)
	} else {
		inPlace = fmt.Sprintf("ST_Intersects(%s, %s)", pt, g)
		inArea = fmt.Sprintf("s.geom && %s AND ST_Relate(s.geom, %s, 'T********')", g, g)
	}
	// The areas located in e are found once per statement (an uncorrelated
	// subquery, as in Compile): relating two areas' polygons costs
	// milliseconds, too much to pay per device.
	fmt.Fprintf(b, "COALESCE((SELECT %s || '|place|' || (pl->>'name') FROM jsonb_array_elements(CASE WHEN d.place_geom IS NULL THEN '[]'::jsonb ELSE d.places END) pl WHERE %s LIMIT 1), "+
		"(SELECT %s || '|area|' || s.slug FROM areas s WHERE s.id = ANY(d.areas) AND s.id = ANY(ARRAY(SELECT s.id FROM areas s WHERE s.tenant_id = %s AND %s)) ORDER BY s.id LIMIT 1))",
		area, inPlace, area, c.tenant, inArea)
}
