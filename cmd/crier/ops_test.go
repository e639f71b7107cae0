package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hibiken/asynq"

	"github.com/crier-push/crier/internal/testenv"
	"github.com/crier-push/crier/providers/emulator"
	"github.com/crier-push/crier/storage"
	"github.com/crier-push/crier/tasks"
)

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if builtBin != "" {
		os.RemoveAll(filepath.Dir(builtBin))
	}
	os.Exit(code)
}

// crierBinary builds the crier binary once for the tests of this package
// that run it as a process.
func crierBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "crier-cmd-test-")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "crier")
		if out, err := exec.Command("go", "build", "-o", builtBin, ".").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build crier: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

// TestServeStopsGracefullyOnSIGTERM: `crier serve`, run as a process, gets
// a real SIGTERM while every send of a post is in flight (each push takes
// the emulator two seconds): it lets the sends finish, records them, and
// exits 0, so nothing is left pending for a restart to push again.
func TestServeStopsGracefullyOnSIGTERM(t *testing.T) {
	t.Parallel()
	bin := crierBinary(t)
	ctx := context.Background()
	dbURL, _ := testenv.DBURL(t)
	rds := testenv.StartRedis(t)
	db, err := storage.Open(ctx, storage.Config{URL: dbURL, MaxConns: 2, Secrets: testenv.Secrets()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	emu := testenv.StartEmulator(t, emulator.Config{})
	tn, muni := testenv.EmulatorTenant(t, db, emu)
	feed := testenv.Feed(t, db, tn.ID, muni.ID, "viktig", "Viktig", true)
	key, err := db.NewAPIKey(ctx, tn.ID, &muni.ID, "cms")
	if err != nil {
		t.Fatal(err)
	}
	const n = 5
	var tokens []string
	for i := range n {
		tok := emulator.FCMToken(emulator.Behaviour{Kind: emulator.Slow, Arg: 2000}, fmt.Sprint("term-", i))
		tokens = append(tokens, tok)
		if _, err := db.Pool.Exec(ctx, `INSERT INTO devices (tenant_id, installation_id, provider, platform, token)
			VALUES ($1, $2, 'fcm', 'android', $3)`, tn.ID, fmt.Sprint("term-", i), tok); err != nil {
			t.Fatal(err)
		}
	}

	logs := &syncBuffer{}
	cmd := exec.Command(bin, "serve", "-addr", "127.0.0.1:0", "-concurrency", "10")
	cmd.Env = append(os.Environ(), "CRIER_DATABASE_URL="+dbURL, "CRIER_REDIS_URL="+rds.URL(), "CRIER_SECRET_KEY="+testenv.SecretKey)
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill() //nolint:errcheck // it has exited if the test went well
		if t.Failed() {
			t.Logf("crier serve:\n%s", logs.String())
		}
	})
	base := started(t, logs, exited)

	code, b := request(t, base, "POST", "/v1/posts", key, `{"feed":"`+feed.Slug+`","title":"Stengt vei","body":"Storgata er stengt."}`)
	if code != http.StatusAccepted {
		t.Fatalf("post: %d %s", code, b)
	}
	var created struct{ ID int64 }
	if err := json.Unmarshal(b, &created); err != nil {
		t.Fatal(err)
	}
	// Once every send is taken by a worker, and none answered yet, stop.
	insp := asynq.NewInspector(rds.AsynqOpt())
	defer insp.Close()
	testenv.Eventually(t, time.Minute, 10*time.Millisecond, func() error {
		q, err := insp.GetQueueInfo(tasks.QueueOfficial)
		if err != nil {
			return err
		}
		if q.Active != n {
			return fmt.Errorf("%d of %d sends in flight", q.Active, n)
		}
		return nil
	})
	answered := 0
	for _, tok := range tokens {
		answered += len(emu.RecordsFor(tok))
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("crier serve after SIGTERM: %v (%v); want exit status 0", err, cmd.ProcessState)
		}
	case <-time.After(time.Minute):
		t.Fatal("crier serve did not exit within a minute of SIGTERM")
	}
	if answered > 0 {
		t.Logf("NOTE: %d of the %d pushes were answered before the SIGTERM (a slow machine): fewer were in flight", answered, n)
	}

	var sent, pending int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE state = 'sent'), count(*) FILTER (WHERE state IN ('pending', 'deferred'))
		FROM deliveries WHERE post_id = $1`, created.ID).Scan(&sent, &pending); err != nil {
		t.Fatal(err)
	}
	if sent != n || pending != 0 {
		t.Errorf("after SIGTERM: %d sent, %d pending; want all %d sent and recorded", sent, pending, n)
	}
	for _, tok := range tokens {
		if recs := emu.RecordsFor(tok); len(recs) != 1 || !recs[0].Accepted() {
			t.Errorf("emulator records of %s: %+v; want one accepted push", tok, recs)
		}
	}
}

// twoAreas is a small GeoJSON file of two areas whose slug and name are
// in properties of other names than the defaults (slug, name), which hold
// other values: only the -slug-property and -name-property flags give the
// right ones.
const twoAreas = `{"type": "FeatureCollection", "features": [
  {"type": "Feature", "properties": {"kode": "Færder", "tittel": "Færder sentrum", "slug": "feil", "name": "Feil"},
   "geometry": {"type": "Polygon", "coordinates": [[[10.40, 59.15], [10.45, 59.15], [10.45, 59.20], [10.40, 59.20], [10.40, 59.15]]]}},
  {"type": "Feature", "properties": {"kode": "Vestby", "tittel": "Vestby", "slug": "galt", "name": "Galt"},
   "geometry": {"type": "MultiPolygon", "coordinates": [[[[10.60, 59.55], [10.65, 59.55], [10.65, 59.60], [10.60, 59.60], [10.60, 59.55]]]]}}
]}`

// TestCLIAreaImportAndAPNs: `crier area import` imports a GeoJSON file's
// areas under the properties named by its flags, and a post targeted at
// one of them reaches the device located there and not the other;
// `crier tenant apns` stores the tenant's APNs settings, and the iPhones
// get their pushes through them (the emulator checks the provider token's
// team and key and the topic).
func TestCLIAreaImportAndAPNs(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	ctx := context.Background()
	emu := testenv.StartEmulator(t, emulator.Config{})
	const teamID, keyID, topic = "TEAMCLI001", "KEYCLI0001", "no.faerder.app"
	p8, err := emu.NewAPNsKey(teamID, keyID, topic)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	keyFile, caFile, areasFile := write("AuthKey.p8", p8), write("ca.pem", emu.CACertPEM()), write("areas.geojson", []byte(twoAreas))

	c.run("migrate")
	c.run("tenant", "create", "-slug", "faerder", "-name", "Færder kommune")
	if out := c.run("tenant", "apns", "-slug", "faerder", "-key", keyFile, "-key-id", keyID, "-team-id", teamID,
		"-topic", topic, "-host", emu.APNsHost(), "-ca", caFile); !strings.Contains(out, "topic "+topic) {
		t.Errorf("tenant apns: %q", out)
	}
	if out := c.run("area", "import", "-tenant", "faerder", "-file", areasFile, "-slug-property", "kode",
		"-name-property", "tittel"); !strings.Contains(out, "2 areas imported into faerder") {
		t.Errorf("area import: %q", out)
	}
	c.run("publisher", "create", "-tenant", "faerder", "-slug", "kommunen", "-name", "Færder kommune", "-role", "municipality")
	c.run("feed", "create", "-tenant", "faerder", "-publisher", "kommunen", "-slug", "viktig", "-name", "Viktig", "-mandatory")
	pubKey := strings.TrimSpace(c.run("key", "create", "-tenant", "faerder", "-publisher", "kommunen"))
	appKey := strings.TrimSpace(c.run("key", "create", "-tenant", "faerder"))

	// What tenant apns stored.
	db, err := storage.Open(ctx, storage.Config{URL: c.dbURL, MaxConns: 2, Secrets: testenv.Secrets()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	tn, err := db.TenantBySlug(ctx, "faerder")
	if err != nil {
		t.Fatal(err)
	}
	creds, err := db.TenantCredentials(ctx, tn.ID)
	if err != nil {
		t.Fatal(err)
	}
	type apns struct {
		KeyP8, RootCA              string
		KeyID, TeamID, Topic, Host string
	}
	if diff := cmp.Diff(apns{string(p8), string(emu.CACertPEM()), keyID, teamID, topic, emu.APNsHost()},
		apns{string(creds.APNsKeyP8), string(creds.APNsRootCA), creds.APNsKeyID, creds.APNsTeamID, creds.APNsTopic, creds.APNsHost}); diff != "" {
		t.Errorf("APNs settings stored by tenant apns (-want +got):\n%s", diff)
	}

	base := c.serve()
	code, b := request(t, base, "GET", "/v1/areas", appKey, "")
	var list struct{ Areas []struct{ Slug, Name string } }
	if err := json.Unmarshal(b, &list); code != http.StatusOK || err != nil {
		t.Fatalf("GET /v1/areas: %d %s", code, b)
	}
	if diff := cmp.Diff([]struct{ Slug, Name string }{{"faerder", "Færder sentrum"}, {"vestby", "Vestby"}}, list.Areas); diff != "" {
		t.Errorf("areas imported (-want +got):\n%s", diff)
	}

	// An iPhone at home in each area; the post is for Færder.
	inside := emulator.APNsToken(emulator.Behaviour{Kind: emulator.Accept}, 1)
	outside := emulator.APNsToken(emulator.Behaviour{Kind: emulator.Accept}, 2)
	for _, d := range []struct {
		id, token string
		lat, lon  float64
	}{{"iphone-faerder", inside, 59.17, 10.42}, {"iphone-vestby", outside, 59.57, 10.62}} {
		body := fmt.Sprintf(`{"provider":"apns","token":%q,"places":[{"name":"home","lat":%g,"lon":%g}]}`, d.token, d.lat, d.lon)
		if code, b := request(t, base, "PUT", "/v1/devices/"+d.id, appKey, body); code != http.StatusCreated {
			t.Fatalf("register %s: %d %s", d.id, code, b)
		}
	}
	code, b = request(t, base, "POST", "/v1/posts", pubKey, `{"feed":"viktig","title":"Stengt vei","body":"Strandveien er stengt.","target":["faerder"]}`)
	if code != http.StatusAccepted {
		t.Fatalf("post: %d %s", code, b)
	}
	var created struct{ ID int64 }
	if err := json.Unmarshal(b, &created); err != nil {
		t.Fatal(err)
	}
	var st struct {
		State    string
		Audience int
		Counts   map[string]int
	}
	testenv.Eventually(t, time.Minute, 10*time.Millisecond, func() error {
		_, b := request(t, base, "GET", fmt.Sprintf("/v1/posts/%d", created.ID), pubKey, "")
		if err := json.Unmarshal(b, &st); err != nil {
			return err
		}
		if st.State != "done" {
			return fmt.Errorf("post %s", b)
		}
		return nil
	})
	if st.Audience != 1 || st.Counts["sent"] != 1 {
		t.Errorf("post done with audience %d, counts %v; want the one iPhone in Færder sent", st.Audience, st.Counts)
	}
	recs := emu.RecordsFor(inside)
	if len(recs) != 1 || !recs[0].Accepted() || recs[0].Provider != "apns" || recs[0].Topic != topic {
		t.Errorf("emulator records of the iPhone in Færder: %+v; want one accepted APNs push on topic %s", recs, topic)
	}
	if recs := emu.RecordsFor(outside); len(recs) != 0 {
		t.Errorf("the iPhone in Vestby got %d pushes of a post for Færder", len(recs))
	}
}
