package bench

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/areas"
	"github.com/crier-push/crier/dispatcher"
	"github.com/crier-push/crier/internal/testenv"
	"github.com/crier-push/crier/storage"
)

// BenchmarkAudience resolves audiences over a tenant of
// CRIER_BENCH_DEVICES devices (default 1,000,000) spread over the 357
// Norwegian municipalities: for each scenario, the time to count the
// audience and to snapshot it into deliveries, with rows per second.
//
//	go test -run '^$' -bench Audience -benchtime 3x -timeout 30m ./bench/
//
// The seeded database (crier_bench_*) is kept between runs; drop it to
// reseed.
func BenchmarkAudience(b *testing.B) {
	n, _ := strconv.Atoi(cmp.Or(os.Getenv("CRIER_BENCH_DEVICES"), "1000000"))
	db := testenv.PersistentDB(b, "crier_bench_audience")
	ctx := context.Background()
	tenant, _ := seedNorway(b, db, n)
	mandatory, err := db.FeedBySlug(ctx, tenant.ID, "alle")
	if err != nil {
		b.Fatal(err)
	}
	follow, err := db.FeedBySlug(ctx, tenant.ID, "feed-1")
	if err != nil {
		b.Fatal(err)
	}
	// A box across Larvik, Sandefjord and Tønsberg.
	box := `{"within": {"type": "Polygon", "coordinates": [[[10.05, 59.08], [10.45, 59.08], [10.45, 59.28], [10.05, 59.28], [10.05, 59.08]]]}}`
	scenarios := []struct {
		name string
		post storage.Post
	}{
		{"area-and-interest", storage.Post{FeedID: follow.ID, FeedSlug: follow.Slug,
			Segment: []byte(`{"and": [{"area": "3907"}, {"interest": "fotball"}]}`)}},
		{"polygon-three-municipalities", storage.Post{FeedID: follow.ID, FeedSlug: follow.Slug, Segment: []byte(box)}},
		{"followers-of-a-feed", storage.Post{FeedID: follow.ID, FeedSlug: follow.Slug}},
		{"mandatory-whole-tenant", storage.Post{FeedID: mandatory.ID, FeedSlug: mandatory.Slug, FeedMandatory: true}},
	}
	for _, sc := range scenarios {
		aud, err := dispatcher.Audience(sc.post)
		if err != nil {
			b.Fatal(err)
		}
		var size int
		b.Run(sc.name+"/count", func(b *testing.B) {
			for b.Loop() {
				c, err := db.CountAudience(ctx, tenant.ID, sc.post.FeedID, aud, false)
				if err != nil {
					b.Fatal(err)
				}
				size = c.Total
			}
			b.ReportMetric(float64(size), "devices")
		})
		b.Run(sc.name+"/snapshot", func(b *testing.B) {
			var rows int
			var spent time.Duration
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				if _, err := db.Pool.Exec(ctx, `TRUNCATE deliveries`); err != nil {
					b.Fatal(err)
				}
				p := sc.post
				p.TenantID, p.PublisherID, p.Title, p.Body, p.Class = tenant.ID, mandatory.PublisherID, "bench", "bench", "official"
				post, _, err := db.CreatePost(ctx, p)
				if err != nil {
					b.Fatal(err)
				}
				post.Segment, post.FeedMandatory = p.Segment, p.FeedMandatory
				b.StartTimer()
				start := time.Now()
				got, err := db.Snapshot(ctx, post, aud, storage.SnapshotOptions{Now: time.Now()})
				spent += time.Since(start)
				if err != nil {
					b.Fatal(err)
				}
				rows += got
			}
			b.ReportMetric(float64(rows)/float64(b.N), "rows")
			b.ReportMetric(float64(rows)/spent.Seconds(), "rows/s")
		})
	}
	b.StopTimer()
	if _, err := db.Pool.Exec(ctx, `TRUNCATE deliveries`); err != nil {
		b.Fatal(err)
	}
}

// seedNorway makes sure the bench tenant exists with n devices over the 357
// municipalities, 20 feeds (feed-1..feed-20) and a mandatory feed "alle".
func seedNorway(b *testing.B, db *storage.DB, n int) (storage.Tenant, []int64) {
	ctx := context.Background()
	slug := fmt.Sprintf("norge-%d", n)
	t, err := db.TenantBySlug(ctx, slug)
	if err == nil {
		var ids []int64
		if err := db.Pool.QueryRow(ctx, `SELECT array_agg(id ORDER BY id) FROM feeds WHERE tenant_id = $1`, t.ID).Scan(&ids); err != nil {
			b.Fatal(err)
		}
		return t, ids
	}
	raw := Municipalities
	start := time.Now()
	if t, err = db.CreateTenant(ctx, slug, "Norge", ""); err != nil {
		b.Fatal(err)
	}
	pub, err := db.CreatePublisher(ctx, t.ID, "staten", "Staten", crier.RoleMunicipality)
	if err != nil {
		b.Fatal(err)
	}
	var ids []int64
	for i := 1; i <= 20; i++ {
		f, err := db.CreateFeed(ctx, t.ID, pub.ID, fmt.Sprintf("feed-%d", i), "Feed", false)
		if err != nil {
			b.Fatal(err)
		}
		ids = append(ids, f.ID)
	}
	if _, err := db.CreateFeed(ctx, t.ID, pub.ID, "alle", "Alle", true); err != nil {
		b.Fatal(err)
	}
	if _, err := areas.Import(ctx, db, t.ID, raw, areas.Options{SlugProperty: "kommunenummer", NameProperty: "kommunenavn"}); err != nil {
		b.Fatal(err)
	}
	took, err := SeedDevices(ctx, db, SeedSpec{TenantID: t.ID, Devices: n, Feeds: ids, Prefix: "n-"})
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("seeded %d devices over 357 municipalities in %s (total %s)", n, took, time.Since(start))
	return t, ids
}
