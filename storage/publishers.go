package storage

import (
	"context"
	"fmt"

	"github.com/crier-push/crier"
	"github.com/jackc/pgx/v5"
)

// CreatePublisher creates a publisher of a tenant.
func (db *DB) CreatePublisher(ctx context.Context, tenantID int64, slug, name string, role crier.Role) (crier.Publisher, error) {
	p := crier.Publisher{TenantID: tenantID, Slug: slug, Name: name, Role: role}
	err := db.pool.QueryRow(ctx,
		`INSERT INTO publishers (tenant_id, slug, name, role) VALUES ($1, $2, $3, $4) RETURNING id`,
		tenantID, slug, name, role).Scan(&p.ID)
	if isUniqueViolation(err) {
		return crier.Publisher{}, fmt.Errorf("create publisher %q: %w", slug, ErrConflict)
	}
	if err != nil {
		return crier.Publisher{}, fmt.Errorf("create publisher %q: %w", slug, err)
	}
	return p, nil
}

// PublisherBySlug finds a publisher of a tenant.
func (db *DB) PublisherBySlug(ctx context.Context, tenantID int64, slug string) (crier.Publisher, error) {
	var p crier.Publisher
	err := db.pool.QueryRow(ctx, `SELECT id, tenant_id, slug, name, role FROM publishers
		WHERE tenant_id = $1 AND slug = $2`, tenantID, slug).Scan(&p.ID, &p.TenantID, &p.Slug, &p.Name, &p.Role)
	if err != nil {
		return crier.Publisher{}, notFound(err, fmt.Sprintf("publisher %q", slug))
	}
	return p, nil
}

// CreateFeed creates a feed owned by a publisher of the tenant.
func (db *DB) CreateFeed(ctx context.Context, tenantID, publisherID int64, slug, name string, mandatory bool) (crier.Feed, error) {
	f := crier.Feed{TenantID: tenantID, PublisherID: publisherID, Slug: slug, Name: name, Mandatory: mandatory}
	err := db.pool.QueryRow(ctx, `INSERT INTO feeds (tenant_id, publisher_id, slug, name, mandatory)
		VALUES ($1, $2, $3, $4, $5) RETURNING id`, tenantID, publisherID, slug, name, mandatory).Scan(&f.ID)
	if isUniqueViolation(err) {
		return crier.Feed{}, fmt.Errorf("create feed %q: %w", slug, ErrConflict)
	}
	if err != nil {
		return crier.Feed{}, fmt.Errorf("create feed %q: %w", slug, err)
	}
	return f, nil
}

// FeedBySlug finds a feed of a tenant.
func (db *DB) FeedBySlug(ctx context.Context, tenantID int64, slug string) (crier.Feed, error) {
	var f crier.Feed
	err := db.pool.QueryRow(ctx, `SELECT id, tenant_id, publisher_id, slug, name, mandatory FROM feeds
		WHERE tenant_id = $1 AND slug = $2`, tenantID, slug).
		Scan(&f.ID, &f.TenantID, &f.PublisherID, &f.Slug, &f.Name, &f.Mandatory)
	if err != nil {
		return crier.Feed{}, notFound(err, fmt.Sprintf("feed %q", slug))
	}
	return f, nil
}

// FeedIDs resolves feed slugs of a tenant to ids, in order. The second result
// lists the slugs that do not exist.
func (db *DB) FeedIDs(ctx context.Context, tenantID int64, slugs []string) (ids []int64, missing []string, err error) {
	return db.resolveSlugs(ctx, `SELECT slug, id FROM feeds WHERE tenant_id = $1 AND slug = ANY($2)`, tenantID, slugs)
}

// AreaIDs resolves area slugs of a tenant to ids, in order, and lists the
// slugs that do not exist.
func (db *DB) AreaIDs(ctx context.Context, tenantID int64, slugs []string) (ids []int64, missing []string, err error) {
	return db.resolveSlugs(ctx, `SELECT slug, id FROM areas WHERE tenant_id = $1 AND slug = ANY($2)`, tenantID, slugs)
}

func (db *DB) resolveSlugs(ctx context.Context, query string, tenantID int64, slugs []string) ([]int64, []string, error) {
	ids := make([]int64, 0, len(slugs))
	if len(slugs) == 0 {
		return ids, nil, nil
	}
	rows, err := db.pool.Query(ctx, query, tenantID, slugs)
	if err != nil {
		return nil, nil, fmt.Errorf("resolve slugs: %w", err)
	}
	found := map[string]int64{}
	for rows.Next() {
		var s string
		var id int64
		if err := rows.Scan(&s, &id); err != nil {
			return nil, nil, fmt.Errorf("resolve slugs: %w", err)
		}
		found[s] = id
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("resolve slugs: %w", err)
	}
	var missing []string
	for _, s := range slugs {
		if id, ok := found[s]; ok {
			ids = append(ids, id)
		} else {
			missing = append(missing, s)
		}
	}
	return ids, missing, nil
}

// FeedSlugs maps feed ids of a tenant back to slugs, in order; ids that no
// longer exist are left out.
func (db *DB) FeedSlugs(ctx context.Context, tenantID int64, ids []int64) ([]string, error) {
	return db.slugsOf(ctx, `SELECT id, slug FROM feeds WHERE tenant_id = $1 AND id = ANY($2)`, tenantID, ids)
}

// AreaSlugs maps area ids of a tenant back to slugs, in order.
func (db *DB) AreaSlugs(ctx context.Context, tenantID int64, ids []int64) ([]string, error) {
	return db.slugsOf(ctx, `SELECT id, slug FROM areas WHERE tenant_id = $1 AND id = ANY($2)`, tenantID, ids)
}

func (db *DB) slugsOf(ctx context.Context, query string, tenantID int64, ids []int64) ([]string, error) {
	out := make([]string, 0, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := db.pool.Query(ctx, query, tenantID, ids)
	if err != nil {
		return nil, fmt.Errorf("slugs of ids: %w", err)
	}
	byID := map[int64]string{}
	for rows.Next() {
		var id int64
		var s string
		if err := rows.Scan(&id, &s); err != nil {
			return nil, fmt.Errorf("slugs of ids: %w", err)
		}
		byID[id] = s
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("slugs of ids: %w", err)
	}
	for _, id := range ids {
		if s, ok := byID[id]; ok {
			out = append(out, s)
		}
	}
	return out, nil
}

// FeedSlugsOfPublisher lists the slugs of a publisher's own feeds.
func (db *DB) FeedSlugsOfPublisher(ctx context.Context, publisherID int64) ([]string, error) {
	rows, err := db.pool.Query(ctx, `SELECT slug FROM feeds WHERE publisher_id = $1 ORDER BY slug`, publisherID)
	if err != nil {
		return nil, fmt.Errorf("feeds of publisher %d: %w", publisherID, err)
	}
	slugs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("feeds of publisher %d: %w", publisherID, err)
	}
	return slugs, nil
}
