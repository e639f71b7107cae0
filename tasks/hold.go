package tasks

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// Holder pauses the official and community queues while an emergency post
// is dispatched, across every worker, so that no further routine send is
// taken until the alert's sends are all queued (from then on strict priority
// keeps them first). Each hold is a Redis key with a time to live, refreshed
// while the dispatch runs; Watch, run by every worker process, resumes the
// queues once no hold is left, so a dispatcher that dies holding them
// delays routine sends by at most the hold's TTL.
type Holder struct {
	insp   *asynq.Inspector
	rdb    redis.UniversalClient
	log    *slog.Logger
	ttl    time.Duration
	queues []string
}

// NewHolder makes a Holder.
func NewHolder(insp *asynq.Inspector, rdb redis.UniversalClient, log *slog.Logger) *Holder {
	return &Holder{insp: insp, rdb: rdb, log: log, ttl: 30 * time.Second, queues: []string{QueueOfficial, QueueCommunity}}
}

// holdsKey is the sorted set of holds: member the post id, score the
// hold's expiry in Unix milliseconds.
const holdsKey = "crier:holds"

func (h *Holder) refresh(ctx context.Context, member string) error {
	return h.rdb.ZAdd(ctx, holdsKey, redis.Z{Score: float64(time.Now().Add(h.ttl).UnixMilli()), Member: member}).Err()
}

// Hold pauses the routine queues for an emergency post until release is
// called (or the hold expires).
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
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(h.ttl / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				h.refresh(context.Background(), member) //nolint:errcheck // Watch recovers an expired hold
			}
		}
	}()
	return func() {
		close(done)
		ctx := context.Background()
		if err := h.rdb.ZRem(ctx, holdsKey, member).Err(); err != nil {
			h.log.Warn("release queue hold", slog.Any("error", err))
		}
		h.resumeIfFree(ctx)
	}, nil
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
