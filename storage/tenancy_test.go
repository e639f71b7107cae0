package storage_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/internal/testenv"
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
