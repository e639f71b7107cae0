package storage

import (
	"context"
	"fmt"
	"time"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/segments"
)

// Delivery is one post's delivery to one device as its resident may see it:
// the delivery's fate, why the device was in the post's audience, the
// app's receipt, and the post.
type Delivery struct {
	PostID    int64
	State     crier.DeliveryState
	Reason    string
	NotBefore *time.Time // a deferred delivery: when it goes
	CreatedAt time.Time
	SentAt    *time.Time
	Why       segments.WhyText
	// The app's receipt, if it sent one.
	ReceivedAt, DisplayedAt *time.Time
	Post                    Post
	// The post's feed's name, and the device's locale (to choose the
	// post's text in).
	FeedName, Locale string
}

// MaxHistoryPage bounds a page of a device's deliveries.
const MaxHistoryPage = 100

// DeviceDeliveries is a device's deliveries, newest post first, from the
// post before the one given (0: from the newest), at most limit. It walks
// the tenant's posts by id and looks each up in the deliveries' primary key:
// deliveries have no index by device, which the snapshot would pay for on
// every row, and a tenant's posts in retention are thousands.
func (db *DB) DeviceDeliveries(ctx context.Context, tenantID, deviceID, before int64, limit int) ([]Delivery, error) {
	if before <= 0 {
		before = 1<<63 - 1
	}
	return db.deliveries(ctx, `p.id < $3 ORDER BY p.id DESC LIMIT $4`, tenantID, deviceID, before, min(max(limit, 1), MaxHistoryPage))
}

// DeviceDelivery is a device's delivery of one post.
func (db *DB) DeviceDelivery(ctx context.Context, tenantID, deviceID, postID int64) (Delivery, error) {
	ds, err := db.deliveries(ctx, `p.id = $3`, tenantID, deviceID, postID)
	if err != nil {
		return Delivery{}, err
	}
	if len(ds) == 0 {
		return Delivery{}, fmt.Errorf("delivery of post %d: %w", postID, ErrNotFound)
	}
	return ds[0], nil
}

// AllDeviceDeliveries is every delivery of a device, newest first (an
// export).
func (db *DB) AllDeviceDeliveries(ctx context.Context, tenantID, deviceID int64) ([]Delivery, error) {
	return db.deliveries(ctx, `true ORDER BY p.id DESC`, tenantID, deviceID)
}

func (db *DB) deliveries(ctx context.Context, cond string, args ...any) ([]Delivery, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+postColumns+`, f.name, dv.locale, d.state, d.reason, d.not_before,
			d.created_at, d.sent_at, d.why, r.received_at, r.displayed_at
		FROM posts p JOIN feeds f ON f.id = p.feed_id
		JOIN deliveries d ON d.post_id = p.id AND d.device_id = $2
		JOIN devices dv ON dv.id = d.device_id AND dv.tenant_id = p.tenant_id
		LEFT JOIN receipts r ON r.post_id = d.post_id AND r.device_id = d.device_id
		WHERE p.tenant_id = $1 AND `+cond, args...)
	if err != nil {
		return nil, fmt.Errorf("deliveries of device %v: %w", args[1], err)
	}
	defer rows.Close()
	var out []Delivery
	for rows.Next() {
		var d Delivery
		var why string
		p, err := scanPost(withColumns{rows, []any{&d.FeedName, &d.Locale, &d.State, &d.Reason, &d.NotBefore,
			&d.CreatedAt, &d.SentAt, &why, &d.ReceivedAt, &d.DisplayedAt}})
		if err != nil {
			return nil, fmt.Errorf("deliveries of device %v: %w", args[1], err)
		}
		d.PostID, d.Post, d.Why = p.ID, p, segments.ParseWhy(why)
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("deliveries of device %v: %w", args[1], err)
	}
	return out, nil
}
