package testenv

import (
	"context"
	"testing"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/providers/emulator"
	"github.com/crier-push/crier/storage"
)

// StartEmulator starts an emulator of Google and Apple from cfg, closed
// when the test ends.
func StartEmulator(t testing.TB, cfg emulator.Config) *emulator.Emulator {
	t.Helper()
	emu, err := emulator.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := emu.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	return emu
}

// fatalIf returns a check that fails the test on an error, saying what
// was being made.
func fatalIf(t testing.TB, what string) func(error) {
	return func(err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
}

// EmulatorTenant creates the tenant the end-to-end tests send for:
// Sandefjord, whose FCM and APNs credentials are the emulator's, with the
// municipality as its first publisher.
func EmulatorTenant(t testing.TB, db *storage.DB, emu *emulator.Emulator) (storage.Tenant, crier.Publisher) {
	t.Helper()
	ctx := context.Background()
	must := fatalIf(t, "emulator tenant")
	tn, err := db.CreateTenant(ctx, "sandefjord", "Sandefjord kommune", "Europe/Oslo")
	must(err)
	sa, err := emu.NewServiceAccount("sandefjord-app")
	must(err)
	must(db.SetFCM(ctx, tn.ID, "sandefjord-app", sa, emu.FCMEndpoint()))
	p8, err := emu.NewAPNsKey("TEAM123456", "KEY1234567", "no.sandefjord.app")
	must(err)
	must(db.SetAPNs(ctx, tn.ID, storage.APNsSettings{KeyP8: p8, KeyID: "KEY1234567", TeamID: "TEAM123456",
		Topic: "no.sandefjord.app", Host: emu.APNsHost(), RootCA: emu.CACertPEM()}))
	muni, err := db.CreatePublisher(ctx, tn.ID, "kommunen", "Sandefjord kommune", crier.RoleMunicipality)
	must(err)
	return tn, muni
}

// Feed creates a feed of a tenant's publisher, or fails the test.
func Feed(t testing.TB, db *storage.DB, tenantID, publisherID int64, slug, name string, mandatory bool) crier.Feed {
	t.Helper()
	f, err := db.CreateFeed(context.Background(), tenantID, publisherID, slug, name, mandatory)
	if err != nil {
		t.Fatalf("feed %s: %v", slug, err)
	}
	return f
}

// Publishers are the tenant's publishers and keys the API tests use: the
// municipality, Sandefjord Fotball, a second organisation (a band), and an
// app key.
type Publishers struct {
	Org                               crier.Publisher
	AppKey, MuniKey, OrgKey, OtherKey string
}

// NewPublishers adds the organisations and the keys to a tenant whose
// municipality is muni.
func NewPublishers(t testing.TB, db *storage.DB, tenantID int64, muni crier.Publisher) Publishers {
	t.Helper()
	ctx := context.Background()
	must := fatalIf(t, "publishers")
	var p Publishers
	var err error
	p.Org, err = db.CreatePublisher(ctx, tenantID, "sandefjord-fotball", "Sandefjord Fotball", crier.RoleOrganisation)
	must(err)
	other, err := db.CreatePublisher(ctx, tenantID, "korpset", "Byens Musikkorps", crier.RoleOrganisation)
	must(err)
	p.AppKey, err = db.NewAPIKey(ctx, tenantID, nil, "app")
	must(err)
	p.MuniKey, err = db.NewAPIKey(ctx, tenantID, &muni.ID, "cms")
	must(err)
	p.OrgKey, err = db.NewAPIKey(ctx, tenantID, &p.Org.ID, "club site")
	must(err)
	p.OtherKey, err = db.NewAPIKey(ctx, tenantID, &other.ID, "band site")
	must(err)
	return p
}

// Tenant creates a tenant, or fails the test.
func Tenant(t testing.TB, db *storage.DB, slug, name, timeZone string) storage.Tenant {
	t.Helper()
	tn, err := db.CreateTenant(context.Background(), slug, name, timeZone)
	if err != nil {
		t.Fatalf("tenant %s: %v", slug, err)
	}
	return tn
}

// Publisher creates a publisher of a tenant, or fails the test.
func Publisher(t testing.TB, db *storage.DB, tenantID int64, slug, name string, role crier.Role) crier.Publisher {
	t.Helper()
	p, err := db.CreatePublisher(context.Background(), tenantID, slug, name, role)
	if err != nil {
		t.Fatalf("publisher %s: %v", slug, err)
	}
	return p
}

// Interests adds the interests to the tenant's catalogue and grants them to
// the organisations given, or fails t.
func Interests(t testing.TB, db *storage.DB, tenantID int64, slugs []string, grantTo ...crier.Publisher) {
	t.Helper()
	fail := fatalIf(t, "interests")
	ctx := context.Background()
	have, err := db.Interests(ctx, tenantID)
	fail(err)
	for _, s := range slugs {
		have = append(have, storage.Interest{Slug: s})
	}
	fail(db.PutInterests(ctx, tenantID, uniqueInterests(have)))
	for _, p := range grantTo {
		granted, err := db.GrantedInterests(ctx, tenantID, p.ID)
		fail(err)
		missing, err := db.GrantInterests(ctx, tenantID, p.ID, append(granted, slugs...))
		fail(err)
		if len(missing) > 0 {
			t.Fatalf("grant interests: missing %v", missing)
		}
	}
}

func uniqueInterests(in []storage.Interest) []storage.Interest {
	seen := map[string]bool{}
	var out []storage.Interest
	for _, it := range in {
		if !seen[it.Slug] {
			seen[it.Slug] = true
			out = append(out, it)
		}
	}
	return out
}
