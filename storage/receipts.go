package storage

import (
	"context"
	"fmt"
	"time"
)

// Receipt is an app's word that a push of a post reached its device and,
// if DisplayedAt is set, was shown.
type Receipt struct {
	PostID, DeviceID int64
	ReceivedAt       time.Time
	// DisplayedAt is zero until the notification was shown.
	DisplayedAt time.Time
}

// Reach is what a post's receipts say: how many devices received it and
// showed it, and how long after the post's origin (the alert's sent time,
// else its acceptance) the receipts say it arrived. The latencies are nil
// while there is no receipt.
type Reach struct {
	Received, Displayed int
	First, Median, P95  *time.Duration
}

// WriteReceipts stores a batch of receipts in one statement and answers how
// many were stored. A receipt for a (post, device) without a delivery is
// ignored: the device was never sent the post, whatever its app says.
// Times are clamped to the post's creation (a phone's clock can be behind),
// received to no later than displayed; a pair already stored keeps its
// earliest times, so a repeated receipt changes nothing (and writes no row
// version). A pair twice in the batch counts once.
func (db *DB) WriteReceipts(ctx context.Context, rs []Receipt) (int, error) {
	if len(rs) == 0 {
		return 0, nil
	}
	posts, devices := make([]int64, len(rs)), make([]int64, len(rs))
	received, displayed := make([]time.Time, len(rs)), make([]*time.Time, len(rs))
	for i, r := range rs {
		posts[i], devices[i], received[i] = r.PostID, r.DeviceID, r.ReceivedAt
		if !r.DisplayedAt.IsZero() {
			displayed[i] = &rs[i].DisplayedAt
		}
	}
	// Grouped, because ON CONFLICT may not touch a row twice in one
	// statement; ordered, so that concurrent batches lock rows in one
	// order and cannot deadlock.
	tag, err := db.pool.Exec(ctx, `
		INSERT INTO receipts AS r (post_id, device_id, received_at, displayed_at)
		SELECT b.post_id, b.device_id,
			greatest(least(min(b.received_at), min(b.displayed_at)), p.created_at),
			CASE WHEN min(b.displayed_at) IS NOT NULL THEN greatest(min(b.displayed_at), p.created_at) END
		FROM unnest($1::bigint[], $2::bigint[], $3::timestamptz[], $4::timestamptz[])
			AS b(post_id, device_id, received_at, displayed_at)
		JOIN deliveries d ON d.post_id = b.post_id AND d.device_id = b.device_id
		JOIN posts p ON p.id = b.post_id
		GROUP BY b.post_id, b.device_id, p.created_at
		ORDER BY b.post_id, b.device_id
		ON CONFLICT (post_id, device_id) DO UPDATE
		SET received_at = least(r.received_at, excluded.received_at),
			displayed_at = least(r.displayed_at, excluded.displayed_at)
		WHERE r.received_at > excluded.received_at
			OR r.displayed_at IS DISTINCT FROM least(r.displayed_at, excluded.displayed_at)`,
		posts, devices, received, displayed)
	if err != nil {
		return 0, fmt.Errorf("write %d receipts: %w", len(rs), err)
	}
	return int(tag.RowsAffected()), nil
}

// PostReach reads a post's reach from its receipts: the counts, and the
// first, median and 95th-percentile latency from the post's origin (its
// origin_sent_at, else created_at) to each device's receipt, never below
// zero. One pass over the post's receipts, by the primary key.
func (db *DB) PostReach(ctx context.Context, postID int64) (Reach, error) {
	var out Reach
	var first, median, p95 *float64
	err := db.pool.QueryRow(ctx, `
		SELECT count(*), count(x.displayed_at), min(x.ms),
			percentile_cont(0.5) WITHIN GROUP (ORDER BY x.ms),
			percentile_cont(0.95) WITHIN GROUP (ORDER BY x.ms)
		FROM (SELECT r.displayed_at,
				greatest(0, extract(epoch FROM r.received_at - coalesce(p.origin_sent_at, p.created_at)) * 1000)::float8 AS ms
			FROM receipts r JOIN posts p ON p.id = r.post_id
			WHERE r.post_id = $1) x`, postID).Scan(&out.Received, &out.Displayed, &first, &median, &p95)
	if err != nil {
		return Reach{}, fmt.Errorf("reach of post %d: %w", postID, err)
	}
	out.First, out.Median, out.P95 = millis(first), millis(median), millis(p95)
	return out, nil
}

func millis(ms *float64) *time.Duration {
	if ms == nil {
		return nil
	}
	d := time.Duration(*ms * float64(time.Millisecond))
	return &d
}

// ReceiptDevice finds what a receipt needs of an installation: its id and
// the hash of its device secret (nil before device secrets). Lighter than
// DeviceByInstallation, as every phone asks it at once when an alert goes
// out.
func (db *DB) ReceiptDevice(ctx context.Context, tenantID int64, installationID string) (Device, error) {
	d := Device{TenantID: tenantID, InstallationID: installationID}
	err := db.pool.QueryRow(ctx, `SELECT id, secret_hash FROM devices WHERE tenant_id = $1 AND installation_id = $2`,
		tenantID, installationID).Scan(&d.ID, &d.SecretHash)
	if err != nil {
		return Device{}, notFound(err, fmt.Sprintf("device %q", installationID))
	}
	return d, nil
}
