package tasks

import (
	"context"
	"log/slog"
	"sync"
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

// routineQueues starts a Redis with the routine queues in it (a queue
// exists once a task was enqueued to it), and an asynq client of it.
func routineQueues(t *testing.T) (testenv.Redis, *asynq.Client) {
	t.Helper()
	rds := testenv.StartRedis(t)
	c := asynq.NewClient(rds.AsynqOpt())
	t.Cleanup(func() { c.Close() })
	for _, q := range []string{QueueOfficial, QueueCommunity} {
		if _, err := c.Enqueue(asynq.NewTask("x", nil), asynq.Queue(q)); err != nil {
			t.Fatal(err)
		}
	}
	return rds, c
}

// TestHold: an emergency's hold pauses the routine queues, releasing the
// last hold resumes them, and a hold whose dispatcher died expires and
// Watch resumes the queues.
func TestHold(t *testing.T) {
	t.Parallel()
	rds, _ := routineQueues(t)
	ctx := context.Background()
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
	time.Sleep(200 * time.Millisecond)
	if !paused(t, insp, QueueCommunity) {
		t.Fatal("released one of two holds: the queues must stay paused")
	}
	r2()
	r2() // twice is harmless
	waitResumed(t, insp, "the last hold released")

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
	waitResumed(t, insp, "an expired hold")
}

// waitResumed waits for both routine queues to be resumed.
func waitResumed(t *testing.T, insp *asynq.Inspector, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for paused(t, insp, QueueOfficial) || paused(t, insp, QueueCommunity) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: the routine queues were not resumed", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestHoldLastsUntilDrained: a released hold keeps the routine queues
// paused while the emergency queue has pending sends, and resumes them as
// soon as the last one is taken; a retry waiting for its time does not hold
// them.
func TestHoldLastsUntilDrained(t *testing.T) {
	t.Parallel()
	rds, c := routineQueues(t)
	ctx := context.Background()
	for range 3 {
		if _, err := c.Enqueue(asynq.NewTask("alert", nil), asynq.Queue(QueueEmergency)); err != nil {
			t.Fatal(err)
		}
	}
	// A retry of the alert, due later: not pending.
	if _, err := c.Enqueue(asynq.NewTask("alert", nil), asynq.Queue(QueueEmergency), asynq.ProcessIn(time.Hour)); err != nil {
		t.Fatal(err)
	}
	insp := asynq.NewInspector(rds.AsynqOpt())
	defer insp.Close()
	h := NewHolder(insp, rds.Client(t), slog.New(slog.DiscardHandler))
	release, err := h.Hold(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	release()
	time.Sleep(300 * time.Millisecond)
	if !paused(t, insp, QueueOfficial) || !paused(t, insp, QueueCommunity) {
		t.Fatal("the alert's sends are queued but not taken: the routine queues must stay paused")
	}
	// A worker takes the alert's sends.
	var mu sync.Mutex
	taken := 0
	srv := asynq.NewServer(rds.AsynqOpt(), asynq.Config{Concurrency: 1, Queues: map[string]int{QueueEmergency: 1},
		TaskCheckInterval: 10 * time.Millisecond, LogLevel: asynq.FatalLevel})
	if err := srv.Start(asynq.HandlerFunc(func(context.Context, *asynq.Task) error {
		mu.Lock()
		taken++
		mu.Unlock()
		time.Sleep(50 * time.Millisecond)
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	waitResumed(t, insp, "the emergency queue drained")
	info, err := insp.GetQueueInfo(QueueEmergency)
	if err != nil {
		t.Fatal(err)
	}
	if info.Pending != 0 {
		t.Fatalf("the routine queues resumed with %d alert sends still pending", info.Pending)
	}
	mu.Lock()
	defer mu.Unlock()
	if taken == 0 {
		t.Fatal("no alert send was taken")
	}
}
