package storage_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/internal/testenv"
	"github.com/crier-push/crier/storage"
)

// keyEnv is a tenant with a municipality and its key, for the key tests.
type keyEnv struct {
	db     *storage.DB
	tenant storage.Tenant
	muni   crier.Publisher
	key    string
	keyID  int64
}

func newKeyEnv(t testing.TB) keyEnv {
	t.Helper()
	ctx := context.Background()
	e := keyEnv{db: testenv.DB(t)}
	e.tenant = testenv.Tenant(t, e.db, "sandefjord", "Sandefjord kommune", "Europe/Oslo")
	e.muni = testenv.Publisher(t, e.db, e.tenant.ID, "kommunen", "Sandefjord kommune", crier.RoleMunicipality)
	k, secret, err := e.db.CreateKey(ctx, storage.Operator("setup"), storage.NewKey{TenantID: e.tenant.ID, PublisherID: &e.muni.ID, Label: "cms"})
	if err != nil {
		t.Fatal(err)
	}
	e.key, e.keyID = secret, k.ID
	return e
}

// usage is what the database holds of a key's use: last_used_at, and the
// row version (xmin), which changes with every write of the row.
func (e keyEnv) usage(t *testing.T) (*time.Time, string) {
	t.Helper()
	var at *time.Time
	var xmin string
	if err := e.db.Pool.QueryRow(context.Background(), `SELECT last_used_at, xmin::text FROM api_keys WHERE id = $1`, e.keyID).
		Scan(&at, &xmin); err != nil {
		t.Fatal(err)
	}
	return at, xmin
}

func (e keyEnv) authenticate(t *testing.T, key string) error {
	t.Helper()
	_, err := e.db.Authenticate(context.Background(), key)
	return err
}

// TestLastUsedAt: authentication notes a key's use, but writes the row at
// most once a minute: a second request within the minute changes nothing
// on disk, one after it moves last_used_at on.
func TestLastUsedAt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newKeyEnv(t)
	if at, _ := e.usage(t); at != nil {
		t.Fatalf("a new key has last_used_at %v", at)
	}
	var before time.Time
	if err := e.db.Pool.QueryRow(ctx, `SELECT now()`).Scan(&before); err != nil {
		t.Fatal(err)
	}
	if err := e.authenticate(t, e.key); err != nil {
		t.Fatal(err)
	}
	first, xmin := e.usage(t)
	if first == nil || first.Before(before) {
		t.Fatalf("after a use, last_used_at %v, want at or after %v", first, before)
	}
	for range 20 {
		if err := e.authenticate(t, e.key); err != nil {
			t.Fatal(err)
		}
	}
	if at, again := e.usage(t); !at.Equal(*first) || again != xmin {
		t.Errorf("20 uses within the minute wrote the row: last_used_at %v (was %v), xmin %s (was %s)", at, first, again, xmin)
	}

	for _, tt := range []struct {
		ago     string
		written bool
	}{{"30 seconds", false}, {"2 minutes", true}} {
		if _, err := e.db.Pool.Exec(ctx, `UPDATE api_keys SET last_used_at = now() - $2::interval WHERE id = $1`, e.keyID, tt.ago); err != nil {
			t.Fatal(err)
		}
		was, xmin := e.usage(t)
		if err := e.authenticate(t, e.key); err != nil {
			t.Fatal(err)
		}
		at, again := e.usage(t)
		if written := again != xmin; written != tt.written {
			t.Errorf("used %s after its last use: row written %v, want %v (last_used_at %v, was %v)", tt.ago, written, tt.written, at, was)
		}
		if tt.written && !at.After(*was) {
			t.Errorf("used %s after its last use: last_used_at %v, not moved on from %v", tt.ago, at, was)
		}
	}
}

// TestRevokeAndRotate: a revoked key is refused at once; a rotation's old
// key works through its grace and not after; the earlier revocation wins;
// a revoked key cannot be rotated; each change is in the audit log.
func TestRevokeAndRotate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newKeyEnv(t)
	op := storage.Operator("rotate-run")

	fresh, secret, old, err := e.db.RotateKey(ctx, op, 0, e.keyID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if fresh.Label != "cms" || fresh.PublisherSlug != "kommunen" || fresh.Kind != crier.KeyPublisher || fresh.TenantID != e.tenant.ID {
		t.Errorf("the new key is not the old one's like: %+v", fresh)
	}
	if old.RevokedAt == nil || time.Until(*old.RevokedAt) < 59*time.Minute {
		t.Errorf("rotated with an hour's grace, the old key is revoked at %v", old.RevokedAt)
	}
	if err := e.authenticate(t, e.key); err != nil {
		t.Errorf("the old key in its grace: %v", err)
	}
	if err := e.authenticate(t, secret); err != nil {
		t.Errorf("the new key: %v", err)
	}

	// Revoking now shortens the grace; revoking again with a grace does
	// not lengthen it.
	now, err := e.db.RevokeKey(ctx, op, e.tenant.ID, e.keyID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.authenticate(t, e.key); !errors.Is(err, storage.ErrBadKey) {
		t.Errorf("the old key revoked: %v, want ErrBadKey", err)
	}
	again, err := e.db.RevokeKey(ctx, op, e.tenant.ID, e.keyID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !again.RevokedAt.Equal(*now.RevokedAt) {
		t.Errorf("revoked again with a grace: revoked_at %v, want the earlier %v", again.RevokedAt, now.RevokedAt)
	}
	if _, _, _, err := e.db.RotateKey(ctx, op, 0, e.keyID, 0); crier.ErrorCode(err) != crier.ECONFLICT {
		t.Errorf("rotating a revoked key: %v, want a conflict", err)
	}
	other := testenv.Tenant(t, e.db, "larvik", "Larvik kommune", "Europe/Oslo")
	if _, err := e.db.RevokeKey(ctx, op, other.ID, fresh.ID, 0); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("revoking through another tenant: %v, want ErrNotFound", err)
	}

	log, err := e.db.AuditLog(ctx, storage.AuditQuery{TenantID: e.tenant.ID, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range log {
		got = append(got, fmt.Sprintf("%s %d by %s in %s", a.Action, atoi(t, a.Object), a.Actor, a.RequestID))
	}
	want := []string{
		fmt.Sprintf("key.revoked %d by operator in rotate-run", old.ID),
		fmt.Sprintf("key.revoked %d by operator in rotate-run", old.ID),
		fmt.Sprintf("key.revoked %d by operator in rotate-run", old.ID),
		fmt.Sprintf("key.created %d by operator in rotate-run", fresh.ID),
		fmt.Sprintf("key.created %d by operator in setup", old.ID),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("audit log, newest first (-want +got):\n%s", diff)
	}
}

func atoi(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("object %q: not an id", s)
	}
	return n
}

// TestFindKey: the operator names a key by its id, its prefix, the start
// of a prefix several keys do not share, or the whole key; within a tenant
// when one is given.
func TestFindKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newKeyEnv(t)
	app, appSecret, err := e.db.CreateKey(ctx, storage.Operator(""), storage.NewKey{TenantID: e.tenant.ID, Label: "app"})
	if err != nil {
		t.Fatal(err)
	}
	other := testenv.Tenant(t, e.db, "larvik", "Larvik kommune", "Europe/Oslo")
	tests := []struct {
		name     string
		tenantID int64
		ref      string
		want     int64 // 0: not found
		code     crier.Code
	}{
		{"id", 0, strconv.FormatInt(app.ID, 10), app.ID, ""},
		{"prefix", 0, app.Prefix, app.ID, ""},
		{"start of a prefix", 0, app.Prefix[:len(app.Prefix)-2], app.ID, ""},
		{"whole key", 0, appSecret, app.ID, ""},
		{"whole key of the municipality", e.tenant.ID, e.key, e.keyID, ""},
		{"a start every key shares", 0, "crier_", 0, crier.EINVALID},
		{"another tenant's", other.ID, app.Prefix, 0, ""},
		{"unknown id", 0, "999999", 0, ""},
		{"unknown prefix", 0, "crier_app_zzzzzzzzz", 0, ""},
	}
	for _, tt := range tests {
		k, err := e.db.FindKey(ctx, tt.tenantID, tt.ref)
		switch {
		case tt.code != "":
			if crier.ErrorCode(err) != tt.code {
				t.Errorf("%s: %v, want %s", tt.name, err, tt.code)
			}
		case tt.want == 0:
			if !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("%s: key %d, %v; want ErrNotFound", tt.name, k.ID, err)
			}
		case err != nil || k.ID != tt.want:
			t.Errorf("%s: key %d, %v; want key %d", tt.name, k.ID, err, tt.want)
		}
	}
}

// TestKeyLabel: a key made through CreateKey must say whose it is.
func TestKeyLabel(t *testing.T) {
	t.Parallel()
	e := newKeyEnv(t)
	for _, label := range []string{"", "   ", "tab\tin", strings.Repeat("x", storage.MaxLabel+1)} {
		_, _, err := e.db.CreateKey(context.Background(), storage.Operator(""), storage.NewKey{TenantID: e.tenant.ID, Label: label})
		if e := crier.AsError(err); e == nil || e.Code != crier.EINVALID || e.Field != "label" {
			t.Errorf("label %q: %v, want an invalid label", label, err)
		}
	}
	k, _, err := e.db.CreateKey(context.Background(), storage.Operator(""), storage.NewKey{TenantID: e.tenant.ID, Label: "  Kari Nordmann  "})
	if err != nil || k.Label != "Kari Nordmann" {
		t.Errorf("label trimmed: %q, %v", k.Label, err)
	}
}

// BenchmarkAuthenticate measures what every request pays for its key: one
// statement, which writes the key's row only once a minute.
func BenchmarkAuthenticate(b *testing.B) {
	e := newKeyEnv(b)
	ctx := context.Background()
	for b.Loop() {
		if _, err := e.db.Authenticate(ctx, e.key); err != nil {
			b.Fatal(err)
		}
	}
}
