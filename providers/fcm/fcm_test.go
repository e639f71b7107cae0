package fcm_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/internal/configtest"
	"github.com/crier-push/crier/internal/golden"
	"github.com/crier-push/crier/providers"
	"github.com/crier-push/crier/providers/fcm"
)

const (
	project     = "crier-test"
	accessToken = "ya29.test-access-token"
	messageName = "projects/crier-test/messages/0:1718000000000000%abcdef"
)

// now is the fixed clock of every test client.
var now = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// answer is one canned FCM response.
type answer struct {
	status int
	header http.Header
	body   string
}

var sent = answer{status: http.StatusOK, body: `{"name":"` + messageName + `"}`}

// fakeFCM stands in for both Google's OAuth token endpoint and FCM's send
// endpoint, records what the SDK sends, and answers with canned responses
// (the last one repeats).
type fakeFCM struct {
	t   *testing.T
	srv *httptest.Server
	key *rsa.PrivateKey

	mu      sync.Mutex
	answers []answer
	sends   []*http.Request
	bodies  [][]byte
	// tokenAnswer, when set, is the token endpoint's answer instead of a token.
	tokenAnswer *answer
}

func newFakeFCM(t *testing.T, answers ...answer) *fakeFCM {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeFCM{t: t, key: key, answers: answers}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", f.token)
	mux.HandleFunc("POST /v1/projects/{project}/{rest...}", f.send)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

// serviceAccount returns a key file for a fresh RSA key whose token_uri points
// at the fake.
func (f *fakeFCM) serviceAccount() []byte {
	der, err := x509.MarshalPKCS8PrivateKey(f.key)
	if err != nil {
		f.t.Fatal(err)
	}
	b, err := json.Marshal(map[string]string{
		"type":           "service_account",
		"project_id":     project,
		"private_key_id": "test-key-id",
		"private_key":    string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":   "crier@crier-test.iam.gserviceaccount.com",
		"client_id":      "1234567890",
		"token_uri":      f.srv.URL + "/token",
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return b
}

// token checks the JWT bearer grant is signed by the service account's key
// and hands out a fixed access token.
func (f *fakeFCM) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if g := r.PostForm.Get("grant_type"); g != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		f.t.Errorf("token: grant_type %q", g)
	}
	parts := strings.Split(r.PostForm.Get("assertion"), ".")
	if len(parts) != 3 {
		f.t.Errorf("token: assertion is not a JWT")
		http.Error(w, `{"error":"invalid_grant"}`, http.StatusBadRequest)
		return
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		f.t.Errorf("token: signature: %v", err)
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(&f.key.PublicKey, crypto.SHA256, sum[:], sig); err != nil {
		f.t.Errorf("token: assertion not signed by the service account key: %v", err)
	}
	var claims struct{ Iss, Scope, Aud string }
	if b, err := base64.RawURLEncoding.DecodeString(parts[1]); err != nil || json.Unmarshal(b, &claims) != nil {
		f.t.Errorf("token: assertion claims unreadable")
	}
	wantClaims := struct{ Iss, Scope, Aud string }{"crier@crier-test.iam.gserviceaccount.com", "https://www.googleapis.com/auth/firebase.messaging", f.srv.URL + "/token"}
	if diff := cmp.Diff(wantClaims, claims); diff != "" {
		f.t.Errorf("token: assertion claims (-want +got):\n%s", diff)
	}
	w.Header().Set("Content-Type", "application/json")
	f.mu.Lock()
	a := f.tokenAnswer
	f.mu.Unlock()
	if a != nil {
		for k, vs := range a.header {
			w.Header()[k] = vs
		}
		w.WriteHeader(a.status)
		io.WriteString(w, a.body)
		return
	}
	fmt.Fprintf(w, `{"access_token":%q,"token_type":"Bearer","expires_in":3600}`, accessToken)
}

func (f *fakeFCM) send(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		f.t.Errorf("send: read body: %v", err)
	}
	f.mu.Lock()
	f.sends = append(f.sends, r)
	f.bodies = append(f.bodies, body)
	a := f.answers[0]
	if len(f.answers) > 1 {
		f.answers = f.answers[1:]
	}
	f.mu.Unlock()

	for k, vs := range a.header {
		w.Header()[k] = vs
	}
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	}
	w.WriteHeader(a.status)
	io.WriteString(w, a.body)
}

func (f *fakeFCM) sendCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.sends)
}

func (f *fakeFCM) client(t *testing.T) *fcm.Client {
	t.Helper()
	c, err := fcm.New(context.Background(), fcm.Config{
		ProjectID:          project,
		ServiceAccountJSON: f.serviceAccount(),
		Endpoint:           f.srv.URL + "/v1",
		Now:                func() time.Time { return now },
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func message(class crier.Class) providers.Message {
	return providers.Message{
		PostID:      4711,
		DeviceID:    42,
		Token:       "fcm-token-" + string(class),
		Title:       "Veiarbeid i Storgata",
		Body:        "Storgata er stengt mellom kl. 09 og 15 på tirsdag.",
		URL:         "https://sandefjord.example/posts/4711",
		Data:        map[string]string{"feed": "roadworks", "kind": "notice"},
		Class:       class,
		CollapseKey: "roadworks-storgata",
		ExpiresAt:   now.Add(2*time.Hour + 30*time.Minute + 500*time.Millisecond),
	}
}

// goVersion is the one part of the request that varies with the machine and
// not with crier or the SDK: the Go version in x-goog-api-client.
var goVersion = regexp.MustCompile(`gl-go/[^ ]+`)

// dump renders a captured request for a golden file.
func dump(t *testing.T, r *http.Request, body []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	fmt.Fprintln(&b, "# normalised: the Go version in X-Goog-Api-Client is replaced by GO_VERSION")
	fmt.Fprintf(&b, "%s %s\n", r.Method, r.URL.RequestURI())
	for _, h := range []string{"Authorization", "Content-Type", "X-Firebase-Client", "X-Goog-Api-Client", "X-Goog-Api-Format-Version"} {
		fmt.Fprintf(&b, "%s: %s\n", h, goVersion.ReplaceAllString(r.Header.Get(h), "gl-go/GO_VERSION"))
	}
	b.WriteString("\n")
	if err := json.Indent(&b, body, "", "  "); err != nil {
		t.Fatalf("request body is not JSON: %v\n%s", err, body)
	}
	b.WriteString("\n")
	return b.Bytes()
}

// TestSendGolden pins the exact HTTP request the real SDK sends for each class.
func TestSendGolden(t *testing.T) {
	t.Parallel()
	for _, class := range []crier.Class{crier.ClassCommunity, crier.ClassOfficial, crier.ClassEmergency} {
		t.Run(string(class), func(t *testing.T) {
			t.Parallel()
			f := newFakeFCM(t, sent)
			name, err := f.client(t).Send(context.Background(), message(class))
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			if name != messageName {
				t.Errorf("Send returned %q, want %q", name, messageName)
			}
			if n := f.sendCount(); n != 1 {
				t.Fatalf("FCM got %d requests, want 1", n)
			}
			golden.Check(t, "send_"+string(class)+".golden", dump(t, f.sends[0], f.bodies[0]))
		})
	}
}

func TestBuild(t *testing.T) {
	t.Parallel()
	m := message(crier.ClassOfficial)
	m.ExpiresAt = time.Time{}
	m.Data = map[string]string{"url": "publisher's", "post_id": "publisher's", "extra": "x"}
	got := fcm.Build(m)
	if got.Android.TTL != nil {
		t.Errorf("TTL = %v for a post without expiry, want none", *got.Android.TTL)
	}
	want := map[string]string{"url": m.URL, "post_id": "4711", "extra": "x"}
	if diff := cmp.Diff(want, got.Data); diff != "" {
		t.Errorf("data: crier's keys must win (-want +got):\n%s", diff)
	}

	if tag := got.Android.Notification.Tag; tag != m.CollapseKey {
		t.Errorf("notification tag = %q, want the collapse key %q, so the phone replaces the shown notification", tag, m.CollapseKey)
	}
	m.CollapseKey = ""
	if tag := fcm.Build(m).Android.Notification.Tag; tag != "" {
		t.Errorf("notification tag = %q without a collapse key, want none", tag)
	}

	m.ExpiresAt = time.Now().AddDate(0, 2, 0) // Build uses the real clock
	if ttl := *fcm.Build(m).Android.TTL; ttl != 28*24*time.Hour {
		t.Errorf("TTL = %v, want it capped at FCM's 4 weeks", ttl)
	}
}

// result is the part of a *providers.Error the tests pin.
type result struct {
	Kind       providers.Kind
	Reason     string
	Status     int
	RetryAfter time.Duration
}

func resultOf(t *testing.T, err error) result {
	t.Helper()
	var pe *providers.Error
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not a *providers.Error", err, err)
	}
	return result{pe.Kind, pe.Reason, pe.Status, pe.RetryAfter}
}

func fcmError(code int, status, message, errorCode string) string {
	return fmt.Sprintf(`{"error":{"code":%d,"message":%q,"status":%q,"details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":%q}]}}`,
		code, message, status, errorCode)
}

// TestClassify answers with FCM's real error bodies (from FCM's error code
// reference, the SDK's tests and reports in public issue trackers).
func TestClassify(t *testing.T) {
	t.Parallel()
	retryAfter := func(v string) http.Header { return http.Header{"Retry-After": {v}} }
	tests := []struct {
		name   string
		answer answer
		want   result
	}{{
		name:   "unregistered",
		answer: answer{status: 404, body: fcmError(404, "NOT_FOUND", "Requested entity was not found.", "UNREGISTERED")},
		want:   result{providers.TokenDead, "UNREGISTERED", 404, 0},
	}, {
		name:   "invalid registration token",
		answer: answer{status: 400, body: fcmError(400, "INVALID_ARGUMENT", "The registration token is not a valid FCM registration token", "INVALID_ARGUMENT")},
		want:   result{providers.TokenDead, "INVALID_ARGUMENT", 400, 0},
	}, {
		name: "invalid data value",
		answer: answer{status: 400, body: `{"error":{"code":400,"message":"Invalid value at 'message.data[0].value' (TYPE_STRING), 12","status":"INVALID_ARGUMENT",` +
			`"details":[{"@type":"type.googleapis.com/google.rpc.BadRequest","fieldViolations":[{"field":"message.data[0].value","description":"Invalid value at 'message.data[0].value' (TYPE_STRING), 12"}]}]}}`},
		want: result{providers.Invalid, "INVALID_ARGUMENT", 400, 0},
	}, {
		name:   "sender id mismatch",
		answer: answer{status: 403, body: fcmError(403, "PERMISSION_DENIED", "SenderId mismatch", "SENDER_ID_MISMATCH")},
		want:   result{providers.TokenDead, "SENDER_ID_MISMATCH", 403, 0},
	}, {
		name:   "quota exceeded for the target",
		answer: answer{status: 429, header: retryAfter("30"), body: fcmError(429, "RESOURCE_EXHAUSTED", "Sending limit exceeded for the message target.", "QUOTA_EXCEEDED")},
		want:   result{providers.Throttled, "QUOTA_EXCEEDED", 429, 30 * time.Second},
	}, {
		// firebase/firebase-admin-go#719: the project quota answer has no FcmError.
		name: "project quota exceeded",
		answer: answer{status: 429, header: retryAfter(now.Add(90 * time.Second).Format(http.TimeFormat)),
			body: `{"error":{"code":429,"message":"Quota exceeded for quota metric 'Send requests' and limit 'Send requests per minute' of service 'fcm.googleapis.com' for consumer 'project_number:123456789'.","status":"RESOURCE_EXHAUSTED",` +
				`"details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"RATE_LIMIT_EXCEEDED","domain":"googleapis.com","metadata":{"quota_metric":"fcm.googleapis.com/send_requests","quota_limit":"SendsPerMinutePerProject","service":"fcm.googleapis.com"}}]}}`},
		want: result{providers.Throttled, "RESOURCE_EXHAUSTED", 429, 90 * time.Second},
	}, {
		name:   "third party auth error",
		answer: answer{status: 401, body: fcmError(401, "UNAUTHENTICATED", "Auth error from APNS or Web Push Service", "THIRD_PARTY_AUTH_ERROR")},
		want:   result{providers.AuthBroken, "THIRD_PARTY_AUTH_ERROR", 401, 0},
	}, {
		name: "oauth token rejected",
		answer: answer{status: 401, header: http.Header{"Www-Authenticate": {`Bearer realm="https://accounts.google.com/", error="invalid_token"`}},
			body: `{"error":{"code":401,"message":"Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.","status":"UNAUTHENTICATED"}}`},
		want: result{providers.AuthBroken, "UNAUTHENTICATED", 401, 0},
	}, {
		name:   "permission denied",
		answer: answer{status: 403, body: `{"error":{"code":403,"message":"Permission 'cloudmessaging.messages.create' denied on resource '//cloudresourcemanager.googleapis.com/projects/crier-test' (or it may not exist).","status":"PERMISSION_DENIED"}}`},
		want:   result{providers.AuthBroken, "PERMISSION_DENIED", 403, 0},
	}, {
		name:   "internal",
		answer: answer{status: 500, body: fcmError(500, "INTERNAL", "Internal error encountered.", "INTERNAL")},
		want:   result{providers.Retry, "INTERNAL", 500, 0},
	}, {
		// A Retry-After beyond two minutes stops the SDK's own retries.
		name:   "unavailable with long retry-after",
		answer: answer{status: 503, header: retryAfter("300"), body: fcmError(503, "UNAVAILABLE", "The service is currently unavailable.", "UNAVAILABLE")},
		want:   result{providers.Retry, "UNAVAILABLE", 503, 5 * time.Minute},
	}, {
		name:   "bad gateway html",
		answer: answer{status: 502, header: http.Header{"Content-Type": {"text/html; charset=UTF-8"}}, body: "<html><body><h1>502 Bad Gateway</h1></body></html>"},
		want:   result{providers.Retry, "UNKNOWN", 502, 0},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeFCM(t, tt.answer)
			_, err := f.client(t).Send(context.Background(), message(crier.ClassCommunity))
			if diff := cmp.Diff(tt.want, resultOf(t, err)); diff != "" {
				t.Errorf("classification (-want +got):\n%s", diff)
			}
			// No status but 503 (and network errors) is retried by the SDK.
			if n := f.sendCount(); n != 1 {
				t.Errorf("FCM got %d requests, want 1", n)
			}
		})
	}
}

// TestTokenEndpointFails covers the OAuth token endpoint refusing the service
// account (Google's answers for a deleted key or a disabled account) or failing.
func TestTokenEndpointFails(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		answer answer
		want   result
	}{
		{"deleted key", answer{status: 400, body: `{"error":"invalid_grant","error_description":"Invalid JWT Signature."}`}, result{providers.AuthBroken, "invalid_grant", 400, 0}},
		{"disabled account", answer{status: 401, body: `{"error":"unauthorized_client","error_description":"Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested."}`}, result{providers.AuthBroken, "unauthorized_client", 401, 0}},
		{"unavailable", answer{status: 503, header: http.Header{"Retry-After": {"10"}}, body: `{"error":"temporarily_unavailable"}`}, result{providers.Retry, "temporarily_unavailable", 503, 10 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeFCM(t, sent)
			f.mu.Lock()
			f.tokenAnswer = &tt.answer
			f.mu.Unlock()
			_, err := f.client(t).Send(context.Background(), message(crier.ClassCommunity))
			if diff := cmp.Diff(tt.want, resultOf(t, err)); diff != "" {
				t.Errorf("classification (-want +got):\n%s", diff)
			}
			if n := f.sendCount(); n != 0 {
				t.Errorf("FCM got %d requests, want none", n)
			}
		})
	}
}

// TestSDKRetries pins what the SDK retries on its own, which crier's retry
// policy must not double.
func TestSDKRetries(t *testing.T) {
	t.Parallel()
	unavailable := answer{status: 503, body: fcmError(503, "UNAVAILABLE", "The service is currently unavailable.", "UNAVAILABLE")}
	tests := []struct {
		name    string
		answers []answer
		sends   int
	}{
		// The first retry waits 0s, so this costs no time.
		{"503 is retried", []answer{unavailable, sent}, 2},
		{"500 is not", []answer{{status: 500, body: fcmError(500, "INTERNAL", "Internal error encountered.", "INTERNAL")}, sent}, 1},
		{"429 is not", []answer{{status: 429, body: fcmError(429, "RESOURCE_EXHAUSTED", "Sending limit exceeded for the message target.", "QUOTA_EXCEEDED")}, sent}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeFCM(t, tt.answers...)
			f.client(t).Send(context.Background(), message(crier.ClassCommunity))
			if n := f.sendCount(); n != tt.sends {
				t.Errorf("FCM got %d requests, want %d", n, tt.sends)
			}
		})
	}
}

// TestContextEnds shows that when ctx ends while the SDK waits to retry, the
// 503 it was retrying is lost: crier sees a Retry with reason "context".
func TestContextEnds(t *testing.T) {
	t.Parallel()
	f := newFakeFCM(t, answer{status: 503, header: http.Header{"Retry-After": {"60"}},
		body: fcmError(503, "UNAVAILABLE", "The service is currently unavailable.", "UNAVAILABLE")})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := f.client(t).Send(ctx, message(crier.ClassCommunity))
	if diff := cmp.Diff(result{Kind: providers.Retry, Reason: "context"}, resultOf(t, err)); diff != "" {
		t.Errorf("classification (-want +got):\n%s", diff)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("errors.Is(%v, context.DeadlineExceeded) = false", err)
	}
}

func TestNetworkError(t *testing.T) {
	t.Parallel()
	f := newFakeFCM(t, sent)
	c, err := fcm.New(context.Background(), fcm.Config{
		ProjectID:          project,
		ServiceAccountJSON: f.serviceAccount(),
		Endpoint:           "http://127.0.0.1:1/v1", // nothing listens on port 1
		Now:                func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = c.Send(ctx, message(crier.ClassCommunity))
	if k := providers.KindOf(err); k != providers.Retry {
		t.Errorf("KindOf(%v) = %v, want retry", err, k)
	}
}

// TestLocalChecks covers what Send refuses without asking FCM.
func TestLocalChecks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		modify func(*providers.Message)
		want   result
	}{
		{"expired", func(m *providers.Message) { m.ExpiresAt = now.Add(-time.Second) }, result{Kind: providers.Invalid, Reason: "expired"}},
		{"expires now", func(m *providers.Message) { m.ExpiresAt = now }, result{Kind: providers.Invalid, Reason: "expired"}},
		{"reserved data key", func(m *providers.Message) { m.Data = map[string]string{"google.c.a.e": "1"} }, result{Kind: providers.Invalid, Reason: "reserved_data_key"}},
		{"from", func(m *providers.Message) { m.Data = map[string]string{"from": "me"} }, result{Kind: providers.Invalid, Reason: "reserved_data_key"}},
		{"unknown class", func(m *providers.Message) { m.Class = "urgent" }, result{Kind: providers.Invalid, Reason: "unknown_class"}},
		{"no token", func(m *providers.Message) { m.Token = "" }, result{Kind: providers.TokenDead, Reason: "missing_token"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeFCM(t, sent)
			m := message(crier.ClassCommunity)
			tt.modify(&m)
			_, err := f.client(t).Send(context.Background(), m)
			if diff := cmp.Diff(tt.want, resultOf(t, err)); diff != "" {
				t.Errorf("classification (-want +got):\n%s", diff)
			}
			if n := f.sendCount(); n != 0 {
				t.Errorf("FCM got %d requests, want none", n)
			}
		})
	}
}

func TestNewRejectsBadCredentials(t *testing.T) {
	t.Parallel()
	secret := "-----BEGIN PRIVATE KEY-----secret"
	tests := []struct {
		name string
		cfg  fcm.Config
	}{
		{"no project", fcm.Config{ServiceAccountJSON: []byte(`{"type":"service_account"}`)}},
		{"no key", fcm.Config{ProjectID: project}},
		{"not json", fcm.Config{ProjectID: project, ServiceAccountJSON: []byte(secret)}},
		{"external account", fcm.Config{ProjectID: project, ServiceAccountJSON: []byte(`{"type":"external_account","private_key":"` + secret + `"}`)}},
		{"key not pem", fcm.Config{ProjectID: project, ServiceAccountJSON: []byte(`{"type":"service_account","client_email":"a@b","token_uri":"http://x","private_key":"` + secret + `"}`)}},
		{"no token uri", fcm.Config{ProjectID: project, ServiceAccountJSON: []byte(`{"type":"service_account","client_email":"a@b","private_key":"` + secret + `"}`)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := fcm.New(context.Background(), tt.cfg)
			if err == nil {
				t.Fatal("New succeeded, want an error")
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error %q leaks the key", err)
			}
		})
	}
}

// Sender is the interface the worker declares; the client must satisfy it.
type Sender interface {
	Send(ctx context.Context, m providers.Message) (string, error)
}

var _ Sender = (*fcm.Client)(nil)

// TestConfigValidate: a config no client can be built from is refused by
// New, naming the field.
func TestConfigValidate(t *testing.T) {
	t.Parallel()
	f := newFakeFCM(t, sent)
	ok := fcm.Config{ProjectID: project, ServiceAccountJSON: f.serviceAccount()}
	use := func(c fcm.Config) error { _, err := fcm.New(context.Background(), c); return err }
	configtest.Refuses(t, ok, use, []configtest.Case[fcm.Config]{
		{Name: "no project", Field: "ProjectID", Change: func(c *fcm.Config) { c.ProjectID = "" }},
		{Name: "no service account", Field: "ServiceAccountJSON", Change: func(c *fcm.Config) { c.ServiceAccountJSON = nil }},
		{Name: "service account not json", Field: "ServiceAccountJSON", Change: func(c *fcm.Config) { c.ServiceAccountJSON = []byte("{") }},
		{Name: "endpoint without scheme", Field: "Endpoint", Change: func(c *fcm.Config) { c.Endpoint = "fcm.googleapis.com/v1" }},
		{Name: "endpoint not http", Field: "Endpoint", Change: func(c *fcm.Config) { c.Endpoint = "ftp://fcm.googleapis.com/v1" }},
	})
	if _, err := fcm.New(context.Background(), ok); err != nil {
		t.Errorf("New with the default endpoint: %v", err)
	}
}

// TestConfigDefaults: the zero fields get the named defaults.
func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	configtest.Defaults(t, fcm.Config{Endpoint: fcm.DefaultEndpoint}, fcm.Config{}.WithDefaults(), "Now")
}
