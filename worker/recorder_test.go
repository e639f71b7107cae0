package worker

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/internal/testenv"
	"github.com/crier-push/crier/storage"
)

// recorderFixture makes a post with n pending deliveries (devices 1..n);
// it returns the tenant's id and the post's.
func recorderFixture(t *testing.T, n int) (*storage.DB, int64, int64) {
	t.Helper()
	db := testenv.DB(t)
	ctx := context.Background()
	tn := testenv.Tenant(t, db, "vestfold", "Vestfold", "")
	pub := testenv.Publisher(t, db, tn.ID, "kommune", "Kommunen", crier.RoleMunicipality)
	feed := testenv.Feed(t, db, tn.ID, pub.ID, "viktig", "Viktig", true)
	post, _, err := db.CreatePost(ctx, storage.Post{TenantID: tn.ID, FeedID: feed.ID, PublisherID: pub.ID,
		Title: "Kokevarsel", Body: "Kok vannet.", Class: "official", PublishAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `INSERT INTO deliveries (post_id, device_id, provider)
		SELECT $1, g, 'fcm' FROM generate_series(1, $2::int) g`, post.ID, n); err != nil {
		t.Fatal(err)
	}
	return db, tn.ID, post.ID
}

// TestCancelWhileRecording: cancelling a post while its outcomes are being
// written neither fails nor deadlocks, and the post's counts add up. (With a
// foreign key from the counts to the post, the cancellation's lock on the
// post and an outcome statement's locks on deliveries deadlocked.)
func TestCancelWhileRecording(t *testing.T) {
	t.Parallel()
	const n = 3000
	db, tenantID, postID := recorderFixture(t, n)
	ctx := context.Background()
	// Several recorders, as in several workers, on several connections:
	// outcomes of new states and slots keep adding count rows.
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	// A recorder retries a failed write, which hides a deadlock from Record:
	// the recorders' warnings show it.
	warned := &warnings{}
	recs := make([]*Recorder, 4)
	for i := range recs {
		rec, err := NewRecorder(db, RecorderConfig{Linger: time.Millisecond, Logger: slog.New(warned)})
		if err != nil {
			t.Fatal(err)
		}
		recs[i] = rec
		go rec.Run(runCtx)
	}
	states := []crier.DeliveryState{crier.DeliverySent, crier.DeliveryDeadToken, crier.DeliveryFailed}
	var wg sync.WaitGroup
	for w := range 40 {
		wg.Go(func() {
			for d := w + 1; d <= n; d += 40 {
				o := storage.Outcome{PostID: postID, DeviceID: int64(d), State: states[d%3]}
				if err := recs[w%len(recs)].Record(ctx, o); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	// Cancel as soon as the outcomes are being written: while the first
	// statements still add the post's count rows (TestCancelAndRecordDoNotDeadlock
	// makes that collision every time).
	waitFor(t, "the first outcomes to be written", func() bool {
		var written bool
		if err := db.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM deliveries WHERE post_id = $1 AND state <> 'pending')`,
			postID).Scan(&written); err != nil {
			t.Fatal(err)
		}
		return written
	})
	cancelled, err := db.CancelPost(ctx, tenantID, postID)
	wg.Wait()
	if err != nil {
		t.Fatalf("cancel while recording: %v", err)
	}
	for _, w := range warned.all() {
		t.Errorf("a recorder, while the post was cancelled: %s", w)
	}
	pr, err := db.PostProgress(ctx, postID)
	if err != nil {
		t.Fatal(err)
	}
	done := pr.Counts[crier.DeliverySent] + pr.Counts[crier.DeliveryDeadToken] + pr.Counts[crier.DeliveryFailed]
	if pr.Counts[crier.DeliveryCancelled] != cancelled || done+cancelled != n || pr.Total != n {
		t.Fatalf("counts %v after %d cancelled of %d", pr.Counts, cancelled, n)
	}
	t.Logf("%d recorded, %d cancelled", done, cancelled)
}

// TestCancelAndRecordDoNotDeadlock stages the collision behind
// TestCancelWhileRecording every time: a cancellation holds the post and
// waits for a delivery (held here by another transaction), while an
// outcome of another of the post's deliveries is written and adds a count
// row. Had the counts a foreign key to the post, the outcome's statement
// would wait for the post, and the cancellation, once let go, for the
// outcome's delivery: a deadlock. The outcome is written at once, and the
// cancellation then cancels every other delivery.
func TestCancelAndRecordDoNotDeadlock(t *testing.T) {
	t.Parallel()
	const n = 10
	db, tenantID, postID := recorderFixture(t, n)
	ctx := context.Background()
	warned := &warnings{}
	rec, err := NewRecorder(db, RecorderConfig{Linger: -1, Logger: slog.New(warned)})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	stopped := make(chan struct{})
	go func() { rec.Run(runCtx); close(stopped) }()
	defer func() { stop(); <-stopped }()
	// waiting reports whether a statement of this database whose text
	// contains what waits for a lock.
	waiting := func(what string) bool {
		var n int
		if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND strpos(query, $1) > 0`, what).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n > 0
	}

	// Another transaction holds delivery 1, the first the cancellation
	// comes to.
	blocker, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer blocker.Rollback(ctx) //nolint:errcheck // rolled back below
	if _, err := blocker.Exec(ctx, `SELECT 1 FROM deliveries WHERE post_id = $1 AND device_id = 1 FOR UPDATE`, postID); err != nil {
		t.Fatal(err)
	}
	type result struct {
		n   int
		err error
	}
	cancelled := make(chan result, 1)
	go func() {
		n, err := db.CancelPost(ctx, tenantID, postID)
		cancelled <- result{n, err}
	}()
	waitFor(t, "the cancellation to hold the post and wait for delivery 1", func() bool { return waiting("post_cancelled") })

	// The outcome of delivery 2: written at once, or stuck behind the
	// cancellation's hold on the post.
	recorded := make(chan error, 1)
	go func() {
		recorded <- rec.Record(ctx, storage.Outcome{PostID: postID, DeviceID: 2, State: crier.DeliverySent, CountAttempt: true})
	}()
	var recordErr error
	outcomeDone := false
	waitFor(t, "the outcome to be written or to wait", func() bool {
		select {
		case recordErr = <-recorded:
			outcomeDone = true
			return true
		default:
		}
		return waiting("unnest")
	})
	if err := blocker.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	var c result
	select {
	case c = <-cancelled:
	case <-time.After(time.Minute):
		t.Fatal("the cancellation did not finish within a minute")
	}
	if !outcomeDone {
		select {
		case recordErr = <-recorded:
		case <-time.After(time.Minute):
			t.Fatal("the outcome was not written within a minute")
		}
	}
	if c.err != nil {
		t.Errorf("cancel: %v", c.err)
	}
	if recordErr != nil {
		t.Errorf("record: %v", recordErr)
	}
	for _, w := range warned.all() {
		t.Errorf("the recorder: %s", w)
	}
	if !outcomeDone {
		t.Errorf("the outcome of delivery 2 waited for the cancellation's hold on the post")
	}
	var state crier.DeliveryState
	if err := db.Pool.QueryRow(ctx, `SELECT state FROM deliveries WHERE post_id = $1 AND device_id = 2`, postID).Scan(&state); err != nil {
		t.Fatal(err)
	}
	pr, err := db.PostProgress(ctx, postID)
	if err != nil {
		t.Fatal(err)
	}
	if state != crier.DeliverySent || c.n != n-1 || pr.Counts[crier.DeliverySent] != 1 || pr.Counts[crier.DeliveryCancelled] != n-1 {
		t.Errorf("delivery 2 %s, %d cancelled, counts %v; want delivery 2 sent and the other %d cancelled", state, c.n, pr.Counts, n-1)
	}
}

// TestRecorderGroupCommits: outcomes handed over at once are written
// together, within the linger, and each Record returns only once its
// outcome is in the database; a lone outcome waits for the linger, and one
// waiting when the recorder stops is written all the same.
func TestRecorderGroupCommits(t *testing.T) {
	t.Parallel()
	const n, linger = 100, 300 * time.Millisecond
	db, _, postID := recorderFixture(t, n+2)
	ctx := context.Background()
	rec, err := NewRecorder(db, RecorderConfig{Linger: linger})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	stopped := make(chan struct{})
	go func() { rec.Run(runCtx); close(stopped) }()

	var wg sync.WaitGroup
	errs := make(chan error, n)
	for d := range n {
		wg.Go(func() {
			errs <- rec.Record(ctx, storage.Outcome{PostID: postID, DeviceID: int64(d + 1), State: crier.DeliverySent,
				CountAttempt: true})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// now() is the transaction's start: rows written by one statement
	// share their updated_at.
	var sent, statements int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE state = 'sent'), count(DISTINCT updated_at)
		FROM deliveries WHERE post_id = $1 AND device_id <= $2`, postID, n).Scan(&sent, &statements); err != nil {
		t.Fatal(err)
	}
	if sent != n {
		t.Fatalf("%d of %d outcomes written when every Record had returned", sent, n)
	}
	if statements > 2 {
		t.Errorf("%d outcomes handed over at once took %d statements; want them together (at most 2)", n, statements)
	}

	start := time.Now()
	if err := rec.Record(ctx, storage.Outcome{PostID: postID, DeviceID: n + 1, State: crier.DeliverySent}); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < linger {
		t.Errorf("a lone outcome was written after %s, before the linger of %s", took, linger)
	}

	stop()
	<-stopped

	// Stopping a recorder while an outcome lingers writes it. The outcome
	// is handed over before the recorder runs, so that the test sees the
	// recorder take it; with a linger of an hour it is still lingering when
	// the recorder is stopped.
	lingering, err := NewRecorder(db, RecorderConfig{Linger: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- lingering.Record(ctx, storage.Outcome{PostID: postID, DeviceID: n + 2, State: crier.DeliveryDeadToken, Reason: "UNREGISTERED"})
	}()
	waitFor(t, "the outcome to be handed over", func() bool { return len(lingering.in) == 1 })
	runCtx, stop = context.WithCancel(ctx)
	stopped = make(chan struct{})
	go func() { lingering.Run(runCtx); close(stopped) }()
	waitFor(t, "the recorder to take the outcome", func() bool { return len(lingering.in) == 0 })
	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("stopping the recorder did not write the outcome lingering in it within a minute")
	}
	<-stopped
	var state crier.DeliveryState
	if err := db.Pool.QueryRow(ctx, `SELECT state FROM deliveries WHERE post_id = $1 AND device_id = $2`, postID, n+2).
		Scan(&state); err != nil {
		t.Fatal(err)
	}
	if state != crier.DeliveryDeadToken {
		t.Fatalf("the outcome recorded while stopping: state %s", state)
	}
}

// waitFor polls cond until it holds, for at most a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited a minute for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// warnings is a slog handler that keeps the warnings and errors logged.
type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (w *warnings) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, b.String())
	return nil
}

func (w *warnings) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w *warnings) WithGroup(string) slog.Handler      { return w }

func (w *warnings) all() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.msgs...)
}
