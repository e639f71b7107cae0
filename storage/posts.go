package storage

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/crier-push/crier"
	"github.com/jackc/pgx/v5"
)

// Post is a message from a feed.
type Post struct {
	ID          int64
	TenantID    int64
	FeedID      int64
	PublisherID int64
	ExternalID  string
	Title       string
	Body        string
	URL         string
	Data        map[string]string
	Tags        []string
	Class       crier.Class
	// Target and Segment are the post's targeting as normalised segment
	// expressions (JSON), nil when the post has none.
	Target         []byte
	Segment        []byte
	CollapseKey    string
	PublishAt      time.Time
	ExpiresAt      *time.Time
	State          crier.PostState
	Audience       *int
	DispatchCursor int64
	CreatedAt      time.Time
	// SnapshotAt: when the audience was fixed; DispatchedAt: when every
	// send was enqueued.
	SnapshotAt, DispatchedAt *time.Time
	// DispatchEnqueuedAt is when the post's dispatch task was first queued;
	// nil while an accepted post waits for the reconciler to queue it.
	DispatchEnqueuedAt *time.Time

	// An alert's place in its incident: IncidentID is the id of the
	// incident's first message (the post's own for the first), 0 for a
	// post that is no alert; MsgType is set with it.
	IncidentID int64
	MsgType    crier.MsgType
	// Exercise: the post goes to the tenant's test devices only, marked.
	Exercise bool
	// Language is the language of Title and Body, "" for the tenant's;
	// Translations are the texts in other languages.
	Language     string
	Translations crier.Translations
	// Alert is what an alert was beyond the post (CAP's identity, status,
	// event, urgency and the like, as JSON), nil for other posts. It is
	// written with the post but read only by PostAlert: it can be large.
	Alert []byte
	// OriginSentAt is when the alert's author sent it (CAP sent); nil: the
	// post's creation is its origin.
	OriginSentAt *time.Time
	// Two-person release: the key that created the post, the key that
	// approved it and when, and when an alert awaiting approval lapses.
	CreatedByKey, ApprovedByKey int64
	ApprovedAt, LapsesAt        *time.Time

	// Read along with the post: the feed's slug and whether it is mandatory,
	// and whether an organisation posted it (its audience then stays inside
	// its opt-ins, segments.Post.Organisation).
	FeedSlug      string
	FeedMandatory bool
	Organisation  bool
	// TenantLanguage is the tenant's default language: the text a device
	// of no language the post has is sent.
	TenantLanguage string
	// TenantName and IDOnlyPushes: the tenant's name and whether its pushes
	// carry only the post id and a generic text naming it (privacy.go),
	// read with the post so that a send asks nothing more of the database.
	TenantName   string
	IDOnlyPushes bool
}

const postColumns = `p.id, p.tenant_id, p.feed_id, p.publisher_id, coalesce(p.external_id, ''), p.title, p.body,
	p.url, p.data, p.tags, p.class, p.target, p.segment, p.collapse_key, p.publish_at, p.expires_at, p.state, p.audience,
	p.dispatch_cursor, p.created_at, p.snapshot_at, p.dispatched_at, p.dispatch_enqueued_at, f.slug, f.mandatory,
	coalesce((SELECT pb.role = 'organisation' FROM publishers pb WHERE pb.id = p.publisher_id), true),
	coalesce(p.incident_id, 0), coalesce(p.msg_type, ''), p.exercise, p.language, p.translations,
	p.origin_sent_at, coalesce(p.created_by_key, 0), coalesce(p.approved_by_key, 0), p.approved_at, p.lapses_at,
	(SELECT t.language FROM tenants t WHERE t.id = p.tenant_id),
	(SELECT t.name FROM tenants t WHERE t.id = p.tenant_id),
	(SELECT t.id_only_pushes FROM tenants t WHERE t.id = p.tenant_id)`

func scanPost(row pgx.Row) (Post, error) {
	var p Post
	var data, translations []byte
	err := row.Scan(&p.ID, &p.TenantID, &p.FeedID, &p.PublisherID, &p.ExternalID, &p.Title, &p.Body,
		&p.URL, &data, &p.Tags, &p.Class, &p.Target, &p.Segment, &p.CollapseKey, &p.PublishAt, &p.ExpiresAt, &p.State, &p.Audience,
		&p.DispatchCursor, &p.CreatedAt, &p.SnapshotAt, &p.DispatchedAt, &p.DispatchEnqueuedAt, &p.FeedSlug, &p.FeedMandatory,
		&p.Organisation,
		&p.IncidentID, &p.MsgType, &p.Exercise, &p.Language, &translations,
		&p.OriginSentAt, &p.CreatedByKey, &p.ApprovedByKey, &p.ApprovedAt, &p.LapsesAt,
		&p.TenantLanguage, &p.TenantName, &p.IDOnlyPushes)
	if err != nil {
		return Post{}, err
	}
	if err := json.Unmarshal(translations, &p.Translations); err != nil {
		return Post{}, fmt.Errorf("decode post translations: %w", err)
	}
	if len(p.Translations) == 0 {
		p.Translations = nil
	}
	if err := json.Unmarshal(data, &p.Data); err != nil {
		return Post{}, fmt.Errorf("decode post data: %w", err)
	}
	return p, nil
}

// CreatePost stores a new post. A post with the publisher's external id
// already stored is returned instead, with created false: CMS retries never
// make a second post. A post held to its publisher's daily post limit is
// made by CreateCappedPost (caps.go) instead.
func (db *DB) CreatePost(ctx context.Context, p Post) (out Post, created bool, err error) {
	id, created, err := insertPost(ctx, db.pool, p)
	if err != nil {
		return Post{}, false, err
	}
	out, err = db.Post(ctx, p.TenantID, id)
	return out, created, err
}

// insertPost inserts a new post on q, or finds the publisher's post of the
// same external id, with created false; it returns the post's id.
func insertPost(ctx context.Context, q querier, p Post) (id int64, created bool, err error) {
	data, err := json.Marshal(p.Data)
	if err != nil {
		return 0, false, fmt.Errorf("create post: encode data: %w", err)
	}
	if p.Data == nil {
		data = []byte("{}")
	}
	var extID *string
	if p.ExternalID != "" {
		extID = &p.ExternalID
	}
	publishAt := p.PublishAt
	if publishAt.IsZero() {
		publishAt = time.Now()
	}
	translations, err := json.Marshal(p.Translations)
	if err != nil {
		return 0, false, fmt.Errorf("create post: encode translations: %w", err)
	}
	if p.Translations == nil {
		translations = []byte("{}")
	}
	state := cmp.Or(p.State, crier.PostAccepted)
	// The first message of an incident is its incident: its id is drawn
	// first so that the row can name itself.
	err = q.QueryRow(ctx, `WITH n AS (SELECT nextval(pg_get_serial_sequence('posts', 'id')) AS id)
		INSERT INTO posts (id, tenant_id, feed_id, publisher_id, external_id, title, body,
		url, data, tags, class, collapse_key, publish_at, expires_at, target, segment,
		incident_id, msg_type, exercise, language, translations, alert, origin_sent_at, created_by_key, lapses_at, state)
		SELECT n.id, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10,
		       -- One collapse id per incident: each message replaces the
		       -- one before on the phone.
		       CASE WHEN $17::text = 'alert' THEN 'incident-' || n.id
		            WHEN $16::bigint IS NOT NULL THEN 'incident-' || $16::bigint ELSE $11 END, $12, $13, $14, $15,
		       CASE WHEN $17::text = 'alert' THEN n.id ELSE $16 END, $17, $18, $19, $20, $21, $22, $23, $24, $25
		FROM n
		ON CONFLICT (publisher_id, external_id) DO NOTHING RETURNING id`,
		p.TenantID, p.FeedID, p.PublisherID, extID, p.Title, p.Body, p.URL, data, nonNil(p.Tags), p.Class,
		p.CollapseKey, publishAt, p.ExpiresAt, jsonOrNull(p.Target), jsonOrNull(p.Segment),
		zeroNull(p.IncidentID), textOrNull(string(p.MsgType)), p.Exercise, p.Language, translations, jsonOrNull(p.Alert),
		p.OriginSentAt, zeroNull(p.CreatedByKey), p.LapsesAt, state).Scan(&id)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		err = q.QueryRow(ctx, `SELECT id FROM posts WHERE publisher_id = $1 AND external_id = $2`,
			p.PublisherID, p.ExternalID).Scan(&id)
		if err != nil {
			return 0, false, notFound(err, fmt.Sprintf("post with external id %q", p.ExternalID))
		}
	case err != nil:
		return 0, false, fmt.Errorf("create post: %w", err)
	default:
		created = true
	}
	return id, created, nil
}

// Post loads a post of a tenant.
func (db *DB) Post(ctx context.Context, tenantID, id int64) (Post, error) {
	p, err := scanPost(db.pool.QueryRow(ctx, `SELECT `+postColumns+` FROM posts p JOIN feeds f ON f.id = p.feed_id
		WHERE p.tenant_id = $1 AND p.id = $2`, tenantID, id))
	if err != nil {
		return Post{}, notFound(err, fmt.Sprintf("post %d", id))
	}
	return p, nil
}

// PostAlert reads what an alert was beyond its post (Post.Alert), nil if
// nothing was kept.
func (db *DB) PostAlert(ctx context.Context, tenantID, id int64) ([]byte, error) {
	var alert []byte
	if err := db.pool.QueryRow(ctx, `SELECT alert FROM posts WHERE tenant_id = $1 AND id = $2`, tenantID, id).Scan(&alert); err != nil {
		return nil, notFound(err, fmt.Sprintf("post %d", id))
	}
	return alert, nil
}

// PostIDByExternalID finds a publisher's post by the external id it was
// created with.
func (db *DB) PostIDByExternalID(ctx context.Context, publisherID int64, externalID string) (int64, error) {
	var id int64
	err := db.pool.QueryRow(ctx, `SELECT id FROM posts WHERE publisher_id = $1 AND external_id = $2`,
		publisherID, externalID).Scan(&id)
	if err != nil {
		return 0, notFound(err, fmt.Sprintf("post with external id %q", externalID))
	}
	return id, nil
}

// PostByID loads a post whatever its tenant; for the dispatcher and workers,
// whose tasks carry only ids.
func (db *DB) PostByID(ctx context.Context, id int64) (Post, error) {
	p, err := scanPost(db.pool.QueryRow(ctx, `SELECT `+postColumns+` FROM posts p JOIN feeds f ON f.id = p.feed_id
		WHERE p.id = $1`, id))
	if err != nil {
		return Post{}, notFound(err, fmt.Sprintf("post %d", id))
	}
	return p, nil
}

// Progress is what became of a post's deliveries.
type Progress struct {
	Counts      map[crier.DeliveryState]int
	Total       int
	FirstSentAt *time.Time
	LastSentAt  *time.Time
}

// Pending reports how many deliveries have no final outcome yet.
func (p Progress) Pending() int {
	return p.Counts[crier.DeliveryPending] + p.Counts[crier.DeliveryDeferred]
}

// PostProgress counts a post's deliveries by state, from the counts the
// deliveries' triggers keep (migration 0004).
func (db *DB) PostProgress(ctx context.Context, postID int64) (Progress, error) {
	pr := Progress{Counts: map[crier.DeliveryState]int{}}
	rows, err := db.pool.Query(ctx, `SELECT state, sum(n)::bigint, min(first_sent_at), max(last_sent_at)
		FROM delivery_counts WHERE post_id = $1 GROUP BY state HAVING sum(n) > 0`, postID)
	if err != nil {
		return Progress{}, fmt.Errorf("progress of post %d: %w", postID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var state crier.DeliveryState
		var n int
		var first, last *time.Time
		if err := rows.Scan(&state, &n, &first, &last); err != nil {
			return Progress{}, fmt.Errorf("progress of post %d: %w", postID, err)
		}
		pr.Counts[state] = n
		pr.Total += n
		if first != nil && (pr.FirstSentAt == nil || first.Before(*pr.FirstSentAt)) {
			pr.FirstSentAt = first
		}
		if last != nil && (pr.LastSentAt == nil || last.After(*pr.LastSentAt)) {
			pr.LastSentAt = last
		}
	}
	if err := rows.Err(); err != nil {
		return Progress{}, fmt.Errorf("progress of post %d: %w", postID, err)
	}
	return pr, nil
}

// zeroNull passes an id to a parameter, 0 as NULL.
func zeroNull(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

// textOrNull passes text to a parameter, "" as NULL.
func textOrNull(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// jsonOrNull passes JSON to a jsonb parameter, nil as NULL.
func jsonOrNull(b []byte) any {
	if b == nil {
		return nil
	}
	return string(b)
}

// ErrAlreadyDelivered: a post whose every delivery has its outcome cannot
// be cancelled.
var ErrAlreadyDelivered = errors.New("post already delivered")

// CancelPost cancels a post of a tenant: it will not be dispatched, and
// every delivery not yet sent (pending or deferred) is cancelled, in one
// transaction. Workers see the post's state within their post cache's TTL
// and skip its remaining tasks. It returns how many deliveries it cancelled;
// cancelling a cancelled post again cancels nothing.
func (db *DB) CancelPost(ctx context.Context, tenantID, postID int64) (int, error) {
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("cancel post %d: %w", postID, err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after commit
	var state crier.PostState
	if err := tx.QueryRow(ctx, `SELECT state FROM posts WHERE tenant_id = $1 AND id = $2 FOR UPDATE`,
		tenantID, postID).Scan(&state); err != nil {
		return 0, notFound(err, fmt.Sprintf("cancel post %d", postID))
	}
	if state == crier.PostCancelled {
		return 0, nil
	}
	tag, err := tx.Exec(ctx, `UPDATE deliveries SET state = 'cancelled', reason = 'post_cancelled', updated_at = now()
		WHERE post_id = $1 AND state IN ('pending', 'deferred')`, postID)
	if err != nil {
		return 0, fmt.Errorf("cancel post %d: %w", postID, err)
	}
	if tag.RowsAffected() == 0 && state == crier.PostSending {
		return 0, fmt.Errorf("cancel post %d: %w", postID, ErrAlreadyDelivered)
	}
	if _, err := tx.Exec(ctx, `UPDATE posts SET state = 'cancelled', cancelled_at = now() WHERE id = $1`, postID); err != nil {
		return 0, fmt.Errorf("cancel post %d: %w", postID, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("cancel post %d: commit: %w", postID, err)
	}
	return int(tag.RowsAffected()), nil
}

// MarkDispatchEnqueued records that the post's dispatch task is queued;
// the first time counts.
func (db *DB) MarkDispatchEnqueued(ctx context.Context, postID int64) error {
	if _, err := db.pool.Exec(ctx, `UPDATE posts SET dispatch_enqueued_at = now()
		WHERE id = $1 AND dispatch_enqueued_at IS NULL`, postID); err != nil {
		return fmt.Errorf("mark dispatch of post %d enqueued: %w", postID, err)
	}
	return nil
}

// UnqueuedPosts returns up to limit accepted posts whose dispatch task was
// never queued (Redis was away when they were stored), the soonest due
// first, whatever their tenant.
func (db *DB) UnqueuedPosts(ctx context.Context, limit int) ([]Post, error) {
	return db.posts(ctx, "unqueued posts", `SELECT `+postColumns+` FROM posts p JOIN feeds f ON f.id = p.feed_id
		WHERE p.state = 'accepted' AND p.dispatch_enqueued_at IS NULL
		ORDER BY p.publish_at, p.id LIMIT $1`, limit)
}

// OpenPosts returns every post with work left, whatever its tenant: posts
// accepted or dispatching, and posts with deliveries still pending or
// deferred; emergencies first, then by publish time. It reads every post
// and the delivery counts, which is fine for what it is for: queueing
// everything again after Redis lost its data.
func (db *DB) OpenPosts(ctx context.Context) ([]Post, error) {
	return db.posts(ctx, "open posts", `WITH open AS (
			SELECT post_id FROM delivery_counts WHERE state IN ('pending', 'deferred')
			GROUP BY post_id HAVING sum(n) > 0)
		SELECT `+postColumns+` FROM posts p JOIN feeds f ON f.id = p.feed_id
		WHERE p.state IN ('accepted', 'dispatching')
		   OR (p.state = 'sending' AND p.id IN (SELECT post_id FROM open))
		ORDER BY p.class = 'emergency' DESC, p.publish_at, p.id`)
}

// posts runs a query of postColumns.
func (db *DB) posts(ctx context.Context, what, sql string, args ...any) ([]Post, error) {
	rows, err := db.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var out []Post
	for rows.Next() {
		p, err := scanPost(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}
