package publish

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/segments"
	"github.com/crier-push/crier/storage"
)

// targets are a post's geographic target and segment, parsed and in the
// normalised JSON they are stored as; nil for none.
type targets struct {
	target, segment         *segments.Expr
	targetJSON, segmentJSON []byte
}

// targeting validates a post's geographic target and segment expression.
// Organisations may not use all or device, nor name other publishers'
// feeds, nor target finer than their geography floor; unknown feed and area
// slugs are refused naming them.
func (s *Service) targeting(ctx context.Context, p crier.Principal, target, segment json.RawMessage) (targets, error) {
	var t targets
	// One budget of geometry positions for the whole request: a target
	// and a segment may not hold MaxVertices each.
	opt := segments.Options{Principal: &p, Budget: new(segments.Budget)}
	if p.IsOrganisation() && !isNull(segment) {
		var err error
		if opt.OwnFeeds, err = s.db.FeedSlugsOfPublisher(ctx, p.PublisherID()); err != nil {
			return t, err
		}
	}
	var err error
	if t.target, t.targetJSON, err = s.parseExpr(ctx, p.TenantID, target, "target", opt, segments.ParseTarget); err != nil {
		return t, err
	}
	if t.segment, t.segmentJSON, err = s.parseExpr(ctx, p.TenantID, segment, "segment", opt, segments.Parse); err != nil {
		return t, err
	}
	// Each place is at least the geography floor, but the intersection of
	// two (two overlapping circles, a circle across an area's border) could
	// isolate a few houses: an organisation names one place per post.
	if p.IsOrganisation() && t.segment != nil {
		if n := t.segment.Places(); n > 1 || (n == 1 && t.target != nil) {
			return t, crier.Invalid("segment", "an organisation's post may name one place: a target, or one area, within or near in its segment")
		}
	}
	return t, nil
}

// checkTags refuses a post's tags unless they are few, in the tenant's
// catalogue of interests and, for an organisation, granted to it.
func (s *Service) checkTags(ctx context.Context, p crier.Principal, tags []string) error {
	if len(tags) > MaxTags {
		return crier.Invalid("tags", "at most %d tags", MaxTags)
	}
	if err := crier.CheckTags("tags", tags); err != nil {
		return err
	}
	c, err := s.db.CheckTags(ctx, p.TenantID, p.PublisherID(), p.IsOrganisation(), crier.Distinct(tags))
	if err != nil {
		return err
	}
	if len(c.Unknown) > 0 {
		return crier.Invalid("tags", "not in the tenant's catalogue of interests (GET /v1/interests): %s", strings.Join(c.Unknown, ", "))
	}
	if len(c.NotGranted) > 0 {
		return crier.Forbidden("tags", "the municipality has not granted your organisation these interests: %s", strings.Join(c.NotGranted, ", "))
	}
	return nil
}

func isNull(raw json.RawMessage) bool { return raw == nil || string(raw) == "null" }

// parseExpr reads an expression with parse, refuses unknown feed and area
// slugs, and returns it parsed and normalised for storage; nil for none.
func (s *Service) parseExpr(ctx context.Context, tenantID int64, raw json.RawMessage, field string, opt segments.Options,
	parse func([]byte, segments.Options) (*segments.Expr, error)) (*segments.Expr, []byte, error) {
	if isNull(raw) {
		return nil, nil, nil
	}
	opt.Root = field
	e, err := parse(raw, opt)
	if err != nil {
		return nil, nil, err
	}
	if err := s.checkSlugs(ctx, tenantID, field, e); err != nil {
		return nil, nil, err
	}
	j, err := json.Marshal(e)
	return e, j, err
}

// checkSlugs refuses an expression naming feeds or areas the tenant lacks.
func (s *Service) checkSlugs(ctx context.Context, tenantID int64, field string, e *segments.Expr) error {
	for _, c := range []struct {
		what   string
		slugs  []string
		lookup func(context.Context, int64, []string) ([]int64, []string, error)
	}{{"feeds", e.FeedSlugs(), s.db.FeedIDs}, {"areas", e.AreaSlugs(), s.db.AreaIDs}} {
		if len(c.slugs) == 0 {
			continue
		}
		_, missing, err := c.lookup(ctx, tenantID, crier.Distinct(c.slugs))
		if err != nil {
			return err
		}
		if len(missing) > 0 {
			return crier.Invalid(field, "unknown %s: %s", c.what, strings.Join(missing, ", "))
		}
	}
	return nil
}

// PreviewRequest is a post's targeting, to count who it would reach.
type PreviewRequest struct {
	Feed    string          `json:"feed"`
	Tags    []string        `json:"tags"`
	Class   string          `json:"class"`
	Target  json.RawMessage `json:"target"`
	Segment json.RawMessage `json:"segment"`
}

// Preview is who a post would reach now, as the principal may see it.
type Preview struct {
	Total   crier.Count `json:"total"`
	Android crier.Count `json:"android"`
	IOS     crier.Count `json:"ios"`
}

// Preview counts who a post would reach now, in total and per platform,
// with the audience the dispatcher would snapshot. Each publisher has a
// budget of previews (Config.PreviewLimit): past it, ETOOMANY with when to
// come back.
func (s *Service) Preview(ctx context.Context, p crier.Principal, r PreviewRequest) (Preview, error) {
	if p.Publisher == nil {
		return Preview{}, crier.Forbidden("", "only publishers preview audiences")
	}
	wait, err := s.cfg.PreviewLimit.Allow(ctx, "preview:"+strconv.FormatInt(p.PublisherID(), 10))
	if err != nil {
		return Preview{}, err
	}
	if wait > 0 {
		return Preview{}, &crier.Error{Code: crier.ETOOMANY, Message: "too many previews: try again later", RetryAfter: wait}
	}
	feed, err := s.Feed(ctx, p, r.Feed)
	if err != nil {
		return Preview{}, err
	}
	if err := s.checkTags(ctx, p, r.Tags); err != nil {
		return Preview{}, err
	}
	class, err := postClass(p, r.Class)
	if err != nil {
		return Preview{}, err
	}
	t, err := s.targeting(ctx, p, r.Target, r.Segment)
	if err != nil {
		return Preview{}, err
	}
	e := segments.AudienceOf(segments.Post{Feed: feed.Slug, FeedMandatory: feed.Mandatory, Tags: crier.Distinct(r.Tags),
		Organisation: p.IsOrganisation()}, t.target, t.segment)
	c, err := s.db.CountAudience(ctx, p.TenantID, feed.ID, storage.CompileAudience(e, segments.Why{}), class == crier.ClassEmergency)
	if err != nil {
		return Preview{}, err
	}
	return Preview{Total: p.Count(c.Total), Android: p.Count(c.Android), IOS: p.Count(c.IOS)}, nil
}
