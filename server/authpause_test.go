package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/internal/testenv"
	"github.com/crier-push/crier/providers/emulator"
	"github.com/crier-push/crier/server"
	"github.com/crier-push/crier/storage"
)

// TestBrokenCredentialsPauseOneTenant: a tenant whose APNs key Apple
// refuses has its iOS sends paused (Android and other tenants go on), the
// post says why, and the sends resume by themselves once the key is fixed.
func TestBrokenCredentialsPauseOneTenant(t *testing.T) {
	t.Parallel()
	s := newStackWith(t, server.Config{AuthPause: 300 * time.Millisecond, CredentialsCheck: 200 * time.Millisecond})
	ctx := context.Background()

	// A second tenant with working credentials.
	other := testenv.Tenant(t, s.db, "larvik", "Larvik kommune", "")
	sa, err := s.emu.NewServiceAccount("larvik-app")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.db.SetFCM(ctx, other.ID, "larvik-app", sa, s.emu.FCMEndpoint()); err != nil {
		t.Fatal(err)
	}
	goodP8, err := s.emu.NewAPNsKey("LARVIKTEAM", "LARVIKKEY1", "no.larvik.app")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.db.SetAPNs(ctx, other.ID, storage.APNsSettings{KeyP8: goodP8, KeyID: "LARVIKKEY1", TeamID: "LARVIKTEAM",
		Topic: "no.larvik.app", Host: s.emu.APNsHost(), RootCA: s.emu.CACertPEM()}); err != nil {
		t.Fatal(err)
	}
	otherMuni := testenv.Publisher(t, s.db, other.ID, "kommunen", "Larvik kommune", crier.RoleMunicipality)
	otherKey, err := s.db.NewAPIKey(ctx, other.ID, &otherMuni.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	otherApp, err := s.db.NewAPIKey(ctx, other.ID, nil, "")
	if err != nil {
		t.Fatal(err)
	}

	// Sandefjord's APNs key is one Apple never heard of.
	stray, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(stray)
	if err != nil {
		t.Fatal(err)
	}
	badP8 := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	sandefjordAPNs := storage.APNsSettings{KeyID: "KEY1234567", TeamID: "TEAM123456", Topic: "no.sandefjord.app",
		Host: s.emu.APNsHost(), RootCA: s.emu.CACertPEM()}
	broken := sandefjordAPNs
	broken.KeyP8 = badP8
	if err := s.db.SetAPNs(ctx, s.tenant.ID, broken); err != nil {
		t.Fatal(err)
	}

	ok := emulator.Behaviour{Kind: emulator.Accept}
	register := func(key, id, provider, token string) {
		t.Helper()
		if code := s.do("PUT", "/v1/devices/"+id, key, map[string]any{"provider": provider, "token": token}, nil); code != http.StatusCreated {
			t.Fatalf("register %s: %d", id, code)
		}
	}
	for i := range 3 {
		register(s.AppKey, fmt.Sprintf("s-ios-%d", i), "apns", emulator.APNsToken(ok, uint64(100+i)))
		register(s.AppKey, fmt.Sprintf("s-android-%d", i), "fcm", emulator.FCMToken(ok, fmt.Sprintf("s%d", i)))
		register(otherApp, fmt.Sprintf("l-ios-%d", i), "apns", emulator.APNsToken(ok, uint64(200+i)))
	}
	for _, tn := range []struct {
		id  int64
		pub int64
	}{{s.tenant.ID, s.muni.ID}, {other.ID, otherMuni.ID}} {
		testenv.Feed(t, s.db, tn.id, tn.pub, "viktig", "Viktig", true)
	}
	var mine, theirs struct{ ID int64 }
	if code := s.do("POST", "/v1/posts", s.MuniKey, map[string]any{"feed": "viktig", "title": "t", "body": "b"}, &mine); code != http.StatusAccepted {
		t.Fatalf("post: %d", code)
	}
	if code := s.do("POST", "/v1/posts", otherKey, map[string]any{"feed": "viktig", "title": "t", "body": "b"}, &theirs); code != http.StatusAccepted {
		t.Fatalf("other tenant's post: %d", code)
	}

	// The other tenant is untouched; here Android is sent, iOS waits, and
	// the post says why.
	if st := s.waitDone(otherKey, theirs.ID); st.Counts["sent"] != 3 {
		t.Errorf("other tenant: %v, want 3 sent", st.Counts)
	}
	var st postStatus
	eventually(t, 20*time.Second, func() error {
		s.do("GET", "/v1/posts/"+strconv.FormatInt(mine.ID, 10), s.MuniKey, nil, &st)
		if st.Counts["sent"] != 3 || st.Counts["pending"] != 3 || len(st.Paused) != 1 ||
			st.Paused[0].Provider != "apns" || st.Paused[0].Reason != "InvalidProviderToken" {
			return fmt.Errorf("%w: %+v", errNotYet, st)
		}
		return nil
	})
	// Paused means paused: a handful of probes, not a flood of refusals.
	refusalsBefore := s.emu.Summary().APNs.ByReason["InvalidProviderToken"]

	// Fix the key: the iOS sends go out by themselves.
	fixed := sandefjordAPNs
	if fixed.KeyP8, err = s.emu.NewAPNsKey("TEAM123456", "KEY1234567", "no.sandefjord.app"); err != nil {
		t.Fatal(err)
	}
	if err := s.db.SetAPNs(ctx, s.tenant.ID, fixed); err != nil {
		t.Fatal(err)
	}
	done := s.waitDone(s.MuniKey, mine.ID)
	if done.Counts["sent"] != 6 {
		t.Errorf("after the fix: %v, want 6 sent", done.Counts)
	}
	errs, err := s.db.AuthErrors(ctx, s.tenant.ID)
	if err != nil || len(errs) != 0 {
		t.Errorf("auth errors after the fix: %v %v", errs, err)
	}
	t.Logf("refused pushes while broken: %d", refusalsBefore)
	if refusalsBefore > 30 {
		t.Errorf("%d refused pushes while paused: the pause did not hold", refusalsBefore)
	}
}
