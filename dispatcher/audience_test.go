package dispatcher

import (
	"context"
	"encoding/json"
	"os"
	"testing"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/areas"
	"github.com/crier-push/crier/internal/testenv"
	"github.com/crier-push/crier/segments"
	"github.com/crier-push/crier/storage"
)

// TestEveryMunicipalityCanBeTargeted imports the 357 Norwegian
// municipalities as one tenant's areas, puts one resident inside each, and
// targets each municipality in turn: each post reaches exactly its own
// resident, never a neighbour's.
func TestEveryMunicipalityCanBeTargeted(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../bench/no-kommuner-2024.geojson")
	if err != nil {
		t.Fatal(err)
	}
	db := testenv.DB(t)
	ctx := context.Background()
	tn := testenv.Tenant(t, db, "norge", "Norge", "")
	pub := testenv.Publisher(t, db, tn.ID, "staten", "Staten", crier.RoleMunicipality)
	feed := testenv.Feed(t, db, tn.ID, pub.ID, "alle", "Alle", true)
	in, err := areas.Import(ctx, db, tn.ID, raw, areas.Options{SlugProperty: "kommunenummer", NameProperty: "kommunenavn"})
	if err != nil {
		t.Fatal(err)
	}
	// One resident per municipality, at a point surely inside it.
	if _, err := db.Pool.Exec(ctx, `INSERT INTO devices (tenant_id, installation_id, provider, platform, token, places, place_geom)
		SELECT tenant_id, 'home-' || slug, 'fcm', 'android', 'emu-ok-' || slug, '[]', ST_Multi(ST_PointOnSurface(geom))
		FROM areas WHERE tenant_id = $1`, tn.ID); err != nil {
		t.Fatal(err)
	}
	for _, a := range in {
		target, err := json.Marshal(segments.Or(segments.Area(a.Slug)))
		if err != nil {
			t.Fatal(err)
		}
		aud, err := Audience(storage.Post{FeedSlug: feed.Slug, FeedMandatory: true, Target: target})
		if err != nil {
			t.Fatal(err)
		}
		c, err := db.CountAudience(ctx, tn.ID, feed.ID, aud, false)
		if err != nil {
			t.Fatal(err)
		}
		if c.Total != 1 {
			t.Errorf("area %s (%s): reaches %d residents, want 1", a.Slug, a.Name, c.Total)
		}
	}
}
