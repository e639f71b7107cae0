// Package publish holds the rules that turn a publisher's request into a
// post or an alert: validation field by field, who may publish what,
// targeting and segments, the providers' payload limit, CAP alerts with
// their Updates and Cancels, and what a publisher may see of a post
// afterwards. The HTTP API and the console call it; it knows nothing of
// HTTP.
package publish

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/storage"
	"github.com/crier-push/crier/tasks"
)

// Enqueuer puts tasks on asynq queues; *asynq.Client is one.
type Enqueuer interface {
	EnqueueContext(ctx context.Context, task *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error)
}

// Config tunes the Service.
type Config struct {
	// Now is the clock that judges publish and expiry times; default
	// time.Now.
	Now    func() time.Time
	Logger *slog.Logger
	// PreviewLimit limits each publisher's previews; default a LocalLimiter
	// of DefaultPreviewsPerMinute.
	PreviewLimit Limiter
}

// WithDefaults fills in the zero fields.
func (c Config) WithDefaults() Config {
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.PreviewLimit == nil {
		c.PreviewLimit = NewLocalLimiter(DefaultPreviewsPerMinute, DefaultPreviewBurst)
	}
	return c
}

// Service publishes posts and alerts.
type Service struct {
	db  *storage.DB
	enq Enqueuer
	cfg Config
}

// New makes a Service.
func New(db *storage.DB, enq Enqueuer, cfg Config) (*Service, error) {
	if db == nil {
		return nil, errors.New("publish: a database is required")
	}
	if enq == nil {
		return nil, errors.New("publish: an enqueuer is required")
	}
	return &Service{db: db, enq: enq, cfg: cfg.WithDefaults()}, nil
}

// Created is a post made (or found again by its external id).
type Created struct {
	Post storage.Post
	// New is false when the external id found a post made before: nothing
	// is sent twice.
	New bool
}

// Feed finds the feed a principal posts to: its own, or any of the
// tenant's for the municipality.
func (s *Service) Feed(ctx context.Context, p crier.Principal, slug string) (crier.Feed, error) {
	if slug == "" {
		return crier.Feed{}, crier.Invalid("feed", "is required")
	}
	feed, err := s.db.FeedBySlug(ctx, p.TenantID, slug)
	if errors.Is(err, storage.ErrNotFound) {
		return crier.Feed{}, crier.Invalid("feed", "unknown feed %q", slug)
	}
	if err != nil {
		return crier.Feed{}, err
	}
	if err := p.MayPublishTo(feed); err != nil {
		return crier.Feed{}, err
	}
	return feed, nil
}

// CreatePost validates a post, stores it and enqueues its dispatch.
func (s *Service) CreatePost(ctx context.Context, p crier.Principal, r PostRequest) (Created, error) {
	feed, err := s.Feed(ctx, p, r.Feed)
	if err != nil {
		return Created{}, err
	}
	post, err := s.validatePost(p, r)
	if err != nil {
		return Created{}, err
	}
	if err := s.checkTags(ctx, p, post.Tags); err != nil {
		return Created{}, err
	}
	t, err := s.targeting(ctx, p, r.Target, r.Segment)
	if err != nil {
		return Created{}, err
	}
	post.Target, post.Segment = t.targetJSON, t.segmentJSON
	return s.save(ctx, p, feed, post)
}

// save stores a post on its feed, under the principal's daily post limit
// where it is capped (caps.go), and enqueues its dispatch. The stored
// post is the promise: once it is in Postgres the post is accepted, and if
// its dispatch cannot be queued now (Redis away), the reconciler
// (dispatcher.Reconciler) queues it when Redis is back, by
// dispatch_enqueued_at still unset. A replayed request re-enqueues a post
// that is still waiting, which mends a task Redis lost sooner than the
// reconciler would; otherwise the task id makes it a no-op.
func (s *Service) save(ctx context.Context, p crier.Principal, feed crier.Feed, post storage.Post) (Created, error) {
	post.TenantID, post.FeedID, post.PublisherID = p.TenantID, feed.ID, p.PublisherID()
	post.CreatedByKey = p.KeyID
	if post.Class == crier.ClassEmergency {
		if err := s.releaseRule(ctx, &post); err != nil {
			return Created{}, err
		}
	}
	saved, created, err := s.createPost(ctx, p, feed, post)
	if err != nil {
		return Created{}, err
	}
	if saved.State != crier.PostAccepted {
		return Created{Post: saved, New: created}, nil
	}
	return Created{Post: saved, New: created}, s.enqueueDispatch(ctx, saved)
}

// releaseRule makes an emergency post the first message of an incident if
// it is not a follow-up, and holds it for a second person's approval where
// the tenant wants that: every alert and update, whichever way it came
// (POST /v1/alerts, CAP, or an emergency POST /v1/posts), but never an
// all-clear, which only comes for a live incident.
func (s *Service) releaseRule(ctx context.Context, post *storage.Post) error {
	if post.MsgType == "" {
		post.MsgType = crier.MsgAlert
	}
	if post.MsgType == crier.MsgCancel {
		return nil
	}
	rules, err := s.db.TenantAlertRules(ctx, post.TenantID)
	if err != nil {
		return err
	}
	if rules.Approval {
		lapses := s.cfg.Now().Add(rules.ApprovalTTL)
		post.State, post.LapsesAt = crier.PostAwaitingApproval, &lapses
	}
	return nil
}

// enqueueDispatch queues the dispatch of an accepted post; if Redis does
// not take it, the reconciler will.
func (s *Service) enqueueDispatch(ctx context.Context, saved storage.Post) error {
	task, err := tasks.NewDispatch(saved.ID, saved.Class, saved.PublishAt)
	if err != nil {
		return err
	}
	// A Redis that does not answer must not hold the publisher's request
	// for long: the post is kept either way.
	const enqueueWait = 2 * time.Second
	ectx, cancel := context.WithTimeout(ctx, enqueueWait)
	_, err = s.enq.EnqueueContext(ectx, task)
	cancel()
	if err == nil || errors.Is(err, asynq.ErrTaskIDConflict) {
		err = s.db.MarkDispatchEnqueued(ctx, saved.ID)
	}
	if err != nil {
		s.cfg.Logger.Warn("post accepted; queueing its dispatch is left to the reconciler",
			slog.Int64("post_id", saved.ID), slog.Any("error", err))
	}
	return nil
}

// visiblePost reads a post the principal may see; to an organisation the
// others' posts do not exist.
func (s *Service) visiblePost(ctx context.Context, p crier.Principal, id int64) (storage.Post, error) {
	post, err := s.db.Post(ctx, p.TenantID, id)
	if err != nil {
		return storage.Post{}, err
	}
	if !p.MaySee(post.PublisherID) {
		return storage.Post{}, fmt.Errorf("post %d: %w", id, storage.ErrNotFound)
	}
	return post, nil
}

// Status is a post and what became of its deliveries.
type Status struct {
	Post storage.Post
	// State is the post's state, done once sending has no delivery left
	// pending.
	State    crier.PostState
	Progress storage.Progress
	// SendRate is sends per second between the first and the last.
	SendRate float64
	// Paused lists the providers that refuse the tenant's credentials while
	// deliveries wait.
	Paused []storage.AuthError
}

// PostStatus reads a post the principal may see and its progress.
func (s *Service) PostStatus(ctx context.Context, p crier.Principal, id int64) (Status, error) {
	post, err := s.visiblePost(ctx, p, id)
	if err != nil {
		return Status{}, err
	}
	return s.status(ctx, p, post)
}

// status is what became of a post's deliveries, the post read already.
func (s *Service) status(ctx context.Context, p crier.Principal, post storage.Post) (Status, error) {
	pr, err := s.db.PostProgress(ctx, post.ID)
	if err != nil {
		return Status{}, err
	}
	st := Status{Post: post, State: post.State, Progress: pr}
	if post.State == crier.PostSending && pr.Pending() == 0 {
		st.State = crier.PostDone
	}
	if pr.FirstSentAt != nil && pr.LastSentAt != nil {
		if d := pr.LastSentAt.Sub(*pr.FirstSentAt).Seconds(); d > 0 {
			st.SendRate = float64(pr.Counts[crier.DeliverySent]) / d
		}
	}
	if pr.Pending() > 0 {
		if st.Paused, err = s.db.AuthErrors(ctx, p.TenantID); err != nil {
			return Status{}, err
		}
	}
	return st, nil
}

// CancelPost cancels every delivery of the post not yet sent: no further
// send of it leaves crier, across every worker, within about a second (the
// workers' post cache). It returns how many were cancelled.
func (s *Service) CancelPost(ctx context.Context, p crier.Principal, id int64) (int, error) {
	if _, err := s.visiblePost(ctx, p, id); err != nil {
		return 0, err
	}
	n, err := s.db.CancelPost(ctx, p.TenantID, id)
	if errors.Is(err, storage.ErrAlreadyDelivered) {
		return 0, crier.Errorf(crier.EDELIVERED, "", "every delivery of the post has its outcome; nothing is left to cancel")
	}
	return n, err
}
