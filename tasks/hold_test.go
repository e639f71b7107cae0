package tasks

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/crier-push/crier/internal/testenv"
)

func paused(t *testing.T, insp *asynq.Inspector, q string) bool {
	t.Helper()
	info, err := insp.GetQueueInfo(q)
	if err != nil {
		t.Fatal(err)
	}
	return info.Paused
}

// TestHold: an emergency's hold pauses the routine queues, releasing the
// last hold resumes them, and a hold whose dispatcher died expires and
// Watch resumes the queues.
func TestHold(t *testing.T) {
	t.Parallel()
	rds := testenv.StartRedis(t)
	ctx := context.Background()
	c := asynq.NewClient(rds.AsynqOpt())
	defer c.Close()
	// Queues exist once a task was enqueued to them.
	for _, q := range []string{QueueOfficial, QueueCommunity} {
		if _, err := c.Enqueue(asynq.NewTask("x", nil), asynq.Queue(q)); err != nil {
			t.Fatal(err)
		}
	}
	insp := asynq.NewInspector(rds.AsynqOpt())
	defer insp.Close()
	rdb := rds.Client(t)
	h := NewHolder(insp, rdb, slog.New(slog.DiscardHandler))

	r1, err := h.Hold(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := h.Hold(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if !paused(t, insp, QueueOfficial) || !paused(t, insp, QueueCommunity) {
		t.Fatal("routine queues not paused by a hold")
	}
	r1()
	if !paused(t, insp, QueueCommunity) {
		t.Fatal("released one of two holds: the queues must stay paused")
	}
	r2()
	if paused(t, insp, QueueOfficial) || paused(t, insp, QueueCommunity) {
		t.Fatal("the last hold released: the queues must resume")
	}

	// A dispatcher that died holding the queues: its hold, no longer
	// refreshed, expires.
	if err := rdb.ZAdd(ctx, holdsKey, redis.Z{Score: float64(time.Now().Add(200 * time.Millisecond).UnixMilli()), Member: "3"}).Err(); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{QueueOfficial, QueueCommunity} {
		if err := insp.PauseQueue(q); err != nil {
			t.Fatal(err)
		}
	}
	h.resumeIfFree(ctx)
	if !paused(t, insp, QueueCommunity) {
		t.Fatal("a live hold was resumed")
	}
	watchCtx, stop := context.WithCancel(ctx)
	defer stop()
	go h.Watch(watchCtx, 50*time.Millisecond)
	deadline := time.Now().Add(10 * time.Second)
	for paused(t, insp, QueueCommunity) {
		if time.Now().After(deadline) {
			t.Fatal("an expired hold was not resumed")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
