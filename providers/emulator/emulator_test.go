package emulator

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sideshow/apns2"
	"github.com/sideshow/apns2/payload"

	"firebase.google.com/go/v4/messaging"
)

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, res.Status)
	}
	if err := json.NewDecoder(res.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

func TestSummaryAndRecords(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{})
	fcm := f.messagingClient(t)
	ctx := context.Background()
	okTok := FCMToken(Behaviour{Kind: Accept}, "s1")
	deadTok := FCMToken(Behaviour{Kind: Unregistered}, "s2")
	fcm.Send(ctx, &messaging.Message{Token: okTok})
	fcm.Send(ctx, &messaging.Message{Token: deadTok})
	fcm.SendDryRun(ctx, &messaging.Message{Token: okTok})
	apns := f.apnsClient(t)
	for _, tok := range []string{APNsToken(Behaviour{Kind: Accept}, 1), APNsToken(Behaviour{Kind: Unregistered}, 2)} {
		if _, err := apns.Push(&apns2.Notification{DeviceToken: tok, Topic: testTopic, Payload: payload.NewPayload().Alert("x")}); err != nil {
			t.Fatal(err)
		}
	}

	want := Summary{
		Total: 5,
		FCM:   ProviderSummary{Accepted: 1, Validated: 1, Rejected: 1, ByReason: map[string]int{"UNREGISTERED": 1}},
		APNs:  ProviderSummary{Accepted: 1, Rejected: 1, ByReason: map[string]int{"Unregistered": 1}},
	}
	if diff := cmp.Diff(want, f.emu.Summary()); diff != "" {
		t.Errorf("Summary (-want +got):\n%s", diff)
	}
	var served Summary
	getJSON(t, f.emu.SummaryURL(), &served)
	if diff := cmp.Diff(want, served); diff != "" {
		t.Errorf("GET summary (-want +got):\n%s", diff)
	}

	var recs []Record
	base := f.emu.SummaryURL()[:len(f.emu.SummaryURL())-len("/summary")]
	getJSON(t, base+"/records?token="+okTok, &recs)
	type brief struct {
		Provider     string
		Status       int
		ValidateOnly bool
	}
	var got []brief
	for _, r := range recs {
		got = append(got, brief{r.Provider, r.Status, r.ValidateOnly})
	}
	if diff := cmp.Diff([]brief{{"fcm", 200, false}, {"fcm", 200, true}}, got); diff != "" {
		t.Errorf("GET records?token (-want +got):\n%s", diff)
	}

	f.emu.Reset()
	if s := f.emu.Summary(); s.Total != 0 || len(f.emu.Records()) != 0 {
		t.Errorf("after Reset: %+v, %d records", s, len(f.emu.Records()))
	}
}

func TestMaxRecords(t *testing.T) {
	t.Parallel()
	r := newRecorder(3, nil)
	for i := 0; i < 10; i++ {
		r.add(Record{Provider: "fcm", Status: 200})
	}
	e := &Emulator{records: r}
	var seqs []int64
	for _, rec := range e.Records() {
		seqs = append(seqs, rec.Seq)
	}
	if diff := cmp.Diff([]int64{8, 9, 10}, seqs); diff != "" {
		t.Errorf("kept records (-want +got):\n%s", diff)
	}
	if got := e.Summary().FCM.Accepted; got != 10 {
		t.Errorf("accepted = %d, want 10", got)
	}
}

// Two emulators on one state directory share the certificate and
// credentials, and the service account file names the running emulator.
func TestState(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "state")
	st, err := LoadOrCreateState(dir)
	if err != nil {
		t.Fatalf("LoadOrCreateState: %v", err)
	}
	for _, name := range []string{CertKeyFile, ServiceAccountFile, APNsKeyFile} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm != 0o600 {
			t.Errorf("%s mode = %o, want 600", name, perm)
		}
	}
	again, err := LoadOrCreateState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(st, again); diff != "" {
		t.Errorf("reloaded state differs (-first +second):\n%s", diff)
	}

	emu, err := New(Config{State: st})
	if err != nil {
		t.Fatal(err)
	}
	if err := emu.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })

	// A client process reads the files, as `crier serve` would.
	sa, err := os.ReadFile(st.ServiceAccountPath())
	if err != nil {
		t.Fatal(err)
	}
	p8, err := os.ReadFile(st.APNsKeyPath())
	if err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(st.CertPath())
	if err != nil {
		t.Fatal(err)
	}
	if string(ca) != string(emu.CACertPEM()) {
		t.Error("ca.pem is not the emulator's certificate")
	}
	f := &fixture{emu: emu, sa: sa, p8: p8}
	client := f.messagingClient(t)
	if _, err := client.Send(context.Background(), &messaging.Message{Token: FCMToken(Behaviour{Kind: Accept}, "st")}); err != nil {
		t.Errorf("FCM send with state credentials: %v", err)
	}
	f.apnsHC = apnsHTTPClient(t, ca)
	ac := f.apnsClient(t)
	ac.Token.TeamID, ac.Token.KeyID = st.TeamID, st.KeyID
	res, err := ac.Push(&apns2.Notification{DeviceToken: APNsToken(Behaviour{Kind: Accept}, 1), Topic: st.Topics[0], Payload: payload.NewPayload().Alert("x")})
	if err != nil || res.StatusCode != http.StatusOK {
		t.Errorf("APNs push with state credentials: %+v, %v", res, err)
	}
}
