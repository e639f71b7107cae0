package storage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Actor is who takes an audited action: the key a request came with, or
// the operator at the command line.
type Actor struct {
	// KeyID is the key the request came with; 0 is the operator.
	KeyID int64
	// RequestID ties the record to its request (X-Request-Id) or to one run
	// of a command.
	RequestID string
}

// Operator is the operator acting in the run of a command named by
// requestID.
func Operator(requestID string) Actor { return Actor{RequestID: requestID} }

// AuditAction names what was done.
type AuditAction string

// The actions the audit log records.
const (
	AuditPostCreated    AuditAction = "post.created"
	AuditPostCancelled  AuditAction = "post.cancelled"
	AuditAlertCreated   AuditAction = "alert.created"   // a JSON alert, a CAP Alert or Update
	AuditAlertCancelled AuditAction = "alert.cancelled" // an all-clear sent, JSON or CAP
	AuditAlertUpdated   AuditAction = "alert.updated"   // an update sent, JSON or CAP
	AuditAlertWithdrawn AuditAction = "alert.withdrawn" // a cancel of an incident that reached no one
	AuditAlertApproved  AuditAction = "alert.approved"
	AuditTestDevices    AuditAction = "test_devices.changed"
	AuditAlertRules     AuditAction = "tenant.alert_rules" // the operator's
	AuditPrivacy        AuditAction = "tenant.privacy"     // the operator's: ID-only pushes (privacy.go)
	AuditAreasImported  AuditAction = "areas.imported"
	AuditKeyCreated     AuditAction = "key.created"
	AuditKeyRevoked     AuditAction = "key.revoked"
	AuditLimitsSet      AuditAction = "publisher.limits" // a publisher's caps (caps.go)
)

// AuditActions lists every action, for filters to check against.
var AuditActions = []AuditAction{AuditPostCreated, AuditPostCancelled, AuditAlertCreated, AuditAlertCancelled,
	AuditAlertUpdated, AuditAlertWithdrawn, AuditAlertApproved, AuditTestDevices, AuditAlertRules, AuditPrivacy,
	AuditAreasImported, AuditKeyCreated, AuditKeyRevoked, AuditLimitsSet}

// Event is an action to record.
type Event struct {
	TenantID int64
	Action   AuditAction
	// Object is what the action was on: a post's id, a key's id, area
	// slugs (comma-separated).
	Object string
	// Detail is a small JSON object of what else is worth knowing.
	Detail map[string]any
}

// AuditEntry is one row of the audit log. Who acted is as it was then: the
// key's label and the publisher's slug are copied in.
type AuditEntry struct {
	ID         int64
	At         time.Time
	TenantID   int64
	TenantSlug string
	// Actor is "key" or "operator".
	Actor         string
	KeyID         *int64
	KeyLabel      string
	PublisherID   *int64
	PublisherSlug string
	Action        AuditAction
	Object        string
	RequestID     string
	Detail        json.RawMessage
}

// AuditQuery selects audit entries, newest first.
type AuditQuery struct {
	// TenantID is the tenant whose entries to read; 0 reads every
	// tenant's (the operator).
	TenantID int64
	// Since, if not zero, leaves out entries before it.
	Since time.Time
	// Action, if not empty, keeps only entries of the action.
	Action AuditAction
	// Before, if not 0, reads the entries older than the entry of this id:
	// the cursor of the next page.
	Before int64
	// Limit caps the entries read; it must be positive.
	Limit int
}

// AreasImported is the record of an area import into the tenant: the slugs
// imported, and which of them were repaired.
func AreasImported(tenantID int64, in []AreaInput) Event {
	slugs := make([]string, len(in))
	repaired := []string{}
	for i, a := range in {
		slugs[i] = a.Slug
		if a.Repaired {
			repaired = append(repaired, a.Slug)
		}
	}
	return Event{TenantID: tenantID, Action: AuditAreasImported, Object: strings.Join(slugs, ","),
		Detail: map[string]any{"imported": len(in), "repaired": repaired}}
}

// NewRequestID makes a request id for a request that brought none, or for
// one run of a command: 16 random bytes in hex.
func NewRequestID() string {
	var b [16]byte
	rand.Read(b[:]) //nolint:errcheck // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}

// Record writes one entry to the audit log. The key's label and publisher
// are read from the key itself, which must be of the event's tenant.
func (db *DB) Record(ctx context.Context, by Actor, e Event) error {
	return record(ctx, db.pool, by, e)
}

func record(ctx context.Context, q querier, by Actor, e Event) error {
	detail := []byte("{}")
	if len(e.Detail) > 0 {
		var err error
		if detail, err = json.Marshal(e.Detail); err != nil {
			return fmt.Errorf("audit %s: detail: %w", e.Action, err)
		}
	}
	if by.KeyID == 0 {
		_, err := q.Exec(ctx, `INSERT INTO audit_log (tenant_id, actor, action, object, request_id, detail)
			VALUES ($1, 'operator', $2, $3, $4, $5)`, e.TenantID, e.Action, e.Object, by.RequestID, detail)
		if err != nil {
			return fmt.Errorf("audit %s: %w", e.Action, err)
		}
		return nil
	}
	tag, err := q.Exec(ctx, `INSERT INTO audit_log (tenant_id, actor, key_id, key_label, publisher_id, publisher_slug,
			action, object, request_id, detail)
		SELECT k.tenant_id, 'key', k.id, k.label, p.id, COALESCE(p.slug, ''), $3, $4, $5, $6
		FROM api_keys k LEFT JOIN publishers p ON p.id = k.publisher_id
		WHERE k.id = $1 AND k.tenant_id = $2`, by.KeyID, e.TenantID, e.Action, e.Object, by.RequestID, detail)
	if err != nil {
		return fmt.Errorf("audit %s: %w", e.Action, err)
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("audit %s: key %d of tenant %d: %w", e.Action, by.KeyID, e.TenantID, ErrNotFound)
	}
	return nil
}

// auditSelect reads audit entries; the two queries below differ only in
// whether one tenant's are read, so that that one uses the tenant's index.
const auditSelect = `SELECT a.id, a.at, a.tenant_id, COALESCE(t.slug, ''), a.actor, a.key_id, a.key_label,
	a.publisher_id, a.publisher_slug, a.action, a.object, a.request_id, a.detail
	FROM audit_log a LEFT JOIN tenants t ON t.id = a.tenant_id `

const auditFilters = ` AND ($2::timestamptz IS NULL OR a.at >= $2) AND ($3 = '' OR a.action = $3)
	AND ($4::bigint = 0 OR a.id < $4) ORDER BY a.id DESC LIMIT $5`

const (
	auditOfTenant = auditSelect + `WHERE a.tenant_id = $1` + auditFilters
	auditOfAll    = auditSelect + `WHERE $1::bigint = 0` + auditFilters
)

// AuditLog reads audit entries, newest first.
func (db *DB) AuditLog(ctx context.Context, aq AuditQuery) ([]AuditEntry, error) {
	if aq.Limit <= 0 {
		return nil, fmt.Errorf("audit log: limit %d: must be positive", aq.Limit)
	}
	query := auditOfTenant
	if aq.TenantID == 0 {
		query = auditOfAll
	}
	var since *time.Time
	if !aq.Since.IsZero() {
		since = &aq.Since
	}
	rows, err := db.pool.Query(ctx, query, aq.TenantID, since, aq.Action, aq.Before, aq.Limit)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	entries, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (AuditEntry, error) {
		var e AuditEntry
		err := r.Scan(&e.ID, &e.At, &e.TenantID, &e.TenantSlug, &e.Actor, &e.KeyID, &e.KeyLabel, &e.PublisherID, &e.PublisherSlug,
			&e.Action, &e.Object, &e.RequestID, &e.Detail)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	return entries, nil
}
