package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/crier-push/crier"
)

// An incident is an alert and its follow-ups (DESIGN.md, "Alerts are
// incidents"): each message is a post, every one of them naming the first
// as its incident (posts.incident_id). An update reaches everyone an
// earlier message reached and everyone in its own area; a cancel (the
// all-clear) everyone an earlier message reached.

// ReasonSuperseded marks the sends of a message that a later message of its
// incident replaced before they went.
const ReasonSuperseded = "superseded"

// incidentRecipients is the SQL of the devices an earlier message of an
// incident reached, with the incident's id and the follow-up's post id as
// the parameters named. Reached is sent, or still on its way: a send that
// is pending, or was superseded by this very follow-up while a worker may
// have been pushing it (it is recorded as sent if it went, but only after
// the follow-up's snapshot). An all-clear too many is better than one
// missed.
func incidentRecipients(incident, post string) string {
	return `SELECT r.device_id FROM deliveries r
		WHERE r.post_id IN (SELECT e.id FROM posts e WHERE e.incident_id = ` + incident + ` AND e.id < ` + post + `)
		  AND (r.state IN ('sent', 'pending', 'deferred') OR (r.state = 'cancelled' AND r.reason = '` + ReasonSuperseded + `'))`
}

// SupersedeEarlier cancels what the earlier messages of a follow-up's
// incident have not sent yet, so no phone gets the old text after the new:
// their pending sends become cancelled (superseded) and the messages
// themselves cancelled, which stops their dispatch and their workers. It
// returns how many sends it cancelled. Calling it again does nothing more.
func (db *DB) SupersedeEarlier(ctx context.Context, p Post) (int, error) {
	if p.IncidentID == 0 || p.MsgType == crier.MsgAlert {
		return 0, nil
	}
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("supersede messages before post %d: %w", p.ID, err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after commit
	// The earlier messages are locked first, as CancelPost locks a post
	// before its deliveries, so the two cannot deadlock.
	var earlier []int64
	rows, err := tx.Query(ctx, `SELECT id FROM posts WHERE incident_id = $1 AND id < $2
		AND state IN ('awaiting_approval', 'accepted', 'dispatching', 'sending') ORDER BY id FOR UPDATE`, p.IncidentID, p.ID)
	if err != nil {
		return 0, fmt.Errorf("supersede messages before post %d: %w", p.ID, err)
	}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return 0, fmt.Errorf("supersede messages before post %d: %w", p.ID, err)
		}
		earlier = append(earlier, id)
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("supersede messages before post %d: %w", p.ID, err)
	}
	if len(earlier) == 0 {
		return 0, nil
	}
	tag, err := tx.Exec(ctx, `UPDATE deliveries SET state = 'cancelled', reason = '`+ReasonSuperseded+`', updated_at = now()
		WHERE post_id = ANY($1) AND state IN ('pending', 'deferred')`, earlier)
	if err != nil {
		return 0, fmt.Errorf("supersede messages before post %d: %w", p.ID, err)
	}
	// A message whose sends are all done keeps its state; one with sends
	// left, or not dispatched yet, is over.
	if _, err := tx.Exec(ctx, `UPDATE posts e SET state = 'cancelled', cancelled_at = now()
		WHERE e.id = ANY($1) AND (e.state <> 'sending' OR EXISTS (SELECT 1 FROM deliveries r
			WHERE r.post_id = e.id AND r.state = 'cancelled' AND r.reason = '`+ReasonSuperseded+`'))`, earlier); err != nil {
		return 0, fmt.Errorf("supersede messages before post %d: %w", p.ID, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("supersede messages before post %d: commit: %w", p.ID, err)
	}
	return int(tag.RowsAffected()), nil
}

// Incident returns the messages of a tenant's incident, the first first.
func (db *DB) Incident(ctx context.Context, tenantID, incidentID int64) ([]Post, error) {
	posts, err := db.posts(ctx, "incident", `SELECT `+postColumns+` FROM posts p JOIN feeds f ON f.id = p.feed_id
		WHERE p.tenant_id = $1 AND p.incident_id = $2 ORDER BY p.id`, tenantID, incidentID)
	if err != nil {
		return nil, err
	}
	if len(posts) == 0 {
		return nil, fmt.Errorf("incident %d: %w", incidentID, ErrNotFound)
	}
	return posts, nil
}

// Reached is how many devices each message of an incident reached (sent),
// by post id.
func (db *DB) Reached(ctx context.Context, postIDs []int64) (map[int64]int, error) {
	out := make(map[int64]int, len(postIDs))
	rows, err := db.pool.Query(ctx, `SELECT post_id, sum(n)::bigint FROM delivery_counts
		WHERE post_id = ANY($1) AND state = 'sent' GROUP BY post_id`, postIDs)
	if err != nil {
		return nil, fmt.Errorf("reach of posts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return nil, fmt.Errorf("reach of posts: %w", err)
		}
		out[id] = n
	}
	return out, rows.Err()
}

// Errors of approving an alert.
var (
	// ErrSelfApproval: the key that created an alert cannot approve it.
	ErrSelfApproval = errors.New("an alert is approved by another key than the one that created it")
	// ErrNotAwaiting: the post does not wait for approval.
	ErrNotAwaiting = errors.New("the post does not wait for approval")
	// ErrLapsed: the alert waited longer than the tenant allows.
	ErrLapsed = errors.New("the alert lapsed unapproved")
)

// ApprovePost releases an alert awaiting approval with the key of the
// second person, making it accepted for dispatch. The key that created it
// cannot; one that waited past its lapse is marked lapsed instead.
func (db *DB) ApprovePost(ctx context.Context, tenantID, postID, keyID int64, now time.Time) (Post, error) {
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return Post{}, fmt.Errorf("approve post %d: %w", postID, err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after commit
	var state crier.PostState
	var createdBy *int64
	var lapses *time.Time
	if err := tx.QueryRow(ctx, `SELECT state, created_by_key, lapses_at FROM posts WHERE tenant_id = $1 AND id = $2 FOR UPDATE`,
		tenantID, postID).Scan(&state, &createdBy, &lapses); err != nil {
		return Post{}, notFound(err, fmt.Sprintf("approve post %d", postID))
	}
	switch {
	case state == crier.PostLapsed:
		return Post{}, fmt.Errorf("approve post %d: %w", postID, ErrLapsed)
	case state != crier.PostAwaitingApproval:
		return Post{}, fmt.Errorf("approve post %d (%s): %w", postID, state, ErrNotAwaiting)
	case createdBy != nil && *createdBy == keyID:
		return Post{}, fmt.Errorf("approve post %d: %w", postID, ErrSelfApproval)
	case lapses != nil && !now.Before(*lapses):
		if _, err := tx.Exec(ctx, `UPDATE posts SET state = 'lapsed' WHERE id = $1`, postID); err != nil {
			return Post{}, fmt.Errorf("approve post %d: lapse: %w", postID, err)
		}
		if err := tx.Commit(ctx); err != nil {
			return Post{}, fmt.Errorf("approve post %d: lapse: %w", postID, err)
		}
		return Post{}, fmt.Errorf("approve post %d: %w", postID, ErrLapsed)
	}
	// Approved now, it goes now: its publish time is the approval's.
	if _, err := tx.Exec(ctx, `UPDATE posts SET state = 'accepted', approved_by_key = $2, approved_at = $3,
		publish_at = greatest(publish_at, $3) WHERE id = $1`, postID, keyID, now); err != nil {
		return Post{}, fmt.Errorf("approve post %d: %w", postID, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return Post{}, fmt.Errorf("approve post %d: commit: %w", postID, err)
	}
	return db.Post(ctx, tenantID, postID)
}

// LapseUnapproved marks lapsed every alert that waited for approval past
// its time, whatever its tenant, and returns how many.
func (db *DB) LapseUnapproved(ctx context.Context, now time.Time) (int, error) {
	tag, err := db.pool.Exec(ctx, `UPDATE posts SET state = 'lapsed'
		WHERE state = 'awaiting_approval' AND lapses_at <= $1`, now)
	if err != nil {
		return 0, fmt.Errorf("lapse unapproved alerts: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// AlertRules are a tenant's rules for its alerts.
type AlertRules struct {
	// Approval: an alert waits for a second key's approval.
	Approval bool
	// ApprovalTTL is how long an alert waits before it lapses.
	ApprovalTTL time.Duration
	// Language is the tenant's default language.
	Language string
}

// TenantAlertRules reads a tenant's alert rules.
func (db *DB) TenantAlertRules(ctx context.Context, tenantID int64) (AlertRules, error) {
	var r AlertRules
	var ttl int
	if err := db.pool.QueryRow(ctx, `SELECT alert_approval, approval_ttl_seconds, language FROM tenants WHERE id = $1`,
		tenantID).Scan(&r.Approval, &ttl, &r.Language); err != nil {
		return AlertRules{}, notFound(err, fmt.Sprintf("tenant %d", tenantID))
	}
	r.ApprovalTTL = time.Duration(ttl) * time.Second
	return r, nil
}

// SetTenantAlertRules changes a tenant's alert rules (the operator's).
func (db *DB) SetTenantAlertRules(ctx context.Context, tenantID int64, r AlertRules) error {
	tag, err := db.pool.Exec(ctx, `UPDATE tenants SET alert_approval = $2, approval_ttl_seconds = $3, language = $4 WHERE id = $1`,
		tenantID, r.Approval, int(r.ApprovalTTL/time.Second), r.Language)
	if err != nil {
		return fmt.Errorf("set alert rules of tenant %d: %w", tenantID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("set alert rules of tenant %d: %w", tenantID, ErrNotFound)
	}
	return nil
}

// SetTestDevices marks (test true) or unmarks a tenant's installations as
// test devices, and returns the installation ids it did not find.
func (db *DB) SetTestDevices(ctx context.Context, tenantID int64, installations []string, test bool) (unknown []string, err error) {
	rows, err := db.pool.Query(ctx, `WITH wanted AS (SELECT unnest($2::text[]) AS installation_id),
		changed AS (UPDATE devices d SET test = $3, updated_at = now() FROM wanted w
			WHERE d.tenant_id = $1 AND d.installation_id = w.installation_id RETURNING d.installation_id)
		SELECT w.installation_id FROM wanted w WHERE NOT EXISTS (SELECT 1 FROM changed c WHERE c.installation_id = w.installation_id)`,
		tenantID, installations, test)
	if err != nil {
		return nil, fmt.Errorf("set test devices: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("set test devices: %w", err)
		}
		unknown = append(unknown, id)
	}
	return unknown, rows.Err()
}

// TestDevices lists a tenant's test devices' installation ids.
func (db *DB) TestDevices(ctx context.Context, tenantID int64) ([]string, error) {
	rows, err := db.pool.Query(ctx, `SELECT installation_id FROM devices WHERE tenant_id = $1 AND test ORDER BY installation_id`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("test devices: %w", err)
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("test devices: %w", err)
		}
		out = append(out, id)
	}
	return out, rows.Err()
}
