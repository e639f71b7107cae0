// Package demo sets up a demo of crier on this machine: the municipality of
// Sandefjord as a tenant, with its publishers, feeds and the Vestfold
// municipalities as areas, a few hundred emulator devices registered through
// the API, and a first post delivered through the real FCM and APNs client
// libraries to the emulator.
package demo

import (
	"cmp"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/areas"
	"github.com/crier-push/crier/internal/apiclient"
	"github.com/crier-push/crier/internal/configcheck"
	"github.com/crier-push/crier/providers/emulator"
	"github.com/crier-push/crier/secrets"
	"github.com/crier-push/crier/server"
	"github.com/crier-push/crier/storage"
)

//go:embed vestfold-kommuner-2024.geojson
var vestfold []byte

// Config says where the services are and how big the demo is.
type Config struct {
	DatabaseURL string
	RedisURL    string
	Addr        string // API address, default DefaultAddr
	Devices     int    // default DefaultDevices
	Out         io.Writer
	Logger      *slog.Logger
	// Secrets are the operator's master keys, if they configured any;
	// without them the demo seals its credentials under the key in
	// KeyFile, which it makes on its first run.
	Secrets *secrets.Keyring
	KeyFile string // default DefaultKeyFile
}

// Defaults of the Config.
const (
	DefaultAddr    = ":8080"
	DefaultDevices = 300
	// DefaultKeyFile is beside the emulator's state, in the git-ignored
	// .crier directory.
	DefaultKeyFile = ".crier/secret.key"
)

// WithDefaults fills in the zero fields.
func (c Config) WithDefaults() Config {
	c.Addr = cmp.Or(c.Addr, DefaultAddr)
	c.Devices = cmp.Or(c.Devices, DefaultDevices)
	c.KeyFile = cmp.Or(c.KeyFile, DefaultKeyFile)
	if c.Out == nil {
		c.Out = io.Discard
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// validate refuses a config the demo cannot run with, naming the field,
// before anything is started.
func (c Config) validate() error {
	return configcheck.First("demo config",
		configcheck.Required("DatabaseURL", c.DatabaseURL),
		configcheck.Required("RedisURL", c.RedisURL),
		configcheck.Positive("Devices", c.Devices),
		configcheck.HostPort("Addr", c.Addr),
	)
}

// Run sets the demo up, publishes a post, waits for it to be delivered,
// prints how to look around, and serves until ctx ends.
func Run(ctx context.Context, cfg Config) error {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return err
	}
	out := cfg.Out
	ring, ringFrom, err := cfg.keyring()
	if err != nil {
		return err
	}

	emu, err := emulator.New(emulator.Config{FCMAddr: "127.0.0.1:4010", APNsAddr: "127.0.0.1:4011"})
	if err != nil {
		return err
	}
	if err := emu.Start(); err != nil {
		return fmt.Errorf("start emulator (are ports 4010/4011 free?): %w", err)
	}
	defer emu.Close()

	db, err := storage.Open(ctx, storage.Config{URL: cfg.DatabaseURL, MaxConns: 4, Secrets: ring})
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		return err
	}
	keys, err := seed(ctx, db, emu)
	if err != nil {
		return fmt.Errorf("seed demo tenant: %w", err)
	}

	srv, err := server.New(ctx, server.Config{DatabaseURL: cfg.DatabaseURL, RedisURL: cfg.RedisURL,
		HTTPAddr: cfg.Addr, Concurrency: 50, Logger: cfg.Logger, Secrets: ring})
	if err != nil {
		return err
	}
	defer srv.Close()
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- srv.Run(runCtx) }()
	base := "http://" + strings.Replace(srv.Addr(), "[::]", "localhost", 1)

	c := client{base: base}
	fmt.Fprintln(out, ringFrom)
	fmt.Fprintf(out, "crier is up at %s; registering %d emulator devices through the API...\n", base, cfg.Devices)
	if err := registerDevices(ctx, c, keys.app, cfg.Devices); err != nil {
		return err
	}
	var created struct {
		ID int64 `json:"id"`
	}
	post := map[string]any{"feed": "viktig", "title": "Velkommen til crier",
		"body": "Sandefjord kommune sender nå varsler gjennom crier.",
		"url":  "https://www.sandefjord.kommune.no/", "data": map[string]string{"kind": "welcome"},
		"external_id": fmt.Sprintf("demo-welcome-%d", time.Now().Unix())}
	if err := c.do(ctx, "POST", "/v1/posts", keys.muni, post, &created); err != nil {
		return fmt.Errorf("publish demo post: %w", err)
	}
	status := fmt.Sprintf("%s/v1/posts/%d", base, created.ID)
	fmt.Fprintf(out, "published post %d to the mandatory feed \"viktig\"; status: %s\n", created.ID, status)

	var st struct {
		State  string         `json:"state"`
		Counts map[string]int `json:"counts"`
	}
	deadline := time.Now().Add(2 * time.Minute)
	for st.State != "done" {
		if time.Now().After(deadline) {
			return fmt.Errorf("demo post not delivered within 2 minutes: %v", st.Counts)
		}
		if err := c.do(ctx, "GET", fmt.Sprintf("/v1/posts/%d", created.ID), keys.muni, nil, &st); err != nil {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Fprintf(out, "delivered: sent %d, dead tokens %d, failed %d\n\n", st.Counts["sent"], st.Counts["dead_token"], st.Counts["failed"])
	fmt.Fprintf(out, `Look around:
  curl -s -H 'Authorization: Bearer %[2]s' %[3]s | jq
  curl -s %[4]s | jq                     # what the emulator received
Publish as Sandefjord Fotball (an organisation):
  curl -s -X POST %[1]s/v1/posts -H 'Authorization: Bearer %[5]s' -H 'Content-Type: application/json' \
    -d '{"feed": "fotball", "title": "Kampstart 18:00", "body": "Søndagens kamp er flyttet.", "url": "https://example.org/kamp"}'
Send an alert to everyone within 1 km of Sandefjord torg, whatever they chose (municipality key;
CAP 1.2 too, as application/cap+xml with ?feed=viktig):
  curl -s -X POST %[1]s/v1/alerts -H 'Authorization: Bearer %[2]s' -H 'Content-Type: application/json' \
    -d '{"feed": "viktig", "title": "Vannbrudd", "body": "Kok vannet før bruk.", "area": {"lat": 59.1312, "lon": 10.2167, "radius_m": 1000}}'
Register a device (app key); the answer holds its device_secret, shown once: send it as
X-Device-Secret to read, change or delete the installation:
  curl -s -X PUT %[1]s/v1/devices/my-phone -H 'Authorization: Bearer %[6]s' -H 'Content-Type: application/json' \
    -d '{"provider": "fcm", "token": "emu-ok-my-phone", "follows": ["fotball"], "interests": ["kultur"]}'
Keys of this run: municipality %[2]s, organisation %[5]s, app %[6]s
Press Ctrl-C to stop.
`, base, keys.muni, status, emu.SummaryURL(), keys.org, keys.app)

	select {
	case <-ctx.Done():
		stop()
		return <-done
	case err := <-done:
		return err
	}
}

// keyring is the operator's master keys, or else those of the key file,
// which is made if it is missing; it says which, for the demo to print.
func (c Config) keyring() (*secrets.Keyring, string, error) {
	if c.Secrets != nil {
		return c.Secrets, fmt.Sprintf("credentials are sealed under your %v", c.Secrets), nil
	}
	made := "the"
	if err := secrets.CreateKeyFile(c.KeyFile); err == nil {
		made = "a new"
	} else if !errors.Is(err, fs.ErrExist) {
		return nil, "", fmt.Errorf("demo master key: %w", err)
	}
	keys, err := secrets.ReadKeyFile(c.KeyFile)
	if err != nil {
		return nil, "", fmt.Errorf("demo master key: %w", err)
	}
	return secrets.NewKeyring(keys[0], keys[1:]...), fmt.Sprintf("credentials are sealed under %s master key in %s; "+
		"other crier commands on this database need it: export CRIER_SECRET_KEY_FILE=%[2]s", made, c.KeyFile), nil
}

type demoKeys struct{ app, muni, org string }

// seed creates (or finds) the demo tenant and points its credentials at this
// run's emulator. It can run again on the same database.
func seed(ctx context.Context, db *storage.DB, emu *emulator.Emulator) (demoKeys, error) {
	var keys demoKeys
	t, err := db.TenantBySlug(ctx, "sandefjord")
	if errors.Is(err, storage.ErrNotFound) {
		t, err = db.CreateTenant(ctx, "sandefjord", "Sandefjord kommune", "Europe/Oslo")
	}
	if err != nil {
		return keys, err
	}
	const project, team, keyID, topic = "sandefjord-demo", "DEMOTEAM01", "DEMOKEY001", "no.sandefjord.app"
	sa, err := emu.NewServiceAccount(project)
	if err != nil {
		return keys, err
	}
	if err := db.SetFCM(ctx, t.ID, project, sa, emu.FCMEndpoint()); err != nil {
		return keys, err
	}
	p8, err := emu.NewAPNsKey(team, keyID, topic)
	if err != nil {
		return keys, err
	}
	if err := db.SetAPNs(ctx, t.ID, storage.APNsSettings{KeyP8: p8, KeyID: keyID, TeamID: team, Topic: topic,
		Host: emu.APNsHost(), RootCA: emu.CACertPEM()}); err != nil {
		return keys, err
	}
	pubs := map[string]crier.Publisher{}
	for _, p := range []struct {
		slug, name string
		role       crier.Role
	}{
		{"kommunen", "Sandefjord kommune", crier.RoleMunicipality},
		{"sandefjord-fotball", "Sandefjord Fotball", crier.RoleOrganisation},
		{"frivilligsentralen", "Sandefjord Frivilligsentral", crier.RoleOrganisation},
	} {
		pub, err := db.PublisherBySlug(ctx, t.ID, p.slug)
		if errors.Is(err, storage.ErrNotFound) {
			pub, err = db.CreatePublisher(ctx, t.ID, p.slug, p.name, p.role)
		}
		if err != nil {
			return keys, err
		}
		pubs[p.slug] = pub
	}
	for _, f := range []struct {
		pub, slug, name string
		mandatory       bool
	}{
		{"kommunen", "viktig", "Viktige meldinger", true},
		{"kommunen", "nyheter", "Nyheter fra kommunen", false},
		{"kommunen", "veiarbeid", "Veiarbeid", false},
		{"sandefjord-fotball", "fotball", "Sandefjord Fotball", false},
		{"frivilligsentralen", "frivillig", "Frivillig i Sandefjord", false},
	} {
		if _, err := db.CreateFeed(ctx, t.ID, pubs[f.pub].ID, f.slug, f.name, f.mandatory); err != nil && !errors.Is(err, storage.ErrConflict) {
			return keys, err
		}
	}
	if _, err := areas.Import(ctx, db, t.ID, vestfold, areas.Options{SlugProperty: "kommunenavn", NameProperty: "kommunenavn"}); err != nil {
		return keys, fmt.Errorf("import the Vestfold areas: %w", err)
	}
	// The catalogue of interests residents choose from and posts are
	// tagged with; the football club may tag its posts with football.
	var catalogue []storage.Interest
	for _, it := range []struct{ slug, nb, en string }{
		{"fotball", "Fotball", "Football"}, {"kultur", "Kultur", "Culture"}, {"friluft", "Friluftsliv", "Outdoor life"},
		{"skole", "Skole", "School"}, {"eldre", "Eldre", "Seniors"}, {"beredskap", "Beredskap", "Emergency preparedness"},
	} {
		catalogue = append(catalogue, storage.Interest{Slug: it.slug, Names: map[string]string{"nb": it.nb, "en": it.en}})
	}
	if err := db.PutInterests(ctx, t.ID, catalogue); err != nil {
		return keys, err
	}
	// The demo's installations register afresh on every run: only the app
	// that registered one holds its device secret.
	if _, err := db.Pool.Exec(ctx, `DELETE FROM devices WHERE tenant_id = $1 AND installation_id LIKE 'demo-%'`, t.ID); err != nil {
		return keys, err
	}
	muni, org := pubs["kommunen"].ID, pubs["sandefjord-fotball"].ID
	if _, err := db.GrantInterests(ctx, t.ID, org, []string{"fotball"}); err != nil {
		return keys, err
	}
	if keys.app, err = db.NewAPIKey(ctx, t.ID, nil, "demo app"); err != nil {
		return keys, err
	}
	if keys.muni, err = db.NewAPIKey(ctx, t.ID, &muni, "demo cms"); err != nil {
		return keys, err
	}
	if keys.org, err = db.NewAPIKey(ctx, t.ID, &org, "demo club"); err != nil {
		return keys, err
	}
	return keys, nil
}

// registerDevices registers n emulator devices through the API, as apps
// would: two in three Android, a few with dead tokens, homes around
// Sandefjord, and a mix of follows and interests.
func registerDevices(ctx context.Context, c client, appKey string, n int) error {
	rng := rand.New(rand.NewPCG(2026, 11))
	feeds := []string{"nyheter", "veiarbeid", "fotball", "frivillig"}
	interests := []string{"fotball", "kultur", "friluft", "skole", "eldre"}
	for i := 1; i <= n; i++ {
		b := emulator.Behaviour{Kind: emulator.Accept}
		if rng.IntN(100) < 3 {
			b.Kind = emulator.Unregistered
		}
		body := map[string]any{"locale": "nb", "time_zone": "Europe/Oslo",
			"follows": pick(rng, feeds), "interests": pick(rng, interests),
			"places": []map[string]any{{"name": "home", "lat": 59.10 + rng.Float64()*0.12, "lon": 10.15 + rng.Float64()*0.15}},
			"areas":  []string{"sandefjord"}}
		if i%3 == 0 {
			body["provider"], body["token"] = "apns", emulator.APNsToken(b, uint64(i))
		} else {
			body["provider"], body["token"] = "fcm", emulator.FCMToken(b, fmt.Sprintf("demo%04d", i))
		}
		if err := c.do(ctx, "PUT", fmt.Sprintf("/v1/devices/demo-%04d", i), appKey, body, nil); err != nil {
			return fmt.Errorf("register demo device %d: %w", i, err)
		}
	}
	return nil
}

func pick(rng *rand.Rand, from []string) []string {
	out := []string{}
	for _, s := range from {
		if rng.IntN(3) == 0 {
			out = append(out, s)
		}
	}
	return out
}

type client struct{ base string }

func (c client) do(ctx context.Context, method, path, key string, body, out any) error {
	return apiclient.Client{Base: c.base, Key: key}.Call(ctx, method, path, body, out)
}
