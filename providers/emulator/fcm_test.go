package emulator

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
)

// fcmAnswer is the part of an FCM answer the tests compare.
type fcmAnswer struct {
	Status     int
	GRPCStatus string
	ErrorCode  string // FcmError errorCode, "" if none
	Message    string // prefix of the message
	RetryAfter string
	HasName    bool
}

func readFCMAnswer(status int, h http.Header, body map[string]any, msgPrefixLen int) fcmAnswer {
	a := fcmAnswer{Status: status, RetryAfter: h.Get("Retry-After")}
	if name, ok := body["name"].(string); ok && name != "" {
		a.HasName = true
	}
	e, ok := body["error"].(map[string]any)
	if !ok {
		return a
	}
	a.GRPCStatus, _ = e["status"].(string)
	msg, _ := e["message"].(string)
	if msgPrefixLen > 0 && len(msg) > msgPrefixLen {
		msg = msg[:msgPrefixLen]
	}
	a.Message = msg
	details, _ := e["details"].([]any)
	for _, d := range details {
		dm, _ := d.(map[string]any)
		if dm["@type"] == fcmErrorType {
			a.ErrorCode, _ = dm["errorCode"].(string)
		}
	}
	if code, _ := e["code"].(float64); int(code) != status {
		a.Message += fmt.Sprintf(" [code %v != status %d]", e["code"], status)
	}
	return a
}

func TestFCMRequests(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{})
	bearer := f.accessToken(t)
	ok := FCMToken(Behaviour{Kind: Accept}, "h")
	big := strings.Repeat("x", 4100)

	tests := []struct {
		name    string
		project string
		bearer  string
		body    string
		prefix  int
		want    fcmAnswer
	}{
		{
			name: "accepted", body: `{"message":{"token":"` + ok + `","data":{"a":"b"},"android":{"priority":"HIGH","ttl":"3.5s"}}}`,
			want: fcmAnswer{Status: 200, HasName: true},
		},
		{
			name: "camel case names", body: `{"validateOnly":true,"message":{"token":"` + ok + `","android":{"collapseKey":"k","restrictedPackageName":"no.crier"}}}`,
			want: fcmAnswer{Status: 200, HasName: true},
		},
		{
			name: "missing bearer", bearer: "-", body: `{"message":{"token":"` + ok + `"}}`,
			want: fcmAnswer{Status: 401, GRPCStatus: "UNAUTHENTICATED", Message: "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project."},
		},
		{
			name: "unknown bearer", bearer: "ya29.not-issued", body: `{"message":{"token":"` + ok + `"}}`,
			want: fcmAnswer{Status: 401, GRPCStatus: "UNAUTHENTICATED", Message: "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project."},
		},
		{
			name: "other project", project: "someone-else", body: `{"message":{"token":"` + ok + `"}}`,
			want: fcmAnswer{Status: 403, GRPCStatus: "PERMISSION_DENIED", Message: "Permission 'cloudmessaging.messages.create' denied on resource '//cloudresourcemanager.googleapis.com/projects/someone-else' (or it may not exist)."},
		},
		{
			name: "token and topic", body: `{"message":{"token":"` + ok + `","topic":"news"}}`,
			want: fcmAnswer{Status: 400, GRPCStatus: "INVALID_ARGUMENT", Message: "Invalid JSON payload received. Oneof field 'target' is already set. Cannot set 'topic'"},
		},
		{
			name: "no target", body: `{"message":{"data":{"a":"b"}}}`,
			want: fcmAnswer{Status: 400, GRPCStatus: "INVALID_ARGUMENT", ErrorCode: "INVALID_ARGUMENT", Message: "Recipient of the message is not set."},
		},
		{
			name: "unknown field", body: `{"message":{"token":"` + ok + `","notification":{"title":"t","data":{"a":"b"}}}}`,
			want: fcmAnswer{Status: 400, GRPCStatus: "INVALID_ARGUMENT", Message: `Invalid JSON payload received. Unknown name "data" at 'message.notification': Cannot find field.`},
		},
		{
			name: "unknown top-level field", body: `{"msg":{"token":"` + ok + `"}}`,
			want: fcmAnswer{Status: 400, GRPCStatus: "INVALID_ARGUMENT", Message: `Invalid JSON payload received. Unknown name "msg": Cannot find field.`},
		},
		{
			name: "data value not a string", body: `{"message":{"token":"` + ok + `","data":{"a":"b","n":12}}}`,
			want: fcmAnswer{Status: 400, GRPCStatus: "INVALID_ARGUMENT", Message: "Invalid value at 'message.data[1].value' (TYPE_STRING), 12"},
		},
		{
			name: "reserved data key", body: `{"message":{"token":"` + ok + `","data":{"google.x":"b"}}}`,
			want: fcmAnswer{Status: 400, GRPCStatus: "INVALID_ARGUMENT", ErrorCode: "INVALID_ARGUMENT", Message: "Invalid data payload key: google.x"},
		},
		{
			name: "bad android priority", body: `{"message":{"token":"` + ok + `","android":{"priority":"urgent"}}}`,
			want: fcmAnswer{Status: 400, GRPCStatus: "INVALID_ARGUMENT", Message: `Invalid value at 'message.android.priority' (type.googleapis.com/google.firebase.fcm.v1.AndroidMessagePriority), "urgent"`},
		},
		{
			name: "bad ttl", body: `{"message":{"token":"` + ok + `","android":{"ttl":"90"}}}`,
			want: fcmAnswer{Status: 400, GRPCStatus: "INVALID_ARGUMENT", Message: `Invalid value at 'message.android.ttl' (type.googleapis.com/google.protobuf.Duration), "90"`},
		},
		{
			name: "negative ttl", body: `{"message":{"token":"` + ok + `","android":{"ttl":"-1s"}}}`, prefix: 45,
			want: fcmAnswer{Status: 400, GRPCStatus: "INVALID_ARGUMENT", ErrorCode: "INVALID_ARGUMENT", Message: "Invalid value at 'message.android.ttl': TTL m"},
		},
		{
			name: "too big", body: `{"message":{"token":"` + ok + `","data":{"a":"` + big + `"}}}`,
			want: fcmAnswer{Status: 400, GRPCStatus: "INVALID_ARGUMENT", ErrorCode: "INVALID_ARGUMENT", Message: "Message is too big"},
		},
		{
			name: "not json", body: `{"message":`, prefix: 31,
			want: fcmAnswer{Status: 400, GRPCStatus: "INVALID_ARGUMENT", Message: "Invalid JSON payload received. "},
		},
		{
			name: "not in grammar", body: `{"message":{"token":"fXyz:APA91b"}}`,
			want: fcmAnswer{Status: 400, GRPCStatus: "INVALID_ARGUMENT", ErrorCode: "INVALID_ARGUMENT", Message: "The registration token is not a valid FCM registration token"},
		},
		{
			name: "unregistered", body: `{"message":{"token":"` + FCMToken(Behaviour{Kind: Unregistered}, "u") + `"}}`,
			want: fcmAnswer{Status: 404, GRPCStatus: "NOT_FOUND", ErrorCode: "UNREGISTERED", Message: "Requested entity was not found."},
		},
		{
			name: "429 with retry-after", body: `{"message":{"token":"` + FCMToken(Behaviour{Kind: TooManyRequests, Arg: 30}, "q") + `"}}`, prefix: 14,
			want: fcmAnswer{Status: 429, GRPCStatus: "RESOURCE_EXHAUSTED", ErrorCode: "QUOTA_EXCEEDED", Message: "Quota exceeded", RetryAfter: "30"},
		},
		{
			name: "503 without retry-after", body: `{"message":{"token":"` + FCMToken(Behaviour{Kind: Unavailable}, "s") + `"}}`,
			want: fcmAnswer{Status: 503, GRPCStatus: "UNAVAILABLE", ErrorCode: "UNAVAILABLE", Message: "The service is currently unavailable."},
		},
		{
			name: "flaky always", body: `{"message":{"token":"` + FCMToken(Behaviour{Kind: Flaky, Arg: 100}, "f") + `"}}`,
			want: fcmAnswer{Status: 503, GRPCStatus: "UNAVAILABLE", ErrorCode: "UNAVAILABLE", Message: "The service is currently unavailable."},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			project := tt.project
			if project == "" {
				project = testProject
			}
			b := bearer
			switch tt.bearer {
			case "-":
				b = ""
			case "":
			default:
				b = tt.bearer
			}
			status, h, body := f.postFCM(t, project, b, tt.body)
			got := readFCMAnswer(status, h, body, tt.prefix)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("answer (-want +got):\n%s\nbody: %v", diff, body)
			}
		})
	}
}

func TestFCMExpiredAccessToken(t *testing.T) {
	t.Parallel()
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	f := newFixture(t, Config{Now: func() time.Time { return time.Unix(0, clock.Load()) }})
	bearer := f.accessToken(t)
	clock.Add(int64(2 * time.Hour))
	status, h, body := f.postFCM(t, testProject, bearer, `{"message":{"token":"emu-ok-1"}}`)
	got := readFCMAnswer(status, h, body, 34)
	want := fcmAnswer{Status: 401, GRPCStatus: "UNAUTHENTICATED", Message: "Request had invalid authentication"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("answer (-want +got):\n%s", diff)
	}
}

func TestOAuthToken(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{})
	other, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	foreignSA, err := other.NewServiceAccount(testProject)
	if err != nil {
		t.Fatal(err)
	}
	foreign := &fixture{emu: f.emu, sa: foreignSA}

	type answer struct {
		Status int
		Error  string
		Token  bool
	}
	tests := []struct {
		name      string
		grant     string
		assertion func(t *testing.T) string
		want      answer
	}{
		{"valid", jwtBearerGrant, func(t *testing.T) string { return f.assertion(t, nil) }, answer{Status: 200, Token: true}},
		{"cloud-platform scope", jwtBearerGrant, func(t *testing.T) string {
			return f.assertion(t, func(c jwt.MapClaims, _ map[string]any) { c["scope"] = "https://www.googleapis.com/auth/cloud-platform" })
		}, answer{Status: 200, Token: true}},
		{"wrong grant type", "client_credentials", func(t *testing.T) string { return f.assertion(t, nil) }, answer{Status: 400, Error: "unsupported_grant_type"}},
		{"not a jwt", jwtBearerGrant, func(t *testing.T) string { return "abc" }, answer{Status: 400, Error: "invalid_grant"}},
		{"key not registered", jwtBearerGrant, func(t *testing.T) string { return foreign.assertion(t, nil) }, answer{Status: 400, Error: "invalid_grant"}},
		{"wrong signature", jwtBearerGrant, func(t *testing.T) string {
			return foreign.assertion(t, func(c jwt.MapClaims, h map[string]any) {
				// Claim the registered account's key id, sign with another key.
				var sa serviceAccountJSON
				mustUnmarshal(t, f.sa, &sa)
				h["kid"], c["iss"], c["aud"] = sa.PrivateKeyID, sa.ClientEmail, sa.TokenURI
			})
		}, answer{Status: 400, Error: "invalid_grant"}},
		{"wrong audience", jwtBearerGrant, func(t *testing.T) string {
			return f.assertion(t, func(c jwt.MapClaims, _ map[string]any) { c["aud"] = "https://oauth2.googleapis.com/token" })
		}, answer{Status: 400, Error: "invalid_grant"}},
		{"wrong issuer", jwtBearerGrant, func(t *testing.T) string {
			return f.assertion(t, func(c jwt.MapClaims, _ map[string]any) { c["iss"] = "someone@else.iam.gserviceaccount.com" })
		}, answer{Status: 400, Error: "invalid_grant"}},
		{"too long lived", jwtBearerGrant, func(t *testing.T) string {
			return f.assertion(t, func(c jwt.MapClaims, _ map[string]any) { c["exp"] = time.Now().Add(3 * time.Hour).Unix() })
		}, answer{Status: 400, Error: "invalid_grant"}},
		{"expired", jwtBearerGrant, func(t *testing.T) string {
			return f.assertion(t, func(c jwt.MapClaims, _ map[string]any) {
				c["iat"], c["exp"] = time.Now().Add(-3*time.Hour).Unix(), time.Now().Add(-2*time.Hour).Unix()
			})
		}, answer{Status: 400, Error: "invalid_grant"}},
		{"no scope", jwtBearerGrant, func(t *testing.T) string {
			return f.assertion(t, func(c jwt.MapClaims, _ map[string]any) { c["scope"] = "https://www.googleapis.com/auth/userinfo.email" })
		}, answer{Status: 400, Error: "invalid_scope"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			status, out := f.exchange(t, tt.grant, tt.assertion(t))
			errCode, _ := out["error"].(string)
			tok, _ := out["access_token"].(string)
			got := answer{Status: status, Error: errCode, Token: tok != ""}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("answer (-want +got):\n%s\nbody: %v", diff, out)
			}
			if got.Token && (out["token_type"] != "Bearer" || out["expires_in"] != float64(3599)) {
				t.Errorf("token answer = %v", out)
			}
		})
	}
}
