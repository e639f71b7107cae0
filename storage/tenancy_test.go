package storage_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/internal/testenv"
	"github.com/crier-push/crier/storage"
)

// TestReferencesCarryTheTenant: the schema itself refuses a post, a key or
// a grant of one tenant that points at another tenant's feed or
// publisher, whatever code (or SQL by hand) tries.
func TestReferencesCarryTheTenant(t *testing.T) {
	t.Parallel()
	db := testenv.DB(t)
	ctx := context.Background()
	a := testenv.Tenant(t, db, "a", "A", "Europe/Oslo")
	b := testenv.Tenant(t, db, "b", "B", "Europe/Oslo")
	pubA := testenv.Publisher(t, db, a.ID, "kommunen", "A", crier.RoleMunicipality)
	pubB := testenv.Publisher(t, db, b.ID, "klubben", "B", crier.RoleOrganisation)
	feedB := testenv.Feed(t, db, b.ID, pubB.ID, "fotball", "Fotball", false)
	feedA := testenv.Feed(t, db, a.ID, pubA.ID, "nyheter", "Nyheter", false)
	testenv.Interests(t, db, b.ID, []string{"fotball"})
	for _, c := range []struct {
		name, sql string
		args      []any
	}{
		{"a post of A on B's feed", `INSERT INTO posts (tenant_id, feed_id, publisher_id, title, body, class)
			VALUES ($1, $2, $3, 't', 'b', 'official')`, []any{a.ID, feedB.ID, pubA.ID}},
		{"a post of A by B's publisher", `INSERT INTO posts (tenant_id, feed_id, publisher_id, title, body, class)
			VALUES ($1, $2, $3, 't', 'b', 'community')`, []any{a.ID, feedA.ID, pubB.ID}},
		{"a key of A for B's publisher", `INSERT INTO api_keys (tenant_id, publisher_id, kind, prefix, hash)
			VALUES ($1, $2, 'publisher', 'x', '\x01')`, []any{a.ID, pubB.ID}},
		{"a feed of A for B's publisher", `INSERT INTO feeds (tenant_id, publisher_id, slug, name)
			VALUES ($1, $2, 'x', 'x')`, []any{a.ID, pubB.ID}},
		{"a grant in A of B's interest", `INSERT INTO interest_grants (tenant_id, publisher_id, interest)
			VALUES ($1, $2, 'fotball')`, []any{a.ID, pubA.ID}},
	} {
		_, err := db.Pool.Exec(ctx, c.sql, c.args...)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "23503" {
			t.Errorf("%s: %v, want a foreign key violation", c.name, err)
		}
	}
	// The same rows within one tenant are taken.
	if _, err := db.Pool.Exec(ctx, `INSERT INTO posts (tenant_id, feed_id, publisher_id, title, body, class)
		VALUES ($1, $2, $3, 't', 'b', 'community')`, b.ID, feedB.ID, pubB.ID); err != nil {
		t.Errorf("a post within tenant B: %v", err)
	}
}

// TestStatementTimeoutIsUnavailable: a query over the statement timeout
// (here, waiting on a lock) is ErrUnavailable, which the API answers 503
// with Retry-After, not an internal error.
func TestStatementTimeoutIsUnavailable(t *testing.T) {
	t.Parallel()
	url, _ := testenv.DBURL(t)
	ctx := context.Background()
	db, err := storage.Open(ctx, storage.Config{URL: url, StatementTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	tn := testenv.Tenant(t, db, "locked", "Locked", "Europe/Oslo")
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // the lock is the point
	if _, err := tx.Exec(ctx, `LOCK TABLE devices IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	_, err = db.DeviceByInstallation(ctx, tn.ID, "x")
	if !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("a query over its statement timeout: %v, want ErrUnavailable", err)
	}
}
