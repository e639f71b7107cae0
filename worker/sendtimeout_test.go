package worker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/internal/testenv"
	"github.com/crier-push/crier/providers"
	"github.com/crier-push/crier/storage"
	"github.com/crier-push/crier/tasks"
)

// TestSendTimeout: a push that hangs is given up at the send deadline
// (SendTimeout, 20 s by default, as the README promises) and retried later:
// the delivery stays pending with the attempt counted, asynq schedules the
// task again, and the retry sends it. The worker runs under a real asynq
// server, with crier's retry delays, against a provider that answers only
// when its context ends. The task's own deadline is asynq's 30 s, so
// without the send deadline the push would hang for 30 s; the test allows
// the 300 ms deadline 10 s, far above what any machine needs and far below
// both.
func TestSendTimeout(t *testing.T) {
	t.Parallel()
	if DefaultSendTimeout != 20*time.Second {
		t.Errorf("DefaultSendTimeout is %s; the README promises a 20 s send deadline", DefaultSendTimeout)
	}
	if got := (Config{}).WithDefaults().SendTimeout; got != DefaultSendTimeout {
		t.Errorf("the default config's SendTimeout is %s; want DefaultSendTimeout", got)
	}

	const (
		timeout = 300 * time.Millisecond
		bound   = 10 * time.Second
	)
	ctx := context.Background()
	db := testenv.DB(t)
	rds := testenv.StartRedis(t)
	tn, err := db.CreateTenant(ctx, "vestfold", "Vestfold", "")
	if err != nil {
		t.Fatal(err)
	}
	pub, err := db.CreatePublisher(ctx, tn.ID, "kommune", "Kommunen", crier.RoleMunicipality)
	if err != nil {
		t.Fatal(err)
	}
	feed, err := db.CreateFeed(ctx, tn.ID, pub.ID, "viktig", "Viktig", true)
	if err != nil {
		t.Fatal(err)
	}
	post, _, err := db.CreatePost(ctx, storage.Post{TenantID: tn.ID, FeedID: feed.ID, PublisherID: pub.ID,
		Title: "Kokevarsel", Body: "Kok vannet.", Class: crier.ClassOfficial, PublishAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	const deviceID = 1
	if _, err := db.Pool.Exec(ctx, `INSERT INTO deliveries (post_id, device_id, provider) VALUES ($1, $2, 'fcm')`,
		post.ID, deviceID); err != nil {
		t.Fatal(err)
	}

	runCtx, stop := context.WithCancel(ctx)
	t.Cleanup(stop)
	rec, err := NewRecorder(db, RecorderConfig{})
	if err != nil {
		t.Fatal(err)
	}
	go rec.Run(runCtx)
	sender := &hangingSender{returned: make(chan hungSend, 1), proceed: make(chan struct{}), release: make(chan struct{})}
	senders := oneSender{TenantSender{Sender: sender, Scope: Scope{TenantID: tn.ID, Provider: providers.FCM}, PerSecond: 1000}}
	w, err := New(db, senders, NewLimiter(rds.Client(t)), rec, Config{SendTimeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	srv := asynq.NewServer(rds.AsynqOpt(), asynq.Config{
		Concurrency: 1, Queues: map[string]int{tasks.QueueOfficial: 1},
		RetryDelayFunc: RetryDelay, IsFailure: IsFailure,
		TaskCheckInterval: 10 * time.Millisecond, DelayedTaskCheckInterval: 100 * time.Millisecond,
		LogLevel: asynq.ErrorLevel,
	})
	if err := srv.Start(w); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		close(sender.release) // a send left hanging by a failure above
		srv.Shutdown()
	})
	client := asynq.NewClient(rds.AsynqOpt())
	t.Cleanup(func() { client.Close() })
	task, err := tasks.NewSend(tasks.Send{PostID: post.ID, DeviceID: deviceID, TenantID: tn.ID, Provider: providers.FCM,
		Token: "emu-ok-1"}, crier.ClassOfficial)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Enqueue(task); err != nil {
		t.Fatal(err)
	}

	// The first push is given up at its deadline.
	var first hungSend
	select {
	case first = <-sender.returned:
	case <-time.After(bound):
		t.Fatalf("the hanging push had not returned %s after it began; its deadline was %s", bound, timeout)
	}
	if !first.hadDeadline || first.deadlineIn > timeout {
		t.Errorf("the push was sent with a deadline %s away (has one: %v); want at most SendTimeout %s",
			first.deadlineIn, first.hadDeadline, timeout)
	}
	if !errors.Is(first.err, context.DeadlineExceeded) {
		t.Errorf("the hanging push ended with %v; want its deadline", first.err)
	}
	t.Logf("the hanging push was given up after %s", first.took.Round(time.Millisecond))

	// It is an attempt that will be retried, not a failure for good.
	var d struct {
		state    string
		attempts int
		lastErr  string
	}
	testenv.Eventually(t, bound, 5*time.Millisecond, func() error {
		if err := db.Pool.QueryRow(ctx, `SELECT state, attempts, last_error FROM deliveries WHERE post_id = $1 AND device_id = $2`,
			post.ID, deviceID).Scan(&d.state, &d.attempts, &d.lastErr); err != nil {
			return err
		}
		if d.attempts == 0 {
			return fmt.Errorf("the timed-out attempt is not recorded yet: %+v", d)
		}
		return nil
	})
	if d.state != string(crier.DeliveryPending) || d.attempts != 1 || !strings.Contains(d.lastErr, "deadline exceeded") {
		t.Errorf("after the timed-out push the delivery is %s, %d attempts, last error %q; want pending, 1 attempt, "+
			"the deadline", d.state, d.attempts, d.lastErr)
	}
	insp := asynq.NewInspector(rds.AsynqOpt())
	t.Cleanup(func() { insp.Close() })
	info, err := insp.GetTaskInfo(tasks.QueueOfficial, tasks.SendID(post.ID, deviceID))
	if err != nil {
		t.Fatalf("the timed-out send's task: %v", err)
	}
	// Retry, or active again in the retry's push (held until proceed).
	if (info.State != asynq.TaskStateRetry && info.State != asynq.TaskStateActive) || info.Retried != 1 {
		t.Errorf("the timed-out send's task is %s after %d retries (last error %q); want it retried", info.State,
			info.Retried, info.LastErr)
	}

	// The retry sends it, after its backoff (a few seconds at most).
	close(sender.proceed)
	testenv.Eventually(t, 3*time.Second+bound, 5*time.Millisecond, func() error {
		if err := db.Pool.QueryRow(ctx, `SELECT state, attempts FROM deliveries WHERE post_id = $1 AND device_id = $2`,
			post.ID, deviceID).Scan(&d.state, &d.attempts); err != nil {
			return err
		}
		if d.state != string(crier.DeliverySent) {
			return fmt.Errorf("the delivery is %s after %d attempts; waiting for the retry to send it", d.state, d.attempts)
		}
		return nil
	})
	if d.attempts != 2 || sender.calls.Load() != 2 {
		t.Errorf("sent after %d attempts and %d pushes; want 2 of each", d.attempts, sender.calls.Load())
	}
}

// hangingSender's first push hangs until its context ends (or the test
// ends); later pushes wait for proceed, then succeed.
type hangingSender struct {
	calls    atomic.Int32
	returned chan hungSend
	proceed  chan struct{}
	release  chan struct{}
}

// hungSend is what became of the hanging push.
type hungSend struct {
	hadDeadline bool
	deadlineIn  time.Duration // how far away the deadline was when the push began
	took        time.Duration
	err         error
}

func (s *hangingSender) Send(ctx context.Context, m providers.Message) (string, error) {
	if s.calls.Add(1) > 1 {
		select {
		case <-s.proceed:
		case <-s.release:
		}
		return "projects/vestfold/messages/1", nil
	}
	start := time.Now()
	deadline, ok := ctx.Deadline()
	h := hungSend{hadDeadline: ok, deadlineIn: time.Until(deadline)}
	select {
	case <-ctx.Done():
		h.err = ctx.Err()
	case <-s.release:
		h.err = errors.New("released when the test ended")
	}
	h.took = time.Since(start)
	s.returned <- h
	return "", h.err
}

// oneSender gives every tenant the same TenantSender.
type oneSender struct{ ts TenantSender }

func (o oneSender) Sender(context.Context, int64, string) (TenantSender, error) { return o.ts, nil }
func (o oneSender) AuthCleared(int64, string)                                   {}
