package publish

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/segments"
	"github.com/crier-push/crier/storage"
)

// targeting validates a post's geographic target and segment expression and
// returns them normalised for storage. Organisations may not use all or
// device, nor name other publishers' feeds; unknown feed and area slugs are
// refused naming them.
func (s *Service) targeting(ctx context.Context, p crier.Principal, target, segment json.RawMessage) (tgt, seg []byte, err error) {
	opt := segments.Options{Principal: &p}
	if p.IsOrganisation() && !isNull(segment) {
		if opt.OwnFeeds, err = s.db.FeedSlugsOfPublisher(ctx, p.PublisherID()); err != nil {
			return nil, nil, err
		}
	}
	if tgt, err = s.parseExpr(ctx, p.TenantID, target, "target", opt, segments.ParseTarget); err != nil {
		return nil, nil, err
	}
	if seg, err = s.parseExpr(ctx, p.TenantID, segment, "segment", opt, segments.Parse); err != nil {
		return nil, nil, err
	}
	return tgt, seg, nil
}

func isNull(raw json.RawMessage) bool { return raw == nil || string(raw) == "null" }

// parseExpr reads an expression with parse, refuses unknown feed and area
// slugs, and returns it normalised for storage; nil for none.
func (s *Service) parseExpr(ctx context.Context, tenantID int64, raw json.RawMessage, field string, opt segments.Options,
	parse func([]byte, segments.Options) (*segments.Expr, error)) ([]byte, error) {
	if isNull(raw) {
		return nil, nil
	}
	opt.Root = field
	e, err := parse(raw, opt)
	if err != nil {
		return nil, err
	}
	if err := s.checkSlugs(ctx, tenantID, field, e); err != nil {
		return nil, err
	}
	return json.Marshal(e)
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
// with the audience the dispatcher would snapshot.
func (s *Service) Preview(ctx context.Context, p crier.Principal, r PreviewRequest) (Preview, error) {
	feed, err := s.Feed(ctx, p, r.Feed)
	if err != nil {
		return Preview{}, err
	}
	if err := crier.CheckTags("tags", r.Tags); err != nil {
		return Preview{}, err
	}
	class, err := postClass(p, r.Class)
	if err != nil {
		return Preview{}, err
	}
	tgt, seg, err := s.targeting(ctx, p, r.Target, r.Segment)
	if err != nil {
		return Preview{}, err
	}
	e, err := segments.Audience(segments.Post{Feed: feed.Slug, FeedMandatory: feed.Mandatory, Tags: crier.Distinct(r.Tags)}, tgt, seg)
	if err != nil {
		return Preview{}, err
	}
	c, err := s.db.CountAudience(ctx, p.TenantID, feed.ID, storage.CompileAudience(e), class == crier.ClassEmergency)
	if err != nil {
		return Preview{}, err
	}
	return Preview{Total: p.Count(c.Total), Android: p.Count(c.Android), IOS: p.Count(c.IOS)}, nil
}
