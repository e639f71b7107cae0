package worker

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/crier-push/crier/internal/configcheck"
	"github.com/crier-push/crier/storage"
)

// Recorder writes send outcomes in batches by group commit: each sender
// hands its outcome over and waits, while one loop writes whatever has
// gathered in one statement. A batch waits up to Linger after its first
// outcome for more to join it: each statement is a commit and a round trip,
// which cost Postgres more than its rows do.
type Recorder struct {
	db       *storage.DB
	in       chan pending
	maxBatch int
	linger   time.Duration
	logger   *slog.Logger
	// unhealthy is set while outcomes cannot be written; a prober clears
	// it when the database answers again.
	unhealthy atomic.Bool
}

// Healthy reports whether outcomes can be written now. Workers do not send
// while they cannot record: every such send would be pushed again.
func (r *Recorder) Healthy() bool { return !r.unhealthy.Load() }

// probe pings the database until it answers, then marks the recorder
// healthy.
func (r *Recorder) probe() {
	for {
		time.Sleep(500 * time.Millisecond)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := r.db.Ping(ctx)
		cancel()
		if err == nil {
			r.unhealthy.Store(false)
			r.logger.Info("database answers again; sending resumes")
			return
		}
	}
}

type pending struct {
	out  storage.Outcome
	done chan error
}

// RecorderConfig tunes a Recorder.
type RecorderConfig struct {
	// MaxBatch is the most outcomes one statement writes. Default
	// DefaultMaxBatch.
	MaxBatch int
	// Linger is how long a batch waits for more outcomes after its first;
	// default DefaultLinger. It delays the acknowledgement of a send, not
	// its push. Negative: write at once.
	Linger time.Duration
	Logger *slog.Logger
}

// Defaults of the RecorderConfig.
const (
	DefaultMaxBatch = 500
	DefaultLinger   = 5 * time.Millisecond
)

// WithDefaults fills in the zero fields.
func (c RecorderConfig) WithDefaults() RecorderConfig {
	c.MaxBatch = cmp.Or(c.MaxBatch, DefaultMaxBatch)
	c.Linger = cmp.Or(c.Linger, DefaultLinger)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// validate refuses a config the recorder cannot run with, naming the
// field. A negative Linger is allowed: it means no lingering.
func (c RecorderConfig) validate() error {
	return configcheck.First("worker recorder config", configcheck.Positive("MaxBatch", c.MaxBatch))
}

// NewRecorder makes a Recorder; run it with Run.
func NewRecorder(db *storage.DB, cfg RecorderConfig) (*Recorder, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Recorder{db: db, in: make(chan pending, 4096), maxBatch: cfg.MaxBatch,
		linger: max(0, cfg.Linger), logger: cfg.Logger}, nil
}

// Record hands an outcome over and waits until it is written.
func (r *Recorder) Record(ctx context.Context, o storage.Outcome) error {
	p := pending{out: o, done: make(chan error, 1)}
	select {
	case r.in <- p:
	case <-ctx.Done():
		return fmt.Errorf("record outcome: %w", ctx.Err())
	}
	select {
	case err := <-p.done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("record outcome: %w", ctx.Err())
	}
}

// Run writes batches until ctx ends, then writes what is left.
func (r *Recorder) Run(ctx context.Context) {
	for {
		var first pending
		select {
		case first = <-r.in:
		case <-ctx.Done():
			r.drain()
			return
		}
		r.flush(context.WithoutCancel(ctx), r.gather(ctx, first, r.linger))
	}
}

// gather collects a batch behind first: whatever is waiting, then what
// arrives within linger (or until ctx ends).
func (r *Recorder) gather(ctx context.Context, first pending, linger time.Duration) []pending {
	batch := []pending{first}
	var deadline <-chan time.Time
	if linger > 0 {
		t := time.NewTimer(linger)
		defer t.Stop()
		deadline = t.C
	}
	for len(batch) < r.maxBatch {
		select {
		case p := <-r.in:
			batch = append(batch, p)
			continue
		default:
		}
		if deadline == nil {
			return batch
		}
		select {
		case p := <-r.in:
			batch = append(batch, p)
		case <-deadline:
			return batch
		case <-ctx.Done():
			return batch
		}
	}
	return batch
}

func (r *Recorder) drain() {
	for {
		select {
		case p := <-r.in:
			r.flush(context.Background(), r.gather(context.Background(), p, 0))
		default:
			return
		}
	}
}

func (r *Recorder) flush(ctx context.Context, batch []pending) {
	outs := make([]storage.Outcome, len(batch))
	for i, p := range batch {
		outs[i] = p.out
	}
	// A failed write fails every send of the batch, and their retries
	// would push again: try a few times first (a deadlock or a dropped
	// connection passes), then give up.
	var err error
	for attempt := range 5 {
		if err = r.db.RecordOutcomes(ctx, outs); err == nil {
			break
		}
		r.logger.Warn("record outcomes", slog.Int("count", len(outs)), slog.Int("attempt", attempt+1), slog.Any("error", err))
		time.Sleep(time.Duration(50<<attempt) * time.Millisecond)
	}
	if err != nil {
		r.logger.Error("record outcomes: giving up", slog.Int("count", len(outs)), slog.Any("error", err))
		if r.unhealthy.CompareAndSwap(false, true) {
			go r.probe()
		}
	}
	for _, p := range batch {
		p.done <- err
	}
}
