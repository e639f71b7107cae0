package tasks

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/internal/testenv"
)

// takeAsDeadWorker does to a pending task what asynq's dequeue does
// (internal/rdb dequeueCmd), with the lease its worker last extended
// extendedAgo: what a worker killed while running it leaves behind.
func takeAsDeadWorker(t *testing.T, rdb *redis.Client, q, id string, extendedAgo time.Duration) {
	t.Helper()
	ctx := context.Background()
	p := "asynq:{" + q + "}:"
	if n, err := rdb.LRem(ctx, p+"pending", 0, id).Result(); err != nil || n != 1 {
		t.Fatalf("take task %s: %d removed from pending, %v", id, n, err)
	}
	lease := time.Now().Add(-extendedAgo).Add(30 * time.Second).Unix()
	if err := rdb.LPush(ctx, p+"active", id).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.HSet(ctx, p+"t:"+id, "state", "active").Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.ZAdd(ctx, p+"lease", redis.Z{Score: float64(lease), Member: id}).Err(); err != nil {
		t.Fatal(err)
	}
}

// TestRescue: a task whose worker stopped extending its lease 12 s ago is
// put back at the head of its queue, counted as a retry, with its id and
// payload; a task whose lease was extended 2 s ago (its worker alive) and a
// pending task are left alone. A real asynq server then runs the rescued
// task first, sees it retried once, and completes it; and asynq's own
// recoverer has nothing left to take back.
func TestRescue(t *testing.T) {
	t.Parallel()
	rds := testenv.StartRedis(t)
	ctx := context.Background()
	c := asynq.NewClient(rds.AsynqOpt())
	t.Cleanup(func() { c.Close() })
	rdb := rds.Client(t)
	insp := asynq.NewInspector(rds.AsynqOpt())
	t.Cleanup(func() { insp.Close() })

	send := func(device int64) string {
		task, err := NewSend(Send{PostID: 7, DeviceID: device, TenantID: 1, Provider: "fcm", Token: "emu-ok-1"}, crier.ClassEmergency)
		if err != nil {
			t.Fatal(err)
		}
		info, err := c.Enqueue(task)
		if err != nil {
			t.Fatal(err)
		}
		return info.ID
	}
	orphan, alive, waiting := send(1), send(2), send(3)
	takeAsDeadWorker(t, rdb, QueueEmergency, orphan, 12*time.Second)
	takeAsDeadWorker(t, rdb, QueueEmergency, alive, 2*time.Second)

	r, err := NewRescuer(rdb, RescuerConfig{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	n, err := r.Rescue(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("rescued %d tasks, want 1 (the orphan)", n)
	}
	state := func(id string) (asynq.TaskState, int) {
		t.Helper()
		info, err := insp.GetTaskInfo(QueueEmergency, id)
		if err != nil {
			t.Fatalf("task %s: %v", id, err)
		}
		return info.State, info.Retried
	}
	if st, retried := state(orphan); st != asynq.TaskStatePending || retried != 1 {
		t.Errorf("the orphan is %s, retried %d; want pending, retried 1", st, retried)
	}
	if st, retried := state(alive); st != asynq.TaskStateActive || retried != 0 {
		t.Errorf("the task of a live worker is %s, retried %d; want active, untouched", st, retried)
	}
	if st, retried := state(waiting); st != asynq.TaskStatePending || retried != 0 {
		t.Errorf("the waiting task is %s, retried %d; want pending, untouched", st, retried)
	}
	if n, _ := rdb.ZCard(ctx, "asynq:{emergency}:lease").Result(); n != 1 {
		t.Errorf("%d leases left, want 1 (the live worker's): asynq's recoverer would take the orphan back again", n)
	}
	if n, _ := r.Rescue(ctx); n != 0 {
		t.Errorf("a second look rescued %d tasks, want 0", n)
	}

	// A worker runs what is pending: the orphan first, seen as retried.
	type run struct {
		id      string
		retried int
		payload Send
	}
	var mu sync.Mutex
	var runs []run
	srv := asynq.NewServer(rds.AsynqOpt(), asynq.Config{Concurrency: 1, Queues: map[string]int{QueueEmergency: 1},
		TaskCheckInterval: 10 * time.Millisecond, LogLevel: asynq.FatalLevel})
	if err := srv.Start(asynq.HandlerFunc(func(ctx context.Context, task *asynq.Task) error {
		id, _ := asynq.GetTaskID(ctx)
		retried, _ := asynq.GetRetryCount(ctx)
		s, err := ParseSend(task.Payload())
		if err != nil {
			return err
		}
		mu.Lock()
		runs = append(runs, run{id, retried, s})
		mu.Unlock()
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	testenv.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
		if st, err := insp.GetQueueInfo(QueueEmergency); err != nil || st.Pending > 0 || st.Processed < 2 {
			return context.DeadlineExceeded
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	if len(runs) != 2 || runs[0].id != orphan || runs[0].retried != 1 || runs[0].payload.DeviceID != 1 || runs[1].id != waiting {
		t.Errorf("runs %+v; want the orphan %s first (retried 1, device 1), then %s", runs, orphan, waiting)
	}
	if _, err := insp.GetTaskInfo(QueueEmergency, orphan); err == nil {
		t.Errorf("the rescued task is still in Redis after it was done")
	}
}

// TestRetriedOnce: the message is asynq's with the retry count one up, and a
// message that is not the task's is refused rather than rewritten.
func TestRetriedOnce(t *testing.T) {
	t.Parallel()
	rds := testenv.StartRedis(t)
	ctx := context.Background()
	c := asynq.NewClient(rds.AsynqOpt())
	t.Cleanup(func() { c.Close() })
	rdb := rds.Client(t)
	info, err := c.Enqueue(asynq.NewTask("x", []byte("payload")), asynq.Queue(QueueEmergency), asynq.TaskID("a"), asynq.MaxRetry(3))
	if err != nil {
		t.Fatal(err)
	}
	msg, err := rdb.HGet(ctx, "asynq:{emergency}:t:"+info.ID, "msg").Bytes()
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if msg, err = retriedOnce(msg, "a", QueueEmergency); err != nil {
			t.Fatal(err)
		}
	}
	if err := rdb.HSet(ctx, "asynq:{emergency}:t:a", "msg", msg).Err(); err != nil {
		t.Fatal(err)
	}
	insp := asynq.NewInspector(rds.AsynqOpt())
	t.Cleanup(func() { insp.Close() })
	got, err := insp.GetTaskInfo(QueueEmergency, "a")
	if err != nil {
		t.Fatal(err)
	}
	if got.Retried != 2 || got.MaxRetry != 3 || string(got.Payload) != "payload" || got.Type != "x" {
		t.Errorf("after two retriedOnce: retried %d, max %d, payload %q, type %q; want 2, 3, payload, x", got.Retried,
			got.MaxRetry, got.Payload, got.Type)
	}
	if _, err := retriedOnce(msg, "b", QueueEmergency); err == nil || !strings.Contains(err.Error(), "encoding") {
		t.Errorf("a message of another task: %v; want refused", err)
	}
}
