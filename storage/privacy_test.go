package storage_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/internal/testenv"
	"github.com/crier-push/crier/storage"
)

// TestIDOnlyPushesSetting: the tenant's setting is off by default, set by
// the operator, and read with every post, with the tenant's name, so that
// a worker's cached post is all a send needs.
func TestIDOnlyPushesSetting(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testenv.DB(t)
	tn := testenv.Tenant(t, db, "privat", "Privat kommune", "")
	other := testenv.Tenant(t, db, "open", "Open kommune", "")
	pub := testenv.Publisher(t, db, tn.ID, "kommunen", "Kommunen", crier.RoleMunicipality)
	feed := testenv.Feed(t, db, tn.ID, pub.ID, "nyheter", "Nyheter", false)
	post := insertPrivacyPost(t, db, tn.ID, feed.ID, pub.ID)

	if on, err := db.TenantIDOnlyPushes(ctx, tn.ID); err != nil || on {
		t.Fatalf("a new tenant's ID-only pushes: %v, %v; want off", on, err)
	}
	if err := db.SetTenantIDOnlyPushes(ctx, tn.ID, true); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[int64]bool{tn.ID: true, other.ID: false} {
		if on, err := db.TenantIDOnlyPushes(ctx, id); err != nil || on != want {
			t.Errorf("tenant %d: ID-only %v, %v; want %v", id, on, err, want)
		}
	}
	p, err := db.PostByID(ctx, post)
	if err != nil {
		t.Fatal(err)
	}
	if !p.IDOnlyPushes || p.TenantName != "Privat kommune" || p.TenantLanguage != "nb" {
		t.Errorf("post read with ID-only %v, tenant name %q, language %q; want true, Privat kommune, nb",
			p.IDOnlyPushes, p.TenantName, p.TenantLanguage)
	}
	if err := db.SetTenantIDOnlyPushes(ctx, tn.ID, false); err != nil {
		t.Fatal(err)
	}
	if p, err := db.Post(ctx, tn.ID, post); err != nil || p.IDOnlyPushes {
		t.Errorf("after turning it off the post reads ID-only %v, %v", p.IDOnlyPushes, err)
	}
	if err := db.SetTenantIDOnlyPushes(ctx, 1<<40, true); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("an unknown tenant's setting: %v, want ErrNotFound", err)
	}
	if _, err := db.TenantIDOnlyPushes(ctx, 1<<40); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("an unknown tenant's setting read: %v, want ErrNotFound", err)
	}
}

// TestDevicePost: a device reads a post only through its delivery of it;
// a device of the tenant without one, and any device of another tenant,
// find nothing.
func TestDevicePost(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testenv.DB(t)
	tn := testenv.Tenant(t, db, "privat", "Privat kommune", "")
	other := testenv.Tenant(t, db, "nabo", "Nabo kommune", "")
	pub := testenv.Publisher(t, db, tn.ID, "kommunen", "Kommunen", crier.RoleMunicipality)
	feed := testenv.Feed(t, db, tn.ID, pub.ID, "nyheter", "Nyheter fra kommunen", false)
	post := insertPrivacyPost(t, db, tn.ID, feed.ID, pub.ID)
	sent := insertPrivacyDevice(t, db, tn.ID, "sent", "en-GB")
	unsent := insertPrivacyDevice(t, db, tn.ID, "unsent", "nb")
	stranger := insertPrivacyDevice(t, db, other.ID, "stranger", "nb")
	for _, d := range []int64{sent, stranger} {
		// A delivery of another tenant's device cannot come from crier;
		// it stands for any row a query forgets to fence by tenant.
		if _, err := db.Pool.Exec(ctx, `INSERT INTO deliveries (post_id, device_id, provider) VALUES ($1, $2, 'fcm')`,
			post, d); err != nil {
			t.Fatal(err)
		}
	}

	dp, err := db.DevicePost(ctx, tn.ID, sent, post)
	if err != nil {
		t.Fatal(err)
	}
	if dp.Post.ID != post || dp.Post.Title != "Vannet er stengt" || dp.FeedName != "Nyheter fra kommunen" ||
		dp.Post.FeedSlug != "nyheter" || dp.Locale != "en-GB" || dp.Delivery != crier.DeliveryPending || dp.SentAt != nil {
		t.Errorf("device post = %+v", dp)
	}
	at := time.Date(2025, 3, 1, 12, 0, 1, 0, time.UTC)
	if _, err := db.Pool.Exec(ctx, `UPDATE deliveries SET state = 'sent', sent_at = $3 WHERE post_id = $1 AND device_id = $2`,
		post, sent, at); err != nil {
		t.Fatal(err)
	}
	if dp, err := db.DevicePost(ctx, tn.ID, sent, post); err != nil || dp.Delivery != crier.DeliverySent ||
		dp.SentAt == nil || !dp.SentAt.Equal(at) {
		t.Errorf("after the send: %+v, %v; want sent at %s", dp, err, at)
	}

	for _, c := range []struct {
		name           string
		tenant, device int64
		post           int64
	}{
		{"a device without a delivery", tn.ID, unsent, post},
		{"a post that does not exist", tn.ID, sent, post + 1000},
		{"another tenant's device", other.ID, stranger, post},
		{"the device asked through another tenant", other.ID, sent, post},
	} {
		if _, err := db.DevicePost(ctx, c.tenant, c.device, c.post); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("%s: %v, want ErrNotFound", c.name, err)
		}
	}
}

func insertPrivacyPost(t *testing.T, db *storage.DB, tenantID, feedID, publisherID int64) int64 {
	t.Helper()
	var id int64
	if err := db.Pool.QueryRow(context.Background(), `INSERT INTO posts (tenant_id, feed_id, publisher_id, title, body, class)
		VALUES ($1, $2, $3, 'Vannet er stengt', 'Storgata i dag.', 'official') RETURNING id`,
		tenantID, feedID, publisherID).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

func insertPrivacyDevice(t *testing.T, db *storage.DB, tenantID int64, installation, locale string) int64 {
	t.Helper()
	var id int64
	if err := db.Pool.QueryRow(context.Background(), `INSERT INTO devices (tenant_id, installation_id, provider, platform, token, locale)
		VALUES ($1, $2, 'fcm', 'android', $2, $3) RETURNING id`, tenantID, installation, locale).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}
