// Package receipts takes the apps' receipts (a push received, a push shown)
// from the API and writes them to PostgreSQL in batches. Receipts come in a
// flood exactly when an alert goes out, every phone at once: the writer
// holds a bounded number in memory, writes them a batch a statement with a
// bounded number of statements at once, and refuses more (the app is told
// to come back later) rather than make anyone wait, so that the flood never
// slows the alert whose receipts they are.
package receipts

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/internal/configcheck"
	"github.com/crier-push/crier/storage"
)

// Store writes a batch of receipts and says how many it stored.
type Store interface {
	WriteReceipts(ctx context.Context, rs []storage.Receipt) (int, error)
}

// Config tunes a Writer.
type Config struct {
	// Batch is the most receipts one statement writes; a batch this big
	// is written at once. Default DefaultBatch.
	Batch int
	// Interval is the longest a receipt waits for a batch to fill.
	// Default DefaultInterval.
	Interval time.Duration
	// Pending bounds the receipts held for writing; past it Add refuses.
	// Default DefaultPending.
	Pending int
	// Writers is how many batches are written at once (each holds a
	// connection while it writes). Default DefaultWriters.
	Writers int
	// RetryAfter is what a refused app is told. Default DefaultRetryAfter.
	RetryAfter time.Duration
	// FlushTimeout bounds the last write when Run ends. Default
	// DefaultFlushTimeout.
	FlushTimeout time.Duration
	Logger       *slog.Logger
}

// Defaults of the Config.
const (
	// DefaultBatch: about 10 ms a statement (50k receipts/s on the
	// development machine, one writer).
	DefaultBatch    = 500
	DefaultInterval = 100 * time.Millisecond
	// DefaultPending: about 3 MB of receipts, a few seconds of a flood.
	DefaultPending = 50_000
	// DefaultWriters: two of the API pool's connections at most.
	DefaultWriters      = 2
	DefaultRetryAfter   = 5 * time.Second
	DefaultFlushTimeout = 5 * time.Second
)

// WithDefaults fills in the zero fields.
func (c Config) WithDefaults() Config {
	c.Batch = cmp.Or(c.Batch, DefaultBatch)
	c.Interval = cmp.Or(c.Interval, DefaultInterval)
	c.Pending = cmp.Or(c.Pending, DefaultPending)
	c.Writers = cmp.Or(c.Writers, DefaultWriters)
	c.RetryAfter = cmp.Or(c.RetryAfter, DefaultRetryAfter)
	c.FlushTimeout = cmp.Or(c.FlushTimeout, DefaultFlushTimeout)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

func (c Config) validate() error {
	return configcheck.First("receipts config",
		configcheck.AtLeast("Batch", c.Batch, 1),
		configcheck.NotNegative("Interval", c.Interval),
		configcheck.AtLeast("Pending", c.Pending, c.Batch),
		configcheck.AtLeast("Writers", c.Writers, 1),
		configcheck.NotNegative("RetryAfter", c.RetryAfter),
		configcheck.NotNegative("FlushTimeout", c.FlushTimeout))
}

// Stats count what a Writer did since it was made.
type Stats struct {
	// Accepted receipts were taken by Add; Refused were not (full or
	// closed).
	Accepted, Refused int64
	// Stored were written as new or earlier times; Ignored were written
	// and changed nothing (repeated, or of a post the device was never
	// sent); Lost could not be written.
	Stored, Ignored, Lost int64
	// Batches is how many statements were run.
	Batches int64
}

// Writer buffers receipts and writes them in batches. Make it with New,
// run it with Run; Add is safe for concurrent use.
type Writer struct {
	store Store
	cfg   Config
	log   *slog.Logger

	mu      sync.Mutex
	pending []storage.Receipt
	closed  bool
	// full is signalled when a batch is ready before its interval.
	full chan struct{}

	accepted, refused, stored, ignored, lost, batches atomic.Int64
}

// New makes a writer over the store.
func New(store Store, cfg Config) (*Writer, error) {
	if store == nil {
		return nil, errors.New("receipts: a store is required")
	}
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Writer{store: store, cfg: cfg, log: cfg.Logger, full: make(chan struct{}, 1)}, nil
}

// Add takes receipts to be written soon; it never waits. All are taken or
// none: when they do not fit, or the writer has stopped, it answers
// crier.ETOOMANY (or EUNAVAILABLE) with when to come back.
func (w *Writer) Add(rs []storage.Receipt) error {
	w.mu.Lock()
	switch {
	case w.closed:
		w.mu.Unlock()
		w.refused.Add(int64(len(rs)))
		return &crier.Error{Code: crier.EUNAVAILABLE, Message: "receipts are not taken now: try again later",
			RetryAfter: w.cfg.RetryAfter}
	case len(w.pending)+len(rs) > w.cfg.Pending:
		w.mu.Unlock()
		w.refused.Add(int64(len(rs)))
		return &crier.Error{Code: crier.ETOOMANY, Message: "too many receipts at once: try again later",
			RetryAfter: w.cfg.RetryAfter}
	}
	w.pending = append(w.pending, rs...)
	ready := len(w.pending) >= w.cfg.Batch
	w.mu.Unlock()
	w.accepted.Add(int64(len(rs)))
	if ready {
		select {
		case w.full <- struct{}{}:
		default:
		}
	}
	return nil
}

// Run writes batches until ctx ends, then refuses new receipts and writes
// those it holds (for up to FlushTimeout) before it returns.
func (w *Writer) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for range w.cfg.Writers {
		wg.Go(func() { w.loop(ctx) })
	}
	wg.Wait()
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.cfg.FlushTimeout)
	defer cancel()
	for w.flush(fctx, true) {
	}
}

// loop writes the full batches as they fill, and what is pending when the
// interval passes.
func (w *Writer) loop(ctx context.Context) {
	t := time.NewTicker(w.cfg.Interval)
	defer t.Stop()
	for {
		partial := false
		select {
		case <-ctx.Done():
			return
		case <-w.full:
		case <-t.C:
			partial = true
		}
		// A write under way when ctx ends is finished, not abandoned.
		for w.flush(context.WithoutCancel(ctx), partial) {
			if ctx.Err() != nil {
				return
			}
		}
	}
}

// flush writes one batch of what is pending, a partial one too if partial,
// and reports whether a full batch was written (so there may be more).
func (w *Writer) flush(ctx context.Context, partial bool) bool {
	w.mu.Lock()
	n := min(len(w.pending), w.cfg.Batch)
	if n < w.cfg.Batch && !partial {
		n = 0
	}
	batch := make([]storage.Receipt, n)
	copy(batch, w.pending)
	w.pending = w.pending[n:]
	if len(w.pending) == 0 {
		w.pending = nil // let the flood's backing array go
	}
	w.mu.Unlock()
	if n == 0 {
		return false
	}
	w.batches.Add(1)
	stored, err := w.store.WriteReceipts(ctx, batch)
	if err != nil {
		// Receipts are a measure, not a promise: a batch that cannot be
		// written is counted and dropped rather than retried into a
		// database that is struggling already.
		w.lost.Add(int64(n))
		w.log.Warn("receipts lost", slog.Int("receipts", n), slog.Any("error", err))
		return n == w.cfg.Batch
	}
	w.stored.Add(int64(stored))
	w.ignored.Add(int64(n - stored))
	return n == w.cfg.Batch
}

// Stats are the writer's counts so far.
func (w *Writer) Stats() Stats {
	return Stats{Accepted: w.accepted.Load(), Refused: w.refused.Load(), Stored: w.stored.Load(),
		Ignored: w.ignored.Load(), Lost: w.lost.Load(), Batches: w.batches.Load()}
}
