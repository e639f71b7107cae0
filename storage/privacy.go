package storage

import (
	"context"
	"fmt"
	"time"

	"github.com/crier-push/crier"
)

// A tenant may send ID-only pushes (DESIGN.md, data lifecycle): a push then
// carries the post id and a generic text, never the post's content, which
// Google and Apple would otherwise see; the app fetches the content from
// crier with its device secret (DevicePost). Emergency posts carry their
// text whatever the setting.

// TenantIDOnlyPushes reports whether a tenant's pushes carry only the post
// id. The workers read it with the post (Post.IDOnlyPushes), not here.
func (db *DB) TenantIDOnlyPushes(ctx context.Context, tenantID int64) (bool, error) {
	var on bool
	err := db.pool.QueryRow(ctx, `SELECT id_only_pushes FROM tenants WHERE id = $1`, tenantID).Scan(&on)
	if err != nil {
		return false, notFound(err, fmt.Sprintf("tenant %d", tenantID))
	}
	return on, nil
}

// SetTenantIDOnlyPushes turns a tenant's ID-only pushes on or off (the
// operator's). Workers see the change within their post cache's TTL.
func (db *DB) SetTenantIDOnlyPushes(ctx context.Context, tenantID int64, on bool) error {
	tag, err := db.pool.Exec(ctx, `UPDATE tenants SET id_only_pushes = $2 WHERE id = $1`, tenantID, on)
	if err != nil {
		return fmt.Errorf("set id-only pushes of tenant %d: %w", tenantID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("set id-only pushes of tenant %d: %w", tenantID, ErrNotFound)
	}
	return nil
}

// DevicePost is a post as one device may read it: the post, its feed's
// name, the device's locale (to choose the text in), and the device's
// delivery of it.
type DevicePost struct {
	Post     Post
	FeedName string
	Locale   string
	// Delivery is the state of the device's delivery; SentAt when the
	// push went out, nil while it has not (or the outcome is not written
	// yet: outcomes are recorded in batches, and a phone may ask before).
	Delivery crier.DeliveryState
	SentAt   *time.Time
}

// DevicePost reads a post of the tenant for one of its devices, found only
// if the device has a delivery of it: a post the device was never sent is
// ErrNotFound, exactly as a post that does not exist, so the app key and a
// device secret reveal nothing of other posts. One read by the primary keys
// of posts and deliveries (DeviceDelivery).
func (db *DB) DevicePost(ctx context.Context, tenantID, deviceID, postID int64) (DevicePost, error) {
	d, err := db.DeviceDelivery(ctx, tenantID, deviceID, postID)
	if err != nil {
		return DevicePost{}, err
	}
	return DevicePost{Post: d.Post, FeedName: d.FeedName, Locale: d.Locale, Delivery: d.State, SentAt: d.SentAt}, nil
}

// withColumns is a row of postColumns and more: its Scan hands the columns
// after the post's to extra, so scanPost stays the one reader of a post.
type withColumns struct {
	row interface{ Scan(...any) error }
	// extra are the destinations of the columns after postColumns.
	extra []any
}

func (r withColumns) Scan(dest ...any) error {
	return r.row.Scan(append(dest, r.extra...)...)
}
