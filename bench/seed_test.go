package bench

import (
	"context"
	"os"
	"testing"

	"github.com/crier-push/crier/areas"
	"github.com/crier-push/crier/internal/testenv"
)

func TestSeedDevices(t *testing.T) {
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
	if _, err := SeedDevices(ctx, db, SeedSpec{TenantID: tn.ID, Devices: 3000, Feeds: []int64{1, 2, 3}, Prefix: "t-"}); err != nil {
		t.Fatal(err)
	}
	var n, inside, ios, following, interested, subscribed int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*),
		count(*) FILTER (WHERE EXISTS (SELECT 1 FROM areas a WHERE a.tenant_id = d.tenant_id AND ST_Intersects(a.geom, ST_GeometryN(d.place_geom, 1)))),
		count(*) FILTER (WHERE platform = 'ios'), count(*) FILTER (WHERE cardinality(follows) > 0),
		count(*) FILTER (WHERE cardinality(interests) > 0), count(*) FILTER (WHERE cardinality(areas) > 0)
		FROM devices d WHERE tenant_id = $1`, tn.ID).Scan(&n, &inside, &ios, &following, &interested, &subscribed); err != nil {
		t.Fatal(err)
	}
	t.Logf("devices %d, home inside an area %d, ios %d, following %d, interested %d, subscribed %d", n, inside, ios, following, interested, subscribed)
	if n != 3000 || inside != n || ios != 1000 || following == 0 || following == n || interested == 0 || subscribed != 1000 {
		t.Errorf("seeded devices do not look as specified")
	}
}
