package storage

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/internal/derrors"
	"github.com/jackc/pgx/v5"
)

// ErrBadKey: the API key is unknown or revoked.
var ErrBadKey = errors.New("unknown or revoked api key")

// MaxLabel bounds a key's label.
const MaxLabel = 200

// prefixChars is how many of a new key's random characters its prefix
// shows: 8 base32 characters (40 of the 160 bits) tell a deployment's keys
// apart; the 120 left unshown are the secret.
const prefixChars = 8

// Key is an API key as the municipality and the operator see it: never its
// hash. RevokedAt in the future is a rotation's grace: the key works until
// then.
type Key struct {
	ID         int64
	TenantID   int64
	TenantSlug string
	Kind       crier.KeyKind
	// Prefix is the start of the key, enough to recognise it.
	Prefix string
	// PublisherID and PublisherSlug are set for publisher keys.
	PublisherID   *int64
	PublisherSlug string
	// Label says whose key it is: the person or system it belongs to.
	Label     string
	CreatedAt time.Time
	// LastUsedAt is when the key last authenticated a request, to within a
	// minute (Authenticate writes it at most once a minute).
	LastUsedAt *time.Time
	RevokedAt  *time.Time
}

// NewKey says what a new key is for.
type NewKey struct {
	TenantID int64
	// PublisherID is the publisher a publisher key speaks for; nil makes
	// an app key.
	PublisherID *int64
	Label       string
}

// keyColumns are the columns scanKey reads, of api_keys k joined with
// tenants t and publishers p.
const keyColumns = `k.id, k.tenant_id, t.slug, k.kind, k.prefix, k.publisher_id, COALESCE(p.slug, ''),
	k.label, k.created_at, k.last_used_at, k.revoked_at`

const keyJoins = `FROM api_keys k JOIN tenants t ON t.id = k.tenant_id
	LEFT JOIN publishers p ON p.id = k.publisher_id`

func scanKey(row pgx.Row) (Key, error) {
	var k Key
	err := row.Scan(&k.ID, &k.TenantID, &k.TenantSlug, &k.Kind, &k.Prefix, &k.PublisherID, &k.PublisherSlug,
		&k.Label, &k.CreatedAt, &k.LastUsedAt, &k.RevokedAt)
	return k, err
}

// CheckLabel refuses a label that is empty (after trimming spaces), too
// long, or holds control characters; it returns the trimmed label.
func CheckLabel(label string) (string, error) {
	label = strings.TrimSpace(label)
	if label == "" {
		return "", crier.Invalid("label", "is required: say whose key it is (a person or a system)")
	}
	return label, crier.CheckWord("label", label, MaxLabel)
}

// NewAPIKey makes a key as the operator, labelled name (which may be
// empty): the bootstrap path of tests, the demo and the bench. It is
// recorded in the audit log like any other key made.
func (db *DB) NewAPIKey(ctx context.Context, tenantID int64, publisherID *int64, name string) (string, error) {
	_, secret, err := db.createKey(ctx, Actor{}, NewKey{TenantID: tenantID, PublisherID: publisherID, Label: name})
	return secret, err
}

// CreateKey makes a fresh random key ("crier_<kind>_<32 base32 chars>", 160
// bits of randomness), stores only its SHA-256, records key.created by the
// actor in the same transaction, and returns the key as stored and the key
// itself: it is shown once and never again. The label is required.
func (db *DB) CreateKey(ctx context.Context, by Actor, k NewKey) (Key, string, error) {
	label, err := CheckLabel(k.Label)
	if err != nil {
		return Key{}, "", err
	}
	k.Label = label
	return db.createKey(ctx, by, k)
}

func (db *DB) createKey(ctx context.Context, by Actor, k NewKey) (_ Key, _ string, err error) {
	defer derrors.Wrap(&err, "create api key")
	var key Key
	var secret string
	err = db.keyTx(ctx, func(q querier) error {
		var err error
		if key, secret, err = insertKey(ctx, q, k); err != nil {
			return err
		}
		return record(ctx, q, by, Event{TenantID: key.TenantID, Action: AuditKeyCreated,
			Object: strconv.FormatInt(key.ID, 10), Detail: keyDetail(key)})
	})
	return key, secret, err
}

// insertKey stores a new key and reads it back as Key.
func insertKey(ctx context.Context, q querier, k NewKey) (Key, string, error) {
	kind := crier.KeyApp
	if k.PublisherID != nil {
		kind = crier.KeyPublisher
	}
	var raw [20]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return Key{}, "", err
	}
	secret := "crier_" + string(kind) + "_" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(raw[:]))
	sum := sha256.Sum256([]byte(secret))
	prefix := secret[:len("crier_"+string(kind)+"_")+prefixChars]
	key, err := scanKey(q.QueryRow(ctx, `WITH k AS (
			INSERT INTO api_keys (tenant_id, publisher_id, kind, prefix, hash, label)
			VALUES ($1, $2, $3, $4, $5, $6) RETURNING *)
		SELECT `+keyColumns+` FROM k JOIN tenants t ON t.id = k.tenant_id
			LEFT JOIN publishers p ON p.id = k.publisher_id`,
		k.TenantID, k.PublisherID, kind, prefix, sum[:], k.Label))
	if errors.Is(err, pgx.ErrNoRows) {
		return Key{}, "", fmt.Errorf("tenant %d: %w", k.TenantID, ErrNotFound)
	}
	return key, secret, err
}

// keyDetail is what the audit says of a key.
func keyDetail(k Key) map[string]any {
	d := map[string]any{"kind": k.Kind, "prefix": k.Prefix, "label": k.Label}
	if k.PublisherSlug != "" {
		d["publisher"] = k.PublisherSlug
	}
	return d
}

// Authenticate finds who a key speaks for; ErrBadKey if nobody. It reads
// PostgreSQL every time, so a revocation holds at once in every process.
// It notes the key's use without writing on every request: the one read
// also says whether the stored last_used_at is a minute old (by the
// database's clock), and only then does a second statement write it, so
// that a busy key costs one row write a minute in the whole deployment.
// (A single statement whose CTE updates conditionally cost 10-30 % more on
// every request, measured with pgbench.)
func (db *DB) Authenticate(ctx context.Context, key string) (crier.Principal, error) {
	sum := sha256.Sum256([]byte(key))
	var p crier.Principal
	var pubID *int64
	var pub crier.Publisher
	var slug, name *string
	var role *crier.Role
	var stale bool
	err := db.pool.QueryRow(ctx, `SELECT k.id, k.tenant_id, k.kind, p.id, p.slug, p.name, p.role,
			k.last_used_at IS NULL OR k.last_used_at < now() - interval '1 minute'
		FROM api_keys k LEFT JOIN publishers p ON p.id = k.publisher_id
		WHERE k.hash = $1 AND (k.revoked_at IS NULL OR k.revoked_at > now())`, sum[:]).
		Scan(&p.KeyID, &p.TenantID, &p.Kind, &pubID, &slug, &name, &role, &stale)
	if errors.Is(err, pgx.ErrNoRows) {
		return crier.Principal{}, ErrBadKey
	}
	if err != nil {
		return crier.Principal{}, fmt.Errorf("authenticate: %w", err)
	}
	if stale {
		// Of requests racing here one writes; the others' UPDATE waits for
		// it, finds the row fresh and writes nothing.
		if _, err := db.pool.Exec(ctx, `UPDATE api_keys SET last_used_at = now()
			WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')`, p.KeyID); err != nil {
			return crier.Principal{}, fmt.Errorf("authenticate: note the use of key %d: %w", p.KeyID, err)
		}
	}
	if pubID != nil {
		pub = crier.Publisher{ID: *pubID, TenantID: p.TenantID, Slug: *slug, Name: *name, Role: *role}
		p.Publisher = &pub
	}
	return p, nil
}

// Keys lists a tenant's keys, revoked ones too, oldest first; tenantID 0
// lists every tenant's (the operator).
func (db *DB) Keys(ctx context.Context, tenantID int64) ([]Key, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+keyColumns+` `+keyJoins+`
		WHERE $1::bigint = 0 OR k.tenant_id = $1 ORDER BY k.id`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	keys, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Key, error) { return scanKey(r) })
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	return keys, nil
}

// FindKey finds the key ref names, for the operator: its id, its prefix (or
// the start of one), or the whole key. tenantID 0 looks in every tenant. A
// prefix that several keys share is refused, naming them.
func (db *DB) FindKey(ctx context.Context, tenantID int64, ref string) (Key, error) {
	ref = strings.TrimSpace(ref)
	var rows pgx.Rows
	var err error
	if id, convErr := strconv.ParseInt(ref, 10, 64); convErr == nil {
		rows, err = db.pool.Query(ctx, `SELECT `+keyColumns+` `+keyJoins+`
			WHERE k.id = $1 AND ($2::bigint = 0 OR k.tenant_id = $2)`, id, tenantID)
	} else {
		sum := sha256.Sum256([]byte(ref))
		rows, err = db.pool.Query(ctx, `SELECT `+keyColumns+` `+keyJoins+`
			WHERE (k.hash = $1 OR starts_with(k.prefix, $2)) AND ($3::bigint = 0 OR k.tenant_id = $3)
			ORDER BY k.id LIMIT 10`, sum[:], ref, tenantID)
	}
	if err != nil {
		return Key{}, fmt.Errorf("find key %q: %w", ref, err)
	}
	keys, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Key, error) { return scanKey(r) })
	if err != nil {
		return Key{}, fmt.Errorf("find key %q: %w", ref, err)
	}
	switch len(keys) {
	case 0:
		return Key{}, fmt.Errorf("key %q: %w", ref, ErrNotFound)
	case 1:
		return keys[0], nil
	}
	ids := make([]string, len(keys))
	for i, k := range keys {
		ids[i] = strconv.FormatInt(k.ID, 10)
	}
	return Key{}, crier.Invalid("key", "%q is the prefix of several keys (ids %s): name one by its id", ref, strings.Join(ids, ", "))
}

// RevokeKey revokes a key of the tenant once grace has passed (0: at once)
// and records key.revoked by the actor in the same transaction. A key
// already revoked stays revoked from when it was (the earlier time wins),
// and the record says so. Unknown in the tenant: ErrNotFound.
func (db *DB) RevokeKey(ctx context.Context, by Actor, tenantID, id int64, grace time.Duration) (_ Key, err error) {
	defer derrors.Wrap(&err, "revoke key %d", id)
	var key Key
	err = db.keyTx(ctx, func(q querier) error {
		var err error
		key, err = revoke(ctx, q, by, tenantID, id, grace, nil)
		return err
	})
	return key, err
}

// RotateKey replaces a key of the tenant (0: any tenant) with a new one of
// the same tenant, publisher, kind and label, and revokes the old one once
// grace has passed, all in one transaction, recording key.created and
// key.revoked. It returns the new key, the new key itself (shown once), and
// the old key as revoked. A revoked key cannot be rotated: ECONFLICT.
func (db *DB) RotateKey(ctx context.Context, by Actor, tenantID, id int64, grace time.Duration) (_ Key, _ string, _ Key, err error) {
	defer derrors.Wrap(&err, "rotate key %d", id)
	var fresh, old Key
	var secret string
	err = db.keyTx(ctx, func(q querier) error {
		cur, err := lockKey(ctx, q, tenantID, id)
		if err != nil {
			return err
		}
		if cur.RevokedAt != nil {
			return crier.Errorf(crier.ECONFLICT, "key", "key %d is revoked (from %s): make a new one instead",
				id, cur.RevokedAt.UTC().Format(time.RFC3339))
		}
		if fresh, secret, err = insertKey(ctx, q, NewKey{TenantID: cur.TenantID, PublisherID: cur.PublisherID, Label: cur.Label}); err != nil {
			return err
		}
		d := keyDetail(fresh)
		d["rotates"] = cur.ID
		if err := record(ctx, q, by, Event{TenantID: fresh.TenantID, Action: AuditKeyCreated,
			Object: strconv.FormatInt(fresh.ID, 10), Detail: d}); err != nil {
			return err
		}
		old, err = revoke(ctx, q, by, cur.TenantID, cur.ID, grace, &fresh.ID)
		return err
	})
	return fresh, secret, old, err
}

// lockKey reads a key of the tenant (0: any) FOR UPDATE.
func lockKey(ctx context.Context, q querier, tenantID, id int64) (Key, error) {
	k, err := scanKey(q.QueryRow(ctx, `SELECT `+keyColumns+` `+keyJoins+`
		WHERE k.id = $1 AND ($2::bigint = 0 OR k.tenant_id = $2) FOR UPDATE OF k`, id, tenantID))
	if err != nil {
		return Key{}, notFound(err, fmt.Sprintf("key %d", id))
	}
	return k, nil
}

// revoke sets the key's revoked_at to grace from now, unless it is revoked
// earlier already, and records it; rotatedTo names the key that replaces
// it, if any.
func revoke(ctx context.Context, q querier, by Actor, tenantID, id int64, grace time.Duration, rotatedTo *int64) (Key, error) {
	cur, err := lockKey(ctx, q, tenantID, id)
	if err != nil {
		return Key{}, err
	}
	var at time.Time
	if err := q.QueryRow(ctx, `UPDATE api_keys
		SET revoked_at = LEAST(revoked_at, now() + make_interval(secs => $2))
		WHERE id = $1 RETURNING revoked_at`, id, grace.Seconds()).Scan(&at); err != nil {
		return Key{}, err
	}
	d := keyDetail(cur)
	if cur.RevokedAt != nil {
		d["already_revoked_at"] = cur.RevokedAt
	}
	d["revoked_at"] = at
	if rotatedTo != nil {
		d["rotated_to"] = *rotatedTo
	}
	if err := record(ctx, q, by, Event{TenantID: cur.TenantID, Action: AuditKeyRevoked,
		Object: strconv.FormatInt(cur.ID, 10), Detail: d}); err != nil {
		return Key{}, err
	}
	cur.RevokedAt = &at
	return cur, nil
}

// keyTx runs f in a transaction, committed if f returns nil: a key's
// change and its audit record are one.
func (db *DB) keyTx(ctx context.Context, f func(querier) error) error {
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // after a commit, a no-op
	if err := f(tx); err != nil {
		return err
	}
	return tx.Commit(ctx)
}
