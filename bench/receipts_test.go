package bench

import (
	"bytes"
	"context"
	"crypto/sha256"
	"os"
	"testing"

	"github.com/crier-push/crier/areas"
	"github.com/crier-push/crier/internal/testenv"
)

// TestAppsKnowThemselves: the emulator's apps find every seeded alert
// device's installation from its token alone, and hold the secret whose
// hash crier stores for it; devices outside the alert get none.
func TestAppsKnowThemselves(t *testing.T) {
	t.Parallel()
	db := testenv.DB(t)
	ctx := context.Background()
	tn := testenv.Tenant(t, db, "vestfold", "Vestfold", "")
	raw, err := os.ReadFile("../demo/vestfold-kommuner-2024.geojson")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := areas.Import(ctx, db, tn.ID, raw, areas.Options{SlugProperty: "kommunenummer", NameProperty: "kommunenavn"}); err != nil {
		t.Fatal(err)
	}
	if _, err := SeedDevices(ctx, db, SeedSpec{TenantID: tn.ID, Devices: 600, Prefix: benchPrefix, Mixed: true, AlertEvery: 4}); err != nil {
		t.Fatal(err)
	}
	const runKey = "run-key"
	if err := seedSecrets(ctx, db, tn.ID, runKey); err != nil {
		t.Fatal(err)
	}
	rows, err := db.Pool.Query(ctx, `SELECT installation_id, provider, token, secret_hash, $2 = ANY(interests)
		FROM devices WHERE tenant_id = $1`, tn.ID, AlertInterest)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	alert := 0
	for rows.Next() {
		var inst, provider, token string
		var hash []byte
		var isAlert bool
		if err := rows.Scan(&inst, &provider, &token, &hash, &isAlert); err != nil {
			t.Fatal(err)
		}
		if got, ok := seededInstallation(provider, token); !ok || got != inst {
			t.Errorf("%s token %s: installation %q (%v), want %q", provider, token, got, ok, inst)
		}
		sum := sha256.Sum256([]byte(appSecret(runKey, inst)))
		switch {
		case isAlert && !bytes.Equal(hash, sum[:]):
			t.Errorf("%s: stored secret hash %x, the app's secret hashes to %x", inst, hash, sum)
		case !isAlert && hash != nil:
			t.Errorf("%s: outside the alert, has a secret", inst)
		}
		if isAlert {
			alert++
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if alert != 150 {
		t.Errorf("%d alert devices, want 150", alert)
	}
}
