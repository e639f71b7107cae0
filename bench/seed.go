// Package bench measures crier against this machine: it seeds realistic
// tenants of up to millions of devices spread over real municipal borders,
// and times audience resolution and delivery.
package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/crier-push/crier/storage"
)

// Interests seeded devices choose from.
var Interests = []string{"fotball", "handball", "kultur", "friluft", "skole", "eldre", "veiarbeid", "kino",
	"bibliotek", "frivillig", "svomming", "ski"}

// SeedSpec says what to seed into a tenant that already has its areas and
// feeds.
type SeedSpec struct {
	TenantID int64
	// Devices is how many devices to seed, spread evenly over the tenant's
	// areas, each with a home place at a random point inside its area.
	Devices int
	// Feeds are the feed ids devices follow: each with probability 1/8.
	Feeds []int64
	// Prefix starts every installation id, so seeds do not collide.
	Prefix string
	// Mixed gives tokens a realistic mix of emulator behaviours: 1 %
	// unregistered, 0.5 % slow (200 ms), 0.5 % flaky (30 % answer 503);
	// otherwise every token accepts.
	Mixed bool
	// AlertEvery, if set, gives every AlertEvery-th device the interest
	// AlertInterest, so an alert can reach a known share of the tenant.
	AlertEvery int
}

// AlertInterest is the interest SeedSpec.AlertEvery hands out.
const AlertInterest = "beredskap"

// SeedDevices inserts spec.Devices devices in one statement, with PostGIS
// generating home points inside the areas: two in three Android (emulator
// FCM tokens), one in three iOS (emulator APNs tokens); each follows a feed
// with probability 1/8, has an interest with probability 1/6, a second place
// in a random area for one in five, and subscribes to its home area for one
// in three. Choices come from a hash of the device's number, so a seed is
// reproducible.
func SeedDevices(ctx context.Context, db *storage.DB, spec SeedSpec) (time.Duration, error) {
	start := time.Now()
	var areas int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM areas WHERE tenant_id = $1`, spec.TenantID).Scan(&areas); err != nil {
		return 0, fmt.Errorf("seed: count areas: %w", err)
	}
	if areas == 0 {
		return 0, fmt.Errorf("seed: tenant %d has no areas", spec.TenantID)
	}
	per := (spec.Devices + areas - 1) / areas
	_, err := db.Pool.Exec(ctx, `
		WITH pts AS (
			SELECT a.id AS area_id, (ST_Dump(ST_GeneratePoints(a.geom, $3, a.id::int))).geom AS pt
			FROM areas a WHERE a.tenant_id = $1
		), numbered AS (
			SELECT row_number() OVER () AS n, area_id, pt FROM pts LIMIT $2
		), second AS (
			SELECT n, area_id, pt,
			       (SELECT id FROM areas WHERE tenant_id = $1 ORDER BY id OFFSET (abs(hashint8(n * 7)) % $6) LIMIT 1) AS other_area
			FROM numbered
		)
		INSERT INTO devices (tenant_id, installation_id, provider, platform, token, locale, follows, interests,
			areas, places, place_geom)
		SELECT $1, $4 || n,
			CASE WHEN n % 3 = 0 THEN 'apns' ELSE 'fcm' END,
			CASE WHEN n % 3 = 0 THEN 'ios' ELSE 'android' END,
			CASE WHEN n % 3 = 0 THEN 'e1e1' || b.code || b.arg || lpad(to_hex(n), 50, '0')
			     ELSE 'emu-' || b.word || '-' || $4 || n END,
			CASE WHEN n % 10 = 0 THEN 'en' ELSE 'nb' END,
			ARRAY(SELECT f FROM unnest($5::bigint[]) f WHERE abs(hashint8(n * 1000003 + f)) % 8 = 0),
			ARRAY(SELECT i FROM unnest($7::text[]) WITH ORDINALITY AS t(i, k) WHERE abs(hashint8(n * 1000033 + k)) % 6 = 0)
			  || CASE WHEN $9 > 0 AND n % $9 = 0 THEN ARRAY[$10::text] ELSE '{}' END,
			CASE WHEN n % 3 = 1 THEN ARRAY[area_id] ELSE '{}' END,
			jsonb_build_array(jsonb_build_object('name', 'home', 'lat', ST_Y(pt), 'lon', ST_X(pt))),
			CASE WHEN n % 5 = 0
			     THEN ST_Multi(ST_Collect(pt, (SELECT ST_GeometryN(ST_GeneratePoints(geom, 1, n::int), 1) FROM areas WHERE id = other_area)))
			     ELSE ST_Multi(pt) END
		FROM second
		CROSS JOIN LATERAL (SELECT CASE WHEN NOT $8 THEN 1000 ELSE abs(hashint8(n * 7919)) % 1000 END AS h) m
		CROSS JOIN LATERAL (SELECT
			CASE WHEN m.h < 10 THEN 'unregistered' WHEN m.h < 15 THEN 'slow.200' WHEN m.h < 20 THEN 'flaky.30' ELSE 'ok' END AS word,
			CASE WHEN m.h < 10 THEN '02' WHEN m.h < 15 THEN '07' WHEN m.h < 20 THEN '09' ELSE '01' END AS code,
			CASE WHEN m.h < 10 THEN '00000000' WHEN m.h < 15 THEN '000000c8' WHEN m.h < 20 THEN '0000001e' ELSE '00000000' END AS arg) b`,
		spec.TenantID, spec.Devices, per, spec.Prefix, spec.Feeds, areas, Interests, spec.Mixed, spec.AlertEvery, AlertInterest)
	if err != nil {
		return 0, fmt.Errorf("seed devices: %w", err)
	}
	if _, err := db.Pool.Exec(ctx, `ANALYZE devices`); err != nil {
		return 0, fmt.Errorf("seed: analyze: %w", err)
	}
	return time.Since(start), nil
}
