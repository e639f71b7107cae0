package storage

import (
	"context"
	"fmt"
)

// Tenant is one app, usually one municipality.
type Tenant struct {
	ID       int64
	Slug     string
	Name     string
	TimeZone string
}

// Credentials are a tenant's provider settings. They hold secrets: never log
// or serialise them.
type Credentials struct {
	TenantID int64
	// Version changes whenever the credentials do, so cached clients can be
	// rebuilt.
	Version int64

	FCMProjectID      string
	FCMServiceAccount []byte
	FCMEndpoint       string

	APNsKeyP8  []byte
	APNsKeyID  string
	APNsTeamID string
	APNsTopic  string
	APNsHost   string
	APNsRootCA []byte
}

// CreateTenant creates a tenant; ErrConflict if the slug is taken.
func (db *DB) CreateTenant(ctx context.Context, slug, name, timeZone string) (Tenant, error) {
	t := Tenant{Slug: slug, Name: name, TimeZone: timeZone}
	if t.TimeZone == "" {
		t.TimeZone = "Europe/Oslo"
	}
	err := db.Pool.QueryRow(ctx,
		`INSERT INTO tenants (slug, name, time_zone) VALUES ($1, $2, $3) RETURNING id`,
		slug, name, t.TimeZone).Scan(&t.ID)
	if isUniqueViolation(err) {
		return Tenant{}, fmt.Errorf("create tenant %q: %w", slug, ErrConflict)
	}
	if err != nil {
		return Tenant{}, fmt.Errorf("create tenant %q: %w", slug, err)
	}
	return t, nil
}

// TenantBySlug finds a tenant by its slug.
func (db *DB) TenantBySlug(ctx context.Context, slug string) (Tenant, error) {
	var t Tenant
	err := db.Pool.QueryRow(ctx, `SELECT id, slug, name, time_zone FROM tenants WHERE slug = $1`, slug).
		Scan(&t.ID, &t.Slug, &t.Name, &t.TimeZone)
	if err != nil {
		return Tenant{}, notFound(err, fmt.Sprintf("tenant %q", slug))
	}
	return t, nil
}

// SetFCM stores a tenant's FCM settings.
func (db *DB) SetFCM(ctx context.Context, tenantID int64, projectID string, serviceAccount []byte, endpoint string) error {
	tag, err := db.Pool.Exec(ctx, `UPDATE tenants SET fcm_project_id = $2, fcm_service_account = $3,
		fcm_endpoint = NULLIF($4, ''), credentials_version = credentials_version + 1 WHERE id = $1`,
		tenantID, projectID, serviceAccount, endpoint)
	if err != nil {
		return fmt.Errorf("set fcm credentials of tenant %d: %w", tenantID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("set fcm credentials of tenant %d: %w", tenantID, ErrNotFound)
	}
	return nil
}

// APNsSettings are a tenant's APNs token-authentication settings.
type APNsSettings struct {
	KeyP8  []byte
	KeyID  string
	TeamID string
	Topic  string
	Host   string
	RootCA []byte
}

// SetAPNs stores a tenant's APNs settings.
func (db *DB) SetAPNs(ctx context.Context, tenantID int64, s APNsSettings) error {
	tag, err := db.Pool.Exec(ctx, `UPDATE tenants SET apns_key_p8 = $2, apns_key_id = $3, apns_team_id = $4,
		apns_topic = $5, apns_host = NULLIF($6, ''), apns_root_ca = $7,
		credentials_version = credentials_version + 1 WHERE id = $1`,
		tenantID, s.KeyP8, s.KeyID, s.TeamID, s.Topic, s.Host, s.RootCA)
	if err != nil {
		return fmt.Errorf("set apns credentials of tenant %d: %w", tenantID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("set apns credentials of tenant %d: %w", tenantID, ErrNotFound)
	}
	return nil
}

// CredentialsVersion returns the current version of a tenant's credentials,
// cheap enough to check before using a cached client.
func (db *DB) CredentialsVersion(ctx context.Context, tenantID int64) (int64, error) {
	var v int64
	err := db.Pool.QueryRow(ctx, `SELECT credentials_version FROM tenants WHERE id = $1`, tenantID).Scan(&v)
	if err != nil {
		return 0, notFound(err, fmt.Sprintf("credentials version of tenant %d", tenantID))
	}
	return v, nil
}

// TenantCredentials loads a tenant's provider settings.
func (db *DB) TenantCredentials(ctx context.Context, tenantID int64) (Credentials, error) {
	c := Credentials{TenantID: tenantID}
	err := db.Pool.QueryRow(ctx, `SELECT credentials_version,
		coalesce(fcm_project_id, ''), coalesce(fcm_service_account, ''), coalesce(fcm_endpoint, ''),
		coalesce(apns_key_p8, ''), coalesce(apns_key_id, ''), coalesce(apns_team_id, ''),
		coalesce(apns_topic, ''), coalesce(apns_host, ''), apns_root_ca
		FROM tenants WHERE id = $1`, tenantID).Scan(&c.Version,
		&c.FCMProjectID, &c.FCMServiceAccount, &c.FCMEndpoint,
		&c.APNsKeyP8, &c.APNsKeyID, &c.APNsTeamID, &c.APNsTopic, &c.APNsHost, &c.APNsRootCA)
	if err != nil {
		return Credentials{}, notFound(err, fmt.Sprintf("credentials of tenant %d", tenantID))
	}
	return c, nil
}
