package testenv

import (
	"context"
	"testing"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/providers/emulator"
	"github.com/crier-push/crier/storage"
)

// EmulatorTenant creates the tenant the end-to-end tests send for:
// Sandefjord, whose FCM and APNs credentials are the emulator's, with the
// municipality as its first publisher.
func EmulatorTenant(t testing.TB, db *storage.DB, emu *emulator.Emulator) (storage.Tenant, crier.Publisher) {
	t.Helper()
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("emulator tenant: %v", err)
		}
	}
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
