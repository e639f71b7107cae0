package emulator

import (
	"context"
	"encoding/json"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"firebase.google.com/go/v4/errorutils"
	"firebase.google.com/go/v4/messaging"
	"github.com/google/go-cmp/cmp"
	"github.com/sideshow/apns2"
	"github.com/sideshow/apns2/payload"
)

// throttleOutcome is what a client sees of a push during a burst, and what
// the emulator recorded.
type throttleOutcome struct {
	Status     int
	Reason     string // FCM errorCode or APNs reason
	Quota      bool   // messaging.IsQuotaExceeded
	RetryAfter string
	Throttled  bool // the record says the burst answered
}

// During a throttle burst every well-formed push is answered 429 with
// Retry-After, whatever its token, and the real SDKs see a quota error;
// malformed and unauthenticated requests are still refused for that; when
// the burst ends the tokens' behaviours are back.
func TestThrottle(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{})
	fcmClient := f.messagingClient(t)
	apnsClient := f.apnsClient(t)
	bearer := f.accessToken(t)
	alert := `{"aps":{"alert":"hi"}}`
	apnsHeaders := func() map[string]string {
		return map[string]string{
			"authorization":  "bearer " + providerToken(t, f.p8, testTeam, testKeyID, time.Now()),
			"apns-topic":     testTopic,
			"apns-push-type": "alert",
		}
	}
	lastRecord := func(t *testing.T, token string) Record {
		t.Helper()
		recs := f.emu.RecordsFor(token)
		if len(recs) == 0 {
			t.Fatalf("no record for %s", token)
		}
		return recs[len(recs)-1]
	}
	// sdkFCM sends through firebase-admin-go.
	sdkFCM := func(t *testing.T, token string) throttleOutcome {
		t.Helper()
		_, err := fcmClient.Send(context.Background(), &messaging.Message{Token: token, Notification: &messaging.Notification{Title: "t"}})
		var out throttleOutcome
		if resp := errorutils.HTTPResponse(err); resp != nil {
			out.Status, out.RetryAfter = resp.StatusCode, resp.Header.Get("Retry-After")
		} else if err == nil {
			out.Status = http.StatusOK
		}
		out.Quota = messaging.IsQuotaExceeded(err)
		rec := lastRecord(t, token)
		out.Reason, out.Throttled = rec.Reason, rec.Throttled
		return out
	}
	// rawFCM posts body as is. Requests refused before their token is read
	// leave records without it, so the reason comes from the answer.
	rawFCM := func(bearer, body string) func(t *testing.T, token string) throttleOutcome {
		return func(t *testing.T, token string) throttleOutcome {
			t.Helper()
			status, h, b := f.postFCM(t, testProject, bearer, body)
			a := readFCMAnswer(status, h, b, 0)
			out := throttleOutcome{Status: status, RetryAfter: a.RetryAfter, Reason: a.ErrorCode}
			if out.Reason == "" {
				out.Reason = a.GRPCStatus
			}
			for _, r := range f.emu.RecordsFor(token) {
				out.Throttled = out.Throttled || r.Throttled
			}
			return out
		}
	}
	// sdkAPNs pushes through apns2, which does not show Retry-After.
	sdkAPNs := func(t *testing.T, token string) throttleOutcome {
		t.Helper()
		res, err := apnsClient.Push(&apns2.Notification{DeviceToken: token, Topic: testTopic, Payload: payload.NewPayload().Alert("x")})
		if err != nil {
			t.Fatalf("Push: %v", err)
		}
		return throttleOutcome{Status: res.StatusCode, Reason: res.Reason, Throttled: lastRecord(t, token).Throttled}
	}
	// rawAPNs sends a hand-made request, after mod changes its headers.
	rawAPNs := func(mod func(h map[string]string)) func(t *testing.T, token string) throttleOutcome {
		return func(t *testing.T, token string) throttleOutcome {
			t.Helper()
			h := apnsHeaders()
			if mod != nil {
				mod(h)
			}
			res := f.doAPNs(t, apnsRequest{path: "/3/device/" + token, headers: h, body: alert})
			return throttleOutcome{Status: res.Status, Reason: res.Reason, RetryAfter: res.RetryAfter, Throttled: lastRecord(t, token).Throttled}
		}
	}

	fcmQuota := throttleOutcome{Status: 429, Reason: "QUOTA_EXCEEDED", Quota: true, RetryAfter: "2", Throttled: true}
	apnsQuota := throttleOutcome{Status: 429, Reason: apns2.ReasonTooManyRequests, RetryAfter: "2", Throttled: true}
	apnsQuotaSDK := apnsQuota
	apnsQuotaSDK.RetryAfter = ""
	tests := []struct {
		name  string
		token string
		send  func(t *testing.T, token string) throttleOutcome
		want  throttleOutcome
	}{
		{"fcm ok", FCMToken(Behaviour{Kind: Accept}, "t1"), sdkFCM, fcmQuota},
		{"fcm unregistered", FCMToken(Behaviour{Kind: Unregistered}, "t2"), sdkFCM, fcmQuota},
		{"fcm always 503", FCMToken(Behaviour{Kind: Flaky, Arg: 100}, "t3"), sdkFCM, fcmQuota},
		{"fcm slow", FCMToken(Behaviour{Kind: Slow, Arg: 60_000}, "t4"), sdkFCM, fcmQuota},
		{"fcm token outside the grammar", "dGhpcyBpcyBub3QgYSB0b2tlbg:APA91b", sdkFCM, fcmQuota},
		{"fcm malformed", "emu-ok-t5", rawFCM(bearer, `{"message":{"token":"emu-ok-t5","data":{"google.x":"1"}}}`),
			throttleOutcome{Status: 400, Reason: "INVALID_ARGUMENT"}},
		{"fcm unauthenticated", "emu-ok-t6", rawFCM("ya29.not-issued", `{"message":{"token":"emu-ok-t6"}}`),
			throttleOutcome{Status: 401, Reason: "UNAUTHENTICATED"}},
		{"apns ok", APNsToken(Behaviour{Kind: Accept}, 1), rawAPNs(nil), apnsQuota},
		{"apns ok through apns2", APNsToken(Behaviour{Kind: Accept}, 2), sdkAPNs, apnsQuotaSDK},
		{"apns unregistered", APNsToken(Behaviour{Kind: Unregistered}, 3), rawAPNs(nil), apnsQuota},
		{"apns always 503", APNsToken(Behaviour{Kind: Flaky, Arg: 100}, 4), rawAPNs(nil), apnsQuota},
		{"apns token outside the grammar", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", rawAPNs(nil), apnsQuota},
		{"apns malformed", APNsToken(Behaviour{Kind: Accept}, 5), rawAPNs(func(h map[string]string) { delete(h, "apns-topic") }),
			throttleOutcome{Status: 400, Reason: "MissingTopic"}},
		{"apns unauthenticated", APNsToken(Behaviour{Kind: Accept}, 6), rawAPNs(func(h map[string]string) { delete(h, "authorization") }),
			throttleOutcome{Status: 403, Reason: "MissingProviderToken"}},
	}

	f.emu.Throttle(time.Hour, 1500*time.Millisecond) // Retry-After rounds up to 2
	if until := f.emu.ThrottledUntil(); time.Until(until) < 59*time.Minute {
		t.Fatalf("ThrottledUntil = %v, want an hour from now", until)
	}
	t.Run("burst", func(t *testing.T) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				if diff := cmp.Diff(tt.want, tt.send(t, tt.token)); diff != "" {
					t.Errorf("push to %s during a burst (-want +got):\n%s", tt.token, diff)
				}
			})
		}
	})
	sum := f.emu.Summary()
	if sum.FCM.Throttled != 5 || sum.APNs.Throttled != 5 {
		t.Errorf("Summary counts %d FCM and %d APNs throttled answers, want 5 and 5", sum.FCM.Throttled, sum.APNs.Throttled)
	}

	f.emu.Throttle(0, 0)
	if until := f.emu.ThrottledUntil(); !until.IsZero() {
		t.Errorf("ThrottledUntil after the end = %v, want zero", until)
	}
	after := []struct {
		name  string
		token string
		send  func(t *testing.T, token string) throttleOutcome
		want  throttleOutcome
	}{
		{"fcm ok", FCMToken(Behaviour{Kind: Accept}, "t1"), sdkFCM, throttleOutcome{Status: 200}},
		{"fcm 429 token", FCMToken(Behaviour{Kind: TooManyRequests, Arg: 7}, "t7"), sdkFCM,
			throttleOutcome{Status: 429, Reason: "QUOTA_EXCEEDED", Quota: true, RetryAfter: "7"}},
		{"apns ok", APNsToken(Behaviour{Kind: Accept}, 1), rawAPNs(nil), throttleOutcome{Status: 200}},
		{"apns unregistered", APNsToken(Behaviour{Kind: Unregistered}, 3), rawAPNs(nil), throttleOutcome{Status: 410, Reason: apns2.ReasonUnregistered}},
	}
	t.Run("after", func(t *testing.T) {
		for _, tt := range after {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				if diff := cmp.Diff(tt.want, tt.send(t, tt.token)); diff != "" {
					t.Errorf("push to %s after the burst (-want +got):\n%s", tt.token, diff)
				}
			})
		}
	})
}

// A burst ends by itself when its time is up; Retry-After is whole seconds,
// rounded up, and absent when zero; Reset ends a burst too.
func TestThrottleEnds(t *testing.T) {
	t.Parallel()
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	f := newFixture(t, Config{Now: func() time.Time { return time.Unix(0, clock.Load()) }})
	bearer := f.accessToken(t)
	send := func() (int, string) {
		status, h, _ := f.postFCM(t, testProject, bearer, `{"message":{"token":"emu-ok-1"}}`)
		return status, h.Get("Retry-After")
	}
	type answer struct {
		Status     int
		RetryAfter string
	}
	var got []answer
	step := func() {
		s, ra := send()
		got = append(got, answer{s, ra})
	}

	f.emu.Throttle(2*time.Second, 0)
	step() // 429 without Retry-After
	clock.Add(int64(1999 * time.Millisecond))
	step() // still throttled
	clock.Add(int64(time.Millisecond))
	step() // over
	f.emu.Throttle(time.Second, time.Millisecond)
	step() // Retry-After rounds up to 1
	f.emu.Reset()
	step() // Reset ends the burst

	want := []answer{{429, ""}, {429, ""}, {200, ""}, {429, "1"}, {200, ""}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("answers (-want +got):\n%s", diff)
	}
}

// POST /emulator/throttle starts and ends bursts and refuses bad arguments.
func TestThrottleEndpoint(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{})
	bearer := f.accessToken(t)
	base := f.emu.SummaryURL()[:len(f.emu.SummaryURL())-len("/summary")]
	type result struct {
		Status     int
		Throttling bool // the answer names an end
		RetryAfter int
		Push       int    // the status of a push right after
		PushRA     string // its Retry-After
	}
	tests := []struct {
		query string
		want  result
	}{
		{"for=1h&retry_after=3", result{Status: 200, Throttling: true, RetryAfter: 3, Push: 429, PushRA: "3"}},
		{"for=0", result{Status: 200, Push: 200}},
		{"for=30", result{Status: 200, Throttling: true, Push: 429}},
		{"for=0s", result{Status: 200, Push: 200}},
		{"for=1.5s&retry_after=0", result{Status: 200, Throttling: true, Push: 429}},
		{"for=0", result{Status: 200, Push: 200}},
		// Refused: the state is left as it was (no burst).
		{"", result{Status: 400, Push: 200}},
		{"for=soon", result{Status: 400, Push: 200}},
		{"for=-1s", result{Status: 400, Push: 200}},
		{"for=2h", result{Status: 400, Push: 200}},
		{"for=99999999999999", result{Status: 400, Push: 200}},
		{"for=1s&retry_after=x", result{Status: 400, Push: 200}},
		{"for=1s&retry_after=-1", result{Status: 400, Push: 200}},
		{"for=1s&retry_after=1.5", result{Status: 400, Push: 200}},
	}
	// In order, not in parallel: each step changes the emulator.
	for _, tt := range tests {
		res, err := http.Post(base+"/throttle?"+tt.query, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Until      *time.Time `json:"until"`
			RetryAfter int        `json:"retry_after"`
			Error      string     `json:"error"`
		}
		err = json.NewDecoder(res.Body).Decode(&body)
		res.Body.Close()
		if err != nil {
			t.Fatalf("POST throttle?%s: decode: %v", tt.query, err)
		}
		if res.StatusCode == http.StatusBadRequest && body.Error == "" {
			t.Errorf("POST throttle?%s: 400 without an error message", tt.query)
		}
		status, h, _ := f.postFCM(t, testProject, bearer, `{"message":{"token":"emu-ok-e"}}`)
		got := result{Status: res.StatusCode, Throttling: body.Until != nil, RetryAfter: body.RetryAfter,
			Push: status, PushRA: h.Get("Retry-After")}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("POST throttle?%s (-want +got):\n%s", tt.query, diff)
		}
	}

	res, err := http.Get(base + "/throttle?for=1s")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET throttle: %d, want 405", res.StatusCode)
	}
}

// Summarize counts a subset of the records as Summary counts them all.
func TestSummarize(t *testing.T) {
	t.Parallel()
	recs := []Record{
		{Provider: "fcm", Token: "a", Status: 200},
		{Provider: "fcm", Token: "a", Status: 503, Reason: "UNAVAILABLE"},
		{Provider: "fcm", Token: "a", Status: 429, Reason: "QUOTA_EXCEEDED", Throttled: true},
		{Provider: "fcm", Token: "a", Status: 200, ValidateOnly: true},
		{Provider: "apns", Token: "b", Status: 429, Reason: "TooManyRequests"},
		{Provider: "apns", Token: "b", Status: 200},
	}
	want := Summary{
		Total: 6,
		FCM:   ProviderSummary{Accepted: 1, Validated: 1, Rejected: 2, Throttled: 1, ByReason: map[string]int{"UNAVAILABLE": 1, "QUOTA_EXCEEDED": 1}},
		APNs:  ProviderSummary{Accepted: 1, Rejected: 1, ByReason: map[string]int{"TooManyRequests": 1}},
	}
	got := Summarize(recs)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Summarize (-want +got):\n%s", diff)
	}
	if got.FCM.Calls() != 4 || got.APNs.Calls() != 2 {
		t.Errorf("Calls = %d, %d; want 4, 2", got.FCM.Calls(), got.APNs.Calls())
	}
	if diff := cmp.Diff(newSummary(), Summarize(nil)); diff != "" {
		t.Errorf("Summarize(nil) (-want +got):\n%s", diff)
	}
}
