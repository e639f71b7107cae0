package storage

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"

	"github.com/crier-push/crier"
	"github.com/jackc/pgx/v5"
)

// ErrBadKey: the API key is unknown or revoked.
var ErrBadKey = errors.New("unknown or revoked api key")

// NewAPIKey makes a fresh random key ("crier_<kind>_<32 base32 chars>", 160
// bits of randomness), stores only its SHA-256, and returns the key itself:
// it is shown once and never again.
func (db *DB) NewAPIKey(ctx context.Context, tenantID int64, publisherID *int64, name string) (string, error) {
	kind := crier.KeyApp
	if publisherID != nil {
		kind = crier.KeyPublisher
	}
	var raw [20]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("new api key: %w", err)
	}
	key := "crier_" + string(kind) + "_" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(raw[:]))
	sum := sha256.Sum256([]byte(key))
	_, err := db.pool.Exec(ctx, `INSERT INTO api_keys (tenant_id, publisher_id, kind, prefix, hash, name)
		VALUES ($1, $2, $3, $4, $5, $6)`, tenantID, publisherID, kind, key[:len("crier_"+string(kind)+"_")+4], sum[:], name)
	if err != nil {
		return "", fmt.Errorf("new api key: %w", err)
	}
	return key, nil
}

// Authenticate finds who a key speaks for; ErrBadKey if nobody.
func (db *DB) Authenticate(ctx context.Context, key string) (crier.Principal, error) {
	sum := sha256.Sum256([]byte(key))
	var p crier.Principal
	var pubID *int64
	var pub crier.Publisher
	var slug, name *string
	var role *crier.Role
	err := db.pool.QueryRow(ctx, `SELECT k.id, k.tenant_id, k.kind, p.id, p.slug, p.name, p.role
		FROM api_keys k LEFT JOIN publishers p ON p.id = k.publisher_id
		WHERE k.hash = $1 AND k.revoked_at IS NULL`, sum[:]).
		Scan(&p.KeyID, &p.TenantID, &p.Kind, &pubID, &slug, &name, &role)
	if errors.Is(err, pgx.ErrNoRows) {
		return crier.Principal{}, ErrBadKey
	}
	if err != nil {
		return crier.Principal{}, fmt.Errorf("authenticate: %w", err)
	}
	if pubID != nil {
		pub = crier.Publisher{ID: *pubID, TenantID: p.TenantID, Slug: *slug, Name: *name, Role: *role}
		p.Publisher = &pub
	}
	return p, nil
}
