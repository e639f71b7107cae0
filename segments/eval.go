package segments

import (
	"slices"
	"strings"
)

// Device is a device's choices as the evaluator sees them: feeds and areas
// by slug, places as points.
type Device struct {
	InstallationID string
	Platform       string
	Locale         string
	Follows        []string // feed slugs
	Interests      []string
	Areas          []string // area slugs
	Places         []Point
}

// Env is the tenant the evaluator works in.
type Env struct {
	// Areas are the tenant's area geometries by slug, exactly as stored
	// (ParseWKB of ST_AsBinary(geom)).
	Areas map[string]MultiPolygon
}

// Evaluator is an expression prepared for evaluation over many devices in
// one Env: the geometry work that does not depend on the device is done
// once. It is the reference the SQL compiler is tested against.
type Evaluator struct {
	root *enode
}

type enode struct {
	e        *Expr
	children []*enode
	shape    *shape          // within, area: the geometry G
	located  map[string]bool // within, area, near: the areas located in G
}

// NewEvaluator prepares e for evaluation in env.
func NewEvaluator(e *Expr, env Env) *Evaluator {
	shapes := make(map[string]*shape, len(env.Areas))
	for slug, mp := range env.Areas {
		shapes[slug] = prepare(mp)
	}
	return &Evaluator{root: prepareNode(e, shapes)}
}

func prepareNode(e *Expr, areas map[string]*shape) *enode {
	n := &enode{e: e}
	for _, c := range e.children {
		n.children = append(n.children, prepareNode(c, areas))
	}
	switch e.kind {
	case KindWithin:
		n.shape = prepare(e.geom)
	case KindArea:
		n.shape = areas[e.value] // nil: no such area, nobody is located in it
	}
	switch e.kind {
	case KindWithin, KindArea, KindNear:
		n.located = map[string]bool{}
		for slug, s := range areas {
			if (e.kind == KindNear && s.nearShape(e.circle)) || (n.shape != nil && interiorsIntersect(s, n.shape)) {
				n.located[slug] = true
			}
		}
	}
	return n
}

// Match reports whether the device belongs to the audience.
func (ev *Evaluator) Match(d Device) bool { return ev.root.match(&d) }

// Evaluate is NewEvaluator(e, env).Match(d), for one device.
func Evaluate(e *Expr, env Env, d Device) bool { return NewEvaluator(e, env).Match(d) }

func (n *enode) match(d *Device) bool {
	e := n.e
	switch e.kind {
	case KindAll:
		return true
	case KindAnd:
		for _, c := range n.children {
			if !c.match(d) {
				return false
			}
		}
		return true
	case KindOr:
		for _, c := range n.children {
			if c.match(d) {
				return true
			}
		}
		return false
	case KindNot:
		return !n.children[0].match(d)
	case KindFeed:
		return slices.Contains(d.Follows, e.value)
	case KindInterest:
		return slices.Contains(d.Interests, e.value)
	case KindPlatform:
		return d.Platform == e.value
	case KindLocale:
		l := strings.ReplaceAll(strings.ToLower(d.Locale), "_", "-")
		return l == e.value || strings.HasPrefix(l, e.value+"-")
	case KindDevice:
		return slices.Contains(e.devices, d.InstallationID)
	case KindWithin, KindArea, KindNear:
		for _, a := range d.Areas {
			if n.located[a] {
				return true
			}
		}
		for _, p := range d.Places {
			if e.kind == KindNear {
				if sphereDistance(p, Point{Lon: e.circle.Lon, Lat: e.circle.Lat}) <= e.circle.RadiusM {
					return true
				}
			} else if n.shape != nil && n.shape.locate(p) >= 0 {
				return true
			}
		}
		return false
	}
	// kindFeedID: the evaluator knows feeds by slug only.
	return false
}
