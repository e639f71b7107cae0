package crashtest

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/crier-push/crier/dispatcher"
	"github.com/crier-push/crier/internal/testenv"
)

// TestWorkerKilledThreeTimes: a worker is SIGKILLed three times while a
// 20,000-device post is being sent and restarted each time, next to a
// worker that is never killed. Every device gets the push, the post ends
// with every delivery sent, and the only doubles are sends that were in
// flight in the killed process (at most its concurrency per kill).
func TestWorkerKilledThreeTimes(t *testing.T) {
	t.Parallel()
	const (
		devices = 20000
		// A multiple of the 4 asynq servers a worker process splits its
		// concurrency over (server.Config.QueueServers), so that it runs
		// exactly this many sends at once.
		concurrency = 48
		kills       = 3
	)
	fx := newFixture(t, false, 3*time.Millisecond)
	rds := testenv.StartRedis(t)
	tokens := fx.seedDevices(devices, 3)

	apiProc := startCrier(t, "api", "api", fx.dbURL, rds.URL())
	conc := strconv.Itoa(concurrency)
	steady := startCrier(t, "worker-steady", "worker", fx.dbURL, rds.URL(), "-concurrency", conc)
	victim := startCrier(t, "worker-victim-0", "worker", fx.dbURL, rds.URL(), "-concurrency", conc)
	a := newAPI(t, apiProc.Addr, fx.key)

	const title = "Vannbrudd i Storgata"
	start := time.Now()
	id := a.publish(title, "")
	var atKill []int
	for i, share := range []float64{0.20, 0.45, 0.70} {
		fx.waitAccepted(int(share * devices))
		victim.Kill()
		atKill = append(atKill, fx.accepted())
		victim = startCrier(t, fmt.Sprintf("worker-victim-%d", i+1), "worker", fx.dbURL, rds.URL(),
			"-concurrency", conc)
	}
	st := a.waitDone(id)
	took := time.Since(start)

	checkAllSent(t, st, devices)
	r := fx.report(tokens, title)
	fx.checkEveryoneReached(r, devices)
	bound := kills * concurrency
	t.Logf("accepted at the kills %v; duplicates: %d tokens pushed twice or more, %d extra pushes (in-flight bound %d); "+
		"done in %s", atKill, r.dupTokens, r.extra, bound, took.Round(time.Millisecond))
	if r.extra > bound {
		t.Errorf("%d extra pushes, more than the %d sends that can have been in flight at %d kills of a worker of concurrency %d",
			r.extra, bound, kills, concurrency)
	}
	steady.alive()
	victim.alive()
}

// TestDispatcherKilledMidDispatch: the worker running a post's dispatch is
// SIGKILLed while it is enqueueing the post's 50,000 sends, in the middle of
// a page (the resume point has moved, some sends past it are queued, the
// post is not yet sending), and restarted: the dispatch resumes, re-enqueues
// the sends past the resume point that are still queued, and every device
// gets exactly one push. The dispatching worker only dispatches (-groups
// dispatch), so it has no sends in flight when it dies: every double would
// be the dispatcher's. The restarted worker only dispatches too, so when the
// dispatch comes back (60 to 120 s later: asynq's lease and recoverer) the
// sends past the resume point are still queued; a second worker drains them.
func TestDispatcherKilledMidDispatch(t *testing.T) {
	t.Parallel()
	const devices = 50000
	fx := newFixture(t, true, 5*time.Millisecond)
	rds := testenv.StartRedis(t)
	tokens := fx.seedDevices(devices, 4)
	ctx := context.Background()
	// Kill once the resume point has passed half of the audience.
	killAt := fx.deviceAt(devices / 2)
	postState := func(id int64) (state string, cursor int64) {
		t.Helper()
		if err := fx.db.Pool.QueryRow(ctx, `SELECT state, dispatch_cursor FROM posts WHERE id = $1`, id).
			Scan(&state, &cursor); err != nil {
			t.Fatal(err)
		}
		return state, cursor
	}

	apiProc := startCrier(t, "api", "api", fx.dbURL, rds.URL())
	dispatching := startCrier(t, "worker-dispatching", "worker", fx.dbURL, rds.URL(), "-groups", "dispatch")
	a := newAPI(t, apiProc.Addr, fx.key)

	const title = "Viktig melding fra kommunen"
	start := time.Now()
	id := a.publish(title, "")
	k := fx.killMidPage(dispatching, id, killAt, rds)
	if k.state != "dispatching" || k.past() <= 0 {
		t.Fatalf("after the kill the post is %s with %d sends queued past its resume point; the kill missed the "+
			"middle of the dispatch", k.state, k.past())
	}
	if n := fx.accepted(); n != 0 {
		t.Fatalf("%d pushes before the kill; the dispatching worker was to send none", n)
	}

	restarted := startCrier(t, "worker-restarted", "worker", fx.dbURL, rds.URL(), "-groups", "dispatch")
	testenv.Eventually(t, within, 50*time.Millisecond, func() error {
		if state, _ := postState(id); state != "sending" {
			return fmt.Errorf("%w: the dispatch has not resumed and finished yet", errNotDone)
		}
		return nil
	})
	resumedAfter := time.Since(start)
	sentAtResume := fx.accepted()
	drain := startCrier(t, "worker-drain", "worker", fx.dbURL, rds.URL(), "-concurrency", "50")
	st := a.waitDone(id)
	took := time.Since(start)

	checkAllSent(t, st, devices)
	r := fx.report(tokens, title)
	fx.checkEveryoneReached(r, devices)
	t.Logf("killed with %d sends queued, %d of them past the resume point (device %d, %d of %d); the dispatch finished "+
		"%s after the post, with %d pushes sent (so the sends past the resume point were %s); "+
		"duplicates: %d tokens, %d extra pushes; done in %s", k.queued, k.past(), k.cursor, k.position, devices,
		resumedAfter.Round(time.Millisecond), sentAtResume, map[bool]string{true: "still queued", false: "maybe sent"}[sentAtResume < k.position],
		r.dupTokens, r.extra, took.Round(time.Millisecond))
	if r.extra > 0 {
		t.Errorf("%d devices got the push more than once (%d extra pushes); want exactly one each", r.dupTokens, r.extra)
	}
	restarted.alive()
	drain.alive()
}

// TestResumedDispatchDoesNotRepeatFinishedSends: a dispatch is killed after
// it enqueued sends past its resume point. When it resumes it reads the
// deliveries past the resume point as pending and enqueues them again,
// counting on the task ids to refuse sends still queued. But sends that
// finish between that read and the enqueue (recorded as sent, their task
// gone from Redis) are enqueued anew and pushed a second time. The test
// makes that window wide: the resumed dispatch runs in this process, with
// an enqueuer that holds its enqueues until a worker has sent everything
// queued. Every device must still get exactly one push.
func TestResumedDispatchDoesNotRepeatFinishedSends(t *testing.T) {
	t.Parallel()
	const devices = 20000
	fx := newFixture(t, true, 3*time.Millisecond)
	rds := testenv.StartRedis(t)
	tokens := fx.seedDevices(devices, 4)
	ctx := context.Background()
	killAt := fx.deviceAt(devices * 3 / 10)
	queuedOfficial := queued(t, rds, "official")

	apiProc := startCrier(t, "api", "api", fx.dbURL, rds.URL())
	dispatching := startCrier(t, "worker-dispatching", "worker", fx.dbURL, rds.URL(), "-groups", "dispatch")
	a := newAPI(t, apiProc.Addr, fx.key)
	const title = "Kokevarsel for Vesterøya"
	id := a.publish(title, "")
	k := fx.killMidPage(dispatching, id, killAt, rds)
	if k.state != "dispatching" || k.past() <= 0 {
		t.Fatalf("the kill left the post %s with %d sends queued past its resume point; the test needs a dispatch "+
			"killed after enqueueing past it", k.state, k.past())
	}

	// The dispatch resumes here, where its enqueues can be held.
	client := asynq.NewClient(rds.AsynqOpt())
	t.Cleanup(func() { client.Close() })
	gate := &gatedEnqueuer{Enqueuer: client, reached: make(chan struct{}), open: make(chan struct{})}
	errc := make(chan error, 1)
	disp, err := dispatcher.New(fx.db, gate, dispatcher.Config{})
	if err != nil {
		t.Fatal(err)
	}
	go func() { errc <- disp.Dispatch(ctx, id) }()
	select {
	case <-gate.reached:
	case err := <-errc:
		t.Fatalf("the resumed dispatch returned before enqueueing anything: %v", err)
	case <-time.After(within):
		t.Fatal("the resumed dispatch did not come to enqueue within", within)
	}
	// It has read the deliveries past the resume point as pending; now a
	// worker sends everything queued, those included.
	worker := startCrier(t, "worker", "worker", fx.dbURL, rds.URL(), "-concurrency", "48")
	testenv.Eventually(t, within, 20*time.Millisecond, func() error {
		if n := queuedOfficial(); n > 0 {
			return fmt.Errorf("%w: %d sends still queued", errNotDone, n)
		}
		return nil
	})
	sentBeforeResume := fx.accepted()
	close(gate.open)
	if err := <-errc; err != nil {
		t.Fatalf("resumed dispatch: %v", err)
	}
	st := a.waitDone(id)

	checkAllSent(t, st, devices)
	r := fx.report(tokens, title)
	fx.checkEveryoneReached(r, devices)
	t.Logf("killed with %d sends queued, %d of them past the resume point (device %d); %d pushes sent before the resumed "+
		"dispatch enqueued; duplicates: %d tokens, %d extra pushes", k.queued, k.past(), k.cursor, sentBeforeResume,
		r.dupTokens, r.extra)
	if r.extra > 0 {
		t.Errorf("%d devices got the push more than once (%d extra pushes); want exactly one each: the resumed "+
			"dispatch enqueued again sends that had finished since it read them as pending", r.dupTokens, r.extra)
	}
	worker.alive()
}

// gatedEnqueuer holds every enqueue until open is closed, and closes
// reached at the first.
type gatedEnqueuer struct {
	dispatcher.Enqueuer
	once    sync.Once
	reached chan struct{}
	open    chan struct{}
}

func (g *gatedEnqueuer) EnqueueContext(ctx context.Context, task *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error) {
	g.once.Do(func() { close(g.reached) })
	select {
	case <-g.open:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return g.Enqueuer.EnqueueContext(ctx, task, opts...)
}
