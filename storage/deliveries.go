package storage

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/segments"
)

// Audience is a compiled audience condition over the devices table (alias
// d): SQL text with $n placeholders numbered from 5, and their values.
// Only the segments package builds its SQL (CompileAudience).
type Audience struct {
	Where string
	Args  []any
	// Why is the rule each device is in the audience by, which Snapshot
	// records with its delivery.
	Why segments.Why
}

// CompileAudience compiles an audience expression for the statements of
// Snapshot and CountAudience: the tenant id is $2, and $1 to $4 are theirs.
// Snapshot records why as each delivery's reason.
func CompileAudience(e *segments.Expr, why segments.Why) Audience {
	c := segments.Compile(e, segments.Params{TenantParam: 2, ArgBase: 4})
	return Audience{Where: c.SQL, Args: c.Args, Why: why}
}

// SnapshotOptions say how a post's audience is narrowed beyond its segment.
type SnapshotOptions struct {
	// Now is the moment of the snapshot: quiet hours are judged at it.
	Now time.Time
	// Emergency posts ignore mutes and quiet hours.
	Emergency bool
	// Head, if positive, makes this a head start: only the Head first
	// devices of the audience (by id) get their deliveries, and the post
	// stays accepted, so an alert's first sends can leave while the rest of
	// its audience is snapshotted by a second call without Head.
	Head int
}

// Snapshot fixes a post's audience: in one statement it inserts one delivery
// per matching active device of the post's tenant, then moves the post to
// dispatching. A device in its quiet hours gets a deferred delivery that is
// due when its quiet window ends in its own time zone. Snapshot is
// idempotent: a post that was snapshotted already keeps its deliveries, and
// the call reports the existing audience size.
//
// The audience's placeholders must start at $5: $1 is the post id, $2 the
// tenant id, $3 the feed id and $4 the time of the snapshot.
func (db *DB) Snapshot(ctx context.Context, p Post, aud Audience, opt SnapshotOptions) (int, error) {
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("snapshot post %d: %w", p.ID, err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after commit
	if _, err := tx.Exec(ctx, `SET LOCAL jit = off`); err != nil {
		return 0, fmt.Errorf("snapshot post %d: %w", p.ID, err)
	}

	var state crier.PostState
	var audience *int
	if err := tx.QueryRow(ctx, `SELECT state, audience FROM posts WHERE id = $1 FOR UPDATE`, p.ID).Scan(&state, &audience); err != nil {
		return 0, notFound(err, fmt.Sprintf("snapshot post %d", p.ID))
	}
	if state != crier.PostAccepted {
		if audience == nil {
			return 0, nil
		}
		return *audience, nil
	}
	eligible := notMuted
	// No device row, whatever is in it, may fail the statement and so the
	// post for everyone: a time zone PostgreSQL does not know (stored
	// before the API checked zones, or by hand) would make AT TIME ZONE
	// raise. The zone is looked up in the known ones first ($zones), and a
	// device in quiet hours whose zone is unknown is skipped with a reason.
	zones, err := db.TimeZones(ctx)
	if err != nil {
		return 0, fmt.Errorf("snapshot post %d: %w", p.ID, err)
	}
	zoneArg := "$" + strconv.Itoa(5+len(aud.Args))
	// quiet: whether the device's local time at $4 lies in its quiet window
	// (which may wrap midnight); ends: the next end of that window.
	quiet := `LEFT JOIN (SELECT unnest(` + zoneArg + `::text[]) AS name) z ON z.name = d.time_zone
		LEFT JOIN LATERAL (
			SELECT CASE WHEN d.quiet_start < d.quiet_end THEN l.t >= d.quiet_start AND l.t < d.quiet_end
			            ELSE l.t >= d.quiet_start OR l.t < d.quiet_end END AS quiet,
			       CASE WHEN (l.day + d.quiet_end) AT TIME ZONE z.name > $4
			            THEN (l.day + d.quiet_end) AT TIME ZONE z.name
			            ELSE (l.day + 1 + d.quiet_end) AT TIME ZONE z.name END AS ends
			FROM (SELECT ($4::timestamptz AT TIME ZONE z.name) AS lt) x,
			     LATERAL (SELECT x.lt::time AS t, x.lt::date AS day) l
		) q ON d.quiet_start IS NOT NULL AND z.name IS NOT NULL`
	unknownZone := `d.quiet_start IS NOT NULL AND z.name IS NULL`
	if opt.Emergency {
		eligible = ignoreMutes
		quiet = `LEFT JOIN LATERAL (SELECT false AS quiet, NULL::timestamptz AS ends
			WHERE $4::timestamptz IS NULL AND ` + zoneArg + `::text[] IS NULL) q ON false`
		unknownZone = `false`
	}
	// The post's row lock and state make this the only snapshot of the post;
	// only a head start leaves rows that a later call must not repeat.
	var hasHead bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM deliveries WHERE post_id = $1)`, p.ID).Scan(&hasHead); err != nil {
		return 0, fmt.Errorf("snapshot post %d: %w", p.ID, err)
	}
	limit, skipHead := "", ""
	if opt.Head > 0 {
		limit = fmt.Sprintf(" ORDER BY d.id LIMIT %d", opt.Head)
	}
	if hasHead {
		// Not ON CONFLICT: its speculative inserts wait on, and can
		// deadlock with, workers recording the head's outcomes.
		skipHead = ` AND NOT EXISTS (SELECT 1 FROM deliveries h WHERE h.post_id = $1 AND h.device_id = d.id)`
	}
	args := append(append([]any{p.ID, p.TenantID, p.FeedID, opt.Now}, aud.Args...), zones)
	where := "(" + aud.Where + ")"
	where0 := where
	if p.IncidentID != 0 && p.MsgType != crier.MsgAlert {
		// A follow-up reaches everyone an earlier message of its incident
		// reached (incidentRecipients); a cancel no one else, its area
		// kept only for its parameters' sake.
		if p.MsgType == crier.MsgCancel {
			where = "(false AND " + where + ")"
		}
		where = "(" + where + " OR d.id IN (" + incidentRecipients("$"+strconv.Itoa(len(args)+1), "$1") + "))"
		args = append(args, p.IncidentID)
	}
	why := segments.CompileWhy(aud.Why, segments.Params{TenantParam: 2, ArgBase: len(args)})
	args = append(args, why.Args...)
	whySQL := why.SQL
	if p.IncidentID != 0 && p.MsgType != crier.MsgAlert {
		// A device outside the follow-up's area has it because an
		// earlier message of the incident reached it.
		whySQL = "CASE WHEN " + where0 + " THEN " + whySQL + " ELSE '" + segments.WhyIncident + "||||' END"
	}
	if p.Exercise {
		// Exercises and tests never reach residents.
		where += " AND d.test"
	}
	// A post that expires before a device's quiet hours end is not
	// deferred to a morning when it is over: it expires, and says why.
	expiresArg := "$" + strconv.Itoa(len(args)+1)
	args = append(args, p.ExpiresAt)
	expired := `coalesce(q.quiet, false) AND ` + expiresArg + `::timestamptz IS NOT NULL AND ` + expiresArg + `::timestamptz <= q.ends`
	// A device that has had its pushes of the organisation today is kept
	// (skipped, sender_cap), not pushed.
	pc, err := pushCapOf(ctx, tx, p, opt.Now)
	if err != nil {
		return 0, fmt.Errorf("snapshot post %d: %w", p.ID, err)
	}
	capped := pc.sql(&args)
	tag, err := tx.Exec(ctx, `INSERT INTO deliveries (post_id, device_id, provider, state, reason, not_before, why)
		SELECT $1, d.id, d.provider,
		       CASE WHEN `+unknownZone+` THEN 'skipped' WHEN c.capped THEN 'skipped' WHEN `+expired+` THEN 'expired'
		            WHEN coalesce(q.quiet, false) THEN 'deferred' ELSE 'pending' END,
		       CASE WHEN `+unknownZone+` THEN '`+ReasonUnknownTimeZone+`' WHEN c.capped THEN '`+ReasonSenderCap+`'
		            WHEN `+expired+` THEN '`+ReasonExpiresInQuietHours+`' ELSE '' END,
		       CASE WHEN coalesce(q.quiet, false) AND NOT c.capped AND NOT (`+expired+`) THEN q.ends END,
		       `+whySQL+`
		FROM devices d `+quiet+`
		CROSS JOIN LATERAL (SELECT `+capped+` AS capped) c
		WHERE d.tenant_id = $2 AND d.active `+eligible+` AND `+where+skipHead+limit, args...)
	if err != nil {
		return 0, fmt.Errorf("snapshot post %d: %w", p.ID, err)
	}
	n := int(tag.RowsAffected())
	if opt.Head > 0 {
		if err := tx.Commit(ctx); err != nil {
			return 0, fmt.Errorf("snapshot head of post %d: commit: %w", p.ID, err)
		}
		return n, nil
	}
	if hasHead {
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM deliveries WHERE post_id = $1`, p.ID).Scan(&n); err != nil {
			return 0, fmt.Errorf("snapshot post %d: count: %w", p.ID, err)
		}
	}
	if _, err := tx.Exec(ctx, `UPDATE posts SET state = $2, audience = $3, snapshot_at = clock_timestamp() WHERE id = $1`,
		p.ID, crier.PostDispatching, n); err != nil {
		return 0, fmt.Errorf("snapshot post %d: mark dispatching: %w", p.ID, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("snapshot post %d: commit: %w", p.ID, err)
	}
	// A large snapshot changes the table more than autovacuum notices in
	// time; fresh statistics keep the paging's plans right.
	if n >= 50_000 {
		if _, err := db.pool.Exec(ctx, `ANALYZE deliveries`); err != nil {
			return n, fmt.Errorf("snapshot post %d: analyze: %w", p.ID, err)
		}
	}
	return n, nil
}

// Reasons the snapshot gives a delivery it does not send now.
const (
	// ReasonUnknownTimeZone skips a device in quiet hours whose time zone
	// PostgreSQL does not know: its quiet window cannot be judged.
	ReasonUnknownTimeZone = "time_zone_unknown"
	// ReasonExpiresInQuietHours expires a delivery to a device in quiet
	// hours that end after the post expires.
	ReasonExpiresInQuietHours = "expires_in_quiet_hours"
)

// Eligibility beyond the segment, with the feed id in $3.
const (
	notMuted    = `AND NOT (d.mutes @> ARRAY[$3::bigint])`
	ignoreMutes = `AND $3::bigint IS NOT NULL` // emergencies; keeps $3 typed
)

// AudienceCount is how many devices an audience holds, by platform.
type AudienceCount struct {
	Total, Android, IOS int
}

// CountAudience counts the devices a post with this audience would be sent
// to now: active devices of the tenant matching the audience, less those
// that muted the feed (unless emergency). The audience's placeholders start
// at $5, as in Snapshot ($4 is unused).
func (db *DB) CountAudience(ctx context.Context, tenantID, feedID int64, aud Audience, emergency bool) (AudienceCount, error) {
	eligible := notMuted
	if emergency {
		eligible = ignoreMutes
	}
	args := append([]any{nil, tenantID, feedID, nil}, aud.Args...)
	var c AudienceCount
	err := db.pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE d.platform = 'android'),
		count(*) FILTER (WHERE d.platform = 'ios')
		FROM devices d WHERE $1::bigint IS NULL AND $4::timestamptz IS NULL AND d.tenant_id = $2 AND d.active `+eligible+`
		AND (`+aud.Where+`)`, args...).Scan(&c.Total, &c.Android, &c.IOS)
	if err != nil {
		return AudienceCount{}, fmt.Errorf("count audience: %w", err)
	}
	return c, nil
}

// Target is one pending delivery with what a send task needs.
type Target struct {
	DeviceID int64
	Provider string
	Token    string
	// NotBefore is set for a deferred delivery: when it is due.
	NotBefore *time.Time
	// Locale is the device's language tag, to choose the post's text by.
	Locale string
}

// PendingPage returns up to limit pending or deferred deliveries of a post with device id
// above after, in device order, with their devices' current tokens.
// Deliveries whose device was deleted since the snapshot are marked skipped
// on the way.
func (db *DB) PendingPage(ctx context.Context, postID, after int64, limit int) ([]Target, error) {
	// The page is cut from the primary key's order first and only then
	// joined, so that the plan stays a short index range scan whatever the
	// statistics say.
	rows, err := db.pool.Query(ctx, `SELECT p.device_id, p.provider, d.token, d.locale, p.not_before
		FROM (SELECT device_id, provider, not_before FROM deliveries
		      WHERE post_id = $1 AND device_id > $2 AND state IN ('pending', 'deferred')
		      ORDER BY device_id LIMIT $3) p
		LEFT JOIN devices d ON d.id = p.device_id
		ORDER BY p.device_id`, postID, after, limit)
	if err != nil {
		return nil, fmt.Errorf("pending deliveries of post %d: %w", postID, err)
	}
	var out []Target
	var gone []int64
	for rows.Next() {
		var t Target
		var token, locale *string
		if err := rows.Scan(&t.DeviceID, &t.Provider, &token, &locale, &t.NotBefore); err != nil {
			return nil, fmt.Errorf("pending deliveries of post %d: %w", postID, err)
		}
		if token == nil {
			gone = append(gone, t.DeviceID)
			continue
		}
		t.Token, t.Locale = *token, *locale
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pending deliveries of post %d: %w", postID, err)
	}
	if len(gone) > 0 {
		if _, err := db.pool.Exec(ctx, `UPDATE deliveries SET state = 'skipped', reason = 'device_removed',
			updated_at = now() WHERE post_id = $1 AND device_id = ANY($2) AND state IN ('pending', 'deferred')`, postID, gone); err != nil {
			return nil, fmt.Errorf("skip removed devices of post %d: %w", postID, err)
		}
	}
	return out, nil
}

// AdvanceDispatch records how far a dispatch has enqueued, so a dispatch
// that is interrupted resumes from there, and returns the post's state: a
// dispatch stops when its post was cancelled meanwhile.
func (db *DB) AdvanceDispatch(ctx context.Context, postID, cursor int64) (crier.PostState, error) {
	var state crier.PostState
	if err := db.pool.QueryRow(ctx, `UPDATE posts SET dispatch_cursor = greatest(dispatch_cursor, $2) WHERE id = $1
		RETURNING state`, postID, cursor).Scan(&state); err != nil {
		return "", notFound(err, fmt.Sprintf("advance dispatch of post %d", postID))
	}
	return state, nil
}

// FinishDispatch marks a post as sending: every delivery is enqueued.
func (db *DB) FinishDispatch(ctx context.Context, postID int64) error {
	if _, err := db.pool.Exec(ctx, `UPDATE posts SET state = 'sending', dispatched_at = now()
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
	State             crier.DeliveryState
	Reason            string
	Error             string
	ProviderMessageID string
	// CountAttempt is false for attempts that do not count as failures
	// (throttling).
	CountAttempt bool
}

// RecordOutcomes writes send outcomes in one statement (one round trip,
// one commit). Only deliveries still pending (or deferred) change: a late
// duplicate never overwrites a final state. The one exception is a send
// that was under way when a follow-up superseded its message: that it was
// sent after all is the truth (SupersedeEarlier).
func (db *DB) RecordOutcomes(ctx context.Context, outs []Outcome) error {
	if len(outs) == 0 {
		return nil
	}
	// Rows in one order, so that concurrent batches cannot deadlock.
	outs = slices.SortedFunc(slices.Values(outs), func(a, b Outcome) int {
		return cmp.Or(cmp.Compare(a.PostID, b.PostID), cmp.Compare(a.DeviceID, b.DeviceID))
	})
	n := len(outs)
	posts, devices := make([]int64, n), make([]int64, n)
	states, reasons, errs, ids := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	incs := make([]int32, n)
	for i, o := range outs {
		posts[i], devices[i], states[i], reasons[i], errs[i], ids[i] = o.PostID, o.DeviceID, string(o.State), o.Reason, o.Error, o.ProviderMessageID
		if o.CountAttempt {
			incs[i] = 1
		}
	}
	_, err := db.pool.Exec(ctx, `UPDATE deliveries d SET state = u.state, reason = u.reason, last_error = u.err,
			provider_message_id = u.mid, attempts = d.attempts + u.inc,
			sent_at = CASE WHEN u.state = 'sent' THEN now() ELSE d.sent_at END, updated_at = now()
		FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int[])
			AS u(post_id, device_id, state, reason, err, mid, inc)
		WHERE d.post_id = u.post_id AND d.device_id = u.device_id AND (d.state IN ('pending', 'deferred')
			OR (d.state = 'cancelled' AND d.reason = '`+ReasonSuperseded+`' AND u.state = 'sent'))`,
		posts, devices, states, reasons, errs, ids, incs)
	if err != nil {
		return fmt.Errorf("record %d outcomes: %w", n, err)
	}
	return nil
}

// DeliveryOpen reports whether a delivery still waits for its send
// (pending or deferred).
func (db *DB) DeliveryOpen(ctx context.Context, postID, deviceID int64) (bool, error) {
	var open bool
	err := db.pool.QueryRow(ctx, `SELECT state IN ('pending', 'deferred') FROM deliveries
		WHERE post_id = $1 AND device_id = $2`, postID, deviceID).Scan(&open)
	if err != nil {
		return false, notFound(err, fmt.Sprintf("delivery %d/%d", postID, deviceID))
	}
	return open, nil
}
