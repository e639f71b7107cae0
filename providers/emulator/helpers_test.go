package emulator

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	firebase "firebase.google.com/go/v4"
	"firebase.google.com/go/v4/messaging"
	"github.com/golang-jwt/jwt/v5"
	"github.com/sideshow/apns2"
	"github.com/sideshow/apns2/token"
	"golang.org/x/net/http2"
	"google.golang.org/api/option"
)

const (
	testProject = "crier-test"
	testTeam    = "TEAM123456"
	testKeyID   = "KEY1234567"
	testTopic   = "no.crier.test"
)

// fixture is a started emulator with one service account and one APNs key.
type fixture struct {
	emu    *Emulator
	sa     []byte
	p8     []byte
	apnsHC *http.Client
}

func newFixture(t *testing.T, cfg Config) *fixture {
	t.Helper()
	emu, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := emu.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := emu.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	sa, err := emu.NewServiceAccount(testProject)
	if err != nil {
		t.Fatalf("NewServiceAccount: %v", err)
	}
	p8, err := emu.NewAPNsKey(testTeam, testKeyID, testTopic)
	if err != nil {
		t.Fatalf("NewAPNsKey: %v", err)
	}
	return &fixture{emu: emu, sa: sa, p8: p8, apnsHC: apnsHTTPClient(t, emu.CACertPEM())}
}

// apnsHTTPClient speaks HTTP/2 and trusts only caPEM, as crier's APNs
// provider does when pointed at the emulator.
func apnsHTTPClient(t *testing.T, caPEM []byte) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("CA PEM: no certificate")
	}
	tr := &http2.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// messagingClient is the real firebase-admin-go client, pointed at the
// emulator through the service account's token_uri and WithEndpoint.
func (f *fixture) messagingClient(t *testing.T) *messaging.Client {
	t.Helper()
	ctx := context.Background()
	app, err := firebase.NewApp(ctx, nil, option.WithCredentialsJSON(f.sa), option.WithEndpoint(f.emu.FCMEndpoint()))
	if err != nil {
		t.Fatalf("firebase.NewApp: %v", err)
	}
	c, err := app.Messaging(ctx)
	if err != nil {
		t.Fatalf("app.Messaging: %v", err)
	}
	return c
}

// apnsClient is the real apns2 token client, trusting the emulator.
func (f *fixture) apnsClient(t *testing.T) *apns2.Client {
	t.Helper()
	key, err := token.AuthKeyFromBytes(f.p8)
	if err != nil {
		t.Fatalf("AuthKeyFromBytes: %v", err)
	}
	c := apns2.NewTokenClient(&token.Token{AuthKey: key, KeyID: testKeyID, TeamID: testTeam})
	c.Host = f.emu.APNsHost()
	c.HTTPClient = f.apnsHC
	return c
}

// assertion signs an OAuth JWT with the fixture's service account; mod may
// change the claims and header.
func (f *fixture) assertion(t *testing.T, mod func(claims jwt.MapClaims, header map[string]any)) string {
	t.Helper()
	var sa serviceAccountJSON
	if err := json.Unmarshal(f.sa, &sa); err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode([]byte(sa.PrivateKey))
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	claims := jwt.MapClaims{
		"iss":   sa.ClientEmail,
		"scope": "https://www.googleapis.com/auth/firebase.messaging",
		"aud":   sa.TokenURI,
		"iat":   now.Unix(),
		"exp":   now.Add(time.Hour).Unix(),
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"] = sa.PrivateKeyID
	if mod != nil {
		mod(claims, tok.Header)
	}
	s, err := tok.SignedString(k.(*rsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// exchange posts an assertion to the token endpoint.
func (f *fixture) exchange(t *testing.T, grantType, assertion string) (int, map[string]any) {
	t.Helper()
	form := url.Values{"grant_type": {grantType}, "assertion": {assertion}}
	res, err := http.PostForm(f.emu.TokenURI(), form)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, out
}

func (f *fixture) accessToken(t *testing.T) string {
	t.Helper()
	status, out := f.exchange(t, jwtBearerGrant, f.assertion(t, nil))
	if status != http.StatusOK {
		t.Fatalf("token exchange: %d %v", status, out)
	}
	return out["access_token"].(string)
}

// postFCM sends a raw FCM request and returns status, headers and body.
func (f *fixture) postFCM(t *testing.T, project, bearer, body string) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.emu.FCMEndpoint()+"/projects/"+project+"/messages:send", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, res.Header, out
}

// providerToken signs an APNs provider token with key, issued at iat.
func providerToken(t *testing.T, p8 []byte, teamID, keyID string, iat time.Time) string {
	t.Helper()
	key, err := token.AuthKeyFromBytes(p8)
	if err != nil {
		t.Fatal(err)
	}
	return signES256(t, key, teamID, keyID, iat)
}

func signES256(t *testing.T, key *ecdsa.PrivateKey, teamID, keyID string, iat time.Time) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": teamID, "iat": iat.Unix()})
	tok.Header["kid"] = keyID
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// apnsRequest is a hand-made APNs request.
type apnsRequest struct {
	method  string
	path    string
	headers map[string]string
	body    string
}

type apnsResult struct {
	Status     int
	Reason     string
	HasTime    bool
	RetryAfter string
}

func (f *fixture) doAPNs(t *testing.T, r apnsRequest) apnsResult {
	t.Helper()
	method := r.method
	if method == "" {
		method = http.MethodPost
	}
	req, err := http.NewRequest(method, f.emu.APNsHost()+r.path, bytes.NewReader([]byte(r.body)))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range r.headers {
		req.Header.Set(k, v)
	}
	res, err := f.apnsHC.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := apnsResult{Status: res.StatusCode, RetryAfter: res.Header.Get("Retry-After")}
	if len(b) > 0 {
		var body struct {
			Reason    string `json:"reason"`
			Timestamp *int64 `json:"timestamp"`
		}
		if err := json.Unmarshal(b, &body); err != nil {
			t.Fatalf("apns body %q: %v", b, err)
		}
		out.Reason, out.HasTime = body.Reason, body.Timestamp != nil
	}
	return out
}
