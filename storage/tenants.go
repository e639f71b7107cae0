package storage

import (
	"context"
	"fmt"
	"time"

	"github.com/crier-push/crier/internal/derrors"
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

	// Sends per second crier allows itself, by provider.
	FCMRate, APNsRate int
	// The providers' last refusal of these credentials, "" if none.
	FCMAuthError, APNsAuthError string
}

// AuthError is the provider's recorded refusal of the credentials, "" if none.
func (c Credentials) AuthError(provider string) string {
	if provider == "apns" {
		return c.APNsAuthError
	}
	return c.FCMAuthError
}

// Rate is the tenant's send rate for a provider.
func (c Credentials) Rate(provider string) int {
	if provider == "apns" {
		return c.APNsRate
	}
	return c.FCMRate
}

// CreateTenant creates a tenant; ErrConflict if the slug is taken.
func (db *DB) CreateTenant(ctx context.Context, slug, name, timeZone string) (Tenant, error) {
	t := Tenant{Slug: slug, Name: name, TimeZone: timeZone}
	if t.TimeZone == "" {
		t.TimeZone = "Europe/Oslo"
	}
	err := db.pool.QueryRow(ctx,
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
	err := db.pool.QueryRow(ctx, `SELECT id, slug, name, time_zone FROM tenants WHERE slug = $1`, slug).
		Scan(&t.ID, &t.Slug, &t.Name, &t.TimeZone)
	if err != nil {
		return Tenant{}, notFound(err, fmt.Sprintf("tenant %q", slug))
	}
	return t, nil
}

// TenantByID finds a tenant by its id.
func (db *DB) TenantByID(ctx context.Context, id int64) (Tenant, error) {
	var t Tenant
	err := db.pool.QueryRow(ctx, `SELECT id, slug, name, time_zone FROM tenants WHERE id = $1`, id).
		Scan(&t.ID, &t.Slug, &t.Name, &t.TimeZone)
	if err != nil {
		return Tenant{}, notFound(err, fmt.Sprintf("tenant %d", id))
	}
	return t, nil
}

// SetFCM stores a tenant's FCM settings, the service account sealed under
// the current master key.
func (db *DB) SetFCM(ctx context.Context, tenantID int64, projectID string, serviceAccount []byte, endpoint string) (err error) {
	defer derrors.Wrap(&err, "set fcm credentials of tenant %d", tenantID)
	sa, err := db.seal(tenantID, "fcm_service_account", serviceAccount)
	if err != nil {
		return err
	}
	tag, err := db.pool.Exec(ctx, `UPDATE tenants SET fcm_project_id = $2, fcm_service_account = $3,
		fcm_endpoint = NULLIF($4, ''), credentials_version = credentials_version + 1 WHERE id = $1`,
		tenantID, projectID, sa, endpoint)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
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

// SetAPNs stores a tenant's APNs settings, the key and the CA sealed under
// the current master key.
func (db *DB) SetAPNs(ctx context.Context, tenantID int64, s APNsSettings) (err error) {
	defer derrors.Wrap(&err, "set apns credentials of tenant %d", tenantID)
	p8, err := db.seal(tenantID, "apns_key_p8", s.KeyP8)
	if err != nil {
		return err
	}
	ca, err := db.seal(tenantID, "apns_root_ca", s.RootCA)
	if err != nil {
		return err
	}
	tag, err := db.pool.Exec(ctx, `UPDATE tenants SET apns_key_p8 = $2, apns_key_id = $3, apns_team_id = $4,
		apns_topic = $5, apns_host = NULLIF($6, ''), apns_root_ca = $7,
		credentials_version = credentials_version + 1 WHERE id = $1`,
		tenantID, p8, s.KeyID, s.TeamID, s.Topic, s.Host, ca)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// TenantCredentials loads a tenant's provider settings, their secrets
// opened.
func (db *DB) TenantCredentials(ctx context.Context, tenantID int64) (Credentials, error) {
	c := Credentials{TenantID: tenantID}
	var stored [len(secretColumns)][]byte
	err := db.pool.QueryRow(ctx, `SELECT credentials_version,
		coalesce(fcm_project_id, ''), fcm_service_account, coalesce(fcm_endpoint, ''),
		apns_key_p8, coalesce(apns_key_id, ''), coalesce(apns_team_id, ''),
		coalesce(apns_topic, ''), coalesce(apns_host, ''), apns_root_ca, fcm_rate_per_second, apns_rate_per_second,
		coalesce(fcm_auth_error, ''), coalesce(apns_auth_error, '')
		FROM tenants WHERE id = $1`, tenantID).Scan(&c.Version,
		&c.FCMProjectID, &stored[0], &c.FCMEndpoint,
		&stored[1], &c.APNsKeyID, &c.APNsTeamID, &c.APNsTopic, &c.APNsHost, &stored[2], &c.FCMRate, &c.APNsRate,
		&c.FCMAuthError, &c.APNsAuthError)
	if err != nil {
		return Credentials{}, notFound(err, fmt.Sprintf("credentials of tenant %d", tenantID))
	}
	for i, dst := range [len(secretColumns)]*[]byte{&c.FCMServiceAccount, &c.APNsKeyP8, &c.APNsRootCA} {
		if *dst, err = db.openSecret(ctx, tenantID, secretColumns[i], stored[i]); err != nil {
			return Credentials{}, fmt.Errorf("credentials of tenant %d: %w", tenantID, err)
		}
	}
	return c, nil
}

// providerColumn maps a provider name to its column prefix; nothing else
// reaches the SQL text.
func providerColumn(provider string) (string, error) {
	switch provider {
	case "fcm":
		return "fcm", nil
	case "apns":
		return "apns", nil
	}
	return "", fmt.Errorf("unknown provider %q", provider)
}

// SetRateLimit sets the sends per second crier allows a tenant's provider.
// Workers pick it up with the credentials (credentials_version changes).
func (db *DB) SetRateLimit(ctx context.Context, tenantID int64, provider string, perSecond int) error {
	col, err := providerColumn(provider)
	if err != nil {
		return err
	}
	tag, err := db.pool.Exec(ctx, `UPDATE tenants SET `+col+`_rate_per_second = $2,
		credentials_version = credentials_version + 1 WHERE id = $1`, tenantID, perSecond)
	if err != nil {
		return fmt.Errorf("set %s rate of tenant %d: %w", provider, tenantID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("set %s rate of tenant %d: %w", provider, tenantID, ErrNotFound)
	}
	return nil
}

// SetAuthError records that a provider refused the tenant's credentials
// (reason), or clears it (reason ""). It writes only on a change.
func (db *DB) SetAuthError(ctx context.Context, tenantID int64, provider, reason string) error {
	col, err := providerColumn(provider)
	if err != nil {
		return err
	}
	_, err = db.pool.Exec(ctx, `UPDATE tenants SET `+col+`_auth_error = NULLIF($2, ''),
		`+col+`_auth_error_at = CASE WHEN $2 = '' THEN NULL ELSE now() END
		WHERE id = $1 AND `+col+`_auth_error IS DISTINCT FROM NULLIF($2, '')`, tenantID, reason)
	if err != nil {
		return fmt.Errorf("set %s auth error of tenant %d: %w", provider, tenantID, err)
	}
	return nil
}

// AuthError is a provider's refusal of a tenant's credentials.
type AuthError struct {
	Provider string
	Reason   string
	Since    time.Time
}

// AuthErrors lists the providers that refuse a tenant's credentials now.
func (db *DB) AuthErrors(ctx context.Context, tenantID int64) ([]AuthError, error) {
	var out []AuthError
	var fr, ar *string
	var fa, aa *time.Time
	if err := db.pool.QueryRow(ctx, `SELECT fcm_auth_error, fcm_auth_error_at, apns_auth_error, apns_auth_error_at
		FROM tenants WHERE id = $1`, tenantID).Scan(&fr, &fa, &ar, &aa); err != nil {
		return nil, notFound(err, fmt.Sprintf("auth errors of tenant %d", tenantID))
	}
	if fr != nil && fa != nil {
		out = append(out, AuthError{Provider: "fcm", Reason: *fr, Since: *fa})
	}
	if ar != nil && aa != nil {
		out = append(out, AuthError{Provider: "apns", Reason: *ar, Since: *aa})
	}
	return out, nil
}
