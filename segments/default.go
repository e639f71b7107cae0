package segments

import (
	"fmt"
	"slices"
)

// Post is what the default audience rule needs of a post.
type Post struct {
	// Feed is the post's feed, by slug.
	Feed string
	// FeedID is the feed by id, for callers of the deprecated Default that
	// do not know the slug; DefaultRule uses it only when Feed is empty.
	FeedID        int64
	FeedMandatory bool
	// Tags: devices interested in any of them receive the post.
	Tags []string
	// Target is the optional geographic target (ParseTarget, Within, Near,
	// Area): only devices located in it receive the post.
	Target *Expr
	// Organisation: an organisation posted it. Its audience is always
	// inside its opt-ins, followers of the feed ∪ devices interested in one
	// of the tags (a mandatory feed is the municipality's word, not the
	// club's): a segment and a target only narrow that.
	Organisation bool
	// Emergency and Exercise only name the rule a device is in the
	// audience by (WhyOf): an alert's area, or a test device.
	Emergency, Exercise bool
}

// DefaultRule is DESIGN.md's default audience as an expression: followers
// of the feed ∪ devices interested in one of the post's tags ∪ every device
// if the feed is mandatory, narrowed to the devices located in the target
// if there is one. Compile it like any other expression.
func DefaultRule(p Post) *Expr {
	rule := All()
	if !p.FeedMandatory || p.Organisation {
		rule = OptIns(p)
	}
	switch {
	case p.Target == nil:
		return rule
	case rule.kind == KindAll:
		return p.Target
	}
	return And(rule, p.Target)
}

// OptIns is who asked for the post's feed or tags: followers of the feed ∪
// devices interested in one of the tags.
func OptIns(p Post) *Expr {
	feed := Feed(p.Feed)
	if p.Feed == "" {
		feed = &Expr{kind: kindFeedID, feedID: p.FeedID}
	}
	es := []*Expr{feed}
	tags := slices.Clone(p.Tags)
	slices.Sort(tags)
	for _, t := range slices.Compact(tags) {
		es = append(es, Interest(t))
	}
	return Or(es...)
}

// Audience is who a post is for, from its stored target and segment
// (normalised expressions, nil for none): the segment if it has one, else
// the default rule; either narrowed by the target. An organisation's
// segment narrows its opt-ins (OptIns) and never replaces them. The dispatcher's
// snapshot and a publisher's preview both compile this, so a preview
// counts what a dispatch would send.
func Audience(p Post, target, segment []byte) (*Expr, error) {
	t, seg, err := parseStored(target, segment)
	if err != nil {
		return nil, err
	}
	return AudienceOf(p, t, seg), nil
}

// Explained is Audience and the rule each device of it is in it by
// (WhyOf).
func Explained(p Post, target, segment []byte) (*Expr, Why, error) {
	t, seg, err := parseStored(target, segment)
	if err != nil {
		return nil, Why{}, err
	}
	return AudienceOf(p, t, seg), WhyOf(p, t, seg), nil
}

func parseStored(target, segment []byte) (t, seg *Expr, err error) {
	if target != nil {
		if t, err = Parse(target, Options{Root: "target"}); err != nil {
			return nil, nil, fmt.Errorf("stored target: %w", err)
		}
	}
	if segment != nil {
		if seg, err = Parse(segment, Options{}); err != nil {
			return nil, nil, fmt.Errorf("stored segment: %w", err)
		}
	}
	return t, seg, nil
}

// AudienceOf is Audience of parsed expressions (nil for none): the target
// given here replaces p.Target.
func AudienceOf(p Post, target, segment *Expr) *Expr {
	if target != nil {
		p.Target = target
	}
	if segment == nil {
		return DefaultRule(p)
	}
	es := []*Expr{segment}
	if p.Organisation {
		es = []*Expr{OptIns(p), segment}
	}
	if p.Target != nil {
		es = append(es, p.Target)
	}
	return And(es...)
}
