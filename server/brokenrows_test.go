package server_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/crier-push/crier/storage"
)

// TestBrokenDeviceRowsDoNotStopAPost: device rows the API would never
// store, inserted by SQL (a time zone only Go loads, one nobody knows, a
// place off the globe, places that are not a list), are skipped with a
// reason or simply not matched; every other device gets the post, and a
// post targeted by distance completes too.
func TestBrokenDeviceRowsDoNotStopAPost(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	ctx := context.Background()
	feed := s.feed(t, s.muni, "nyheter", "Nyheter", false)
	s.insertDevices("good-", 6, []int64{feed.ID})
	broken := []string{
		// Go loads it, PostgreSQL does not know it; in quiet hours it
		// needs the zone: skipped.
		`INSERT INTO devices (tenant_id, installation_id, provider, platform, token, follows, time_zone, quiet_start, quiet_end)
			VALUES ($1, 'bad-zone-quiet', 'fcm', 'android', 'emu-ok-bad-zone-quiet', $2, 'Europe/./Oslo', '00:00', '23:59')`,
		// Without quiet hours the zone is not needed: sent.
		`INSERT INTO devices (tenant_id, installation_id, provider, platform, token, follows, time_zone)
			VALUES ($1, 'bad-zone', 'fcm', 'android', 'emu-ok-bad-zone', $2, 'Mars/Olympus')`,
		// A home at latitude 95 and places that are not a list.
		`INSERT INTO devices (tenant_id, installation_id, provider, platform, token, follows, places, place_geom)
			VALUES ($1, 'off-globe', 'fcm', 'android', 'emu-ok-off-globe', $2, '"home"',
				ST_Multi(ST_SetSRID(ST_MakePoint(10.2, 95), 4326)))`,
	}
	for _, q := range broken {
		if _, err := s.db.Pool.Exec(ctx, q, s.tenant.ID, []int64{feed.ID}); err != nil {
			t.Fatal(err)
		}
	}
	var plain struct{ ID int64 }
	if code := s.do("POST", "/v1/posts", s.MuniKey, map[string]any{"feed": "nyheter", "title": "t", "body": "b"}, &plain); code != http.StatusAccepted {
		t.Fatalf("post: %d", code)
	}
	st := s.waitDone(s.MuniKey, plain.ID)
	if st.Counts["sent"] != 8 || st.Counts["skipped"] != 1 {
		t.Errorf("counts %v: want 8 sent (6 good, bad-zone, off-globe) and 1 skipped", st.Counts)
	}
	var reason string
	if err := s.db.Pool.QueryRow(ctx, `SELECT dl.reason FROM deliveries dl JOIN devices d ON d.id = dl.device_id
		WHERE dl.post_id = $1 AND d.installation_id = 'bad-zone-quiet'`, plain.ID).Scan(&reason); err != nil {
		t.Fatal(err)
	}
	if reason != storage.ReasonUnknownTimeZone {
		t.Errorf("the device of the unknown zone was skipped for %q, want %q", reason, storage.ReasonUnknownTimeZone)
	}

	// A distance target reads the places on the sphere, where latitude 95
	// would raise: the post still completes.
	var near struct{ ID int64 }
	if code := s.do("POST", "/v1/posts", s.MuniKey, map[string]any{"feed": "nyheter", "title": "t", "body": "b",
		"segment": map[string]any{"near": map[string]any{"lat": 89.9, "lon": 10.2, "radius_m": 100_000}}}, &near); code != http.StatusAccepted {
		t.Fatalf("near post: %d", code)
	}
	if st := s.waitDone(s.MuniKey, near.ID); st.State != "done" {
		t.Errorf("near post: %+v", st)
	}
}
