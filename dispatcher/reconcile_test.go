package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/internal/configtest"
	"github.com/crier-push/crier/internal/testenv"
	"github.com/crier-push/crier/storage"
	"github.com/crier-push/crier/tasks"
)

// TestReconcilerConfigValidate: a config the reconciler cannot run with is
// refused, naming the field.
func TestReconcilerConfigValidate(t *testing.T) {
	t.Parallel()
	d, err := New(nil, nil, Config{})
	if err != nil {
		t.Fatal(err)
	}
	use := func(c ReconcilerConfig) error { _, err := NewReconciler(d, &tasks.Marker{}, c); return err }
	configtest.Refuses(t, ReconcilerConfig{}, use, []configtest.Case[ReconcilerConfig]{
		{Field: "Interval", Change: func(c *ReconcilerConfig) { c.Interval = -time.Second }},
		{Field: "Batch", Change: func(c *ReconcilerConfig) { c.Batch = -1 }},
	})
}

// TestReconcilerConfigDefaults: the zero config gets the named defaults.
func TestReconcilerConfigDefaults(t *testing.T) {
	t.Parallel()
	configtest.Defaults(t, ReconcilerConfig{Interval: DefaultReconcileInterval, Batch: DefaultReconcileBatch},
		ReconcilerConfig{}.WithDefaults(), "Logger")
}

// recFixture is a tenant with devices following a feed, a private Redis,
// and a dispatcher and reconciler on them.
type recFixture struct {
	t       *testing.T
	db      *storage.DB
	rdb     *redis.Client
	insp    *asynq.Inspector
	client  *asynq.Client
	marker  *tasks.Marker
	d       *Dispatcher
	tenant  storage.Tenant
	pub     crier.Publisher
	feed    crier.Feed
	devices []int64
	// recoveries counts the reconciler's "redis lost its data" logs.
	recoveries *atomic.Int32
}

func newRecFixture(t *testing.T, devices int, cfg Config) *recFixture {
	t.Helper()
	ctx := context.Background()
	db := testenv.DB(t)
	rds := testenv.StartRedis(t)
	fx := &recFixture{t: t, db: db, rdb: rds.Client(t), recoveries: &atomic.Int32{}}
	fx.insp = asynq.NewInspector(rds.AsynqOpt())
	fx.client = asynq.NewClient(rds.AsynqOpt())
	t.Cleanup(func() { fx.insp.Close(); fx.client.Close() })
	fx.marker = tasks.NewMarker(fx.rdb)
	fx.tenant = testenv.Tenant(t, db, "larvik", "Larvik kommune", "")
	fx.pub = testenv.Publisher(t, db, fx.tenant.ID, "kommunen", "Larvik kommune", crier.RoleMunicipality)
	fx.feed = testenv.Feed(t, db, fx.tenant.ID, fx.pub.ID, "nyheter", "Nyheter", false)
	rows, err := db.Pool.Query(ctx, `INSERT INTO devices (tenant_id, installation_id, provider, platform, token, follows)
		SELECT $1, 'dev-' || i, 'fcm', 'android', 'emu-ok-dev-' || i, ARRAY[$2::bigint] FROM generate_series(1, $3::int) i
		RETURNING id`, fx.tenant.ID, fx.feed.ID, devices)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		fx.devices = append(fx.devices, id)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	cfg.Generations = fx.marker
	if fx.d, err = New(db, fx.client, cfg); err != nil {
		t.Fatal(err)
	}
	return fx
}

// reconciler makes a reconciler of the fixture's dispatcher whose recovery
// logs are counted.
func (fx *recFixture) reconciler() *Reconciler {
	fx.t.Helper()
	log := slog.New(countingHandler{msg: "redis lost its data", n: fx.recoveries})
	r, err := NewReconciler(fx.d, fx.marker, ReconcilerConfig{Logger: log})
	if err != nil {
		fx.t.Fatal(err)
	}
	return r
}

// countingHandler counts the records whose message starts with msg.
type countingHandler struct {
	msg string
	n   *atomic.Int32
}

func (h countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h countingHandler) Handle(_ context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, h.msg) {
		h.n.Add(1)
	}
	return nil
}
func (h countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h countingHandler) WithGroup(string) slog.Handler      { return h }

// post stores an official post publishing at at, as the API does before it
// queues the dispatch.
func (fx *recFixture) post(title string, at time.Time) storage.Post {
	fx.t.Helper()
	p, _, err := fx.db.CreatePost(context.Background(), storage.Post{TenantID: fx.tenant.ID, FeedID: fx.feed.ID,
		PublisherID: fx.pub.ID, Title: title, Body: "b", Class: crier.ClassOfficial, PublishAt: at})
	if err != nil {
		fx.t.Fatal(err)
	}
	return p
}

// queued is what Redis holds: each task id with its state, when it is due
// if scheduled, and for sends whether it checks its delivery.
func (fx *recFixture) queued() map[string]string {
	fx.t.Helper()
	out := map[string]string{}
	for q := range tasks.Queues() {
		for _, list := range []func(string, ...asynq.ListOption) ([]*asynq.TaskInfo, error){
			fx.insp.ListPendingTasks, fx.insp.ListScheduledTasks} {
			infos, err := list(q)
			if err != nil && !errors.Is(err, asynq.ErrQueueNotFound) {
				fx.t.Fatal(err)
			}
			for _, info := range infos {
				v := info.State.String()
				if info.State == asynq.TaskStateScheduled {
					v += " at " + info.NextProcessAt.UTC().Format(time.TimeOnly)
				}
				if info.Type == tasks.TypeSend {
					s, err := tasks.ParseSend(info.Payload)
					if err != nil {
						fx.t.Fatal(err)
					}
					v += fmt.Sprintf(", check %v", s.Check)
				}
				out[info.ID] = v
			}
		}
	}
	return out
}

func dispatchID(id int64) string { return "dispatch:" + strconv.FormatInt(id, 10) }

func at(t time.Time) string { return " at " + tasks.WholeSecondFrom(t).UTC().Format(time.TimeOnly) }

// TestReconcileQueuesUnqueuedPosts: a post stored while Redis was away is
// queued by the next pass, a scheduled one for its publish time (rounded up
// to asynq's whole second, never before it), and marked queued; a post
// already queued, or cancelled, is left alone, and a second pass does
// nothing.
func TestReconcileQueuesUnqueuedPosts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fx := newRecFixture(t, 2, Config{})
	r := fx.reconciler()
	if err := r.Reconcile(ctx); err != nil { // names the new Redis
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour).Truncate(time.Second).Add(400 * time.Millisecond)
	due, scheduled, queued, cancelled := fx.post("due", time.Time{}), fx.post("later", later), fx.post("queued", time.Time{}),
		fx.post("cancelled", time.Time{})
	if err := fx.db.MarkDispatchEnqueued(ctx, queued.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := fx.db.CancelPost(ctx, fx.tenant.ID, cancelled.ID); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := r.Reconcile(ctx); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]string{dispatchID(due.ID): "pending", dispatchID(scheduled.ID): "scheduled" + at(later)}
	if diff := cmp.Diff(want, fx.queued()); diff != "" {
		t.Errorf("tasks (-want +got):\n%s", diff)
	}
	for _, p := range []storage.Post{due, scheduled} {
		got, err := fx.db.PostByID(ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.DispatchEnqueuedAt == nil {
			t.Errorf("post %q: dispatch_enqueued_at not set", p.Title)
		}
	}
	if n := fx.recoveries.Load(); n != 1 {
		t.Errorf("%d recoveries, want only the first pass's (a new Redis)", n)
	}
}

// TestRecoverAfterLoss: with the marker gone, the open work in Postgres is
// queued again: the dispatch of posts accepted (at their time) and
// dispatching, a checked send for each pending delivery and, at its due
// time, each deferred one; nothing for sent deliveries, finished or
// cancelled posts. Two reconcilers seeing the same loss recover it once,
// and a pass with the marker in place recovers nothing.
func TestRecoverAfterLoss(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fx := newRecFixture(t, 4, Config{})
	dev := fx.devices
	snapshot := func(p storage.Post) {
		t.Helper()
		aud, err := Audience(p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fx.db.Snapshot(ctx, p, aud, storage.SnapshotOptions{Now: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := fx.db.Pool.Exec(ctx, sql, args...); err != nil {
			t.Fatal(err)
		}
	}
	later := time.Now().Add(time.Hour).Truncate(time.Second).Add(300 * time.Millisecond)
	accepted := fx.post("accepted", later)
	dispatching := fx.post("dispatching", time.Time{})
	snapshot(dispatching)
	sending := fx.post("sending", time.Time{})
	snapshot(sending)
	wakes := time.Now().Add(2 * time.Hour).Truncate(time.Second).Add(700 * time.Millisecond)
	exec(`UPDATE deliveries SET state = 'deferred', not_before = $3 WHERE post_id = $1 AND device_id = $2`,
		sending.ID, dev[1], wakes)
	done := fx.post("done", time.Time{})
	snapshot(done)
	cancelled := fx.post("cancelled", time.Time{})
	snapshot(cancelled)
	for _, p := range []storage.Post{sending, done} {
		if err := fx.db.FinishDispatch(ctx, p.ID); err != nil {
			t.Fatal(err)
		}
	}
	var outs []storage.Outcome
	for _, d := range dev {
		outs = append(outs, storage.Outcome{PostID: done.ID, DeviceID: d, State: crier.DeliverySent})
	}
	outs = append(outs, storage.Outcome{PostID: sending.ID, DeviceID: dev[0], State: crier.DeliverySent})
	if err := fx.db.RecordOutcomes(ctx, outs); err != nil {
		t.Fatal(err)
	}
	if _, err := fx.db.CancelPost(ctx, fx.tenant.ID, cancelled.ID); err != nil {
		t.Fatal(err)
	}

	send := func(p storage.Post, i int) string { return tasks.SendID(p.ID, dev[i]) }
	want := map[string]string{
		dispatchID(accepted.ID):    "scheduled" + at(later),
		dispatchID(dispatching.ID): "pending",
		send(dispatching, 0):       "pending, check true",
		send(dispatching, 1):       "pending, check true",
		send(dispatching, 2):       "pending, check true",
		send(dispatching, 3):       "pending, check true",
		send(sending, 1):           "scheduled" + at(wakes) + ", check true",
		send(sending, 2):           "pending, check true",
		send(sending, 3):           "pending, check true",
	}
	// This Redis is new: the first pass finds no marker and queues it all.
	if err := fx.reconciler().Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, fx.queued()); diff != "" {
		t.Errorf("tasks after the first pass (-want +got):\n%s", diff)
	}

	// Redis loses everything; two processes notice at once.
	if err := fx.rdb.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	fx.recoveries.Store(0)
	var wg sync.WaitGroup
	for range 2 {
		r := fx.reconciler()
		wg.Go(func() {
			if err := r.Reconcile(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if diff := cmp.Diff(want, fx.queued()); diff != "" {
		t.Errorf("tasks after FLUSHALL and two passes (-want +got):\n%s", diff)
	}
	if n := fx.recoveries.Load(); n != 1 {
		t.Errorf("two reconcilers recovered the loss %d times, want once", n)
	}
	// The asynq Inspector knows the queues again (metrics, the Holder).
	if qs, err := fx.insp.Queues(); err != nil || len(qs) != len(tasks.Queues()) {
		t.Errorf("asynq knows the queues %v (%v), want all %d", qs, err, len(tasks.Queues()))
	}

	// The steady state: the marker is there, nothing is queued again.
	if _, err := fx.insp.DeleteAllPendingTasks(tasks.QueueOfficial); err != nil {
		t.Fatal(err)
	}
	if err := fx.reconciler().Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if n := fx.recoveries.Load(); n != 1 {
		t.Errorf("a pass with the marker in place recovered again")
	}
	if got := fx.queued(); got[send(sending, 2)] != "" {
		t.Errorf("a pass with the marker in place queued sends again: %v", got)
	}
}

// flushingMarker flushes Redis when the dispatcher reads the generation
// for the nth time: Redis loses its data in the middle of a dispatch.
type flushingMarker struct {
	*tasks.Marker
	rdb      *redis.Client
	calls, n int
}

func (m *flushingMarker) Generation(ctx context.Context) (string, error) {
	m.calls++
	if m.calls == m.n {
		if err := m.rdb.FlushAll(ctx).Err(); err != nil {
			return "", err
		}
	}
	return m.Marker.Generation(ctx)
}

// TestDispatchStopsWhenRedisLosesData: a dispatch that sees Redis lose its
// data between two pages stops (its first page's sends are gone, and it
// would go on queueing unchecked sends beside the reconciler's); the
// recovery then queues a checked send for every pending delivery and the
// post's dispatch again, which carries on from the resume point with
// checked sends and finishes.
func TestDispatchStopsWhenRedisLosesData(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fx := newRecFixture(t, 6, Config{PageSize: 2, EnqueueWorkers: 1})
	r := fx.reconciler()
	if err := r.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	// Read at the start, before page 1, before page 2: the loss comes
	// after the first page was queued.
	fm := &flushingMarker{Marker: fx.marker, rdb: fx.rdb, n: 3}
	fx.d.cfg.Generations = fm
	p := fx.post("midt i", time.Time{})
	err := fx.d.Dispatch(ctx, p.ID)
	if !errors.Is(err, ErrRedisLost) {
		t.Fatalf("dispatch through a loss: %v, want ErrRedisLost", err)
	}
	got, err := fx.db.PostByID(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != crier.PostDispatching || got.DispatchCursor != fx.devices[1] {
		t.Fatalf("post after the stopped dispatch: %s at %d, want dispatching at %d", got.State, got.DispatchCursor, fx.devices[1])
	}
	if q := fx.queued(); len(q) != 0 {
		t.Fatalf("Redis holds %v after the loss, want nothing (the dispatch stopped)", q)
	}

	if err := r.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{dispatchID(p.ID): "pending"}
	for _, d := range fx.devices {
		want[tasks.SendID(p.ID, d)] = "pending, check true"
	}
	if diff := cmp.Diff(want, fx.queued()); diff != "" {
		t.Errorf("tasks after the recovery (-want +got):\n%s", diff)
	}
	fx.d.cfg.Generations = fx.marker
	if err := fx.d.Dispatch(ctx, p.ID); err != nil {
		t.Fatalf("the dispatch queued again: %v", err)
	}
	if got, _ := fx.db.PostByID(ctx, p.ID); got.State != crier.PostSending {
		t.Errorf("post after the dispatch queued again: %s, want sending", got.State)
	}
	if diff := cmp.Diff(want, fx.queued()); diff != "" {
		t.Errorf("tasks after the resumed dispatch (-want +got):\n%s", diff)
	}
}
