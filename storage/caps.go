package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/crier-push/crier"
)

// Caps per sender (migration 0015): each organisation's daily post limit
// and pushes per device, as the municipality set them, and the count of
// its posts in the window that the post limit holds them to.
//
// The window is rolling (crier.PostWindow, the last 24 hours) rather than
// the tenant's calendar day: the refused publisher is told exactly when
// its next post may go, and nothing is released at once at midnight. The
// count and the insert of a capped post run in one transaction that holds
// the publisher's row (CreateCappedPost), so two creates at the limit
// cannot both pass.

// Limits are a publisher's caps as the municipality set them.
type Limits struct {
	// DailyPosts is how many posts the publisher may send in any
	// crier.PostWindow; nil is the tenant's default.
	DailyPosts *int
	// DailyPushesPerDevice is how many pushes of the publisher's posts one
	// device gets in 24 hours; nil is no limit. The snapshot applies it: a
	// device at it gets the post's delivery skipped (ReasonSenderCap).
	DailyPushesPerDevice *int
}

// PublisherLimits are a publisher's limits, the tenant's default and what
// the post limit leaves the publisher now.
type PublisherLimits struct {
	Limits
	// TenantDailyPosts is the tenant's default daily post limit.
	TenantDailyPosts int
	Posts            PostAllowance
}

// PostAllowance is what a daily post limit leaves a publisher.
type PostAllowance struct {
	// Limit is the limit in force: the publisher's own or the tenant's
	// default.
	Limit int
	// Used is how many capped posts the publisher made in the window.
	Used int
	// Now is the database's time the allowance was read at; FreeAt, when
	// nothing is left, is when the next post may go: the time the newest
	// post that fills the allowance leaves the window.
	Now    time.Time
	FreeAt *time.Time
}

// Left is how many more posts the publisher may send now.
func (a PostAllowance) Left() int { return max(a.Limit-a.Used, 0) }

// RetryAfter is how long until the next post may go, 0 if one may now.
func (a PostAllowance) RetryAfter() time.Duration {
	if a.FreeAt == nil || a.Left() > 0 {
		return 0
	}
	return a.FreeAt.Sub(a.Now)
}

// PostLimitError is a capped post refused: the publisher has used its
// daily post limit up.
type PostLimitError struct {
	Allowance PostAllowance
}

func (e *PostLimitError) Error() string {
	return fmt.Sprintf("daily post limit of %d reached (%d posts in the last %g hours); the next may go in %s",
		e.Allowance.Limit, e.Allowance.Used, crier.PostWindow.Hours(), e.Allowance.RetryAfter().Round(time.Second))
}

// PublisherLimits reads a publisher's limits and what the post limit
// leaves it now.
func (db *DB) PublisherLimits(ctx context.Context, tenantID, publisherID int64) (PublisherLimits, error) {
	pl, err := publisherLimits(ctx, db.pool, tenantID, publisherID, false)
	if err != nil {
		return PublisherLimits{}, err
	}
	if pl.Posts, err = postAllowance(ctx, db.pool, tenantID, publisherID, pl.limit()); err != nil {
		return PublisherLimits{}, err
	}
	return pl, nil
}

// SetPublisherLimits replaces a publisher's limits; nil clears one (the
// tenant's default posts, no limit on pushes). The values are checked by
// the caller (publish) and again by the schema.
func (db *DB) SetPublisherLimits(ctx context.Context, tenantID, publisherID int64, l Limits) error {
	tag, err := db.pool.Exec(ctx, `UPDATE publishers SET daily_post_limit = $3, daily_pushes_per_device = $4
		WHERE tenant_id = $1 AND id = $2`, tenantID, publisherID, l.DailyPosts, l.DailyPushesPerDevice)
	if err != nil {
		return fmt.Errorf("set limits of publisher %d: %w", publisherID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("publisher %d: %w", publisherID, ErrNotFound)
	}
	return nil
}

// CreateCappedPost is CreatePost under the publisher's daily post limit: a
// post past it is refused with a *PostLimitError, and nothing is stored.
// The publisher's row is held from the count to the commit, so concurrent
// creates of one publisher take their turns and exactly the limit pass; a
// post whose external id is stored already is returned (created false)
// before the count, neither counted twice nor refused.
func (db *DB) CreateCappedPost(ctx context.Context, p Post) (out Post, created bool, err error) {
	id, created, err := db.insertCappedPost(ctx, p)
	if err != nil {
		return Post{}, false, err
	}
	out, err = db.Post(ctx, p.TenantID, id)
	return out, created, err
}

func (db *DB) insertCappedPost(ctx context.Context, p Post) (id int64, created bool, err error) {
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return 0, false, fmt.Errorf("create capped post: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after commit
	pl, err := publisherLimits(ctx, tx, p.TenantID, p.PublisherID, true)
	if err != nil {
		return 0, false, err
	}
	if p.ExternalID != "" {
		// Read after the lock: a create of the same id that held it is
		// committed, and seen here.
		err := tx.QueryRow(ctx, `SELECT id FROM posts WHERE tenant_id = $1 AND publisher_id = $2 AND external_id = $3`,
			p.TenantID, p.PublisherID, p.ExternalID).Scan(&id)
		switch {
		case err == nil:
			return id, false, nil
		case !errors.Is(err, pgx.ErrNoRows):
			return 0, false, fmt.Errorf("create capped post: find external id: %w", err)
		}
	}
	a, err := postAllowance(ctx, tx, p.TenantID, p.PublisherID, pl.limit())
	if err != nil {
		return 0, false, err
	}
	if a.Left() == 0 {
		return 0, false, &PostLimitError{Allowance: a}
	}
	if id, created, err = insertPost(ctx, tx, p); err != nil {
		return 0, false, err
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, false, fmt.Errorf("create capped post: commit: %w", err)
	}
	return id, created, nil
}

// limit is the daily post limit in force.
func (pl PublisherLimits) limit() int {
	if pl.DailyPosts != nil {
		return *pl.DailyPosts
	}
	return pl.TenantDailyPosts
}

// publisherLimits reads a publisher's limits and its tenant's default;
// with lock, it holds the publisher's row until q's transaction ends. FOR
// NO KEY UPDATE: creates of the publisher's posts take their turns, while
// the foreign keys of other rows that point at the publisher (its posts in
// mandatory feeds, its keys) take theirs without waiting.
func publisherLimits(ctx context.Context, q querier, tenantID, publisherID int64, lock bool) (PublisherLimits, error) {
	query := `SELECT pb.daily_post_limit, pb.daily_pushes_per_device, t.default_daily_post_limit
		FROM publishers pb JOIN tenants t ON t.id = pb.tenant_id
		WHERE pb.tenant_id = $1 AND pb.id = $2`
	if lock {
		query += ` FOR NO KEY UPDATE OF pb`
	}
	var pl PublisherLimits
	err := q.QueryRow(ctx, query, tenantID, publisherID).Scan(&pl.DailyPosts, &pl.DailyPushesPerDevice, &pl.TenantDailyPosts)
	if err != nil {
		return PublisherLimits{}, notFound(err, fmt.Sprintf("limits of publisher %d", publisherID))
	}
	return pl, nil
}

// postAllowance counts the publisher's capped posts in the window and,
// if they fill the limit, finds when the newest one that fills it leaves
// the window. The posts counted are the ones crier.Principal.PostCapped
// holds: none in a mandatory feed, no alert (an organisation's posts are
// all capped otherwise, and the municipality's are never counted). The
// clock is the statement's, not the transaction's: a create that waited
// for the publisher's row judges by the time it got it.
func postAllowance(ctx context.Context, q querier, tenantID, publisherID int64, limit int) (PostAllowance, error) {
	a := PostAllowance{Limit: limit}
	err := q.QueryRow(ctx, `WITH w AS (
			SELECT p.created_at FROM posts p JOIN feeds f ON f.id = p.feed_id
			WHERE p.tenant_id = $1 AND p.publisher_id = $2
			  AND p.created_at > statement_timestamp() - $3::float8 * interval '1 second'
			  AND NOT f.mandatory AND p.class <> 'emergency')
		SELECT (SELECT count(*) FROM w),
		       (SELECT created_at FROM w ORDER BY created_at DESC OFFSET $4::int - 1 LIMIT 1)
		           + $3::float8 * interval '1 second',
		       statement_timestamp()`,
		tenantID, publisherID, crier.PostWindow.Seconds(), limit).Scan(&a.Used, &a.FreeAt, &a.Now)
	if err != nil {
		return PostAllowance{}, fmt.Errorf("posts of publisher %d in the window: %w", publisherID, err)
	}
	return a, nil
}

// ReasonSenderCap skips a delivery to a device that has had its daily
// pushes of the post's organisation (Limits.DailyPushesPerDevice).
const ReasonSenderCap = "sender_cap"

// pushCap is what Snapshot needs to apply an organisation's pushes-per-
// device limit: the limit, and its posts of the window before this one. A
// zero limit is none.
type pushCap struct {
	limit  int
	recent []int64
}

// pushCapOf reads the pushes-per-device cap of a post: only an
// organisation's post in a feed that is not mandatory, and no alert, is
// capped (crier.Principal.PostCapped), and only if the municipality set the
// organisation a limit.
func pushCapOf(ctx context.Context, q querier, p Post, now time.Time) (pushCap, error) {
	if !p.Organisation || p.FeedMandatory || p.Class == crier.ClassEmergency {
		return pushCap{}, nil
	}
	var c pushCap
	var limit *int
	err := q.QueryRow(ctx, `SELECT daily_pushes_per_device,
			ARRAY(SELECT x.id FROM posts x WHERE x.publisher_id = pb.id AND x.id <> $2
			      AND x.created_at > $3::timestamptz - make_interval(secs => $4) ORDER BY x.id)
		FROM publishers pb WHERE pb.id = $1`, p.PublisherID, p.ID, now, crier.PostWindow.Seconds()).Scan(&limit, &c.recent)
	if err != nil {
		return pushCap{}, notFound(err, fmt.Sprintf("push cap of publisher %d", p.PublisherID))
	}
	if limit == nil || len(c.recent) < *limit {
		// Fewer posts in the window than the limit: no device can be at it.
		return pushCap{}, nil
	}
	c.limit = *limit
	return c, nil
}

// sql is the condition over devices d that the device is at the cap, with
// its values appended to args; "false" without a cap.
func (c pushCap) sql(args *[]any) string {
	if c.limit == 0 {
		return "false"
	}
	*args = append(*args, c.recent, c.limit)
	n := len(*args)
	// Each of the few recent posts is one probe of the deliveries' primary
	// key: deliveries have no index by device.
	return fmt.Sprintf(`(SELECT count(*) FROM deliveries x WHERE x.post_id = ANY($%d::bigint[]) AND x.device_id = d.id
		AND x.state IN ('sent', 'pending', 'deferred')) >= $%d::int`, n-1, n)
}
