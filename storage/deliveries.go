package storage

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Delivery states.
const (
	DeliveryPending   = "pending"
	DeliverySent      = "sent"
	DeliveryFailed    = "failed"
	DeliveryDeadToken = "dead_token"
	DeliveryDeferred  = "deferred"
	DeliverySkipped   = "skipped"
	DeliveryCancelled = "cancelled"
	DeliveryExpired   = "expired"
)

// Audience is a compiled audience condition over the devices table (alias
// d): SQL text with $n placeholders numbered from ArgBase+1, and their
// values. Only the segments package builds one.
type Audience struct {
	Where string
	Args  []any
}

// Snapshot fixes a post's audience: in one statement it inserts one pending
// delivery per matching active device of the post's tenant, then moves the
// post to dispatching. It is idempotent: a post that was snapshotted already
// keeps its deliveries, and the call reports the existing audience size.
// The audience's placeholders must start at $4; $1 is the post id, $2 the
// tenant id and $3 the feed id.
func (db *DB) Snapshot(ctx context.Context, p Post, aud Audience, ignoreMutes bool) (int, error) {
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("snapshot post %d: %w", p.ID, err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after commit

	var state string
	var audience *int
	if err := tx.QueryRow(ctx, `SELECT state, audience FROM posts WHERE id = $1 FOR UPDATE`, p.ID).Scan(&state, &audience); err != nil {
		return 0, notFound(err, fmt.Sprintf("snapshot post %d", p.ID))
	}
	if state != PostAccepted {
		if audience == nil {
			return 0, nil
		}
		return *audience, nil
	}
	mutes := `AND NOT (d.mutes @> ARRAY[$3::bigint])`
	if ignoreMutes {
		mutes = `AND $3::bigint IS NOT NULL`
	}
	args := append([]any{p.ID, p.TenantID, p.FeedID}, aud.Args...)
	tag, err := tx.Exec(ctx, `INSERT INTO deliveries (post_id, device_id, provider)
		SELECT $1, d.id, d.provider FROM devices d
		WHERE d.tenant_id = $2 AND d.active `+mutes+` AND (`+aud.Where+`)
		ON CONFLICT DO NOTHING`, args...)
	if err != nil {
		return 0, fmt.Errorf("snapshot post %d: %w", p.ID, err)
	}
	n := int(tag.RowsAffected())
	if _, err := tx.Exec(ctx, `UPDATE posts SET state = $2, audience = $3, snapshot_at = now() WHERE id = $1`,
		p.ID, PostDispatching, n); err != nil {
		return 0, fmt.Errorf("snapshot post %d: mark dispatching: %w", p.ID, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("snapshot post %d: commit: %w", p.ID, err)
	}
	return n, nil
}

// Target is one pending delivery with what a send task needs.
type Target struct {
	DeviceID int64
	Provider string
	Token    string
}

// PendingPage returns up to limit pending deliveries of a post with device id
// above after, in device order, with their devices' current tokens.
// Deliveries whose device was deleted since the snapshot are marked skipped
// on the way.
func (db *DB) PendingPage(ctx context.Context, postID, after int64, limit int) ([]Target, error) {
	rows, err := db.Pool.Query(ctx, `SELECT dl.device_id, dl.provider, d.token
		FROM deliveries dl LEFT JOIN devices d ON d.id = dl.device_id
		WHERE dl.post_id = $1 AND dl.device_id > $2 AND dl.state = 'pending'
		ORDER BY dl.device_id LIMIT $3`, postID, after, limit)
	if err != nil {
		return nil, fmt.Errorf("pending deliveries of post %d: %w", postID, err)
	}
	var out []Target
	var gone []int64
	for rows.Next() {
		var t Target
		var token *string
		if err := rows.Scan(&t.DeviceID, &t.Provider, &token); err != nil {
			return nil, fmt.Errorf("pending deliveries of post %d: %w", postID, err)
		}
		if token == nil {
			gone = append(gone, t.DeviceID)
			continue
		}
		t.Token = *token
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pending deliveries of post %d: %w", postID, err)
	}
	if len(gone) > 0 {
		if _, err := db.Pool.Exec(ctx, `UPDATE deliveries SET state = 'skipped', reason = 'device_removed',
			updated_at = now() WHERE post_id = $1 AND device_id = ANY($2) AND state = 'pending'`, postID, gone); err != nil {
			return nil, fmt.Errorf("skip removed devices of post %d: %w", postID, err)
		}
	}
	return out, nil
}

// AdvanceDispatch records how far a dispatch has enqueued, so a dispatch
// that is interrupted resumes from there.
func (db *DB) AdvanceDispatch(ctx context.Context, postID, cursor int64) error {
	if _, err := db.Pool.Exec(ctx, `UPDATE posts SET dispatch_cursor = $2 WHERE id = $1 AND dispatch_cursor < $2`,
		postID, cursor); err != nil {
		return fmt.Errorf("advance dispatch of post %d: %w", postID, err)
	}
	return nil
}

// FinishDispatch marks a post as sending: every delivery is enqueued.
func (db *DB) FinishDispatch(ctx context.Context, postID int64) error {
	if _, err := db.Pool.Exec(ctx, `UPDATE posts SET state = 'sending', dispatched_at = now()
		WHERE id = $1 AND state = 'dispatching'`, postID); err != nil {
		return fmt.Errorf("finish dispatch of post %d: %w", postID, err)
	}
	return nil
}

// Outcome is what became of one send attempt.
type Outcome struct {
	PostID   int64
	DeviceID int64
	// State is the delivery's new state; pending for an attempt that will be
	// retried.
	State             string
	Reason            string
	Error             string
	ProviderMessageID string
	// CountAttempt is false for attempts that do not count as failures
	// (throttling).
	CountAttempt bool
}

// RecordOutcomes writes send outcomes in one round trip. Only deliveries
// still pending change: a late duplicate never overwrites a final state.
func (db *DB) RecordOutcomes(ctx context.Context, outs []Outcome) error {
	if len(outs) == 0 {
		return nil
	}
	batch := &pgx.Batch{}
	for _, o := range outs {
		inc := 0
		if o.CountAttempt {
			inc = 1
		}
		batch.Queue(`UPDATE deliveries SET state = $3, reason = $4, last_error = $5,
			provider_message_id = $6, attempts = attempts + $7,
			sent_at = CASE WHEN $3 = 'sent' THEN now() ELSE sent_at END, updated_at = now()
			WHERE post_id = $1 AND device_id = $2 AND state = 'pending'`,
			o.PostID, o.DeviceID, o.State, o.Reason, o.Error, o.ProviderMessageID, inc)
	}
	if err := db.Pool.SendBatch(ctx, batch).Close(); err != nil {
		return fmt.Errorf("record %d outcomes: %w", len(outs), err)
	}
	return nil
}
