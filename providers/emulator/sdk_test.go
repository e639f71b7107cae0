package emulator

import (
	"context"
	"net/http"
	"testing"
	"time"

	"firebase.google.com/go/v4/errorutils"
	"firebase.google.com/go/v4/messaging"
	"github.com/google/go-cmp/cmp"
	"github.com/sideshow/apns2"
	"github.com/sideshow/apns2/payload"
)

// The real firebase-admin-go client gets a token through the service
// account's token_uri, sends, and classifies each behaviour as FCM's would.
func TestFCMSDK(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{})
	client := f.messagingClient(t)

	type outcome struct {
		OK           bool
		Unregistered bool
		Invalid      bool
		Quota        bool
		Internal     bool
		Unavailable  bool
		Mismatch     bool
	}
	classify := func(err error) outcome {
		return outcome{
			OK:           err == nil,
			Unregistered: messaging.IsUnregistered(err),
			Invalid:      messaging.IsInvalidArgument(err),
			Quota:        messaging.IsQuotaExceeded(err),
			Internal:     messaging.IsInternal(err),
			Unavailable:  messaging.IsUnavailable(err),
			Mismatch:     messaging.IsSenderIDMismatch(err),
		}
	}
	tests := []struct {
		name  string
		token string
		want  outcome
	}{
		{"ok", FCMToken(Behaviour{Kind: Accept}, "a1"), outcome{OK: true}},
		{"slow", FCMToken(Behaviour{Kind: Slow, Arg: 20}, "a2"), outcome{OK: true}},
		{"unregistered", FCMToken(Behaviour{Kind: Unregistered}, "a3"), outcome{Unregistered: true}},
		{"bad token", FCMToken(Behaviour{Kind: BadToken}, "a4"), outcome{Invalid: true}},
		{"not in grammar", "dGhpcyBpcyBub3QgYSB0b2tlbg:APA91b", outcome{Invalid: true}},
		{"429", FCMToken(Behaviour{Kind: TooManyRequests, Arg: 30}, "a5"), outcome{Quota: true}},
		{"500", FCMToken(Behaviour{Kind: InternalError}, "a6"), outcome{Internal: true}},
		// A Retry-After over two minutes stops the SDK's own 503 retries.
		{"503", FCMToken(Behaviour{Kind: Unavailable, Arg: 3600}, "a7"), outcome{Unavailable: true}},
		{"mismatch", FCMToken(Behaviour{Kind: SenderMismatch}, "a8"), outcome{Mismatch: true}},
		{"flaky never", FCMToken(Behaviour{Kind: Flaky, Arg: 0}, "a9"), outcome{OK: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			msg := &messaging.Message{
				Token:        tt.token,
				Notification: &messaging.Notification{Title: "Roadworks", Body: "Storgata closed"},
				Data:         map[string]string{"post_id": "42"},
				Android: &messaging.AndroidConfig{
					Priority: "high", TTL: ptr(90 * time.Minute), CollapseKey: "post-42",
					Notification: &messaging.AndroidNotification{ChannelID: "official"},
				},
				APNS: &messaging.APNSConfig{
					Headers: map[string]string{"apns-priority": "10"},
					Payload: &messaging.APNSPayload{Aps: &messaging.Aps{Sound: "default"}},
				},
			}
			name, err := client.Send(context.Background(), msg)
			if diff := cmp.Diff(tt.want, classify(err)); diff != "" {
				t.Errorf("Send(%s) = %q, %v: outcome (-want +got):\n%s", tt.token, name, err, diff)
			}
			recs := f.emu.RecordsFor(tt.token)
			if len(recs) != 1 {
				t.Fatalf("records for %s: got %d, want 1", tt.token, len(recs))
			}
			if got := recs[0].Project; got != testProject {
				t.Errorf("record project = %q, want %q", got, testProject)
			}
		})
	}

	t.Run("dry run", func(t *testing.T) {
		t.Parallel()
		tok := FCMToken(Behaviour{Kind: Accept}, "dry")
		if _, err := client.SendDryRun(context.Background(), &messaging.Message{Token: tok}); err != nil {
			t.Fatalf("SendDryRun: %v", err)
		}
		recs := f.emu.RecordsFor(tok)
		if len(recs) != 1 || !recs[0].ValidateOnly || recs[0].Accepted() {
			t.Errorf("dry run records = %+v, want one validate-only record", recs)
		}
	})

	t.Run("topic", func(t *testing.T) {
		t.Parallel()
		if _, err := client.Send(context.Background(), &messaging.Message{Topic: "roadworks", Data: map[string]string{"a": "b"}}); err != nil {
			t.Fatalf("Send to topic: %v", err)
		}
	})
}

// The 429 answer carries Retry-After, which the SDK exposes through the
// low-level response.
func TestFCMSDKRetryAfter(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{})
	_, err := f.messagingClient(t).Send(context.Background(), &messaging.Message{Token: FCMToken(Behaviour{Kind: TooManyRequests, Arg: 17}, "r")})
	if !messaging.IsQuotaExceeded(err) {
		t.Fatalf("Send: %v, want quota exceeded", err)
	}
	resp := errorutils.HTTPResponse(err)
	if resp == nil {
		t.Fatal("no low-level response")
	}
	if got := resp.Header.Get("Retry-After"); got != "17" {
		t.Errorf("Retry-After = %q, want 17", got)
	}
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("status = %d, want 429", resp.StatusCode)
	}
}

// The real apns2 token client sends, and reads each behaviour's status and
// reason.
func TestAPNsSDK(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{})
	client := f.apnsClient(t)

	type outcome struct {
		Status    int
		Reason    string
		HasTime   bool
		HasApnsID bool
	}
	tests := []struct {
		name  string
		token string
		want  outcome
	}{
		{"ok", APNsToken(Behaviour{Kind: Accept}, 1), outcome{Status: 200, HasApnsID: true}},
		{"slow", APNsToken(Behaviour{Kind: Slow, Arg: 20}, 2), outcome{Status: 200, HasApnsID: true}},
		{"unregistered", APNsToken(Behaviour{Kind: Unregistered}, 3), outcome{Status: 410, Reason: apns2.ReasonUnregistered, HasTime: true, HasApnsID: true}},
		{"bad token", APNsToken(Behaviour{Kind: BadToken}, 4), outcome{Status: 400, Reason: apns2.ReasonBadDeviceToken, HasApnsID: true}},
		{"not in grammar", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", outcome{Status: 400, Reason: apns2.ReasonBadDeviceToken, HasApnsID: true}},
		{"not hex", "emu-ok-1", outcome{Status: 400, Reason: apns2.ReasonBadDeviceToken, HasApnsID: true}},
		{"429", APNsToken(Behaviour{Kind: TooManyRequests, Arg: 30}, 5), outcome{Status: 429, Reason: apns2.ReasonTooManyRequests, HasApnsID: true}},
		{"500", APNsToken(Behaviour{Kind: InternalError}, 6), outcome{Status: 500, Reason: apns2.ReasonInternalServerError, HasApnsID: true}},
		{"503", APNsToken(Behaviour{Kind: Unavailable}, 7), outcome{Status: 503, Reason: apns2.ReasonServiceUnavailable, HasApnsID: true}},
		{"mismatch", APNsToken(Behaviour{Kind: SenderMismatch}, 8), outcome{Status: 400, Reason: apns2.ReasonDeviceTokenNotForTopic, HasApnsID: true}},
		{"flaky always", APNsToken(Behaviour{Kind: Flaky, Arg: 100}, 9), outcome{Status: 503, Reason: apns2.ReasonServiceUnavailable, HasApnsID: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			n := &apns2.Notification{
				DeviceToken: tt.token,
				Topic:       testTopic,
				Payload:     payload.NewPayload().AlertTitle("Roadworks").AlertBody("Storgata closed").Custom("post_id", 42),
				Priority:    apns2.PriorityHigh,
				CollapseID:  "post-42",
				Expiration:  time.Now().Add(time.Hour),
				PushType:    apns2.PushTypeAlert,
			}
			res, err := client.Push(n)
			if err != nil {
				t.Fatalf("Push: %v", err)
			}
			got := outcome{Status: res.StatusCode, Reason: res.Reason, HasTime: !res.Timestamp.IsZero(), HasApnsID: res.ApnsID != ""}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Push(%s): (-want +got):\n%s", tt.token, diff)
			}
			recs := f.emu.RecordsFor(tt.token)
			if len(recs) != 1 {
				t.Fatalf("records: got %d, want 1", len(recs))
			}
			wantHeaders := []string{"apns-topic", "apns-push-type", "apns-priority", "apns-expiration", "apns-collapse-id"}
			for _, h := range wantHeaders {
				if recs[0].Headers[h] == "" {
					t.Errorf("record lacks header %s: %v", h, recs[0].Headers)
				}
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
