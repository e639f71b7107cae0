package storage_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/crier-push/crier/storage"
)

// TestAuditAppendOnly: the database itself refuses to change or remove an
// audit entry, whoever asks: UPDATE, DELETE and TRUNCATE fail and the row
// stays as it was.
func TestAuditAppendOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newKeyEnv(t)
	if err := e.db.Record(ctx, storage.Actor{KeyID: e.keyID, RequestID: "req-1"},
		storage.Event{TenantID: e.tenant.ID, Action: storage.AuditPostCreated, Object: "1"}); err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{
		`UPDATE audit_log SET object = '2'`,
		`UPDATE audit_log SET key_label = 'someone else' WHERE request_id = 'req-1'`,
		`DELETE FROM audit_log`,
		`DELETE FROM audit_log WHERE request_id = 'req-1'`,
		`TRUNCATE audit_log`,
	} {
		_, err := e.db.Pool.Exec(ctx, stmt)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "42501" {
			t.Errorf("%s: %v, want it refused (42501)", stmt, err)
		}
	}
	log, err := e.db.AuditLog(ctx, storage.AuditQuery{TenantID: e.tenant.ID, Action: storage.AuditPostCreated, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != 1 || log[0].Object != "1" || log[0].KeyLabel != "cms" || log[0].PublisherSlug != "kommunen" {
		t.Errorf("after the refusals the log holds %+v, want the one entry as written", log)
	}
}

// TestAuditKeyOfAnotherTenant: an entry cannot name a key of another
// tenant as its actor.
func TestAuditKeyOfAnotherTenant(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newKeyEnv(t)
	err := e.db.Record(ctx, storage.Actor{KeyID: e.keyID}, storage.Event{TenantID: e.tenant.ID + 1, Action: storage.AuditPostCreated})
	if !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("recorded with another tenant's key: %v, want ErrNotFound", err)
	}
}
