package segments

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
)

// Bounds of a segment expression. They keep one post's audience query and
// its evaluation cheap whatever a publisher sends.
const (
	MaxDepth       = 8       // nodes on the longest root-to-leaf path
	MaxLeaves      = 64      // leaves (every node but and, or, not)
	MaxVertices    = 10_000  // positions across all within geometries
	MaxDevices     = 100     // installation ids in one device node
	MaxInputBytes  = 2 << 20 // JSON text
	MaxRadiusM     = 100_000 // near radius, metres
	maxTagBytes    = 64
	maxDeviceBytes = 128
)

// Kind names a node of the grammar; it is the node's JSON key.
type Kind string

// The node kinds.
const (
	KindAll      Kind = "all"
	KindAnd      Kind = "and"
	KindOr       Kind = "or"
	KindNot      Kind = "not"
	KindFeed     Kind = "feed"
	KindInterest Kind = "interest"
	KindArea     Kind = "area"
	KindWithin   Kind = "within"
	KindNear     Kind = "near"
	KindPlatform Kind = "platform"
	KindLocale   Kind = "locale"
	KindDevice   Kind = "device"

	// kindFeedID is a feed by id: only the deprecated Default builds it.
	kindFeedID Kind = "feed_id"
)

// Expr is a parsed, valid segment expression. It is immutable; only Parse,
// ParseTarget and the builders of this package make one, so Compile and
// Evaluate never see an invalid tree.
type Expr struct {
	kind     Kind
	children []*Expr      // and, or (one or more), not (one)
	value    string       // feed and area slug, interest tag, platform, locale
	feedID   int64        // kindFeedID
	devices  []string     // device
	geom     MultiPolygon // within
	polygon  bool         // within: the GeoJSON was a Polygon
	circle   Circle       // near
}

// Kind is the node's kind.
func (e *Expr) Kind() Kind { return e.kind }

// FeedSlugs lists the feed slugs the expression names, sorted and without
// duplicates, so the API can check they exist.
func (e *Expr) FeedSlugs() []string { return e.collect(KindFeed) }

// AreaSlugs lists the area slugs the expression names, sorted and without
// duplicates.
func (e *Expr) AreaSlugs() []string { return e.collect(KindArea) }

// Places counts the geographic nodes (area, within, near) of the
// expression.
func (e *Expr) Places() int {
	n := 0
	e.walk(func(x *Expr) {
		switch x.kind {
		case KindArea, KindWithin, KindNear:
			n++
		}
	})
	return n
}

func (e *Expr) collect(k Kind) []string {
	var out []string
	e.walk(func(n *Expr) {
		if n.kind == k {
			out = append(out, n.value)
		}
	})
	slices.Sort(out)
	return slices.Compact(out)
}

func (e *Expr) walk(f func(*Expr)) {
	f(e)
	for _, c := range e.children {
		c.walk(f)
	}
}

// MarshalJSON writes the expression in canonical form: the grammar of
// Parse, with consecutive duplicate positions of within rings removed and
// locales in lower case. Parse reads it back to an equal expression.
func (e *Expr) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	if err := e.write(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// String is the canonical JSON, for logs and test failures.
func (e *Expr) String() string {
	b, err := e.MarshalJSON()
	if err != nil {
		return "<" + err.Error() + ">"
	}
	return string(b)
}

func writeString(b *bytes.Buffer, s string) {
	j, _ := json.Marshal(s) // a string always marshals
	b.Write(j)
}

func writeFloat(b *bytes.Buffer, f float64) {
	b.Write(strconv.AppendFloat(nil, f, 'g', -1, 64))
}

func (e *Expr) write(b *bytes.Buffer) error {
	b.WriteString(`{"`)
	b.WriteString(string(e.kind))
	b.WriteString(`":`)
	switch e.kind {
	case KindAll:
		b.WriteString("true")
	case KindAnd, KindOr:
		b.WriteByte('[')
		for i, c := range e.children {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := c.write(b); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case KindNot:
		if err := e.children[0].write(b); err != nil {
			return err
		}
	case KindFeed, KindInterest, KindArea, KindPlatform, KindLocale:
		writeString(b, e.value)
	case KindDevice:
		b.WriteByte('[')
		for i, d := range e.devices {
			if i > 0 {
				b.WriteByte(',')
			}
			writeString(b, d)
		}
		b.WriteByte(']')
	case KindWithin:
		writeGeometry(b, e.geom, e.polygon)
	case KindNear:
		b.WriteString(`{"lat":`)
		writeFloat(b, e.circle.Lat)
		b.WriteString(`,"lon":`)
		writeFloat(b, e.circle.Lon)
		b.WriteString(`,"radius_m":`)
		writeFloat(b, e.circle.RadiusM)
		b.WriteByte('}')
	default:
		return errors.New("segments: a feed given by id has no JSON form")
	}
	b.WriteByte('}')
	return nil
}

func writeGeometry(b *bytes.Buffer, mp MultiPolygon, polygon bool) {
	writePolygon := func(p Polygon) {
		b.WriteByte('[')
		for i, r := range p {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteByte('[')
			for j, pt := range r {
				if j > 0 {
					b.WriteByte(',')
				}
				b.WriteByte('[')
				writeFloat(b, pt.Lon)
				b.WriteByte(',')
				writeFloat(b, pt.Lat)
				b.WriteByte(']')
			}
			b.WriteByte(']')
		}
		b.WriteByte(']')
	}
	if polygon {
		b.WriteString(`{"type":"Polygon","coordinates":`)
		writePolygon(mp[0])
	} else {
		b.WriteString(`{"type":"MultiPolygon","coordinates":[`)
		for i, p := range mp {
			if i > 0 {
				b.WriteByte(',')
			}
			writePolygon(p)
		}
		b.WriteByte(']')
	}
	b.WriteByte('}')
}

// Builders for expressions made in code rather than parsed, such as the
// default rule. Their inputs are trusted: children are valid expressions.

// All is every device of the tenant.
func All() *Expr { return &Expr{kind: KindAll} }

// And is the intersection of one or more expressions.
func And(es ...*Expr) *Expr { return junction(KindAnd, es) }

// Or is the union of one or more expressions.
func Or(es ...*Expr) *Expr { return junction(KindOr, es) }

func junction(k Kind, es []*Expr) *Expr {
	if len(es) == 1 {
		return es[0]
	}
	if len(es) == 0 { // the empty union is nobody, the empty intersection everybody
		if k == KindOr {
			return Not(All())
		}
		return All()
	}
	return &Expr{kind: k, children: slices.Clone(es)}
}

// Not is the complement of an expression within the tenant.
func Not(e *Expr) *Expr { return &Expr{kind: KindNot, children: []*Expr{e}} }

// Feed is the followers of a feed, by slug.
func Feed(slug string) *Expr { return &Expr{kind: KindFeed, value: slug} }

// Interest is the devices with an interest.
func Interest(tag string) *Expr { return &Expr{kind: KindInterest, value: tag} }

// Area is the devices located in a tenant's area, by slug.
func Area(slug string) *Expr { return &Expr{kind: KindArea, value: slug} }
