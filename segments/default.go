package segments

import "slices"

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
