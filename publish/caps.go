package publish

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/storage"
)

// Caps per sender: an organisation's posts are held to the daily post
// limit the municipality set it (crier.Principal.PostCapped says which),
// and the municipality sets and reads the limits here.

// LimitsRequest is a publisher's limits as the municipality sets them
// (PUT /v1/publishers/{slug}/limits). PUT replaces both: null or left out
// is the tenant's default for daily_posts and no limit for
// daily_pushes_per_device. The numbers are read as float64 so that 2.5 is
// refused naming its field and saying why, as any other bad value is.
type LimitsRequest struct {
	DailyPosts           *float64 `json:"daily_posts"`
	DailyPushesPerDevice *float64 `json:"daily_pushes_per_device"`
}

// Limits are a publisher's limits, the tenant's default and what the post
// limit leaves the publisher now.
type Limits struct {
	Publisher string
	storage.PublisherLimits
}

// Limits reads a publisher's limits: the municipality any organisation's,
// an organisation its own.
func (s *Service) Limits(ctx context.Context, p crier.Principal, publisher string) (Limits, error) {
	pub, err := s.cappedPublisher(ctx, p, publisher)
	if err != nil {
		return Limits{}, err
	}
	if err := p.MayReadLimits(pub.ID); err != nil {
		return Limits{}, err
	}
	pl, err := s.db.PublisherLimits(ctx, p.TenantID, pub.ID)
	if err != nil {
		return Limits{}, err
	}
	return Limits{Publisher: pub.Slug, PublisherLimits: pl}, nil
}

// SetLimits replaces an organisation's limits (the municipality's to set)
// and reads them back.
func (s *Service) SetLimits(ctx context.Context, p crier.Principal, publisher string, r LimitsRequest) (Limits, error) {
	if err := p.MaySetLimits(); err != nil {
		return Limits{}, err
	}
	var l storage.Limits
	var err error
	if l.DailyPosts, err = limitValue("daily_posts", r.DailyPosts, crier.MaxDailyPosts, "the tenant's default"); err != nil {
		return Limits{}, err
	}
	if l.DailyPushesPerDevice, err = limitValue("daily_pushes_per_device", r.DailyPushesPerDevice,
		crier.MaxDailyPushesPerDevice, "no limit"); err != nil {
		return Limits{}, err
	}
	pub, err := s.cappedPublisher(ctx, p, publisher)
	if err != nil {
		return Limits{}, err
	}
	if err := s.db.SetPublisherLimits(ctx, p.TenantID, pub.ID, l); err != nil {
		return Limits{}, err
	}
	return s.Limits(ctx, p, publisher)
}

// cappedPublisher finds the publisher whose limits are asked for: an
// organisation, since the municipality's posts are never capped.
func (s *Service) cappedPublisher(ctx context.Context, p crier.Principal, slug string) (crier.Publisher, error) {
	pub, err := s.db.PublisherBySlug(ctx, p.TenantID, slug)
	if err != nil {
		return crier.Publisher{}, err
	}
	if pub.Role == crier.RoleMunicipality {
		return crier.Publisher{}, crier.Invalid("publisher", "the municipality's posts are never capped: it has no limits")
	}
	return pub, nil
}

// limitValue reads one limit: nil stays nil (unset is the default), else a
// whole number from 1 to most.
func limitValue(field string, v *float64, most int, unset string) (*int, error) {
	if v == nil {
		return nil, nil
	}
	if *v != math.Trunc(*v) || *v < 1 || *v > float64(most) {
		return nil, crier.Invalid(field, "must be a whole number from 1 to %d, or null for %s", most, unset)
	}
	n := int(*v)
	return &n, nil
}

// createPost stores a post, under the principal's daily post limit where
// it is capped: past it the post is refused, 429 with Retry-After the time
// until the next may go.
func (s *Service) createPost(ctx context.Context, p crier.Principal, feed crier.Feed, post storage.Post) (storage.Post, bool, error) {
	if !p.PostCapped(feed, post.Class) {
		return s.db.CreatePost(ctx, post)
	}
	saved, created, err := s.db.CreateCappedPost(ctx, post)
	var limit *storage.PostLimitError
	if errors.As(err, &limit) {
		a := limit.Allowance
		wait := max(a.RetryAfter(), time.Second)
		return storage.Post{}, false, &crier.Error{Code: crier.ETOOMANY, RetryAfter: wait,
			Message: fmt.Sprintf("daily post limit reached: %s may send %d posts in any %g hours (the limit the municipality "+
				"set) and has sent %d; the next may go in %s", p.Publisher.Slug, a.Limit, crier.PostWindow.Hours(), a.Used,
				wait.Round(time.Second))}
	}
	return saved, created, err
}
