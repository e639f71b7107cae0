package worker

import (
	"context"
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
	recs := make([]*Recorder, 4)
	for i := range recs {
		recs[i] = NewRecorder(db, RecorderConfig{Linger: time.Millisecond})
		go recs[i].Run(runCtx)
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
	time.Sleep(5 * time.Millisecond)
	cancelled, err := db.CancelPost(ctx, tenantID, postID)
	wg.Wait()
	if err != nil {
		t.Fatalf("cancel while recording: %v", err)
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

// TestRecorderGroupCommits: outcomes handed over at once are written
// together, within the linger, and each Record returns only once its
// outcome is in the database; a lone outcome waits for the linger, and one
// waiting when the recorder stops is written all the same.
func TestRecorderGroupCommits(t *testing.T) {
	t.Parallel()
	const n, linger = 100, 300 * time.Millisecond
	db, _, postID := recorderFixture(t, n+2)
	ctx := context.Background()
	rec := NewRecorder(db, RecorderConfig{Linger: linger})
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

	// Stopping the recorder while an outcome lingers writes it.
	done := make(chan error, 1)
	go func() {
		done <- rec.Record(ctx, storage.Outcome{PostID: postID, DeviceID: n + 2, State: crier.DeliveryDeadToken, Reason: "UNREGISTERED"})
	}()
	time.Sleep(linger / 3)
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
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
