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

// Holder pauses routine sends while an emergency post is dispatched, and
// holds routine dispatches between their pages meanwhile, so that the
// routine queues do not fill up behind the alert; *tasks.Holder is one.
type Holder interface {
	Hold(ctx context.Context, postID int64) (release func(), err error)
	// WaitFree returns once no emergency holds the routine queues.
	WaitFree(ctx context.Context) error
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
	// EnqueueWorkers is how many enqueues run at once, and
	// EmergencyEnqueueWorkers how many for an emergency post, whose sends
	// must be queued faster than every worker takes them. Defaults
	// DefaultEnqueueWorkers and DefaultEmergencyEnqueueWorkers.
	EnqueueWorkers, EmergencyEnqueueWorkers int
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
	DefaultPageSize                = 1000
	DefaultEnqueueWorkers          = 8
	DefaultEmergencyEnqueueWorkers = 32
)

// headStarts are the sizes, in pages, of the parts of a fresh emergency
// post's audience snapshotted before the rest, each committed (and its
// sends queued) while the next is snapshotted: the first page goes out at
// once, and the workers have sends until the whole audience is in. Each
// part is about four times the one before: measured at 125,000 devices,
// the parts take 70, 170 and 320 ms to snapshot, each less than the sends
// of the part before it (a 1,000 then 16,000 split left the workers idle
// for 0.7–1.0 s after the head).
var headStarts = []int{1, 4, 16}

// WithDefaults fills in the zero fields.
func (c Config) WithDefaults() Config {
	c.PageSize = cmp.Or(c.PageSize, DefaultPageSize)
	c.EnqueueWorkers = cmp.Or(c.EnqueueWorkers, DefaultEnqueueWorkers)
	c.EmergencyEnqueueWorkers = cmp.Or(c.EmergencyEnqueueWorkers, DefaultEmergencyEnqueueWorkers)
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
		configcheck.Positive("EmergencyEnqueueWorkers", c.EmergencyEnqueueWorkers),
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
	// A dispatch that finds its post dispatching, or that asynq runs again,
	// was interrupted: its sends may be finishing while it re-reads pages,
	// so they check before sending.
	retried, _ := asynq.GetRetryCount(ctx)
	resumed := post.State == crier.PostDispatching || retried > 0
	// A follow-up of an incident first stops what it replaces
	// (incident.go).
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
	if err := d.waitFree(ctx, emergency); err != nil {
		return err
	}
	var rest *snapshots
	// headEnd is the last device of the parts snapshotted before the whole
	// audience (see sweep).
	var headEnd int64
	n := 0
	if emergency && post.State == crier.PostAccepted {
		// A head start: the first page of the alert is on its way before
		// the rest of a large audience is snapshotted, and the rest is
		// snapshotted while the first parts' sends are queued and sent.
		head := opt
		head.Head = headStarts[0] * d.cfg.PageSize
		if _, err := d.db.Snapshot(ctx, post, aud, head); err != nil {
			return err
		}
		var stop func()
		rest, stop = d.snapshotRest(ctx, post, aud, opt)
		defer stop()
	} else if n, err = d.db.Snapshot(ctx, post, aud, opt); err != nil {
		return err
	}
	snapshotDone := time.Now()

	enqueued := 0
	// ahead is an emergency post's next page, read while this one is
	// queued: the alert's sends are queued without a pause between pages.
	// A routine post's page is read after its wait for a hold, so that its
	// tokens are fresh.
	var ahead chan pageRead
	for {
		if err := d.waitFree(ctx, emergency); err != nil {
			return err
		}
		var page []storage.Target
		if ahead != nil {
			r := <-ahead
			ahead, page, err = nil, r.page, r.err
		} else {
			page, err = d.db.PendingPage(ctx, postID, cursor, d.cfg.PageSize)
		}
		if err != nil {
			return err
		}
		if len(page) == 0 {
			if rest == nil {
				break
			}
			// The parts snapshotted so far are queued: wait for the next.
			if n, err = rest.next(); err != nil {
				return err
			}
			if rest.done() {
				rest, snapshotDone, headEnd = nil, time.Now(), cursor
				if cursor, err = d.advance(ctx, postID, cursor); err != nil || cursor < 0 {
					return err
				}
			}
			continue
		}
		if emergency {
			next, after := make(chan pageRead, 1), page[len(page)-1].DeviceID
			go func() {
				p, err := d.db.PendingPage(ctx, postID, after, d.cfg.PageSize)
				next <- pageRead{p, err}
			}()
			ahead = next
		}
		if err := d.sameGeneration(ctx, gen); err != nil {
			return err
		}
		if err := d.enqueuePage(ctx, post, page, resumed); err != nil {
			return err
		}
		enqueued += len(page)
		cursor = page[len(page)-1].DeviceID
		if rest != nil {
			// The snapshot under way holds the post's row: the resume
			// point moves once it is in. Until then a dispatch asynq runs
			// again finds the post accepted, and is resumed by its retry.
			if n, err = rest.poll(); err != nil {
				return err
			}
			if !rest.done() {
				continue
			}
			rest, snapshotDone, headEnd = nil, time.Now(), cursor
		}
		if cursor, err = d.advance(ctx, postID, cursor); err != nil || cursor < 0 {
			return err
		}
	}
	if err := d.sweep(ctx, post, headEnd); err != nil {
		return err
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

// sweep queues, checked, the pending deliveries up to headEnd: a device
// that joined the audience while the parts before the whole were
// snapshotted, with an id below theirs, got its delivery with the whole,
// behind the paging's cursor. The sends of the parts still queued or
// retrying are refused by their task ids, and one that finished since the
// page was read finds its delivery settled.
func (d *Dispatcher) sweep(ctx context.Context, post storage.Post, headEnd int64) error {
	for after := int64(0); after < headEnd; {
		page, err := d.db.PendingPage(ctx, post.ID, after, d.cfg.PageSize)
		if err != nil {
			return err
		}
		for i, tg := range page {
			if tg.DeviceID > headEnd {
				page = page[:i]
				break
			}
		}
		if len(page) == 0 {
			return nil
		}
		if err := d.enqueuePage(ctx, post, page, true); err != nil {
			return err
		}
		after = page[len(page)-1].DeviceID
	}
	return nil
}

// advance moves a post's resume point to cursor and returns it, or -1 if
// the post was cancelled meanwhile: the dispatch stops then.
func (d *Dispatcher) advance(ctx context.Context, postID, cursor int64) (int64, error) {
	state, err := d.db.AdvanceDispatch(ctx, postID, cursor)
	if err != nil {
		return 0, err
	}
	if state == crier.PostCancelled {
		d.cfg.Logger.Info("dispatch stopped: post cancelled", slog.Int64("post_id", postID), slog.Int64("cursor", cursor))
		return -1, nil
	}
	return cursor, nil
}

// waitFree holds a routine dispatch while an emergency holds the routine
// queues: its sends would only pile up behind the alert, and its pages
// take the Redis and the CPU the alert's sends need.
func (d *Dispatcher) waitFree(ctx context.Context, emergency bool) error {
	if emergency || d.cfg.Holder == nil {
		return nil
	}
	return d.cfg.Holder.WaitFree(ctx)
}

// pageRead is a page read ahead.
type pageRead struct {
	page []storage.Target
	err  error
}

// snapshots are the rest of a fresh emergency post's audience being
// snapshotted, part after part (headStarts, then the whole), each part
// committed before the next begins.
type snapshots struct {
	parts    chan snapshotPart
	received int
	total    int
}

type snapshotPart struct {
	n   int // the audience, once the whole is in
	err error
}

// snapshotRest snapshots the parts of a post's audience after its first,
// in the background; stop cancels what is left and waits for it.
func (d *Dispatcher) snapshotRest(ctx context.Context, post storage.Post, aud storage.Audience,
	opt storage.SnapshotOptions) (*snapshots, func()) {
	ctx, cancel := context.WithCancel(ctx)
	heads := append(headStarts[1:], 0) // 0: the whole audience
	s := &snapshots{parts: make(chan snapshotPart, len(heads)), total: len(heads)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, h := range heads {
			o := opt
			o.Head = h * d.cfg.PageSize
			n, err := d.db.Snapshot(ctx, post, aud, o)
			s.parts <- snapshotPart{n: n, err: err}
			if err != nil {
				return
			}
		}
	}()
	return s, func() { cancel(); <-done }
}

// next waits for the next part to be in and returns the audience (0 until
// the whole is in).
func (s *snapshots) next() (int, error) { return s.take(<-s.parts) }

// poll is next without the wait: the audience if the whole is in, else 0.
func (s *snapshots) poll() (int, error) {
	select {
	case p := <-s.parts:
		return s.take(p)
	default:
		return 0, nil
	}
}

func (s *snapshots) take(p snapshotPart) (int, error) {
	s.received++
	if p.err != nil {
		return 0, p.err
	}
	if !s.done() {
		return 0, nil
	}
	return p.n, nil
}

// done says whether the whole audience is in.
func (s *snapshots) done() bool { return s.received == s.total }

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
	workers := d.cfg.EnqueueWorkers
	if post.Class == crier.ClassEmergency {
		workers = d.cfg.EmergencyEnqueueWorkers
	}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(workers)
	chunk := (len(page) + workers - 1) / workers
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
