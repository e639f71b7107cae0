package dispatcher

import (
	"fmt"

	"github.com/crier-push/crier/segments"
	"github.com/crier-push/crier/storage"
)

// Audience compiles who a post is for, for a statement shaped like
// storage.Snapshot's (tenant id in $2, the condition's placeholders from
// $5): the post's segment if it has one, else DESIGN.md's default rule;
// either narrowed by the post's geographic target. The API's audience
// preview uses it too, so a preview counts what a dispatch would send.
func Audience(p storage.Post) (storage.Audience, error) {
	var target *segments.Expr
	if p.Target != nil {
		t, err := segments.Parse(p.Target, segments.Options{Root: "target"})
		if err != nil {
			return storage.Audience{}, fmt.Errorf("post %d: stored target: %w", p.ID, err)
		}
		target = t
	}
	var e *segments.Expr
	if p.Segment != nil {
		seg, err := segments.Parse(p.Segment, segments.Options{})
		if err != nil {
			return storage.Audience{}, fmt.Errorf("post %d: stored segment: %w", p.ID, err)
		}
		e = seg
		if target != nil {
			e = segments.And(seg, target)
		}
	} else {
		e = segments.DefaultRule(segments.Post{Feed: p.FeedSlug, FeedMandatory: p.FeedMandatory, Tags: p.Tags, Target: target})
	}
	c := segments.Compile(e, segments.Params{TenantParam: 2, ArgBase: 4})
	return storage.Audience{Where: c.SQL, Args: c.Args}, nil
}
