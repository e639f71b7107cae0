package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/storage"
	"github.com/crier-push/crier/tasks"
)

// hookedEnqueuer calls before ahead of the nth enqueue (from 1); an error
// it returns fails that enqueue.
type hookedEnqueuer struct {
	Enqueuer
	mu     sync.Mutex
	n      int
	before func(n int, task *asynq.Task) error
}

func (e *hookedEnqueuer) EnqueueContext(ctx context.Context, task *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error) {
	e.mu.Lock()
	e.n++
	n := e.n
	e.mu.Unlock()
	if err := e.before(n, task); err != nil {
		return nil, err
	}
	return e.Enqueuer.EnqueueContext(ctx, task, opts...)
}

// watchedHolder is the real Holder, telling when a dispatch first waits
// for it while held.
type watchedHolder struct {
	*tasks.Holder
	held   atomic.Bool
	once   sync.Once
	waited chan struct{}
}

func (h *watchedHolder) WaitFree(ctx context.Context) error {
	if h.held.Load() {
		h.once.Do(func() { close(h.waited) })
	}
	return h.Holder.WaitFree(ctx)
}

// sendTasks is every send task Redis holds for a post, pending or
// scheduled, by id, with whether it checks its delivery.
func (fx *recFixture) sendTasks(postID int64) map[string]bool {
	fx.t.Helper()
	out := map[string]bool{}
	for q := range tasks.Queues() {
		for _, list := range []func(string, ...asynq.ListOption) ([]*asynq.TaskInfo, error){
			fx.insp.ListPendingTasks, fx.insp.ListScheduledTasks} {
			infos, err := list(q, asynq.PageSize(10000))
			if err != nil && !errors.Is(err, asynq.ErrQueueNotFound) {
				fx.t.Fatal(err)
			}
			for _, info := range infos {
				if s, err := tasks.ParseSend(info.Payload); err == nil && s.PostID == postID {
					out[info.ID] = s.Check
				}
			}
		}
	}
	return out
}

// TestRoutineDispatchWaitsForAlert: an alert's hold, taken while a routine
// post's second page is being queued, lets the dispatch finish that page
// and holds it before the next: the routine queues grow by at most a page
// while the alert holds them. Once the hold ends the dispatch finishes.
func TestRoutineDispatchWaitsForAlert(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const pageSize, devices = 3, 10
	fx := newRecFixture(t, devices, Config{PageSize: pageSize, EnqueueWorkers: 1})
	holder := &watchedHolder{Holder: tasks.NewHolder(fx.insp, fx.rdb, slog.New(slog.DiscardHandler)), waited: make(chan struct{})}
	fx.d.cfg.Holder = holder
	var release func()
	fx.d.enq = &hookedEnqueuer{Enqueuer: fx.client, before: func(n int, _ *asynq.Task) error {
		if n != pageSize+1 {
			return nil
		}
		var err error
		release, err = holder.Hold(ctx, 999) // the alert
		holder.held.Store(true)
		return err
	}}
	p := fx.post("kino i kveld", time.Time{})
	errc := make(chan error, 1)
	go func() { errc <- fx.d.Dispatch(ctx, p.ID) }()
	select {
	case <-holder.waited:
	case err := <-errc:
		t.Fatalf("the dispatch ended (%v) without waiting for the alert's hold", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the dispatch did not come to wait for the alert's hold within 30s")
	}
	if n := len(fx.sendTasks(p.ID)); n != 2*pageSize {
		t.Errorf("%d sends queued when the dispatch waits for the hold, want %d: the page under way, no more", n, 2*pageSize)
	}
	select {
	case err := <-errc:
		t.Fatalf("the dispatch ended (%v) while the alert held the queues", err)
	default:
	}
	release() // the emergency queue is empty: the hold ends
	select {
	case err := <-errc:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the dispatch did not finish within 30s of the hold's end")
	}
	if n := len(fx.sendTasks(p.ID)); n != devices {
		t.Errorf("%d sends queued after the hold, want %d", n, devices)
	}
}

// TestAlertSnapshotInParts: a fresh alert's audience is snapshotted in
// parts (a page, sixteen pages, the rest) while the sends of the parts
// before are queued: the snapshot of the whole audience commits while the
// sends of the second part are still being queued. A device that joined
// the audience between the parts, with an id below the parts before it,
// is queued too, checked, and every device gets exactly one send.
func TestAlertSnapshotInParts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const pageSize, devices = 2, 40
	fx := newRecFixture(t, devices, Config{PageSize: pageSize, EnqueueWorkers: 1, EmergencyEnqueueWorkers: 1})
	// The first device does not follow the feed yet.
	late := fx.devices[0]
	if _, err := fx.db.Pool.Exec(ctx, `UPDATE devices SET follows = '{}' WHERE id = $1`, late); err != nil {
		t.Fatal(err)
	}
	p, _, err := fx.db.CreatePost(ctx, storage.Post{TenantID: fx.tenant.ID, FeedID: fx.feed.ID, PublisherID: fx.pub.ID,
		Title: "Flom", Body: "Evakuer", Class: crier.ClassEmergency})
	if err != nil {
		t.Fatal(err)
	}
	count := func(query string) int {
		var n int
		if err := fx.db.Pool.QueryRow(ctx, query, p.ID).Scan(&n); err != nil {
			t.Error(err)
		}
		return n
	}
	const deliveries = `SELECT count(*) FROM deliveries WHERE post_id = $1`
	var atSecondPart int
	fx.d.enq = &hookedEnqueuer{Enqueuer: fx.client, before: func(n int, _ *asynq.Task) error {
		switch n {
		case 1:
			// While the head is queued, and the rest snapshotted, the first
			// device joins.
			_, err := fx.db.Pool.Exec(ctx, `UPDATE devices SET follows = ARRAY[$2::bigint] WHERE id = $1`, late, fx.feed.ID)
			return err
		case pageSize + 1:
			// The second part's first send waits for the whole audience's
			// snapshot, which must run meanwhile.
			atSecondPart = count(deliveries)
			deadline := time.Now().Add(30 * time.Second)
			for count(`SELECT count(*) FROM posts WHERE id = $1 AND state = 'dispatching'`) == 0 {
				if time.Now().After(deadline) {
					return fmt.Errorf("the rest of the audience was not snapshotted while the second part was queued")
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
		return nil
	}}
	if err := fx.d.Dispatch(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	if least := (headStarts[0]+headStarts[1])*pageSize - 1; atSecondPart < least {
		t.Errorf("%d deliveries when the second part's sends began, want at least %d (the head and the second part)",
			atSecondPart, least)
	}
	// The late device is in the audience if it joined before the last
	// part was read.
	audience := count(deliveries)
	joined := audience == devices
	if !joined {
		t.Log("NOTE: the late device joined after the whole audience was read; its sweep was not checked")
	}
	got, err := fx.db.PostByID(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != crier.PostSending || got.Audience == nil || *got.Audience != audience || got.DispatchCursor != fx.devices[devices-1] {
		t.Errorf("post after the dispatch: %s, audience %v, resume point %d; want sending, %d, %d", got.State, got.Audience,
			got.DispatchCursor, audience, fx.devices[devices-1])
	}
	q := fx.sendTasks(p.ID)
	if len(q) != audience {
		t.Errorf("%d sends queued, want %d", len(q), audience)
	}
	if check, ok := q[tasks.SendID(p.ID, late)]; joined && (!ok || !check) {
		t.Errorf("the device that joined between the parts: queued %v, checked %v; want a checked send", ok, check)
	}
	if check, ok := q[tasks.SendID(p.ID, fx.devices[devices-1])]; !ok || check {
		t.Errorf("the last device: queued %v, checked %v; want an unchecked send", ok, check)
	}
}
