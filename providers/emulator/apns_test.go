package emulator

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func mustUnmarshal(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

func TestAPNsRequests(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{})
	now := time.Now()
	good := "bearer " + providerToken(t, f.p8, testTeam, testKeyID, now)
	otherKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ok := APNsToken(Behaviour{Kind: Accept}, 77)
	path := "/3/device/" + ok
	alert := `{"aps":{"alert":"hi"}}`

	headers := func(mod func(h map[string]string)) map[string]string {
		h := map[string]string{
			"authorization":  good,
			"apns-topic":     testTopic,
			"apns-push-type": "alert",
		}
		if mod != nil {
			mod(h)
		}
		return h
	}
	tests := []struct {
		name string
		req  apnsRequest
		want apnsResult
	}{
		{"accepted", apnsRequest{path: path, headers: headers(nil), body: alert}, apnsResult{Status: 200}},
		{"accepted with all headers", apnsRequest{path: path, headers: headers(func(h map[string]string) {
			h["apns-priority"], h["apns-expiration"], h["apns-collapse-id"] = "5", "0", "c"
			h["apns-id"] = "123e4567-e89b-12d3-a456-4266554400a0"
		}), body: alert}, apnsResult{Status: 200}},
		{"voip topic", apnsRequest{path: path, headers: headers(func(h map[string]string) {
			h["apns-topic"], h["apns-push-type"] = testTopic+".voip", "voip"
		}), body: alert}, apnsResult{Status: 200}},
		{"GET", apnsRequest{method: http.MethodGet, path: path, headers: headers(nil)}, apnsResult{Status: 405, Reason: "MethodNotAllowed"}},
		{"bad path", apnsRequest{path: "/3/devices/" + ok, headers: headers(nil), body: alert}, apnsResult{Status: 404, Reason: "BadPath"}},
		{"missing device token", apnsRequest{path: "/3/device/", headers: headers(nil), body: alert}, apnsResult{Status: 400, Reason: "MissingDeviceToken"}},
		{"missing provider token", apnsRequest{path: path, headers: headers(func(h map[string]string) { delete(h, "authorization") }), body: alert},
			apnsResult{Status: 403, Reason: "MissingProviderToken"}},
		{"expired provider token", apnsRequest{path: path, headers: headers(func(h map[string]string) {
			h["authorization"] = "bearer " + providerToken(t, f.p8, testTeam, testKeyID, now.Add(-2*time.Hour))
		}), body: alert}, apnsResult{Status: 403, Reason: "ExpiredProviderToken"}},
		{"wrong key signature", apnsRequest{path: path, headers: headers(func(h map[string]string) {
			h["authorization"] = "bearer " + signES256(t, otherKey, testTeam, testKeyID, now)
		}), body: alert}, apnsResult{Status: 403, Reason: "InvalidProviderToken"}},
		{"unknown key id", apnsRequest{path: path, headers: headers(func(h map[string]string) {
			h["authorization"] = "bearer " + providerToken(t, f.p8, testTeam, "NOSUCHKEY1", now)
		}), body: alert}, apnsResult{Status: 403, Reason: "InvalidProviderToken"}},
		{"wrong team", apnsRequest{path: path, headers: headers(func(h map[string]string) {
			h["authorization"] = "bearer " + providerToken(t, f.p8, "OTHERTEAM1", testKeyID, now)
		}), body: alert}, apnsResult{Status: 403, Reason: "InvalidProviderToken"}},
		{"missing topic", apnsRequest{path: path, headers: headers(func(h map[string]string) { delete(h, "apns-topic") }), body: alert},
			apnsResult{Status: 400, Reason: "MissingTopic"}},
		{"topic of another app", apnsRequest{path: path, headers: headers(func(h map[string]string) { h["apns-topic"] = "com.example.other" }), body: alert},
			apnsResult{Status: 400, Reason: "TopicDisallowed"}},
		{"missing push type", apnsRequest{path: path, headers: headers(func(h map[string]string) { delete(h, "apns-push-type") }), body: alert},
			apnsResult{Status: 400, Reason: "InvalidPushType"}},
		{"bad push type", apnsRequest{path: path, headers: headers(func(h map[string]string) { h["apns-push-type"] = "loud" }), body: alert},
			apnsResult{Status: 400, Reason: "InvalidPushType"}},
		{"bad priority", apnsRequest{path: path, headers: headers(func(h map[string]string) { h["apns-priority"] = "7" }), body: alert},
			apnsResult{Status: 400, Reason: "BadPriority"}},
		{"bad expiration", apnsRequest{path: path, headers: headers(func(h map[string]string) { h["apns-expiration"] = "tomorrow" }), body: alert},
			apnsResult{Status: 400, Reason: "BadExpirationDate"}},
		{"long collapse id", apnsRequest{path: path, headers: headers(func(h map[string]string) { h["apns-collapse-id"] = strings.Repeat("c", 65) }), body: alert},
			apnsResult{Status: 400, Reason: "BadCollapseId"}},
		{"bad apns-id", apnsRequest{path: path, headers: headers(func(h map[string]string) { h["apns-id"] = "not-a-uuid" }), body: alert},
			apnsResult{Status: 400, Reason: "BadMessageId"}},
		{"short token", apnsRequest{path: "/3/device/abcd", headers: headers(nil), body: alert}, apnsResult{Status: 400, Reason: "BadDeviceToken"}},
		{"empty payload", apnsRequest{path: path, headers: headers(nil)}, apnsResult{Status: 400, Reason: "PayloadEmpty"}},
		{"payload too large", apnsRequest{path: path, headers: headers(nil), body: `{"aps":{"alert":"` + strings.Repeat("x", 4100) + `"}}`},
			apnsResult{Status: 413, Reason: "PayloadTooLarge"}},
		{"payload not json", apnsRequest{path: path, headers: headers(nil), body: `hello`}, apnsResult{Status: 400, Reason: "BadPayload"}},
		{"payload without aps", apnsRequest{path: path, headers: headers(nil), body: `{"alert":"hi"}`}, apnsResult{Status: 400, Reason: "BadPayload"}},
		{"unregistered", apnsRequest{path: "/3/device/" + APNsToken(Behaviour{Kind: Unregistered}, 5), headers: headers(nil), body: alert},
			apnsResult{Status: 410, Reason: "Unregistered", HasTime: true}},
		{"429", apnsRequest{path: "/3/device/" + APNsToken(Behaviour{Kind: TooManyRequests, Arg: 12}, 5), headers: headers(nil), body: alert},
			apnsResult{Status: 429, Reason: "TooManyRequests", RetryAfter: "12"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := f.doAPNs(t, tt.req)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
		})
	}
}

// APNs speaks HTTP/2 only: an HTTP/1.1 client is refused, whether it asks
// for http/1.1 by ALPN or not at all.
func TestAPNsRefusesHTTP1(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{})
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(f.emu.CACertPEM())
	for _, protos := range [][]string{{"http/1.1"}, nil} {
		tr := &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: pool, NextProtos: protos},
			ForceAttemptHTTP2: false,
			TLSNextProto:      map[string]func(string, *tls.Conn) http.RoundTripper{},
		}
		hc := &http.Client{Transport: tr}
		req, err := http.NewRequest(http.MethodPost, f.emu.APNsHost()+"/3/device/"+APNsToken(Behaviour{Kind: Accept}, 1), strings.NewReader(`{"aps":{}}`))
		if err != nil {
			t.Fatal(err)
		}
		res, err := hc.Do(req)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK || res.ProtoMajor != 1 {
				t.Errorf("ALPN %v: HTTP/1 request answered %s %d, want refusal", protos, res.Proto, res.StatusCode)
			}
		}
		tr.CloseIdleConnections()
	}
	if n := len(f.emu.Records()); n != 0 {
		t.Errorf("records = %d, want none for refused HTTP/1 requests", n)
	}
}
