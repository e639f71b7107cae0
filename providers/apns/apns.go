// Package apns delivers crier's pushes to iOS devices through Apple's Push
// Notification service with sideshow/apns2, over one long-lived HTTP/2
// connection per key, and classifies every failure once into a
// *providers.Error. apns2 retries nothing: retry policy is the worker's.
package apns

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sideshow/apns2"
	"github.com/sideshow/apns2/certificate"
	"github.com/sideshow/apns2/payload"
	"github.com/sideshow/apns2/token"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/internal/configcheck"
	"github.com/crier-push/crier/providers"
)

const (
	// maxPayload is APNs' limit for an alert notification's payload.
	maxPayload = 4096
	// maxCollapseID is APNs' limit for apns-collapse-id.
	maxCollapseID = 64
)

// Config configures a Client for one tenant's APNs key (or certificate) and app.
// Set KeyP8, KeyID and TeamID for token authentication, or CertPEM (with
// KeyPEM unless the key is in the same PEM) or CertP12 for certificate
// authentication.
type Config struct {
	// KeyP8 is the .p8 PKCS#8 ES256 signing key from Apple.
	KeyP8  []byte
	KeyID  string
	TeamID string

	// CertPEM is the APNs client certificate; KeyPEM its private key, if not
	// in CertPEM already. CertP12 is the same as PKCS#12. CertPassword
	// decrypts an encrypted PEM key or the PKCS#12 file.
	CertPEM      []byte
	KeyPEM       []byte
	CertP12      []byte
	CertPassword string

	// Topic is the app's bundle id.
	Topic string
	// Host is APNs' base URL; default DefaultHost. The emulator's is e.g.
	// "https://127.0.0.1:4433".
	Host string
	// RootCAs is PEM to trust in addition to the system roots, e.g. the
	// emulator's self-signed certificate.
	RootCAs []byte
	// Now is the clock used for expiry and Retry-After dates; default
	// time.Now.
	Now func() time.Time
}

// DefaultHost is Apple's production APNs: crier pushes to released apps.
const DefaultHost = apns2.HostProduction

// WithDefaults fills in the zero fields.
func (c Config) WithDefaults() Config {
	c.Host = cmp.Or(c.Host, DefaultHost)
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// validate refuses a config no client can be built from, naming the field:
// a topic, and one kind of credentials, complete. Errors never quote a key.
func (c Config) validate() error {
	tokenAuth := len(c.KeyP8) > 0
	certAuth := len(c.CertPEM) > 0 || len(c.CertP12) > 0
	return configcheck.First("apns config",
		configcheck.Required("Topic (the bundle id)", c.Topic),
		configcheck.If(tokenAuth && certAuth, "KeyP8 and a certificate (CertPEM or CertP12): set one, not both"),
		configcheck.If(len(c.CertPEM) > 0 && len(c.CertP12) > 0, "CertPEM and CertP12: set one, not both"),
		configcheck.If(tokenAuth && c.KeyID == "", "KeyID is required with KeyP8"),
		configcheck.If(tokenAuth && c.TeamID == "", "TeamID is required with KeyP8"),
		configcheck.If(!tokenAuth && !certAuth, "KeyP8 or a certificate (CertPEM or CertP12) is required"),
		// APNs is HTTP/2 over TLS only.
		configcheck.URL("Host", c.Host, "https"),
	)
}

// Client sends notifications for one key and topic. It is safe for concurrent
// use; keep one per key, since APNs treats rapid reconnection as an attack.
type Client struct {
	apns  *apns2.Client
	topic string
	now   func() time.Time
}

// New builds a client for cfg. It does not connect until the first Send.
func New(cfg Config) (*Client, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if len(cfg.RootCAs) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(cfg.RootCAs) {
			return nil, errors.New("apns: root CAs: no certificate found in PEM")
		}
		tlsConf.RootCAs = pool
	}

	var c *apns2.Client
	if len(cfg.KeyP8) > 0 {
		key, err := token.AuthKeyFromBytes(cfg.KeyP8)
		if err != nil {
			// apns2's errors name the problem, never the key's bytes.
			return nil, fmt.Errorf("apns: .p8 key: %w", err)
		}
		c = apns2.NewTokenClient(&token.Token{AuthKey: key, KeyID: cfg.KeyID, TeamID: cfg.TeamID})
	} else {
		cert, err := loadCertificate(cfg)
		if err != nil {
			return nil, err
		}
		tlsConf.Certificates = []tls.Certificate{cert}
		c = apns2.NewClient(cert)
	}
	c.Host = strings.TrimSuffix(cfg.Host, "/")
	c.HTTPClient.Transport = &retryAfterTransport{next: newTransport(tlsConf)}
	return &Client{apns: c, topic: cfg.Topic, now: cfg.Now}, nil
}

func loadCertificate(cfg Config) (tls.Certificate, error) {
	if len(cfg.CertP12) > 0 {
		cert, err := certificate.FromP12Bytes(cfg.CertP12, cfg.CertPassword)
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("apns: PKCS#12 certificate: %w", err)
		}
		return cert, nil
	}
	pemBytes := append(append([]byte{}, cfg.CertPEM...), '\n')
	pemBytes = append(pemBytes, cfg.KeyPEM...)
	cert, err := certificate.FromPemBytes(pemBytes, cfg.CertPassword)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("apns: PEM certificate: %w", err)
	}
	return cert, nil
}

// newTransport is apns2's transport, built on net/http rather than the
// deprecated x/net/http2.Transport, with the same semantics: HTTP/2 only, the
// same dial timeout and TCP keep-alive, and a ping after apns2.ReadIdleTimeout
// of silence so a dead connection is noticed. apns2's 60 s client timeout is
// kept on the http.Client.
func newTransport(tlsConf *tls.Config) *http.Transport {
	dialer := &net.Dialer{Timeout: apns2.TLSDialTimeout, KeepAlive: apns2.TCPKeepAlive}
	protocols := new(http.Protocols)
	protocols.SetHTTP2(true)
	return &http.Transport{
		DialContext:         dialer.DialContext,
		TLSClientConfig:     tlsConf,
		TLSHandshakeTimeout: apns2.TLSDialTimeout,
		Protocols:           protocols,
		HTTP2:               &http.HTTP2Config{SendPingTimeout: apns2.ReadIdleTimeout},
	}
}

// retryAfterTransport hands a response's Retry-After back to Send, since
// apns2.Response has no headers. Apple documents none, but a proxy or the
// emulator may send one.
type retryAfterTransport struct{ next *http.Transport }

type retryAfterKey struct{}

func (t *retryAfterTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(r)
	if err == nil {
		if slot, ok := r.Context().Value(retryAfterKey{}).(*string); ok {
			*slot = resp.Header.Get("Retry-After")
		}
	}
	return resp, err
}

// CloseIdleConnections lets apns2.Client.CloseIdleConnections work.
func (t *retryAfterTransport) CloseIdleConnections() { t.next.CloseIdleConnections() }

// Send pushes m and returns its apns-id. Every failure is a *providers.Error.
func (c *Client) Send(ctx context.Context, m providers.Message) (string, error) {
	now := c.now()
	if err := check(m, now); err != nil {
		return "", err
	}
	n := Build(m, c.topic)
	body, err := json.Marshal(n)
	if err != nil {
		return "", &providers.Error{Kind: providers.Invalid, Reason: "payload", Err: fmt.Errorf("apns: encode payload: %w", err)}
	}
	if len(body) > maxPayload {
		return "", &providers.Error{Kind: providers.Invalid, Reason: "payload_too_large",
			Err: fmt.Errorf("apns: payload is %d bytes, limit %d", len(body), maxPayload)}
	}
	n.Payload = body

	var retryAfterHeader string
	resp, err := c.apns.PushWithContext(context.WithValue(ctx, retryAfterKey{}, &retryAfterHeader), n)
	if err != nil {
		reason := "network"
		if ctx.Err() != nil {
			reason = "context"
		}
		return "", &providers.Error{Kind: providers.Retry, Reason: reason, Err: fmt.Errorf("apns push: %w", err)}
	}
	if resp.Sent() {
		return resp.ApnsID, nil
	}
	return "", classify(resp, providers.RetryAfter(retryAfterHeader, now))
}

// Build returns the notification for m. It assumes m passed the checks Send
// makes (class known, collapse id short enough, no "aps" data key).
func Build(m providers.Message, topic string) *apns2.Notification {
	p := payload.NewPayload().
		AlertTitle(m.Title).
		AlertBody(m.Body).
		Sound("default").
		ThreadID("crier_" + string(m.Class)).
		InterruptionLevel(payload.InterruptionLevelActive)
	priority := apns2.PriorityHigh
	switch m.Class {
	case crier.ClassEmergency:
		// Breaks through Focus; the app needs the Time Sensitive
		// Notifications capability. "critical" would also override the mute
		// switch but needs an entitlement Apple grants case by case.
		p.InterruptionLevel(payload.InterruptionLevelTimeSensitive)
	case crier.ClassCommunity:
		priority = apns2.PriorityLow
	}
	if m.Fetched {
		p.MutableContent()
	}
	for k, v := range m.Data {
		p.Custom(k, v)
	}
	// crier's own keys win over a publisher's data of the same name. post_id
	// is a string, as on Android, so the app reads both the same way.
	if m.PostID != 0 {
		p.Custom("post_id", strconv.FormatInt(m.PostID, 10))
	}
	if m.URL != "" {
		p.Custom("url", m.URL)
	}
	return &apns2.Notification{
		DeviceToken: m.Token,
		Topic:       topic,
		PushType:    apns2.PushTypeAlert,
		Priority:    priority,
		CollapseID:  m.CollapseKey,
		// Zero (no header) when the post does not expire: APNs then stores
		// the notification for an offline device. apns-expiration: 0 would
		// mean the opposite, deliver once or never.
		Expiration: m.ExpiresAt,
		Payload:    p,
	}
}

// CheckDataKey reports whether key may be used in a message's data: "aps" is
// Apple's. The API can call it when a post is published.
func CheckDataKey(key string) error {
	switch key {
	case "":
		return errors.New("data key must not be empty")
	case "aps":
		return errors.New(`data key "aps" is reserved by APNs`)
	}
	return nil
}

// check rejects locally what APNs would reject, or what must not be sent at
// all. Local reasons are snake case, Apple's are CamelCase.
func check(m providers.Message, now time.Time) error {
	if err := providers.Check("apns", m, now); err != nil {
		return err
	}
	if len(m.CollapseKey) > maxCollapseID {
		return &providers.Error{Kind: providers.Invalid, Reason: "collapse_id_too_long",
			Err: fmt.Errorf("apns: collapse key is %d bytes, limit %d", len(m.CollapseKey), maxCollapseID)}
	}
	for k := range m.Data {
		if err := CheckDataKey(k); err != nil {
			return &providers.Error{Kind: providers.Invalid, Reason: "reserved_data_key",
				Err: fmt.Errorf("apns: %w", err)}
		}
	}
	return nil
}

// reasons maps APNs' reason codes to crier's kinds. Configuration problems
// that fail every message of the tenant (topic, certificate, key) are
// AuthBroken, so the tenant is paused until fixed instead of failing each
// message one by one.
var reasons = map[string]providers.Kind{
	// 400
	apns2.ReasonBadCollapseID:          providers.Invalid,
	apns2.ReasonBadDeviceToken:         providers.TokenDead, // also a sandbox token sent to production
	apns2.ReasonBadExpirationDate:      providers.Invalid,
	apns2.ReasonBadMessageID:           providers.Invalid,
	apns2.ReasonBadPriority:            providers.Invalid,
	apns2.ReasonBadTopic:               providers.AuthBroken, // Config.Topic is wrong
	apns2.ReasonDeviceTokenNotForTopic: providers.TokenDead,
	apns2.ReasonDuplicateHeaders:       providers.Invalid,
	apns2.ReasonIdleTimeout:            providers.Retry,
	apns2.ReasonInvalidPushType:        providers.Invalid,
	apns2.ReasonMissingDeviceToken:     providers.TokenDead,
	apns2.ReasonMissingTopic:           providers.AuthBroken,
	apns2.ReasonPayloadEmpty:           providers.Invalid,
	apns2.ReasonTopicDisallowed:        providers.AuthBroken, // the key/certificate may not push to Config.Topic
	// 403
	apns2.ReasonBadCertificate:            providers.AuthBroken,
	apns2.ReasonBadCertificateEnvironment: providers.AuthBroken,
	apns2.ReasonExpiredProviderToken:      providers.AuthBroken, // apns2 renews tokens; expiry means a skewed clock
	apns2.ReasonForbidden:                 providers.AuthBroken,
	apns2.ReasonInvalidProviderToken:      providers.AuthBroken,
	apns2.ReasonMissingProviderToken:      providers.AuthBroken,
	// 404, 405
	apns2.ReasonBadPath:          providers.Invalid,
	apns2.ReasonMethodNotAllowed: providers.Invalid,
	// 410
	apns2.ReasonExpiredToken: providers.TokenDead,
	apns2.ReasonUnregistered: providers.TokenDead,
	// 413
	apns2.ReasonPayloadTooLarge: providers.Invalid,
	// 429
	apns2.ReasonTooManyProviderTokenUpdates: providers.Throttled,
	apns2.ReasonTooManyRequests:             providers.Throttled, // too many pushes to one device
	// 500, 503
	apns2.ReasonInternalServerError: providers.Retry,
	apns2.ReasonServiceUnavailable:  providers.Retry,
	apns2.ReasonShutdown:            providers.Retry,
}

// classify turns a rejection into a *providers.Error; reasons Apple adds later
// fall back to their status.
func classify(resp *apns2.Response, retryAfter time.Duration) *providers.Error {
	kind, ok := reasons[resp.Reason]
	if !ok {
		switch s := resp.StatusCode; {
		case s == http.StatusForbidden:
			kind = providers.AuthBroken
		case s == http.StatusGone:
			kind = providers.TokenDead
		case s == http.StatusTooManyRequests:
			kind = providers.Throttled
		case s >= 400 && s < 500:
			kind = providers.Invalid
		default:
			kind = providers.Retry
		}
	}
	reason := resp.Reason
	if reason == "" {
		reason = "HTTP_" + strconv.Itoa(resp.StatusCode)
	}
	err := fmt.Errorf("apns: %d %s", resp.StatusCode, reason)
	if !resp.Timestamp.IsZero() {
		err = fmt.Errorf("%w, token invalid since %s", err, resp.Timestamp.UTC().Format(time.RFC3339))
	}
	// Apple's 429 is about one device token ("too many requests for the same
	// device token"): a device throttled for ever must not keep retrying.
	device := resp.Reason == apns2.ReasonTooManyRequests
	return &providers.Error{Kind: kind, Reason: reason, Status: resp.StatusCode, RetryAfter: retryAfter, Device: device, Err: err}
}
