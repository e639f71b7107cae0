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
}

// DefaultRule is DESIGN.md's default audience as an expression: followers
// of the feed ∪ devices interested in one of the post's tags ∪ every device
// if the feed is mandatory, narrowed to the devices located in the target
// if there is one. Compile it like any other expression.
func DefaultRule(p Post) *Expr {
	var rule *Expr
	if p.FeedMandatory {
		rule = All()
	} else {
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
		rule = Or(es...)
	}
	switch {
	case p.Target == nil:
		return rule
	case rule.kind == KindAll:
		return p.Target
	}
	return And(rule, p.Target)
}

// Audience is who a post is for, from its stored target and segment
// (normalised expressions, nil for none): the segment if it has one, else
// the default rule; either narrowed by the target. The dispatcher's
// snapshot and a publisher's preview both compile this, so a preview
// counts what a dispatch would send.
func Audience(p Post, target, segment []byte) (*Expr, error) {
	if target != nil {
		t, err := Parse(target, Options{Root: "target"})
		if err != nil {
			return nil, fmt.Errorf("stored target: %w", err)
		}
		p.Target = t
	}
	if segment == nil {
		return DefaultRule(p), nil
	}
	seg, err := Parse(segment, Options{})
	if err != nil {
		return nil, fmt.Errorf("stored segment: %w", err)
	}
	if p.Target != nil {
		return And(seg, p.Target), nil
	}
	return seg, nil
}
