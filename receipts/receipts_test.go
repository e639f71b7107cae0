package receipts_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/internal/testenv"
	"github.com/crier-push/crier/receipts"
	"github.com/crier-push/crier/storage"
)

// sentPost is a post with deliveries to devices 1..n (device ids need no
// device rows: deliveries outlive devices).
func sentPost(t *testing.T, n int) (*storage.DB, int64) {
	t.Helper()
	ctx := context.Background()
	db := testenv.DB(t)
	tn := testenv.Tenant(t, db, "reach", "Reach", "")
	pub := testenv.Publisher(t, db, tn.ID, "kommunen", "Kommunen", crier.RoleMunicipality)
	feed := testenv.Feed(t, db, tn.ID, pub.ID, "beredskap", "Beredskap", false)
	var post int64
	if err := db.Pool.QueryRow(ctx, `INSERT INTO posts (tenant_id, feed_id, publisher_id, title, body, class)
		VALUES ($1, $2, $3, 'Flom', 'Evakuer', 'emergency') RETURNING id`, tn.ID, feed.ID, pub.ID).Scan(&post); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `INSERT INTO deliveries (post_id, device_id, provider)
		SELECT $1, g, 'fcm' FROM generate_series(1, $2) g`, post, n); err != nil {
		t.Fatal(err)
	}
	return db, post
}

func receiptsFor(post int64, from, to int) []storage.Receipt {
	var rs []storage.Receipt
	for d := from; d <= to; d++ {
		rs = append(rs, storage.Receipt{PostID: post, DeviceID: int64(d), ReceivedAt: time.Now()})
	}
	return rs
}

func stored(t *testing.T, db *storage.DB, post int64) int {
	t.Helper()
	var n int
	if err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM receipts WHERE post_id = $1`, post).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func start(t *testing.T, w *receipts.Writer) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
	t.Cleanup(stop)
	return stop
}

// TestWriterBatchesAndFlushes: full batches are written at once, without
// waiting for the interval; what is left is written when Run ends, after
// which receipts are refused as unavailable.
func TestWriterBatchesAndFlushes(t *testing.T) {
	t.Parallel()
	db, post := sentPost(t, 250)
	w, err := receipts.New(db, receipts.Config{Batch: 100, Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, w)
	if err := w.Add(receiptsFor(post, 1, 250)); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
		if n := stored(t, db, post); n != 200 {
			return errors.New("not the two full batches yet")
		}
		return nil
	})
	stop()
	if n := stored(t, db, post); n != 250 {
		t.Errorf("after Run ended %d receipts are stored, want all 250", n)
	}
	err = w.Add(receiptsFor(post, 1, 1))
	if e := crier.AsError(err); e == nil || e.Code != crier.EUNAVAILABLE || e.RetryAfter <= 0 {
		t.Errorf("Add after Run ended: %v, want unavailable with a Retry-After", err)
	}
	st := w.Stats()
	if st.Accepted != 250 || st.Stored != 250 || st.Refused != 1 || st.Batches != 3 {
		t.Errorf("stats %+v, want 250 accepted and stored in 3 batches, 1 refused", st)
	}
}

// TestWriterRefusesWhenFull: past Pending, Add refuses the whole call at
// once (too many, with Retry-After) and takes nothing of it; what fits is
// taken.
func TestWriterRefusesWhenFull(t *testing.T) {
	t.Parallel()
	db, post := sentPost(t, 20)
	w, err := receipts.New(db, receipts.Config{Batch: 5, Pending: 10, RetryAfter: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Add(receiptsFor(post, 1, 8)); err != nil {
		t.Fatal(err)
	}
	err = w.Add(receiptsFor(post, 9, 11))
	if e := crier.AsError(err); e == nil || e.Code != crier.ETOOMANY || e.RetryAfter != 3*time.Second {
		t.Errorf("Add past Pending: %v, want too many with Retry-After 3s", err)
	}
	if err := w.Add(receiptsFor(post, 9, 10)); err != nil {
		t.Errorf("Add of what fits: %v", err)
	}
	stop := start(t, w)
	stop()
	if n := stored(t, db, post); n != 10 {
		t.Errorf("%d stored, want the 10 taken", n)
	}
}

// TestWriterBoundsConcurrency: however many receipts wait, at most Writers
// statements run at once: with the table locked, exactly two inserts wait
// on the lock, and when it is released everything is written.
func TestWriterBoundsConcurrency(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, post := sentPost(t, 40)
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // released below
	if _, err := tx.Exec(ctx, `LOCK TABLE receipts IN EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	w, err := receipts.New(db, receipts.Config{Batch: 2, Writers: 2, Interval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start(t, w)
	for d := 1; d <= 40; d += 2 {
		if err := w.Add(receiptsFor(post, d, d+1)); err != nil {
			t.Fatal(err)
		}
	}
	waiting := func() int {
		var n int
		if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%INSERT INTO receipts%'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	testenv.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
		if waiting() < 2 {
			return errors.New("fewer than two writers waiting")
		}
		return nil
	})
	// A third writer would show by now: the others poll every millisecond.
	for range 20 {
		if n := waiting(); n > 2 {
			t.Fatalf("%d inserts at once, want at most 2", n)
		}
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
		if n := stored(t, db, post); n != 40 {
			return errors.New("not all written yet")
		}
		return nil
	})
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	db := testenv.DB(t)
	for _, c := range []receipts.Config{{Batch: -1}, {Batch: 100, Pending: 10}, {Writers: -1}, {Interval: -time.Second}} {
		if _, err := receipts.New(db, c); err == nil {
			t.Errorf("New(%+v) took a bad config", c)
		}
	}
}

// TestWriterWritesOnInterval: a batch that never fills is written when the
// interval passes, while the writer runs.
func TestWriterWritesOnInterval(t *testing.T) {
	t.Parallel()
	db, post := sentPost(t, 3)
	w, err := receipts.New(db, receipts.Config{Batch: 100, Interval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start(t, w)
	if err := w.Add(receiptsFor(post, 1, 3)); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
		if n := stored(t, db, post); n != 3 {
			return errors.New("not written yet")
		}
		return nil
	})
}
