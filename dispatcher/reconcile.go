package dispatcher

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/internal/configcheck"
	"github.com/crier-push/crier/storage"
	"github.com/crier-push/crier/tasks"
)

// A Reconciler keeps Redis holding the work Postgres says is open: posts
// in Postgres are the truth, and their tasks in Redis can be missing in two
// ways, which it mends every Interval in every worker process.
//
//   - A post stored while Redis was away has no dispatch task: the API
//     accepted it all the same. The reconciler queues the dispatch of every
//     accepted post whose dispatch_enqueued_at is unset, at its publish
//     time. Several processes may queue the same post at once: the task id
//     makes that harmless.
//   - Redis lost its data (restarted without persistence, FLUSHALL): every
//     queued dispatch and send is gone. The reconciler notices the loss by
//     the Marker gone, and one process, holding an advisory lock in
//     Postgres, queues all open work again, with the same task ids: the
//     dispatch of every post accepted or dispatching (a scheduled one at
//     its publish time), and a checked send (tasks.Send.Check) for every
//     pending or deferred delivery, a deferred one at its due time. A
//     dispatching post's resumed dispatch checks its sends too, and a
//     dispatch that ran through the loss stops at its next page
//     (ErrRedisLost), so no unchecked send is queued beside the checked
//     ones.
//
// How duplicates are bounded. A checked send is not pushed if its delivery
// reads sent. But workers record outcomes in batches, and a task is
// acknowledged only once its outcome is written: until then its delivery
// reads pending. A send that Redis still holds is no trouble, since
// re-queueing its id is refused until it is acknowledged, that is until
// its outcome is written. A send that was running when Redis lost it
// carries on, though, and the checked copy queued for it can read its
// delivery pending before the outcome lands: the device gets the push
// twice. So a loss repeats at most the sends in flight at that moment: the
// sending processes' concurrency summed, as a crash of them all would. (One
// narrower window: a dispatch that read the marker just before the loss
// may queue the rest of that one page unchecked; a copy of one of them
// would have to be queued by the recovery and pushed within those few
// milliseconds to be doubled.)
//
// In the steady state a pass costs one Redis read of the Marker and one
// indexed Postgres query per process, whatever the number of deliveries.
type Reconciler struct {
	d      *Dispatcher
	marker *tasks.Marker
	cfg    ReconcilerConfig
	// failing is whether the last pass failed, so that an outage is
	// logged when it starts and ends, not at every pass.
	failing bool
}

// ReconcilerConfig tunes a Reconciler.
type ReconcilerConfig struct {
	// Interval is how often a pass runs: the most a post stored while
	// Redis was away, or work Redis lost, waits once Redis is back. Default
	// DefaultReconcileInterval.
	Interval time.Duration
	// Batch is the most unqueued posts one pass queues. Default
	// DefaultReconcileBatch.
	Batch  int
	Logger *slog.Logger
}

// Defaults of the ReconcilerConfig.
const (
	DefaultReconcileInterval = 2 * time.Second
	DefaultReconcileBatch    = 1000
)

// WithDefaults fills in the zero fields.
func (c ReconcilerConfig) WithDefaults() ReconcilerConfig {
	c.Interval = cmp.Or(c.Interval, DefaultReconcileInterval)
	c.Batch = cmp.Or(c.Batch, DefaultReconcileBatch)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// validate refuses a config the reconciler cannot run with, naming the
// field.
func (c ReconcilerConfig) validate() error {
	return configcheck.First("reconciler config",
		configcheck.Positive("Interval", c.Interval),
		configcheck.Positive("Batch", c.Batch),
	)
}

// NewReconciler makes the Reconciler of a dispatcher, whose database,
// enqueuer and clock it uses. The dispatcher should have the marker as its
// Generations.
func NewReconciler(d *Dispatcher, marker *tasks.Marker, cfg ReconcilerConfig) (*Reconciler, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if d == nil || marker == nil {
		return nil, errors.New("reconciler: a dispatcher and a marker are required")
	}
	return &Reconciler{d: d, marker: marker, cfg: cfg}, nil
}

// Run makes a pass at once, then every Interval, until ctx ends.
func (r *Reconciler) Run(ctx context.Context) {
	t := time.NewTicker(r.cfg.Interval)
	defer t.Stop()
	for {
		err := r.Reconcile(ctx)
		if ctx.Err() != nil {
			return
		}
		switch {
		case err != nil && !r.failing:
			r.cfg.Logger.Warn("reconcile posts with redis; retrying every interval", slog.Duration("interval", r.cfg.Interval),
				slog.Any("error", err))
		case err == nil && r.failing:
			r.cfg.Logger.Info("reconcile posts with redis: working again")
		}
		r.failing = err != nil
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Reconcile makes one pass: it queues all open work again if Redis lost
// its data, then the dispatches that were never queued; and it lapses the
// alerts that waited for approval past their time.
func (r *Reconciler) Reconcile(ctx context.Context) error {
	if err := r.recoverLoss(ctx); err != nil {
		return err
	}
	if n, err := r.d.db.LapseUnapproved(ctx, r.d.cfg.Now()); err != nil {
		return err
	} else if n > 0 {
		r.d.cfg.Logger.Warn("alerts lapsed unapproved", slog.Int("alerts", n))
	}
	return r.queueUnqueued(ctx)
}

// recoverLoss queues all open work again if the marker says Redis lost its
// data and no other process is doing it.
func (r *Reconciler) recoverLoss(ctx context.Context) error {
	gen, recovered, err := r.marker.State(ctx)
	if err != nil || (gen != "" && gen == recovered) {
		return err
	}
	_, err = r.d.db.WithTryLock(ctx, storage.LockRedisRecovery, func(ctx context.Context) error {
		// Another process may have recovered between the look and the lock.
		gen, recovered, err := r.marker.State(ctx)
		if err != nil || (gen != "" && gen == recovered) {
			return err
		}
		if gen == "" {
			if gen, err = r.marker.Begin(ctx); err != nil {
				return err
			}
		}
		if err := r.requeueAll(ctx); err != nil {
			return err
		}
		return r.marker.Finish(ctx, gen)
	})
	return err
}

// requeueAll queues every open post's work again, emergencies first.
func (r *Reconciler) requeueAll(ctx context.Context) error {
	start := time.Now()
	if err := r.marker.RegisterQueues(ctx); err != nil {
		return err
	}
	posts, err := r.d.db.OpenPosts(ctx)
	if err != nil {
		return err
	}
	dispatches, sends := 0, 0
	for _, p := range posts {
		n, err := r.requeueSends(ctx, p)
		sends += n
		if err != nil {
			return err
		}
		if p.State == crier.PostAccepted || p.State == crier.PostDispatching {
			if err := r.enqueueDispatch(ctx, p); err != nil {
				return err
			}
			dispatches++
		}
	}
	// A new or emptied Redis with nothing open is how every deployment
	// starts: not worth a warning.
	level := slog.LevelInfo
	if len(posts) > 0 {
		level = slog.LevelWarn
	}
	r.cfg.Logger.Log(ctx, level, "redis lost its data (or is new): queued the open posts again from postgres",
		slog.Int("posts", len(posts)), slog.Int("dispatches", dispatches), slog.Int("sends", sends),
		slog.Duration("took", time.Since(start)))
	return nil
}

// requeueSends queues a checked send for every delivery of the post still
// pending or deferred, page by page, and returns how many.
func (r *Reconciler) requeueSends(ctx context.Context, p storage.Post) (int, error) {
	n := 0
	for after := int64(0); ; {
		page, err := r.d.db.PendingPage(ctx, p.ID, after, r.d.cfg.PageSize)
		if err != nil || len(page) == 0 {
			return n, err
		}
		if err := r.d.enqueuePage(ctx, p, page, true); err != nil {
			return n, fmt.Errorf("requeue sends of post %d: %w", p.ID, err)
		}
		n += len(page)
		after = page[len(page)-1].DeviceID
	}
}

// queueUnqueued queues the dispatch of the accepted posts whose dispatch
// was never queued.
func (r *Reconciler) queueUnqueued(ctx context.Context) error {
	posts, err := r.d.db.UnqueuedPosts(ctx, r.cfg.Batch)
	if err != nil || len(posts) == 0 {
		return err
	}
	for _, p := range posts {
		if err := r.enqueueDispatch(ctx, p); err != nil {
			return err
		}
	}
	r.cfg.Logger.Warn("queued the dispatch of posts accepted while redis was away", slog.Int("posts", len(posts)))
	return nil
}

// enqueueDispatch queues a post's dispatch, at its publish time, and
// records that it is queued.
func (r *Reconciler) enqueueDispatch(ctx context.Context, p storage.Post) error {
	task, err := tasks.NewDispatch(p.ID, p.Class, p.PublishAt)
	if err != nil {
		return err
	}
	if _, err := r.d.enq.EnqueueContext(ctx, task); err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return fmt.Errorf("enqueue dispatch of post %d: %w", p.ID, err)
	}
	return r.d.db.MarkDispatchEnqueued(ctx, p.ID)
}
