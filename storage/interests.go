package storage

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
)

// Interest is one entry of a tenant's catalogue of interests: what
// residents can choose and posts can be tagged with.
type Interest struct {
	Slug string
	// Names are what the app shows, by language tag.
	Names map[string]string
}

// PutInterests replaces the tenant's catalogue, in its order. Interests
// no longer in it lose their grants; devices keep the interest in their
// choices (it matches nothing any more).
func (db *DB) PutInterests(ctx context.Context, tenantID int64, in []Interest) (err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("put interests: %w", err)
		}
	}()
	slugs := make([]string, len(in))
	names := make([][]byte, len(in))
	for i, it := range in {
		slugs[i] = it.Slug
		if names[i], err = json.Marshal(nonNilMap(it.Names)); err != nil {
			return err
		}
	}
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after commit
	if _, err := tx.Exec(ctx, `DELETE FROM interests WHERE tenant_id = $1 AND NOT slug = ANY($2::text[])`, tenantID, slugs); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO interests (tenant_id, slug, names, position)
		SELECT $1, s, n, o FROM unnest($2::text[], $3::jsonb[]) WITH ORDINALITY AS t(s, n, o)
		ON CONFLICT (tenant_id, slug) DO UPDATE SET names = excluded.names, position = excluded.position`,
		tenantID, slugs, names); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

func nonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// Interests lists the tenant's catalogue in its order.
func (db *DB) Interests(ctx context.Context, tenantID int64) ([]Interest, error) {
	rows, err := db.pool.Query(ctx, `SELECT slug, names FROM interests WHERE tenant_id = $1 ORDER BY position, slug`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("interests: %w", err)
	}
	defer rows.Close()
	var out []Interest
	for rows.Next() {
		var it Interest
		if err := rows.Scan(&it.Slug, &it.Names); err != nil {
			return nil, fmt.Errorf("interests: %w", err)
		}
		out = append(out, it)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("interests: %w", err)
	}
	return out, nil
}

// GrantInterests replaces the interests an organisation may tag its posts
// with; they must be in the catalogue (missing lists those that are not,
// and then nothing changes).
func (db *DB) GrantInterests(ctx context.Context, tenantID, publisherID int64, slugs []string) (missing []string, err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("grant interests: %w", err)
		}
	}()
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after commit
	rows, err := tx.Query(ctx, `SELECT s FROM unnest($2::text[]) s
		WHERE NOT EXISTS (SELECT 1 FROM interests i WHERE i.tenant_id = $1 AND i.slug = s) ORDER BY s`, tenantID, slugs)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			rows.Close()
			return nil, err
		}
		missing = append(missing, s)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(missing) > 0 {
		return missing, nil
	}
	if _, err := tx.Exec(ctx, `DELETE FROM interest_grants WHERE tenant_id = $1 AND publisher_id = $2`, tenantID, publisherID); err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO interest_grants (tenant_id, publisher_id, interest)
		SELECT $1, $2, s FROM unnest($3::text[]) s ON CONFLICT DO NOTHING`, tenantID, publisherID, slugs); err != nil {
		return nil, err
	}
	return nil, tx.Commit(ctx)
}

// GrantedInterests lists the interests granted to a publisher, sorted.
func (db *DB) GrantedInterests(ctx context.Context, tenantID, publisherID int64) ([]string, error) {
	rows, err := db.pool.Query(ctx, `SELECT interest FROM interest_grants WHERE tenant_id = $1 AND publisher_id = $2
		ORDER BY interest`, tenantID, publisherID)
	if err != nil {
		return nil, fmt.Errorf("granted interests: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, fmt.Errorf("granted interests: %w", err)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// TagCheck is what the catalogue says of a post's tags.
type TagCheck struct {
	// Unknown tags are not in the tenant's catalogue.
	Unknown []string
	// NotGranted tags are in it but not granted to the publisher (only
	// asked for organisations).
	NotGranted []string
}

// CheckTags looks a post's tags up in the tenant's catalogue and, when
// grants is set, in the publisher's grants, in one query.
func (db *DB) CheckTags(ctx context.Context, tenantID, publisherID int64, grants bool, tags []string) (TagCheck, error) {
	var c TagCheck
	if len(tags) == 0 {
		return c, nil
	}
	rows, err := db.pool.Query(ctx, `SELECT t,
			EXISTS (SELECT 1 FROM interests i WHERE i.tenant_id = $1 AND i.slug = t),
			EXISTS (SELECT 1 FROM interest_grants g WHERE g.tenant_id = $1 AND g.publisher_id = $2 AND g.interest = t)
		FROM unnest($3::text[]) t`, tenantID, publisherID, tags)
	if err != nil {
		return c, fmt.Errorf("check tags: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var t string
		var known, granted bool
		if err := rows.Scan(&t, &known, &granted); err != nil {
			return c, fmt.Errorf("check tags: %w", err)
		}
		switch {
		case !known:
			c.Unknown = append(c.Unknown, t)
		case grants && !granted:
			c.NotGranted = append(c.NotGranted, t)
		}
	}
	if err := rows.Err(); err != nil {
		return c, fmt.Errorf("check tags: %w", err)
	}
	slices.Sort(c.Unknown)
	slices.Sort(c.NotGranted)
	return c, nil
}
