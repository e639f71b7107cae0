// Package dispatcher turns a published post into one send task per device:
// it snapshots the post's audience into deliveries in one statement, then
// pages the snapshot by device id and enqueues a task per delivery, keeping a
// resume point so an interrupted dispatch loses and doubles nothing. Its
// Reconciler queues again, from Postgres, the dispatches and sends that
// Redis does not hold: a post stored while Redis was away, and everything
// open after Redis lost its data.
package dispatcher

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"
	"golang.org/x/sync/errgroup"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/internal/configcheck"
	"github.com/crier-push/crier/internal/derrors"
	"github.com/crier-push/crier/metrics"
	"github.com/crier-push/crier/storage"
	"github.com/crier-push/crier/tasks"
)

// Enqueuer puts tasks on asynq queues; *asynq.Client is one.
type Enqueuer interface {
	EnqueueContext(ctx context.Context, task *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error)
}

// Holder pauses routine sends while an emergency post is dispatched;
// *tasks.Holder is one.
type Holder interface {
	Hold(ctx context.Context, postID int64) (release func(), err error)
}

// Generations names the life of Redis enqueues go to; *tasks.Marker is one.
type Generations interface {
	Generation(ctx context.Context) (string, error)
}

// Observer is told how dispatches went, for metrics; *metrics.Metrics is one.
type Observer interface {
	Dispatch(snapshot, total time.Duration, audience int)
}

// Config tunes a Dispatcher.
type Config struct {
	// PageSize is how many deliveries are read and enqueued between two
	// resume points. Default DefaultPageSize.
	PageSize int
	Logger   *slog.Logger
	// Now is the clock that judges quiet hours; default time.Now.
	Now func() time.Time
	// EnqueueWorkers is how many enqueues run at once. Default
	// DefaultEnqueueWorkers.
	EnqueueWorkers int
	// Observer defaults to none.
	Observer Observer
	// Holder, if set, holds routine sends while an emergency is dispatched.
	Holder Holder
	// Generations, if set, lets a dispatch notice between pages that Redis
	// lost its data while it ran: it stops then (ErrRedisLost), and the
	// reconciler's dispatch of the post carries on from its resume point,
	// with checked sends. Without it, a dispatch would go on queueing
	// unchecked sends beside the reconciler's.
	Generations Generations
}

// Defaults of the Config.
const (
	DefaultPageSize       = 1000
	DefaultEnqueueWorkers = 8
)

// WithDefaults fills in the zero fields.
func (c Config) WithDefaults() Config {
	c.PageSize = cmp.Or(c.PageSize, DefaultPageSize)
	c.EnqueueWorkers = cmp.Or(c.EnqueueWorkers, DefaultEnqueueWorkers)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Observer == nil {
		c.Observer = metrics.Nop{}
	}
	return c
}

// validate refuses a config the dispatcher cannot run with, naming the
// field.
func (c Config) validate() error {
	return configcheck.First("dispatcher config",
		configcheck.Positive("PageSize", c.PageSize),
		configcheck.Positive("EnqueueWorkers", c.EnqueueWorkers),
	)
}

// Dispatcher dispatches posts.
type Dispatcher struct {
	db  *storage.DB
	enq Enqueuer
	cfg Config
}

// New makes a Dispatcher.
func New(db *storage.DB, enq Enqueuer, cfg Config) (*Dispatcher, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Dispatcher{db: db, enq: enq, cfg: cfg}, nil
}

// ErrRedisLost: Redis lost its data while the dispatch ran, so sends it
// queued before are gone; the reconciler queues the post again.
var ErrRedisLost = errors.New("redis lost its data during the dispatch")

// ProcessTask handles a post:dispatch task.
func (d *Dispatcher) ProcessTask(ctx context.Context, t *asynq.Task) error {
	task, err := tasks.ParseDispatch(t.Payload())
	if err != nil {
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	err = d.Dispatch(ctx, task.PostID)
	if errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	return err
}

// Dispatch snapshots a post's audience, if that was not done yet, and
// enqueues a send for every pending delivery past the post's resume point.
// Calling it again after an interruption carries on where it stopped.
func (d *Dispatcher) Dispatch(ctx context.Context, postID int64) (err error) {
	defer derrors.Wrap(&err, "dispatch post %d", postID)
	start := time.Now()
	gen, err := d.generation(ctx)
	if err != nil {
		return err
	}
	post, err := d.db.PostByID(ctx, postID)
	if err != nil {
		return err
	}
	switch post.State {
	case crier.PostCancelled, crier.PostSending:
		return nil
	}
	// A dispatch that finds its post dispatching was interrupted: its sends
	// may be finishing while it re-reads pages, so they check before sending.
	resumed := post.State == crier.PostDispatching
	if err := d.supersede(ctx, post); err != nil {
		return err
	}
	now := d.cfg.Now()
	aud, err := Audience(post)
	if err != nil {
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	emergency := post.Class == crier.ClassEmergency
	opt := storage.SnapshotOptions{Now: now, Emergency: emergency}
	cursor := post.DispatchCursor
	if emergency && d.cfg.Holder != nil {
		release, err := d.cfg.Holder.Hold(ctx, postID)
		if err != nil {
			return err
		}
		defer release()
	}
	if emergency && post.State == crier.PostAccepted {
		// A head start: the first page of the alert is on its way before
		// the rest of a large audience is snapshotted.
		head := opt
		head.Head = d.cfg.PageSize
		if _, err := d.db.Snapshot(ctx, post, aud, head); err != nil {
			return err
		}
		page, err := d.db.PendingPage(ctx, postID, cursor, d.cfg.PageSize)
		if err != nil {
			return err
		}
		if err := d.sameGeneration(ctx, gen); err != nil {
			return err
		}
		if err := d.enqueuePage(ctx, post, page, false); err != nil {
			return err
		}
		// The paging below must not come back to the head: its sends are
		// under way, and a page read before one of them is recorded but
		// enqueued after its task is done would push the device twice.
		if len(page) > 0 {
			cursor = page[len(page)-1].DeviceID
			if _, err := d.db.AdvanceDispatch(ctx, postID, cursor); err != nil {
				return err
			}
		}
	}
	n, err := d.db.Snapshot(ctx, post, aud, opt)
	if err != nil {
		return err
	}
	snapshotDone := time.Now()

	enqueued := 0
	for {
		page, err := d.db.PendingPage(ctx, postID, cursor, d.cfg.PageSize)
		if err != nil {
			return err
		}
		if len(page) == 0 {
			break
		}
		if err := d.sameGeneration(ctx, gen); err != nil {
			return err
		}
		if err := d.enqueuePage(ctx, post, page, resumed); err != nil {
			return err
		}
		enqueued += len(page)
		cursor = page[len(page)-1].DeviceID
		state, err := d.db.AdvanceDispatch(ctx, postID, cursor)
		if err != nil {
			return err
		}
		if state == crier.PostCancelled {
			d.cfg.Logger.Info("dispatch stopped: post cancelled", slog.Int64("post_id", postID), slog.Int("enqueued", enqueued))
			return nil
		}
	}
	if err := d.db.FinishDispatch(ctx, postID); err != nil {
		return err
	}
	d.cfg.Observer.Dispatch(snapshotDone.Sub(start), time.Since(start), n)
	d.cfg.Logger.Info("post dispatched", slog.Int64("post_id", postID), slog.Int("audience", n),
		slog.Int("enqueued", enqueued), slog.Duration("snapshot", snapshotDone.Sub(start)),
		slog.Duration("total", time.Since(start)))
	return nil
}

// generation is the life of Redis a dispatch starts in; "" without
// Generations.
func (d *Dispatcher) generation(ctx context.Context) (string, error) {
	if d.cfg.Generations == nil {
		return "", nil
	}
	return d.cfg.Generations.Generation(ctx)
}

// sameGeneration fails with ErrRedisLost if Redis is no longer in the life
// gen the dispatch started in: one read per page of sends.
func (d *Dispatcher) sameGeneration(ctx context.Context, gen string) error {
	if d.cfg.Generations == nil {
		return nil
	}
	now, err := d.cfg.Generations.Generation(ctx)
	if err != nil {
		return err
	}
	if now != gen {
		return ErrRedisLost
	}
	return nil
}

// dueAt turns a deferred delivery's due time, judged by the dispatcher's
// clock (now), into the wall-clock time to give asynq. asynq keeps scheduled
// tasks by whole seconds and forwards them once the second has begun, so
// the time is rounded up: a push is never early for the quiet hours it
// waited out.
func dueAt(notBefore, now time.Time) time.Time {
	return tasks.WholeSecondFrom(time.Now().Add(notBefore.Sub(now)))
}

// enqueuePage enqueues a send per delivery of the page, from several
// goroutines: each enqueue is a Redis round trip, and they overlap well. A
// send enqueued before (an interrupted dispatch resumed) is refused by its
// task id and skipped.
func (d *Dispatcher) enqueuePage(ctx context.Context, post storage.Post, page []storage.Target, resumed bool) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(d.cfg.EnqueueWorkers)
	chunk := (len(page) + d.cfg.EnqueueWorkers - 1) / d.cfg.EnqueueWorkers
	for start := 0; start < len(page); start += chunk {
		part := page[start:min(start+chunk, len(page))]
		g.Go(func() error {
			for _, tg := range part {
				task, err := tasks.NewSend(tasks.Send{PostID: post.ID, DeviceID: tg.DeviceID, TenantID: post.TenantID,
					Provider: tg.Provider, Token: tg.Token, Check: resumed || tg.NotBefore != nil, Locale: tg.Locale}, post.Class)
				if err != nil {
					return err
				}
				var opts []asynq.Option
				if tg.NotBefore != nil {
					opts = append(opts, asynq.ProcessAt(dueAt(*tg.NotBefore, d.cfg.Now())))
				}
				if _, err := d.enq.EnqueueContext(ctx, task, opts...); err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
					return fmt.Errorf("enqueue device %d: %w", tg.DeviceID, err)
				}
			}
			return nil
		})
	}
	return g.Wait()
}
