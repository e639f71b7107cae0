package segments_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/internal/testenv"
	"github.com/crier-push/crier/segments"
	"github.com/crier-push/crier/storage"
)

var seed = flag.Uint64("seed", 1, "seed of the differential tests' random segments and devices")

// kommuneSlugs names the fixture's municipalities by kommunenummer.
var kommuneSlugs = map[string]string{
	"3901": "horten", "3903": "holmestrand", "3905": "tonsberg",
	"3907": "sandefjord", "3909": "larvik", "3911": "faerder",
}

var (
	feedSlugs = []string{"fotball", "veiarbeid", "kultur", "skole", "korps"}
	tags      = []string{"football", "roads", "culture", "it's", "x'); DROP TABLE devices; --", "æøå"}
	locales   = []string{"nb", "nb-NO", "nb_NO", "NB-no", "nn", "nn-NO", "en", "en-GB", "se", "pl"}
)

// world is a tenant with the six Vestfold kommuner as areas, feeds and
// random devices, both in the database and as the evaluator sees them.
type world struct {
	db       *storage.DB
	tenant   int64
	env      segments.Env
	areas    []string // slugs, sorted
	box      [4]float64
	vertices []segments.Point // of all areas, for cases on a boundary
	devices  []segments.Device
}

type geoFeature struct {
	Properties struct {
		Kommunenummer string `json:"kommunenummer"`
	} `json:"properties"`
	Geometry json.RawMessage `json:"geometry"`
}

func loadKommuner(t testing.TB) map[string]json.RawMessage {
	t.Helper()
	raw, err := os.ReadFile("testdata/vestfold-kommuner-2024.geojson")
	if err != nil {
		t.Fatal(err)
	}
	var fc struct{ Features []geoFeature }
	if err := json.Unmarshal(raw, &fc); err != nil {
		t.Fatal(err)
	}
	out := map[string]json.RawMessage{}
	for _, f := range fc.Features {
		out[kommuneSlugs[f.Properties.Kommunenummer]] = f.Geometry
	}
	if len(out) != 6 {
		t.Fatalf("fixture has %d kommuner, want 6", len(out))
	}
	return out
}

// newWorld builds the tenant, plus a second tenant with the same slugs
// (areas swapped around) and devices that match everything, which no
// condition may ever reach.
func newWorld(t *testing.T, r *rand.Rand, nDevices int) *world {
	t.Helper()
	ctx := context.Background()
	db := testenv.DB(t)
	kommuner := loadKommuner(t)
	w := &world{db: db, env: segments.Env{Areas: map[string]segments.MultiPolygon{}}}
	for s := range kommuner {
		w.areas = append(w.areas, s)
	}
	sort.Strings(w.areas)

	type ids struct{ feeds, areas map[string]int64 }
	setup := func(slug string, swap int) (int64, ids) {
		tn := testenv.Tenant(t, db, slug, slug, "")
		pub := testenv.Publisher(t, db, tn.ID, "kommune", "Kommune", crier.RoleMunicipality)
		got := ids{map[string]int64{}, map[string]int64{}}
		for _, f := range feedSlugs {
			feed := testenv.Feed(t, db, tn.ID, pub.ID, f, f, false)
			got.feeds[f] = feed.ID
		}
		for i, a := range w.areas {
			id, err := db.PutArea(ctx, tn.ID, a, a, kommuner[w.areas[(i+swap)%len(w.areas)]])
			if err != nil {
				t.Fatal(err)
			}
			got.areas[a] = id
		}
		return tn.ID, got
	}
	var mine, other ids
	w.tenant, mine = setup("vestfold", 0)
	otherTenant, other := setup("elsewhere", 3)

	// The evaluator sees exactly what PostGIS stored (PutArea repairs
	// geometries with ST_MakeValid).
	rows, err := db.Pool.Query(ctx, `SELECT slug, ST_AsBinary(geom) FROM areas WHERE tenant_id = $1`, w.tenant)
	if err != nil {
		t.Fatal(err)
	}
	box := [4]float64{math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)}
	for rows.Next() {
		var slug string
		var wkb []byte
		if err := rows.Scan(&slug, &wkb); err != nil {
			t.Fatal(err)
		}
		mp, err := segments.ParseWKB(wkb)
		if err != nil {
			t.Fatalf("area %s: %v", slug, err)
		}
		w.env.Areas[slug] = mp
		for _, poly := range mp {
			for _, ring := range poly {
				for _, p := range ring {
					w.vertices = append(w.vertices, p)
					box = [4]float64{min(box[0], p.Lon), min(box[1], p.Lat), max(box[2], p.Lon), max(box[3], p.Lat)}
				}
			}
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	w.box = box

	batch := &pgx.Batch{}
	insert := func(tenant int64, d segments.Device, ids ids) {
		var follows, areas []int64
		for _, f := range d.Follows {
			follows = append(follows, ids.feeds[f])
		}
		for _, a := range d.Areas {
			areas = append(areas, ids.areas[a])
		}
		batch.Queue(`INSERT INTO devices (tenant_id, installation_id, provider, platform, token, locale,
			follows, interests, areas, place_geom)
			VALUES ($1, $2, 'fcm', $3, $2, $4, $5, $6, $7, ST_GeomFromWKB($8, 4326))`,
			tenant, d.InstallationID, d.Platform, d.Locale, nonNil(follows), nonNil(d.Interests), nonNil(areas),
			multiPointWKB(d.Places))
	}
	for i := range nDevices {
		d := w.randomDevice(r, fmt.Sprintf("dev-%04d", i))
		w.devices = append(w.devices, d)
		insert(w.tenant, d, mine)
	}
	for i := range 20 {
		d := w.randomDevice(r, fmt.Sprintf("dev-%04d", i)) // same installation ids, other tenant
		d.Follows, d.Interests, d.Areas = feedSlugs, tags, w.areas
		insert(otherTenant, d, other)
	}
	if err := db.Pool.SendBatch(ctx, batch).Close(); err != nil {
		t.Fatal(err)
	}
	return w
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// multiPointWKB is the places as a WKB MultiPoint, nil for none.
func multiPointWKB(ps []segments.Point) []byte {
	if len(ps) == 0 {
		return nil
	}
	le := binary.LittleEndian
	b := le.AppendUint32([]byte{1}, 4)
	b = le.AppendUint32(b, uint32(len(ps)))
	for _, p := range ps {
		b = le.AppendUint32(append(b, 1), 1)
		b = le.AppendUint64(b, math.Float64bits(p.Lon))
		b = le.AppendUint64(b, math.Float64bits(p.Lat))
	}
	return b
}

func pick[T any](r *rand.Rand, s []T) T { return s[r.IntN(len(s))] }

func subset[T any](r *rand.Rand, s []T, p float64) []T {
	var out []T
	for _, v := range s {
		if r.Float64() < p {
			out = append(out, v)
		}
	}
	return out
}

func (w *world) randomPoint(r *rand.Rand) segments.Point {
	if r.IntN(20) == 0 {
		return pick(r, w.vertices) // exactly on an area's boundary
	}
	return segments.Point{Lon: w.box[0] + r.Float64()*(w.box[2]-w.box[0]), Lat: w.box[1] + r.Float64()*(w.box[3]-w.box[1])}
}

func (w *world) randomDevice(r *rand.Rand, id string) segments.Device {
	d := segments.Device{
		InstallationID: id,
		Platform:       pick(r, []string{"android", "ios"}),
		Locale:         pick(r, locales),
		Follows:        subset(r, feedSlugs, 0.2),
		Interests:      subset(r, tags, 0.2),
		Areas:          subset(r, w.areas, 0.12),
	}
	for range r.IntN(4) {
		d.Places = append(d.Places, w.randomPoint(r))
	}
	return d
}

// star is a random polygon, star-shaped around c and so simple, with
// radii in degrees of latitude; through, if set, is one of its vertices.
func star(r *rand.Rand, c segments.Point, rmin, rmax float64, n int, through *segments.Point) [][]float64 {
	type v struct{ a, lon, lat float64 }
	k := 1 / math.Cos(c.Lat*math.Pi/180)
	var vs []v
	for i := range n {
		a := (float64(i) + r.Float64()*0.8) * 2 * math.Pi / float64(n)
		rad := rmin + r.Float64()*(rmax-rmin)
		vs = append(vs, v{a, c.Lon + rad*k*math.Cos(a), c.Lat + rad*math.Sin(a)})
	}
	if through != nil {
		vs[0] = v{math.Atan2(through.Lat-c.Lat, (through.Lon-c.Lon)/k), through.Lon, through.Lat}
		if vs[0].a < 0 {
			vs[0].a += 2 * math.Pi
		}
	}
	sort.Slice(vs, func(i, j int) bool { return vs[i].a < vs[j].a })
	var ring [][]float64
	for _, p := range vs {
		ring = append(ring, []float64{p.lon, p.lat})
	}
	return append(ring, ring[0])
}

func reverse(ring [][]float64) [][]float64 {
	out := slices.Clone(ring)
	slices.Reverse(out)
	return out
}

// randomGeometry is a random valid target geometry: random star shapes are
// not always valid (a hole may cross its shell), so it draws until one is.
func (w *world) randomGeometry(r *rand.Rand) map[string]any {
	for {
		g := w.randomGeometryOnce(r)
		raw, err := json.Marshal(g)
		if err != nil {
			panic(err)
		}
		if _, err := segments.ParseTarget(raw, segments.Options{}); err == nil {
			return g
		}
	}
}

func (w *world) randomGeometryOnce(r *rand.Rand) map[string]any {
	switch r.IntN(10) {
	case 0: // an area's own geometry: its neighbours only touch it
		mp := w.env.Areas[pick(r, w.areas)]
		var coords [][][][]float64
		for _, poly := range mp {
			var rings [][][]float64
			for _, ring := range poly {
				var rr [][]float64
				for _, p := range ring {
					rr = append(rr, []float64{p.Lon, p.Lat})
				}
				rings = append(rings, rr)
			}
			coords = append(coords, rings)
		}
		return map[string]any{"type": "MultiPolygon", "coordinates": coords}
	case 1, 2: // two parts
		c1, c2 := w.randomPoint(r), w.randomPoint(r)
		return map[string]any{"type": "MultiPolygon", "coordinates": [][][][]float64{
			{star(r, c1, 0.005, 0.08, 3+r.IntN(8), nil)},
			{reverse(star(r, c2, 0.005, 0.08, 3+r.IntN(8), nil))},
		}}
	}
	c := w.randomPoint(r)
	rmax := math.Exp(math.Log(0.003) + r.Float64()*math.Log(0.4/0.003))
	var through *segments.Point
	if r.IntN(5) == 0 { // a vertex on an area's border
		v := pick(r, w.vertices)
		through = &v
		c = segments.Point{Lon: v.Lon + (r.Float64()-0.5)*rmax, Lat: v.Lat + (r.Float64()-0.5)*rmax}
	}
	rings := [][][]float64{star(r, c, rmax/2, rmax, 3+r.IntN(14), through)}
	if r.IntN(4) == 0 {
		rings = append(rings, reverse(star(r, c, rmax/20, rmax/5, 3+r.IntN(6), nil)))
	}
	return map[string]any{"type": "Polygon", "coordinates": rings}
}

func (w *world) randomCircle(r *rand.Rand) map[string]any {
	c := w.randomPoint(r)
	radius := math.Round(math.Exp(r.Float64() * math.Log(100_000)))
	if r.IntN(10) == 0 {
		radius = pick(r, []float64{1, 100_000})
	}
	return map[string]any{"lat": c.Lat, "lon": c.Lon, "radius_m": max(1, radius)}
}

// randomSegment is a random expression as JSON, so the differential test
// goes through the parser too.
func (w *world) randomSegment(r *rand.Rand, depth int) map[string]any {
	if depth < 4 && r.IntN(10) < 4 {
		switch r.IntN(5) {
		case 0:
			return map[string]any{"not": w.randomSegment(r, depth+1)}
		case 1, 2:
			return map[string]any{"and": w.children(r, depth)}
		default:
			return map[string]any{"or": w.children(r, depth)}
		}
	}
	switch r.IntN(12) {
	case 0:
		return map[string]any{"all": true}
	case 1:
		return map[string]any{"feed": pick(r, append(feedSlugs, "no-such-feed"))}
	case 2:
		return map[string]any{"interest": pick(r, append(tags, "no-such-tag"))}
	case 3, 4:
		return map[string]any{"area": pick(r, append(w.areas, "atlantis"))}
	case 5, 6:
		return map[string]any{"within": w.randomGeometry(r)}
	case 7, 8:
		return map[string]any{"near": w.randomCircle(r)}
	case 9:
		return map[string]any{"platform": pick(r, []string{"android", "ios"})}
	case 10:
		return map[string]any{"locale": pick(r, []string{"nb", "nn", "en", "nb-no", "EN-gb", "se"})}
	}
	var ids []string
	for range 1 + r.IntN(5) {
		ids = append(ids, pick(r, w.devices).InstallationID)
	}
	return map[string]any{"device": append(ids, "no-such-device")}
}

func (w *world) children(r *rand.Rand, depth int) []any {
	var out []any
	for range 1 + r.IntN(4) {
		out = append(out, w.randomSegment(r, depth+1))
	}
	return out
}

// sqlAudience runs a condition the way storage.Snapshot does: $1 post id,
// $2 tenant id, $3 feed id, the condition's placeholders from $4.
func (w *world) sqlAudience(ctx context.Context, c segments.Condition) ([]string, error) {
	args := append([]any{int64(1), w.tenant, int64(1)}, c.Args...)
	rows, err := w.db.Pool.Query(ctx, `SELECT d.installation_id FROM devices d
		WHERE $1::bigint IS NOT NULL AND d.tenant_id = $2 AND $3::bigint IS NOT NULL AND (`+c.SQL+`)
		ORDER BY d.installation_id`, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

func (w *world) goAudience(e *segments.Expr) []string {
	ev := segments.NewEvaluator(e, w.env)
	var out []string
	for _, d := range w.devices {
		if ev.Match(d) {
			out = append(out, d.InstallationID)
		}
	}
	sort.Strings(out)
	return out
}

// compare reports the devices the two audiences disagree on.
func (w *world) compare(t *testing.T, label string, e *segments.Expr, sqlIDs, goIDs []string) bool {
	t.Helper()
	if slices.Equal(sqlIDs, goIDs) {
		return true
	}
	inSQL, inGo := map[string]bool{}, map[string]bool{}
	for _, id := range sqlIDs {
		inSQL[id] = true
	}
	for _, id := range goIDs {
		inGo[id] = true
	}
	var b strings.Builder
	for _, d := range w.devices {
		if inSQL[d.InstallationID] != inGo[d.InstallationID] {
			fmt.Fprintf(&b, "\n  %s: sql=%v go=%v device=%+v", d.InstallationID, inSQL[d.InstallationID], inGo[d.InstallationID], d)
		}
	}
	for _, id := range sqlIDs {
		if !strings.HasPrefix(id, "dev-") || !slices.ContainsFunc(w.devices, func(d segments.Device) bool { return d.InstallationID == id }) {
			fmt.Fprintf(&b, "\n  %s: returned by SQL but not a device of the tenant", id)
		}
	}
	t.Errorf("%s: SQL and Go audiences differ (sql %d, go %d devices)\nexpression: %s\ndiffering devices:%s",
		label, len(sqlIDs), len(goIDs), e, b.String())
	return false
}

// parallel runs f for 0..n-1 on a few workers.
func parallel(n, workers int, f func(i int)) {
	var wg sync.WaitGroup
	next := make(chan int)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				f(i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

func TestDifferential(t *testing.T) {
	t.Parallel()
	const nSegments, nDevices = 1200, 2500
	r := rand.New(rand.NewPCG(*seed, 1))
	w := newWorld(t, r, nDevices)
	t.Logf("seed %d: %d segments over %d devices", *seed, nSegments, nDevices)

	segs := make([][]byte, nSegments)
	for i := range segs {
		raw, err := json.Marshal(w.randomSegment(r, 1))
		if err != nil {
			t.Fatal(err)
		}
		segs[i] = raw
	}
	ctx := context.Background()
	var mu sync.Mutex
	kinds := map[segments.Kind]int{}
	failures, matched := 0, 0
	for slug, mp := range w.env.Areas {
		if _, err := segments.Within(mp); err != nil {
			t.Errorf("area %s as stored is no valid within geometry: %v", slug, err)
		}
	}
	parallel(nSegments, 4, func(i int) {
		e, err := segments.Parse(segs[i], segments.Options{})
		if err != nil {
			t.Errorf("segment %d: %v\n%s", i, err, segs[i])
			return
		}
		c := segments.Compile(e, segments.Params{TenantParam: 2, ArgBase: 3})
		sqlIDs, err := w.sqlAudience(ctx, c)
		if err != nil {
			t.Errorf("segment %d: %v\nexpression: %s\nsql: %s", i, err, e, c.SQL)
			return
		}
		goIDs := w.goAudience(e)
		mu.Lock()
		defer mu.Unlock()
		countKinds(segs[i], kinds)
		matched += len(goIDs)
		if failures < 5 && !w.compare(t, fmt.Sprintf("segment %d", i), e, sqlIDs, goIDs) {
			failures++
		}
	})
	for _, k := range []segments.Kind{segments.KindAll, segments.KindAnd, segments.KindOr, segments.KindNot,
		segments.KindFeed, segments.KindInterest, segments.KindArea, segments.KindWithin, segments.KindNear,
		segments.KindPlatform, segments.KindLocale, segments.KindDevice} {
		if kinds[k] == 0 {
			t.Errorf("no random segment used %q", k)
		}
	}
	t.Logf("node kinds: %v; mean audience %.0f of %d", kinds, float64(matched)/nSegments, nDevices)
}

func countKinds(raw []byte, kinds map[segments.Kind]int) {
	var walk func(v any)
	walk = func(v any) {
		m, ok := v.(map[string]any)
		if !ok {
			return
		}
		for k, c := range m {
			kinds[segments.Kind(k)]++
			switch c := c.(type) {
			case []any:
				for _, x := range c {
					walk(x)
				}
			case map[string]any:
				if k == "not" {
					walk(c)
				}
			}
		}
	}
	var v any
	json.Unmarshal(raw, &v) //nolint:errcheck // parsed already
	walk(v)
}

// TestDifferentialDefault holds the default rule, with every kind of
// target, to the evaluator, and the deprecated feed-by-id form to the slug
// form.
func TestDifferentialDefault(t *testing.T) {
	t.Parallel()
	const nPosts, nDevices = 300, 1500
	r := rand.New(rand.NewPCG(*seed, 2))
	w := newWorld(t, r, nDevices)
	ctx := context.Background()
	feedIDs := map[string]int64{}
	for _, f := range feedSlugs {
		feed, err := w.db.FeedBySlug(ctx, w.tenant, f)
		if err != nil {
			t.Fatal(err)
		}
		feedIDs[f] = feed.ID
	}
	posts := make([]segments.Post, nPosts)
	for i := range posts {
		p := segments.Post{Feed: pick(r, feedSlugs), FeedMandatory: r.IntN(8) == 0, Tags: subset(r, tags, 0.3)}
		var target any
		switch r.IntN(4) {
		case 1:
			target = subset(r, append(w.areas, "atlantis"), 0.3)
			if len(target.([]string)) == 0 {
				target = []string{pick(r, w.areas)}
			}
		case 2:
			target = w.randomGeometry(r)
		case 3:
			target = w.randomCircle(r)
		}
		if target != nil {
			raw, _ := json.Marshal(target)
			e, err := segments.ParseTarget(raw, segments.Options{})
			if err != nil {
				t.Fatalf("target %s: %v", raw, err)
			}
			p.Target = e
		}
		posts[i] = p
	}
	failures := 0
	var mu sync.Mutex
	parallel(nPosts, 4, func(i int) {
		p := posts[i]
		e := segments.DefaultRule(p)
		sqlIDs, err := w.sqlAudience(ctx, segments.Compile(e, segments.Params{TenantParam: 2, ArgBase: 3}))
		if err != nil {
			t.Errorf("post %d: %v\nrule: %s", i, err, e)
			return
		}
		byID := p
		byID.Feed, byID.FeedID = "", feedIDs[p.Feed]
		oldIDs, err := w.sqlAudience(ctx, segments.Compile(segments.DefaultRule(byID), segments.Params{TenantParam: 2, ArgBase: 3}))
		if err != nil {
			t.Errorf("post %d (by feed id): %v", i, err)
			return
		}
		goIDs := w.goAudience(e)
		mu.Lock()
		defer mu.Unlock()
		if failures < 5 && !w.compare(t, fmt.Sprintf("post %d", i), e, sqlIDs, goIDs) {
			failures++
		}
		if !slices.Equal(oldIDs, sqlIDs) {
			t.Errorf("post %d: the default rule by feed id reaches %d devices, by slug %d", i, len(oldIDs), len(sqlIDs))
		}
	})
}
