package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/crier-push/crier/dispatcher"
	"github.com/crier-push/crier/providers"
	"github.com/crier-push/crier/segments"
	"github.com/crier-push/crier/storage"
)

// targeting validates a post's geographic target and segment expression and
// returns them normalised for storage. Organisations may not use all or
// device, nor name other publishers' feeds; unknown feed and area slugs are
// 400s naming them.
func (s *Server) targeting(ctx context.Context, p storage.Principal, target, segment json.RawMessage) (tgt, seg []byte, err error) {
	opt := segments.Options{}
	if p.Publisher.Role != storage.RoleMunicipality {
		opt.Organisation = true
		if segment != nil {
			if opt.OwnFeeds, err = s.db.FeedSlugsOfPublisher(ctx, p.Publisher.ID); err != nil {
				return nil, nil, err
			}
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

// parseExpr reads an expression with parse: its errors become 400s naming
// the path (field when there is none), unknown feed and area slugs are
// refused, and it comes back normalised for storage; nil for none.
func (s *Server) parseExpr(ctx context.Context, tenantID int64, raw json.RawMessage, field string, opt segments.Options,
	parse func([]byte, segments.Options) (*segments.Expr, error)) ([]byte, error) {
	if raw == nil || string(raw) == "null" {
		return nil, nil
	}
	e, err := parse(raw, opt)
	var se *segments.Error
	if errors.As(err, &se) {
		return nil, invalid(se.Path, "%s", se.Message)
	}
	if err != nil {
		return nil, invalid(field, "%v", err)
	}
	if err := s.checkSlugs(ctx, tenantID, field, e); err != nil {
		return nil, err
	}
	return json.Marshal(e)
}

// checkSlugs refuses an expression naming feeds or areas the tenant lacks.
func (s *Server) checkSlugs(ctx context.Context, tenantID int64, field string, e *segments.Expr) error {
	if slugs := e.FeedSlugs(); len(slugs) > 0 {
		_, missing, err := s.db.FeedIDs(ctx, tenantID, dedupe(slugs))
		if err != nil {
			return err
		}
		if len(missing) > 0 {
			return invalid(field, "unknown feeds: %s", strings.Join(missing, ", "))
		}
	}
	if slugs := e.AreaSlugs(); len(slugs) > 0 {
		_, missing, err := s.db.AreaIDs(ctx, tenantID, dedupe(slugs))
		if err != nil {
			return err
		}
		if len(missing) > 0 {
			return invalid(field, "unknown areas: %s", strings.Join(missing, ", "))
		}
	}
	return nil
}

// previewBody is POST /v1/audience/preview: a post's targeting.
type previewBody struct {
	Feed    string          `json:"feed"`
	Tags    []string        `json:"tags"`
	Class   string          `json:"class"`
	Target  json.RawMessage `json:"target"`
	Segment json.RawMessage `json:"segment"`
}

// preview counts who a post would reach now, in total and per platform.
// Organisations see counts under 10 as "<10", so no club can probe who
// lives where.
func (s *Server) preview(w http.ResponseWriter, r *http.Request) error {
	p := principal(r.Context())
	var b previewBody
	if err := decode(w, r, &b); err != nil {
		return err
	}
	feed, err := s.postFeed(r.Context(), p, b.Feed)
	if err != nil {
		return err
	}
	if err := checkTags("tags", b.Tags); err != nil {
		return err
	}
	emergency := b.Class == providers.ClassEmergency
	if emergency && p.Publisher.Role != storage.RoleMunicipality {
		return forbidden("class", "only the municipality may send emergency posts")
	}
	tgt, seg, err := s.targeting(r.Context(), p, b.Target, b.Segment)
	if err != nil {
		return err
	}
	aud, err := dispatcher.Audience(storage.Post{FeedSlug: feed.Slug, FeedMandatory: feed.Mandatory,
		Tags: dedupe(b.Tags), Target: tgt, Segment: seg})
	if err != nil {
		return err
	}
	c, err := s.db.CountAudience(r.Context(), p.TenantID, feed.ID, aud, emergency)
	if err != nil {
		return err
	}
	round := func(n int) any {
		if p.Publisher.Role != storage.RoleMunicipality && n < 10 {
			return "<10"
		}
		return n
	}
	writeJSON(w, http.StatusOK, map[string]any{"total": round(c.Total), "android": round(c.Android), "ios": round(c.IOS)})
	return nil
}
