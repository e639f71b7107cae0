package tasks

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// Holder pauses the official and community queues while an emergency post
// is dispatched and until its sends have all been taken from the emergency
// queue, across every worker: the alert has the workers to itself and every
// one of its first sends goes before the next routine one. Routine
// dispatches wait meanwhile (WaitFree), so the paused queues do not fill. Each hold is a
// Redis key with a time to live, refreshed while it lasts; Watch, run by
// every worker process, resumes the queues once no hold is left, so a
// dispatcher that dies holding them delays routine sends by at most the
// hold's TTL.
type Holder struct {
	insp   *asynq.Inspector
	rdb    redis.UniversalClient
	log    *slog.Logger
	ttl    time.Duration
	queues []string
	// drainCheck is how often a released hold looks at the emergency
	// queue; maxDrain bounds how long it waits for it to empty.
	drainCheck, maxDrain time.Duration
}

// NewHolder makes a Holder.
func NewHolder(insp *asynq.Inspector, rdb redis.UniversalClient, log *slog.Logger) *Holder {
	return &Holder{insp: insp, rdb: rdb, log: log, ttl: 30 * time.Second, queues: []string{QueueOfficial, QueueCommunity},
		drainCheck: 25 * time.Millisecond, maxDrain: 30 * time.Minute}
}

// holdsKey is the sorted set of holds: member the post id, score the
// hold's expiry in Unix milliseconds.
const holdsKey = "crier:holds"

// emergencyPending is asynq's list of the emergency queue's pending tasks
// (its base.PendingKey): the Inspector's queue info computes much more and
// is too slow to ask fifty times a second. TestHoldLastsUntilDrained fails
// if asynq names it differently.
const emergencyPending = "asynq:{" + QueueEmergency + "}:pending"

func (h *Holder) refresh(ctx context.Context, member string) error {
	return h.rdb.ZAdd(ctx, holdsKey, redis.Z{Score: float64(time.Now().Add(h.ttl).UnixMilli()), Member: member}).Err()
}

// Hold pauses the routine queues for an emergency post. Calling release
// says the post's sends are all queued: the hold then lasts, refreshed,
// until the emergency queue has no pending task (retries waiting for their
// time do not count), and release returns at once.
func (h *Holder) Hold(ctx context.Context, postID int64) (release func(), err error) {
	member := strconv.FormatInt(postID, 10)
	if err := h.refresh(ctx, member); err != nil {
		return nil, fmt.Errorf("hold queues: %w", err)
	}
	for _, q := range h.queues {
		if err := h.insp.PauseQueue(q); err != nil && !strings.Contains(err.Error(), "already paused") {
			return nil, fmt.Errorf("hold queue %s: %w", q, err)
		}
	}
	queued := make(chan struct{})
	go h.keep(member, queued)
	var once sync.Once
	return func() { once.Do(func() { close(queued) }) }, nil
}

// keep refreshes a hold until its post's sends are queued and the emergency
// queue is empty, then ends it.
func (h *Holder) keep(member string, queued <-chan struct{}) {
	ctx := context.Background()
	refresh := time.NewTicker(h.ttl / 3)
	defer refresh.Stop()
	var check <-chan time.Time
	var deadline time.Time
	warned := false
	for {
		select {
		case <-refresh.C:
			h.refresh(ctx, member) //nolint:errcheck // Watch recovers an expired hold
			continue
		case <-queued:
			queued = nil
			deadline = time.Now().Add(h.maxDrain)
			t := time.NewTicker(h.drainCheck)
			defer t.Stop()
			check = t.C
		case <-check:
		}
		pending, err := h.rdb.LLen(ctx, emergencyPending).Result()
		if err != nil && !warned {
			warned = true
			h.log.Warn("hold: look at the emergency queue", slog.Any("error", err))
		}
		if (err != nil || pending > 0) && time.Now().Before(deadline) {
			continue
		}
		if err := h.rdb.ZRem(ctx, holdsKey, member).Err(); err != nil {
			h.log.Warn("release queue hold", slog.Any("error", err))
		}
		h.resumeIfFree(ctx)
		return
	}
}

// WaitFree returns once no hold is left (an expired one does not count):
// a routine dispatch waits for it between its pages, so that the routine
// queues grow by at most a page while an alert holds them.
func (h *Holder) WaitFree(ctx context.Context) error {
	var t *time.Ticker
	for {
		now := strconv.FormatInt(time.Now().UnixMilli(), 10)
		n, err := h.rdb.ZCount(ctx, holdsKey, "("+now, "+inf").Result()
		if err != nil {
			return fmt.Errorf("look at queue holds: %w", err)
		}
		if n == 0 {
			return nil
		}
		if t == nil {
			t = time.NewTicker(h.drainCheck)
			defer t.Stop()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// resumeIfFree resumes the routine queues if no hold is left.
func (h *Holder) resumeIfFree(ctx context.Context) {
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	if err := h.rdb.ZRemRangeByScore(ctx, holdsKey, "-inf", now).Err(); err != nil {
		return
	}
	if n, err := h.rdb.ZCard(ctx, holdsKey).Result(); err != nil || n > 0 {
		return
	}
	for _, q := range h.queues {
		info, err := h.insp.GetQueueInfo(q)
		if err != nil || !info.Paused {
			continue
		}
		if err := h.insp.UnpauseQueue(q); err != nil && !strings.Contains(err.Error(), "not paused") {
			h.log.Warn("resume queue", slog.String("queue", q), slog.Any("error", err))
		}
	}
}

// Watch resumes the routine queues whenever no hold is left, until ctx ends.
func (h *Holder) Watch(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			h.resumeIfFree(ctx)
		}
	}
}
