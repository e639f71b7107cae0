package apns_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/internal/configtest"
	"github.com/crier-push/crier/internal/golden"
	"github.com/crier-push/crier/providers"
	"github.com/crier-push/crier/providers/apns"
)

const (
	topic  = "no.sandefjord.app"
	keyID  = "ABC123DEFG"
	teamID = "DEF123GHIJ"
	apnsID = "6e0c8d2c-4f61-4c62-8a2f-0c4c0b0a6d11"
)

var now = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

type answer struct {
	status int
	header http.Header
	body   string
}

var sent = answer{status: http.StatusOK}

// fakeAPNs is an HTTP/2 TLS server that records requests and answers with
// canned responses (the last one repeats).
type fakeAPNs struct {
	t   *testing.T
	srv *httptest.Server
	key *ecdsa.PrivateKey

	mu      sync.Mutex
	answers []answer
	reqs    []*http.Request
	bodies  [][]byte
}

func newFakeAPNs(t *testing.T, answers ...answer) *fakeAPNs {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeAPNs{t: t, key: key, answers: answers}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.handle))
	f.srv.EnableHTTP2 = true
	f.srv.StartTLS()
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAPNs) handle(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor != 2 {
		f.t.Errorf("request over %s, want HTTP/2", r.Proto)
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		f.t.Errorf("read body: %v", err)
	}
	f.mu.Lock()
	f.reqs = append(f.reqs, r)
	f.bodies = append(f.bodies, body)
	a := f.answers[0]
	if len(f.answers) > 1 {
		f.answers = f.answers[1:]
	}
	f.mu.Unlock()

	for k, vs := range a.header {
		w.Header()[k] = vs
	}
	w.Header().Set("apns-id", apnsID)
	w.WriteHeader(a.status)
	io.WriteString(w, a.body)
}

func (f *fakeAPNs) requests() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.reqs)
}

func (f *fakeAPNs) rootCAs() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.srv.Certificate().Raw})
}

func (f *fakeAPNs) keyP8() []byte {
	der, err := x509.MarshalPKCS8PrivateKey(f.key)
	if err != nil {
		f.t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func (f *fakeAPNs) client(t *testing.T) *apns.Client {
	t.Helper()
	c, err := apns.New(apns.Config{
		KeyP8: f.keyP8(), KeyID: keyID, TeamID: teamID,
		Topic: topic, Host: f.srv.URL, RootCAs: f.rootCAs(),
		Now: func() time.Time { return now },
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// checkBearer verifies the provider token is an ES256 JWT signed with the key,
// with Apple's kid, iss and a fresh iat.
func (f *fakeAPNs) checkBearer(t *testing.T, auth string) {
	t.Helper()
	jwt, ok := strings.CutPrefix(auth, "bearer ")
	if !ok {
		t.Fatalf("authorization %q is not a bearer token", auth)
	}
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("provider token is not a JWT")
	}
	var header struct{ Alg, Kid string }
	var claims struct {
		Iss string
		Iat int64
	}
	for i, v := range []any{&header, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatal(err)
		}
	}
	if header.Alg != "ES256" || header.Kid != keyID || claims.Iss != teamID {
		t.Errorf("provider token header %+v claims %+v, want ES256 %s %s", header, claims, keyID, teamID)
	}
	if age := time.Since(time.Unix(claims.Iat, 0)); age < -time.Minute || age > time.Hour {
		t.Errorf("provider token issued %v ago", age)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(sig) != 64 {
		t.Fatalf("provider token signature: %d bytes, %v", len(sig), err)
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
	if !ecdsa.Verify(&f.key.PublicKey, sum[:], r, s) {
		t.Error("provider token is not signed with the .p8 key")
	}
}

func message(class crier.Class) providers.Message {
	return providers.Message{
		PostID:      4711,
		DeviceID:    42,
		Token:       "a3f1c2d4e5b6a7980f1e2d3c4b5a69788796a5b4c3d2e1f0a1b2c3d4e5f60718",
		Title:       "Veiarbeid i Storgata",
		Body:        "Storgata er stengt mellom kl. 09 og 15 på tirsdag.",
		URL:         "https://sandefjord.example/posts/4711",
		Data:        map[string]string{"feed": "roadworks", "kind": "notice"},
		Class:       class,
		CollapseKey: "roadworks-storgata",
		ExpiresAt:   now.Add(2*time.Hour + 30*time.Minute),
	}
}

func dump(t *testing.T, r *http.Request, body []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	fmt.Fprintln(&b, "# normalised: the provider token in authorization (a fresh ES256 JWT, verified by the test)")
	fmt.Fprintf(&b, "%s %s %s\n", r.Method, r.URL.RequestURI(), r.Proto)
	for _, h := range []string{"apns-collapse-id", "apns-expiration", "apns-id", "apns-priority", "apns-push-type", "apns-topic", "authorization", "content-type"} {
		v := r.Header.Get(h)
		switch {
		case v == "":
			v = "(absent)"
		case h == "authorization":
			v = "bearer JWT"
		}
		fmt.Fprintf(&b, "%s: %s\n", h, v)
	}
	b.WriteString("\n")
	if err := json.Indent(&b, body, "", "  "); err != nil {
		t.Fatalf("payload is not JSON: %v\n%s", err, body)
	}
	b.WriteString("\n")
	return b.Bytes()
}

// TestSendGolden pins the exact headers and payload apns2 sends for each class.
func TestSendGolden(t *testing.T) {
	t.Parallel()
	for _, class := range []crier.Class{crier.ClassCommunity, crier.ClassOfficial, crier.ClassEmergency} {
		t.Run(string(class), func(t *testing.T) {
			t.Parallel()
			f := newFakeAPNs(t, sent)
			id, err := f.client(t).Send(context.Background(), message(class))
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			if id != apnsID {
				t.Errorf("Send returned %q, want the apns-id %q", id, apnsID)
			}
			if n := f.requests(); n != 1 {
				t.Fatalf("APNs got %d requests, want 1", n)
			}
			f.checkBearer(t, f.reqs[0].Header.Get("authorization"))
			golden.Check(t, "send_"+string(class)+".golden", dump(t, f.reqs[0], f.bodies[0]))
		})
	}
}

func TestBuild(t *testing.T) {
	t.Parallel()
	m := message(crier.ClassOfficial)
	m.ExpiresAt = time.Time{}
	m.Data = map[string]string{"url": "publisher's", "post_id": "publisher's", "extra": "x"}
	n := apns.Build(m, topic)
	if !n.Expiration.IsZero() {
		t.Errorf("Expiration = %v for a post without expiry, want none (no header)", n.Expiration)
	}
	b, err := json.Marshal(n)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if aps := got["aps"].(map[string]any); aps["mutable-content"] != nil {
		t.Errorf("a push with its text is mutable-content: %v", aps)
	}
	delete(got, "aps")
	want := map[string]any{"url": m.URL, "post_id": "4711", "extra": "x"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("custom keys: crier's must win (-want +got):\n%s", diff)
	}

	// An ID-only push lets the app's service extension put the post's text
	// in before it is shown.
	m.Fetched = true
	b, err = json.Marshal(apns.Build(m, topic))
	if err != nil {
		t.Fatal(err)
	}
	var fetched struct {
		Aps map[string]any
	}
	if err := json.Unmarshal(b, &fetched); err != nil {
		t.Fatal(err)
	}
	if fetched.Aps["mutable-content"] != float64(1) {
		t.Errorf("an ID-only push's aps %v: want mutable-content 1", fetched.Aps)
	}
}

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

// TestClassify answers with APNs' real status codes and bodies ({"reason":...},
// with a millisecond timestamp on 410) from Apple's "Handling notification
// responses from APNs".
func TestClassify(t *testing.T) {
	t.Parallel()
	reason := func(status int, r string) answer {
		return answer{status: status, header: http.Header{"Content-Type": {"application/json"}}, body: `{"reason":"` + r + `"}`}
	}
	tests := []struct {
		name   string
		answer answer
		want   result
	}{
		{"unregistered", answer{status: 410, body: `{"reason":"Unregistered","timestamp":1748700000000}`}, result{providers.TokenDead, "Unregistered", 410, 0}},
		{"expired token", reason(410, "ExpiredToken"), result{providers.TokenDead, "ExpiredToken", 410, 0}},
		{"bad device token", reason(400, "BadDeviceToken"), result{providers.TokenDead, "BadDeviceToken", 400, 0}},
		{"token not for topic", reason(400, "DeviceTokenNotForTopic"), result{providers.TokenDead, "DeviceTokenNotForTopic", 400, 0}},
		{"invalid provider token", reason(403, "InvalidProviderToken"), result{providers.AuthBroken, "InvalidProviderToken", 403, 0}},
		{"expired provider token", reason(403, "ExpiredProviderToken"), result{providers.AuthBroken, "ExpiredProviderToken", 403, 0}},
		{"bad certificate", reason(403, "BadCertificate"), result{providers.AuthBroken, "BadCertificate", 403, 0}},
		{"unknown 403 reason", reason(403, "BadEnvironmentKeyInToken"), result{providers.AuthBroken, "BadEnvironmentKeyInToken", 403, 0}},
		{"topic disallowed", reason(400, "TopicDisallowed"), result{providers.AuthBroken, "TopicDisallowed", 400, 0}},
		{"bad topic", reason(400, "BadTopic"), result{providers.AuthBroken, "BadTopic", 400, 0}},
		{"bad priority", reason(400, "BadPriority"), result{providers.Invalid, "BadPriority", 400, 0}},
		{"bad expiration", reason(400, "BadExpirationDate"), result{providers.Invalid, "BadExpirationDate", 400, 0}},
		{"payload too large", reason(413, "PayloadTooLarge"), result{providers.Invalid, "PayloadTooLarge", 413, 0}},
		{"too many requests", answer{status: 429, header: http.Header{"Retry-After": {"30"}}, body: `{"reason":"TooManyRequests"}`}, result{providers.Throttled, "TooManyRequests", 429, 30 * time.Second}},
		{"too many provider token updates", reason(429, "TooManyProviderTokenUpdates"), result{providers.Throttled, "TooManyProviderTokenUpdates", 429, 0}},
		{"internal server error", reason(500, "InternalServerError"), result{providers.Retry, "InternalServerError", 500, 0}},
		{"service unavailable", answer{status: 503, header: http.Header{"Retry-After": {now.Add(2 * time.Minute).Format(http.TimeFormat)}}, body: `{"reason":"ServiceUnavailable"}`}, result{providers.Retry, "ServiceUnavailable", 503, 2 * time.Minute}},
		{"shutdown", reason(503, "Shutdown"), result{providers.Retry, "Shutdown", 503, 0}},
		{"no body", answer{status: 502}, result{providers.Retry, "HTTP_502", 502, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeAPNs(t, tt.answer)
			_, err := f.client(t).Send(context.Background(), message(crier.ClassCommunity))
			if diff := cmp.Diff(tt.want, resultOf(t, err)); diff != "" {
				t.Errorf("classification (-want +got):\n%s", diff)
			}
			if n := f.requests(); n != 1 {
				t.Errorf("APNs got %d requests, want 1: apns2 retries nothing", n)
			}
		})
	}
}

func TestNetworkError(t *testing.T) {
	t.Parallel()
	f := newFakeAPNs(t, sent)
	c := f.client(t)
	f.srv.Close()
	_, err := c.Send(context.Background(), message(crier.ClassCommunity))
	if diff := cmp.Diff(result{Kind: providers.Retry, Reason: "network"}, resultOf(t, err)); diff != "" {
		t.Errorf("classification (-want +got):\n%s", diff)
	}
}

func TestContextCancelled(t *testing.T) {
	t.Parallel()
	f := newFakeAPNs(t, sent)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := f.client(t).Send(ctx, message(crier.ClassCommunity))
	if diff := cmp.Diff(result{Kind: providers.Retry, Reason: "context"}, resultOf(t, err)); diff != "" {
		t.Errorf("classification (-want +got):\n%s", diff)
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("errors.Is(%v, context.Canceled) = false", err)
	}
}

// TestLocalChecks covers what Send refuses without asking APNs.
func TestLocalChecks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		modify func(*providers.Message)
		want   result
	}{
		{"expired", func(m *providers.Message) { m.ExpiresAt = now.Add(-time.Second) }, result{Kind: providers.Invalid, Reason: "expired"}},
		{"collapse id over 64 bytes", func(m *providers.Message) { m.CollapseKey = strings.Repeat("ø", 33) }, result{Kind: providers.Invalid, Reason: "collapse_id_too_long"}},
		{"payload over 4096 bytes", func(m *providers.Message) { m.Body = strings.Repeat("x", 4096) }, result{Kind: providers.Invalid, Reason: "payload_too_large"}},
		{"aps data key", func(m *providers.Message) { m.Data = map[string]string{"aps": "{}"} }, result{Kind: providers.Invalid, Reason: "reserved_data_key"}},
		{"unknown class", func(m *providers.Message) { m.Class = "urgent" }, result{Kind: providers.Invalid, Reason: "unknown_class"}},
		{"no token", func(m *providers.Message) { m.Token = "" }, result{Kind: providers.TokenDead, Reason: "missing_token"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeAPNs(t, sent)
			m := message(crier.ClassCommunity)
			tt.modify(&m)
			_, err := f.client(t).Send(context.Background(), m)
			if diff := cmp.Diff(tt.want, resultOf(t, err)); diff != "" {
				t.Errorf("classification (-want +got):\n%s", diff)
			}
			if n := f.requests(); n != 0 {
				t.Errorf("APNs got %d requests, want none", n)
			}
		})
	}

	// 64 bytes exactly is allowed.
	f := newFakeAPNs(t, sent)
	m := message(crier.ClassCommunity)
	m.CollapseKey = strings.Repeat("ø", 32)
	if _, err := f.client(t).Send(context.Background(), m); err != nil {
		t.Errorf("Send with a 64-byte collapse id: %v", err)
	}
}

// TestCertificateAuth sends with a client certificate (PEM certificate and key
// given separately) instead of a provider token.
func TestCertificateAuth(t *testing.T) {
	t.Parallel()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "Apple Push Services: " + topic},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     time.Now().AddDate(1, 0, 0),
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}

	f := &fakeAPNs{t: t, answers: []answer{sent}}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.handle))
	f.srv.EnableHTTP2 = true
	f.srv.TLS = &tls.Config{ClientAuth: tls.RequireAnyClientCert}
	f.srv.StartTLS()
	t.Cleanup(f.srv.Close)

	c, err := apns.New(apns.Config{
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		Topic:   topic, Host: f.srv.URL, RootCAs: f.rootCAs(),
		Now: func() time.Time { return now },
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if _, err := c.Send(context.Background(), message(crier.ClassOfficial)); err != nil {
		t.Fatalf("Send: %v", err)
	}
	r := f.reqs[0]
	if auth := r.Header.Get("authorization"); auth != "" {
		t.Errorf("authorization %q with certificate auth, want none", auth)
	}
	if peers := r.TLS.PeerCertificates; len(peers) == 0 || !bytes.Equal(peers[0].Raw, der) {
		t.Error("server did not see the client certificate")
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	t.Parallel()
	f := newFakeAPNs(t, sent)
	secret := "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n"
	tests := []struct {
		name string
		cfg  apns.Config
	}{
		{"no topic", apns.Config{KeyP8: f.keyP8(), KeyID: keyID, TeamID: teamID}},
		{"no credentials", apns.Config{Topic: topic}},
		{"no key id", apns.Config{KeyP8: f.keyP8(), TeamID: teamID, Topic: topic}},
		{"bad key", apns.Config{KeyP8: []byte(secret), KeyID: keyID, TeamID: teamID, Topic: topic}},
		{"both", apns.Config{KeyP8: f.keyP8(), KeyID: keyID, TeamID: teamID, CertPEM: []byte(secret), Topic: topic}},
		{"bad root CAs", apns.Config{KeyP8: f.keyP8(), KeyID: keyID, TeamID: teamID, Topic: topic, RootCAs: []byte("nope")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := apns.New(tt.cfg)
			if err == nil {
				t.Fatal("New succeeded, want an error")
			}
			if strings.Contains(err.Error(), "c2VjcmV0") {
				t.Errorf("error %q leaks the key", err)
			}
		})
	}
}

// Sender is the interface the worker declares; the client must satisfy it.
type Sender interface {
	Send(ctx context.Context, m providers.Message) (string, error)
}

var _ Sender = (*apns.Client)(nil)

// TestConfigValidate: a config no client can be built from is refused by
// New, naming the field.
func TestConfigValidate(t *testing.T) {
	t.Parallel()
	f := newFakeAPNs(t, sent)
	ok := apns.Config{KeyP8: f.keyP8(), KeyID: keyID, TeamID: teamID, Topic: topic}
	use := func(c apns.Config) error { _, err := apns.New(c); return err }
	configtest.Refuses(t, ok, use, []configtest.Case[apns.Config]{
		{Name: "no topic", Field: "Topic", Change: func(c *apns.Config) { c.Topic = "" }},
		{Name: "no key id", Field: "KeyID", Change: func(c *apns.Config) { c.KeyID = "" }},
		{Name: "no team id", Field: "TeamID", Change: func(c *apns.Config) { c.TeamID = "" }},
		{Name: "no credentials", Field: "KeyP8", Change: func(c *apns.Config) { c.KeyP8 = nil }},
		{Name: "key and certificate", Field: "KeyP8", Change: func(c *apns.Config) { c.CertPEM = []byte("cert") }},
		{Name: "two certificates", Field: "CertP12", Change: func(c *apns.Config) { c.KeyP8, c.CertPEM, c.CertP12 = nil, []byte("pem"), []byte("p12") }},
		{Name: "host not https", Field: "Host", Change: func(c *apns.Config) { c.Host = "http://api.push.apple.com" }},
		{Name: "host without scheme", Field: "Host", Change: func(c *apns.Config) { c.Host = "api.push.apple.com" }},
	})
	if _, err := apns.New(ok); err != nil {
		t.Errorf("New with the default host: %v", err)
	}
}

// TestConfigDefaults: the zero fields get the named defaults.
func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	configtest.Defaults(t, apns.Config{Host: apns.DefaultHost}, apns.Config{}.WithDefaults(), "Now")
}
