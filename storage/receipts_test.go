package storage_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/internal/testenv"
	"github.com/crier-push/crier/storage"
)

// receiptEnv is a post created at a known time, sent to n devices (each
// with a delivery), and one more device it was never sent.
type receiptEnv struct {
	db      *storage.DB
	post    int64
	created time.Time
	devices []int64
	unsent  int64
}

func newReceiptEnv(t *testing.T, n int, originSent *time.Time) receiptEnv {
	t.Helper()
	ctx := context.Background()
	db := testenv.DB(t)
	tn := testenv.Tenant(t, db, "reach", "Reach", "")
	pub := testenv.Publisher(t, db, tn.ID, "kommunen", "Kommunen", crier.RoleMunicipality)
	feed := testenv.Feed(t, db, tn.ID, pub.ID, "nyheter", "Nyheter", false)
	e := receiptEnv{db: db, created: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
	if err := db.Pool.QueryRow(ctx, `INSERT INTO posts (tenant_id, feed_id, publisher_id, title, body, class, created_at, origin_sent_at)
		VALUES ($1, $2, $3, 'Flom', 'Evakuer', 'official', $4, $5) RETURNING id`,
		tn.ID, feed.ID, pub.ID, e.created, originSent).Scan(&e.post); err != nil {
		t.Fatal(err)
	}
	for i := range n + 1 {
		var id int64
		if err := db.Pool.QueryRow(ctx, `INSERT INTO devices (tenant_id, installation_id, provider, platform, token)
			VALUES ($1, $2, 'fcm', 'android', $2) RETURNING id`, tn.ID, fmt.Sprintf("d%d", i)).Scan(&id); err != nil {
			t.Fatal(err)
		}
		if i == n {
			e.unsent = id
			break
		}
		e.devices = append(e.devices, id)
		if _, err := db.Pool.Exec(ctx, `INSERT INTO deliveries (post_id, device_id, provider) VALUES ($1, $2, 'fcm')`,
			e.post, id); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

func (e receiptEnv) write(t *testing.T, rs ...storage.Receipt) int {
	t.Helper()
	n, err := e.db.WriteReceipts(context.Background(), rs)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func (e receiptEnv) reach(t *testing.T) storage.Reach {
	t.Helper()
	r, err := e.db.PostReach(context.Background(), e.post)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (e receiptEnv) stored(t *testing.T) map[int64][2]*time.Time {
	t.Helper()
	rows, err := e.db.Pool.Query(context.Background(), `SELECT device_id, received_at, displayed_at FROM receipts WHERE post_id = $1`, e.post)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[int64][2]*time.Time{}
	for rows.Next() {
		var id int64
		var rec, disp *time.Time
		if err := rows.Scan(&id, &rec, &disp); err != nil {
			t.Fatal(err)
		}
		out[id] = [2]*time.Time{utc(rec), utc(disp)}
	}
	return out
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func dur(ms int) *time.Duration {
	d := time.Duration(ms) * time.Millisecond
	return &d
}

// TestReceiptsIdempotent: a repeated receipt writes nothing and changes
// nothing; a later one keeps the earliest received time and adds the
// display; a pair twice in one batch is one row; times before the post
// are clamped to it, and received to no later than displayed.
func TestReceiptsIdempotent(t *testing.T) {
	t.Parallel()
	e := newReceiptEnv(t, 3, nil)
	at := func(s int) time.Time { return e.created.Add(time.Duration(s) * time.Second) }
	d0, d1, d2 := e.devices[0], e.devices[1], e.devices[2]
	if n := e.write(t, storage.Receipt{PostID: e.post, DeviceID: d0, ReceivedAt: at(2)},
		storage.Receipt{PostID: e.post, DeviceID: d1, ReceivedAt: at(-60)},
		storage.Receipt{PostID: e.post, DeviceID: d2, ReceivedAt: at(9), DisplayedAt: at(7)},
		storage.Receipt{PostID: e.post, DeviceID: d2, ReceivedAt: at(8)}); n != 3 {
		t.Errorf("first batch stored %d, want 3 (one per pair)", n)
	}
	if n := e.write(t, storage.Receipt{PostID: e.post, DeviceID: d0, ReceivedAt: at(2)}); n != 0 {
		t.Errorf("the same receipt again stored %d rows, want 0", n)
	}
	if n := e.write(t, storage.Receipt{PostID: e.post, DeviceID: d0, ReceivedAt: at(5), DisplayedAt: at(6)}); n != 1 {
		t.Errorf("the display of d0 stored %d rows, want 1", n)
	}
	if n := e.write(t, storage.Receipt{PostID: e.post, DeviceID: d0, ReceivedAt: at(4), DisplayedAt: at(30)}); n != 0 {
		t.Errorf("a later display of d0 stored %d rows, want 0 (the earliest is kept)", n)
	}
	p := func(tm time.Time) *time.Time { return &tm }
	want := map[int64][2]*time.Time{
		d0: {p(at(2)), p(at(6))},
		d1: {p(at(0)), nil},
		d2: {p(at(7)), p(at(7))},
	}
	if diff := cmp.Diff(want, e.stored(t)); diff != "" {
		t.Errorf("receipts stored (-want +got):\n%s", diff)
	}
}

// TestReceiptsNeedADelivery: a receipt for a device the post was never
// sent, or for a post that does not exist, is not stored and counts for
// nothing, even in a batch with good receipts.
func TestReceiptsNeedADelivery(t *testing.T) {
	t.Parallel()
	e := newReceiptEnv(t, 1, nil)
	at := e.created.Add(time.Second)
	n := e.write(t, storage.Receipt{PostID: e.post, DeviceID: e.unsent, ReceivedAt: at},
		storage.Receipt{PostID: e.post + 1000, DeviceID: e.devices[0], ReceivedAt: at},
		storage.Receipt{PostID: e.post, DeviceID: e.devices[0], ReceivedAt: at})
	if n != 1 {
		t.Errorf("stored %d receipts, want only the delivered one", n)
	}
	if r := e.reach(t); r.Received != 1 {
		t.Errorf("reach counts %d received, want 1", r.Received)
	}
}

// TestReachFigures: counts and latencies on known data: 20 devices
// received at 1..20 s after the alert's origin (its sent time, 10 s before
// crier accepted it), 5 of them displayed it.
func TestReachFigures(t *testing.T) {
	t.Parallel()
	created := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	origin := created.Add(-10 * time.Second)
	e := newReceiptEnv(t, 21, &origin)
	if r := e.reach(t); !cmp.Equal(r, storage.Reach{}) {
		t.Errorf("reach before any receipt: %+v, want zero counts and no latencies", r)
	}
	var rs []storage.Receipt
	for i, id := range e.devices[:20] {
		r := storage.Receipt{PostID: e.post, DeviceID: id, ReceivedAt: origin.Add(time.Duration(i+11) * time.Second)}
		if i%4 == 0 {
			r.DisplayedAt = r.ReceivedAt.Add(time.Minute)
		}
		rs = append(rs, r)
	}
	e.write(t, rs...)
	// Received 11..30 s after the origin: first 11 s; the median of 20
	// (interpolated) 20.5 s; p95 at rank 0.95*19 = 18.05: 29 + 0.05 s.
	want := storage.Reach{Received: 20, Displayed: 5, First: dur(11000), Median: dur(20500), P95: dur(29050)}
	if diff := cmp.Diff(want, e.reach(t)); diff != "" {
		t.Errorf("reach (-want +got):\n%s", diff)
	}
}

// TestReachFromAcceptance: without an origin sent time, latency counts
// from the post's creation.
func TestReachFromAcceptance(t *testing.T) {
	t.Parallel()
	e := newReceiptEnv(t, 1, nil)
	e.write(t, storage.Receipt{PostID: e.post, DeviceID: e.devices[0], ReceivedAt: e.created.Add(1500 * time.Millisecond)})
	want := storage.Reach{Received: 1, First: dur(1500), Median: dur(1500), P95: dur(1500)}
	if diff := cmp.Diff(want, e.reach(t)); diff != "" {
		t.Errorf("reach (-want +got):\n%s", diff)
	}
}

// BenchmarkWriteReceipts writes batches of 500 receipts of distinct
// devices, as the receipt writer does during an alert's flood.
func BenchmarkWriteReceipts(b *testing.B) {
	ctx := context.Background()
	db := testenv.DB(b)
	tn := testenv.Tenant(b, db, "reach", "Reach", "")
	pub := testenv.Publisher(b, db, tn.ID, "kommunen", "Kommunen", crier.RoleMunicipality)
	feed := testenv.Feed(b, db, tn.ID, pub.ID, "nyheter", "Nyheter", false)
	var post int64
	if err := db.Pool.QueryRow(ctx, `INSERT INTO posts (tenant_id, feed_id, publisher_id, title, body, class)
		VALUES ($1, $2, $3, 'Flom', 'Evakuer', 'emergency') RETURNING id`, tn.ID, feed.ID, pub.ID).Scan(&post); err != nil {
		b.Fatal(err)
	}
	const batch = 500
	n := b.N * batch
	if _, err := db.Pool.Exec(ctx, `INSERT INTO deliveries (post_id, device_id, provider)
		SELECT $1, g, 'fcm' FROM generate_series(1, $2) g`, post, n); err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	b.ResetTimer()
	for i := range b.N {
		rs := make([]storage.Receipt, batch)
		for j := range rs {
			rs[j] = storage.Receipt{PostID: post, DeviceID: int64(i*batch + j + 1), ReceivedAt: now}
		}
		if _, err := db.WriteReceipts(ctx, rs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "receipts/s")
}
