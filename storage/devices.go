package storage

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/crier-push/crier"
)

// Place is a named point a resident cares about.
type Place struct {
	Name string  `json:"name"`
	Lat  float64 `json:"lat"`
	Lon  float64 `json:"lon"`
}

// Device is one app installation and its resident's choices.
type Device struct {
	ID             int64
	TenantID       int64
	InstallationID string
	Provider       crier.Provider
	Platform       crier.Platform
	Token          string
	Locale         string
	TimeZone       string
	AppVersion     string
	Follows        []int64
	Mutes          []int64
	Interests      []string
	Areas          []int64
	Places         []Place
	// QuietStart and QuietEnd are local times of day ("22:00"); both empty
	// when the device has no quiet hours.
	QuietStart, QuietEnd string
	Active               bool
	DeactivatedReason    string
	UpdatedAt            time.Time
	// SecretHash is the SHA-256 of the installation's device secret; nil
	// for an installation registered before device secrets. PutDevice
	// stores it when set and keeps the stored one when nil.
	SecretHash []byte
	// Test: the municipality marked the installation as a test device.
	Test bool

	// Read along with the device: its follows, mutes and areas by slug,
	// in the order of their ids.
	FollowSlugs, MuteSlugs, AreaSlugs []string
}

const deviceColumns = `id, tenant_id, installation_id, provider, platform, token, locale, time_zone,
	app_version, follows, mutes, interests, areas, places,
	coalesce(to_char(quiet_start, 'HH24:MI'), ''), coalesce(to_char(quiet_end, 'HH24:MI'), ''),
	active, coalesce(deactivated_reason, ''), updated_at, secret_hash, test,
	ARRAY(SELECT f.slug FROM feeds f WHERE f.tenant_id = devices.tenant_id AND f.id = ANY(devices.follows) ORDER BY f.id),
	ARRAY(SELECT f.slug FROM feeds f WHERE f.tenant_id = devices.tenant_id AND f.id = ANY(devices.mutes) ORDER BY f.id),
	ARRAY(SELECT a.slug FROM areas a WHERE a.tenant_id = devices.tenant_id AND a.id = ANY(devices.areas) ORDER BY a.id)`

func scanDevice(row interface{ Scan(...any) error }) (Device, error) {
	var d Device
	var places []byte
	err := row.Scan(&d.ID, &d.TenantID, &d.InstallationID, &d.Provider, &d.Platform, &d.Token, &d.Locale,
		&d.TimeZone, &d.AppVersion, &d.Follows, &d.Mutes, &d.Interests, &d.Areas, &places,
		&d.QuietStart, &d.QuietEnd, &d.Active, &d.DeactivatedReason, &d.UpdatedAt, &d.SecretHash, &d.Test,
		&d.FollowSlugs, &d.MuteSlugs, &d.AreaSlugs)
	if err != nil {
		return Device{}, err
	}
	if err := json.Unmarshal(places, &d.Places); err != nil {
		return Device{}, fmt.Errorf("decode places: %w", err)
	}
	return d, nil
}

// DeviceByInstallation finds a device of a tenant by its installation id.
func (db *DB) DeviceByInstallation(ctx context.Context, tenantID int64, installationID string) (Device, error) {
	d, err := scanDevice(db.pool.QueryRow(ctx, `SELECT `+deviceColumns+` FROM devices
		WHERE tenant_id = $1 AND installation_id = $2`, tenantID, installationID))
	if err != nil {
		return Device{}, notFound(err, fmt.Sprintf("device %q", installationID))
	}
	return d, nil
}

// PutDevice registers or replaces a device by (tenant, installation id) and
// returns it with its id, in one statement. d.Active is stored as given:
// the API sets it when the app sends a token.
// A token that another live installation of the tenant held (the app was
// reinstalled, or its data cleared) moves to this one: the other is
// deactivated as token_moved, and keeps its places and choices to itself.
func (db *DB) PutDevice(ctx context.Context, d Device) (Device, error) {
	places, err := json.Marshal(nonNil(d.Places))
	if err != nil {
		return Device{}, fmt.Errorf("put device: encode places: %w", err)
	}
	// moved runs first: the insert reads its count, so the token is free
	// in the unique index of live tokens when the row takes it.
	out, err := scanDevice(db.pool.QueryRow(ctx, `
		WITH moved AS (
			UPDATE devices SET active = false, deactivated_at = now(), deactivated_reason = '`+ReasonTokenMoved+`',
				updated_at = now()
			WHERE tenant_id = $1 AND provider = $3 AND token = $5 AND installation_id <> $2 AND active AND $16
			RETURNING 1
		)
		INSERT INTO devices AS devices (tenant_id, installation_id, provider, platform, token, locale, time_zone,
			app_version, follows, mutes, interests, areas, places, place_geom, quiet_start, quiet_end, active, secret_hash)
		SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13::jsonb,
			(SELECT ST_SetSRID(ST_Collect(ST_MakePoint((p->>'lon')::float8, (p->>'lat')::float8)), 4326)::geometry(MultiPoint, 4326)
			   FROM jsonb_array_elements($13::jsonb) p),
			NULLIF($14, '')::time, NULLIF($15, '')::time, $16, $17
		FROM (SELECT count(*) FROM moved) m
		ON CONFLICT (tenant_id, installation_id) DO UPDATE SET
			provider = excluded.provider, platform = excluded.platform, token = excluded.token,
			locale = excluded.locale, time_zone = excluded.time_zone, app_version = excluded.app_version,
			follows = excluded.follows, mutes = excluded.mutes, interests = excluded.interests,
			areas = excluded.areas, places = excluded.places, place_geom = excluded.place_geom,
			quiet_start = excluded.quiet_start, quiet_end = excluded.quiet_end,
			active = excluded.active,
			deactivated_at = CASE WHEN excluded.active THEN NULL ELSE devices.deactivated_at END,
			deactivated_reason = CASE WHEN excluded.active THEN NULL ELSE devices.deactivated_reason END,
			secret_hash = coalesce(excluded.secret_hash, devices.secret_hash),
			updated_at = now()
		RETURNING `+deviceColumns,
		d.TenantID, d.InstallationID, d.Provider, d.Platform, d.Token, d.Locale, d.TimeZone, d.AppVersion,
		nonNil(d.Follows), nonNil(d.Mutes), nonNil(d.Interests), nonNil(d.Areas), places, d.QuietStart, d.QuietEnd,
		d.Active, d.SecretHash))
	if isUniqueViolation(err) {
		return Device{}, fmt.Errorf("put device %q: another registration of the token raced this one: %w", d.InstallationID, ErrConflict)
	}
	if err != nil {
		return Device{}, fmt.Errorf("put device %q: %w", d.InstallationID, err)
	}
	return out, nil
}

// ReasonTokenMoved deactivates an installation whose token another
// installation registered.
const ReasonTokenMoved = "token_moved"

// SlugIDs resolves feed and area slugs of a tenant in one query; a slug
// that is not there is absent from its map.
func (db *DB) SlugIDs(ctx context.Context, tenantID int64, feeds, areas []string) (feedIDs, areaIDs map[string]int64, err error) {
	feedIDs, areaIDs = map[string]int64{}, map[string]int64{}
	if len(feeds) == 0 && len(areas) == 0 {
		return feedIDs, areaIDs, nil
	}
	rows, err := db.pool.Query(ctx, `SELECT true, slug, id FROM feeds WHERE tenant_id = $1 AND slug = ANY($2::text[])
		UNION ALL SELECT false, slug, id FROM areas WHERE tenant_id = $1 AND slug = ANY($3::text[])`,
		tenantID, nonNil(feeds), nonNil(areas))
	if err != nil {
		return nil, nil, fmt.Errorf("resolve slugs: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var feed bool
		var slug string
		var id int64
		if err := rows.Scan(&feed, &slug, &id); err != nil {
			return nil, nil, fmt.Errorf("resolve slugs: %w", err)
		}
		if feed {
			feedIDs[slug] = id
		} else {
			areaIDs[slug] = id
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("resolve slugs: %w", err)
	}
	return feedIDs, areaIDs, nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// DeleteDevice removes a device of a tenant: its record, and with it its
// places and choices. Its deliveries and receipts stay, so that the posts'
// counts stay right, but lose their link to it (erasure): each row's
// device_id becomes a fresh negative number of its own (erased_device_ids),
// which names no device and joins no two rows.
func (db *DB) DeleteDevice(ctx context.Context, tenantID int64, installationID string) error {
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("delete device %q: %w", installationID, err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after commit
	var id int64
	err = tx.QueryRow(ctx, `DELETE FROM devices WHERE tenant_id = $1 AND installation_id = $2 RETURNING id`,
		tenantID, installationID).Scan(&id)
	if err != nil {
		return notFound(err, fmt.Sprintf("delete device %q", installationID))
	}
	// The device's deliveries still open become skipped, found by the
	// primary key through the tenant's posts still on their way (a few),
	// so that no later outcome is recorded for a device that is gone, and
	// a deferred send that checks its delivery (tasks.Send.Check) sends
	// nothing.
	if _, err := tx.Exec(ctx, `UPDATE deliveries d SET state = 'skipped', reason = 'device_deleted', updated_at = now()
		FROM posts p
		WHERE p.tenant_id = $1 AND p.state IN ('accepted', 'dispatching', 'sending')
		AND d.post_id = p.id AND d.device_id = $2 AND d.state IN ('pending', 'deferred')`, tenantID, id); err != nil {
		return fmt.Errorf("delete device %q: skip its open deliveries: %w", installationID, err)
	}
	// Then every delivery and receipt of it, through the tenant's posts.
	if _, err := tx.Exec(ctx, `WITH m AS (
			SELECT d.post_id, -nextval('erased_device_ids') AS anon FROM deliveries d
			WHERE d.post_id IN (SELECT p.id FROM posts p WHERE p.tenant_id = $1) AND d.device_id = $2
		), r AS (
			UPDATE receipts r SET device_id = m.anon FROM m WHERE r.post_id = m.post_id AND r.device_id = $2
		)
		UPDATE deliveries d SET device_id = m.anon FROM m WHERE d.post_id = m.post_id AND d.device_id = $2`,
		tenantID, id); err != nil {
		return fmt.Errorf("delete device %q: unlink its deliveries: %w", installationID, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("delete device %q: commit: %w", installationID, err)
	}
	return nil
}

// DeactivateDevice marks a device's token dead, but only if the device still
// has that token: a token the app rotated in the meantime stays active.
func (db *DB) DeactivateDevice(ctx context.Context, deviceID int64, token, reason string) error {
	_, err := db.pool.Exec(ctx, `UPDATE devices SET active = false, deactivated_at = now(),
		deactivated_reason = $3, updated_at = now() WHERE id = $1 AND token = $2 AND active`,
		deviceID, token, reason)
	if err != nil {
		return fmt.Errorf("deactivate device %d: %w", deviceID, err)
	}
	return nil
}
