package server_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/crier-push/crier/providers/emulator"
)

// TestOutcomesByProviderAnswer walks each answer of the emulator's token
// grammar through the real SDKs and the worker's outcome table, and checks
// the delivery state, its reason, and whether the device stays active.
func TestOutcomesByProviderAnswer(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	ctx := context.Background()
	s.feed(t, s.muni, "nyheter", "Nyheter", false)
	type want struct {
		State  string
		Reason string
		Active bool
	}
	cases := []struct {
		id, provider, token string
		want                want
	}{
		{"fcm-ok", "fcm", emulator.FCMToken(emulator.Behaviour{Kind: emulator.Accept}, "1"), want{"sent", "", true}},
		{"fcm-slow", "fcm", emulator.FCMToken(emulator.Behaviour{Kind: emulator.Slow, Arg: 20}, "2"), want{"sent", "", true}},
		{"fcm-unregistered", "fcm", emulator.FCMToken(emulator.Behaviour{Kind: emulator.Unregistered}, "3"), want{"dead_token", "UNREGISTERED", false}},
		{"fcm-mismatch", "fcm", emulator.FCMToken(emulator.Behaviour{Kind: emulator.SenderMismatch}, "4"), want{"dead_token", "SENDER_ID_MISMATCH", false}},
		{"fcm-badtoken", "fcm", emulator.FCMToken(emulator.Behaviour{Kind: emulator.BadToken}, "5"), want{"dead_token", "INVALID_ARGUMENT", false}},
		{"fcm-unknown", "fcm", "not-an-emulator-token", want{"dead_token", "INVALID_ARGUMENT", false}},
		{"apns-ok", "apns", emulator.APNsToken(emulator.Behaviour{Kind: emulator.Accept}, 1), want{"sent", "", true}},
		{"apns-unregistered", "apns", emulator.APNsToken(emulator.Behaviour{Kind: emulator.Unregistered}, 2), want{"dead_token", "Unregistered", false}},
		{"apns-badtoken", "apns", emulator.APNsToken(emulator.Behaviour{Kind: emulator.BadToken}, 3), want{"dead_token", "BadDeviceToken", false}},
		{"apns-mismatch", "apns", emulator.APNsToken(emulator.Behaviour{Kind: emulator.SenderMismatch}, 4), want{"dead_token", "DeviceTokenNotForTopic", false}},
	}
	for _, c := range cases {
		body := map[string]any{"provider": c.provider, "token": c.token, "follows": []string{"nyheter"}}
		if code := s.do("PUT", "/v1/devices/"+c.id, s.AppKey, body, nil); code != http.StatusCreated {
			t.Fatalf("register %s: %d", c.id, code)
		}
	}
	var created struct{ ID int64 }
	if code := s.do("POST", "/v1/posts", s.MuniKey, map[string]any{"feed": "nyheter", "title": "t", "body": "b"}, &created); code != http.StatusAccepted {
		t.Fatalf("post: %d", code)
	}
	s.waitDone(s.MuniKey, created.ID)

	got := map[string]want{}
	rows, err := s.db.Pool.Query(ctx, `SELECT d.installation_id, dl.state, dl.reason, d.active
		FROM deliveries dl JOIN devices d ON d.id = dl.device_id WHERE dl.post_id = $1`, created.ID)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		var w want
		if err := rows.Scan(&id, &w.State, &w.Reason, &w.Active); err != nil {
			t.Fatal(err)
		}
		got[id] = w
	}
	wantAll := map[string]want{}
	for _, c := range cases {
		wantAll[c.id] = c.want
	}
	if diff := cmp.Diff(wantAll, got); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
}

// TestTransientFailuresAreRetried: 503s are retried until a later attempt
// succeeds.
func TestTransientFailuresAreRetried(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.feed(t, s.muni, "nyheter", "Nyheter", false)
	// Flaky tokens fail a fifth of their pushes with 503: they must all end
	// sent. (Rarer failures keep the backoff, and so the test, short.)
	for i, tok := range []string{
		emulator.FCMToken(emulator.Behaviour{Kind: emulator.Flaky, Arg: 20}, "f1"),
		emulator.FCMToken(emulator.Behaviour{Kind: emulator.Flaky, Arg: 20}, "f2"),
		// (Flaky fails a fixed, token-chosen share: this APNs token fails its
		// first push, which only crier's own retry can mend; the FCM SDK
		// retries FCM's 503s by itself.)
		emulator.APNsToken(emulator.Behaviour{Kind: emulator.Flaky, Arg: 20}, 3),
	} {
		prov := "fcm"
		if i == 2 {
			prov = "apns"
		}
		body := map[string]any{"provider": prov, "token": tok, "follows": []string{"nyheter"}}
		if code := s.do("PUT", "/v1/devices/flaky-"+string(rune('a'+i)), s.AppKey, body, nil); code != http.StatusCreated {
			t.Fatalf("register: %d", code)
		}
	}
	var created struct{ ID int64 }
	if code := s.do("POST", "/v1/posts", s.MuniKey, map[string]any{"feed": "nyheter", "title": "t", "body": "b"}, &created); code != http.StatusAccepted {
		t.Fatalf("post: %d", code)
	}
	st := s.waitDone(s.MuniKey, created.ID)
	if st.Counts["sent"] != 3 {
		t.Errorf("counts %v: want all 3 sent", st.Counts)
	}
}
