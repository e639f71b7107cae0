// Package fcm delivers crier's pushes to Android devices through Firebase Cloud
// Messaging (HTTP v1) with the Firebase Admin SDK, and classifies every failure
// once into a *providers.Error.
//
// # What the SDK retries on its own
//
// The SDK's messaging client wraps every send in its own retry loop
// (firebase.google.com/go/v4/internal.WithDefaultRetryConfig):
//
//   - it retries transport errors (dial, read, timeouts, resets, and a failed
//     OAuth token fetch, which reaches it as a transport error) and HTTP 503
//     only; 429, 500 and every other status come back at once;
//   - at most 4 retries, so up to 5 attempts inside one Send;
//   - waits 0s, 1s, 2s, 4s before them (exponential, factor 0.5), or the
//     server's Retry-After (seconds or HTTP date) when that is longer, so a
//     503 with "Retry-After: 90" holds Send for 90 s;
//   - if a wait would exceed 2 minutes it does not retry and returns the 503
//     at once, with its Retry-After (which this package reports);
//   - a wait ends when ctx is done, and Send then returns the bare ctx.Err()
//     instead of the last HTTP answer (reported here as Retry, reason
//     "context").
//
// It cannot be switched off or bounded through public API except by the
// context: the loop sits above the *http.Client, so option.WithHTTPClient
// would only change what each attempt goes through. So:
//
//   - the worker should give each Send a deadline (10–30 s), which also caps a
//     long Retry-After;
//   - a Retry from this package means the SDK has already tried up to five
//     times: the worker's backoff for FCM Retry should start in seconds, and
//     it should not retry 503s immediately;
//   - 429 (Throttled) and 500 are never retried by the SDK: that is all ours;
//   - a request that timed out after FCM accepted it may be delivered twice
//     (FCM has no idempotency key), whoever retries.
//
// To keep the one case where the SDK's retries are pure waste out of them, Send
// fetches (or reuses) the OAuth access token itself before calling the SDK: a
// rejected service account is then AuthBroken at once, not a 7-second series
// of retries ending in an opaque transport error.
package fcm

import (
	"cmp"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	firebase "firebase.google.com/go/v4"
	"firebase.google.com/go/v4/errorutils"
	"firebase.google.com/go/v4/messaging"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
	"google.golang.org/api/option"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/internal/configcheck"
	"github.com/crier-push/crier/providers"
)

// scope is the OAuth scope FCM's send needs, and all crier asks for.
const scope = "https://www.googleapis.com/auth/firebase.messaging"

// tokenTimeout bounds one OAuth token request; the oauth2 library takes no
// context for it.
const tokenTimeout = 30 * time.Second

// maxTTL is the longest time FCM keeps a message for an offline device (four
// weeks); a longer ttl is rejected with INVALID_ARGUMENT.
const maxTTL = 28 * 24 * time.Hour

// Config configures a Client for one tenant's Firebase project.
type Config struct {
	// ProjectID is the Firebase project that owns the registration tokens.
	ProjectID string
	// ServiceAccountJSON is the project's service account key file. Its
	// token_uri is honoured, so OAuth can run against an emulator.
	ServiceAccountJSON []byte
	// Endpoint is the FCM v1 base URL; default DefaultEndpoint. The
	// emulator's is e.g. "http://127.0.0.1:4321/v1".
	Endpoint string
	// Now is the clock used for TTLs and Retry-After dates; default
	// time.Now.
	Now func() time.Time
}

// DefaultEndpoint is FCM's own v1 base URL, the SDK's default.
const DefaultEndpoint = "https://fcm.googleapis.com/v1"

// WithDefaults fills in the zero fields.
func (c Config) WithDefaults() Config {
	c.Endpoint = cmp.Or(c.Endpoint, DefaultEndpoint)
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// validate refuses a config no client can be built from, naming the field.
// Errors never quote the service account, which holds a private key.
func (c Config) validate() error {
	if err := configcheck.First("fcm config",
		configcheck.Required("ProjectID", c.ProjectID),
		configcheck.Required("ServiceAccountJSON", c.ServiceAccountJSON),
		configcheck.URL("Endpoint", c.Endpoint, "http", "https"),
	); err != nil {
		return err
	}
	// Only service account keys: other credential types (external accounts)
	// would fetch tokens from URLs of their own choosing.
	var sa struct {
		Type        string `json:"type"`
		ClientEmail string `json:"client_email"`
		PrivateKey  string `json:"private_key"`
		TokenURI    string `json:"token_uri"`
	}
	if err := json.Unmarshal(c.ServiceAccountJSON, &sa); err != nil {
		return errors.New("fcm config: ServiceAccountJSON: not valid JSON")
	}
	if sa.Type != "service_account" {
		return fmt.Errorf("fcm config: ServiceAccountJSON: credentials type %q: want \"service_account\"", sa.Type)
	}
	if sa.ClientEmail == "" || sa.PrivateKey == "" || sa.TokenURI == "" {
		return errors.New("fcm config: ServiceAccountJSON: lacks client_email, private_key or token_uri")
	}
	block, _ := pem.Decode([]byte(sa.PrivateKey))
	if block == nil {
		return errors.New("fcm config: ServiceAccountJSON: private_key is not PEM")
	}
	if _, err := x509.ParsePKCS8PrivateKey(block.Bytes); err != nil {
		if _, err1 := x509.ParsePKCS1PrivateKey(block.Bytes); err1 != nil {
			return errors.New("fcm config: ServiceAccountJSON: private_key is not an RSA key")
		}
	}
	return nil
}

// Client sends messages to one Firebase project. It is safe for concurrent use
// and meant to live as long as the tenant's credentials do.
type Client struct {
	msg    *messaging.Client
	tokens oauth2.TokenSource
	now    func() time.Time
}

// New builds a client for cfg. It does not contact FCM or the token endpoint;
// the first Send fetches an access token (bounded by 30 s, not by Send's ctx).
func New(ctx context.Context, cfg Config) (*Client, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	// crier holds the OAuth token source itself (the SDK gets the same one)
	// so that Send can fetch or reuse the token before calling the SDK: the
	// SDK would turn a rejected service account into an opaque "network"
	// error and retry it for 7 seconds. The JWT flow posts to the key file's
	// token_uri.
	jwtConf, err := google.JWTConfigFromJSON(cfg.ServiceAccountJSON, scope)
	if err != nil {
		return nil, errors.New("fcm: service account json is not usable")
	}
	tokenCtx := context.WithValue(context.WithoutCancel(ctx), oauth2.HTTPClient, &http.Client{Timeout: tokenTimeout})
	tokens := jwtConf.TokenSource(tokenCtx) // caches the token until it nearly expires

	// No OpenTelemetry around each request: crier keeps its own metrics,
	// and the instrumentation costs about a fifth of a send's CPU.
	opts := []option.ClientOption{option.WithTokenSource(tokens), option.WithTelemetryDisabled()}
	if cfg.Endpoint != DefaultEndpoint {
		// The SDK's own default is left to the SDK, as it always was.
		opts = append(opts, option.WithEndpoint(cfg.Endpoint))
	}
	app, err := firebase.NewApp(ctx, &firebase.Config{ProjectID: cfg.ProjectID}, opts...)
	if err != nil {
		return nil, fmt.Errorf("fcm: new app: %w", err)
	}
	msg, err := app.Messaging(ctx)
	if err != nil {
		return nil, fmt.Errorf("fcm: messaging client: %w", err)
	}
	return &Client{msg: msg, tokens: tokens, now: cfg.Now}, nil
}

// Send pushes m and returns FCM's message name
// ("projects/{project}/messages/{id}"). Every failure is a *providers.Error.
func (c *Client) Send(ctx context.Context, m providers.Message) (string, error) {
	now := c.now()
	if err := check(m, now); err != nil {
		return "", err
	}
	if _, err := c.tokens.Token(); err != nil {
		return "", classifyToken(err, now)
	}
	name, err := c.msg.Send(ctx, build(m, now))
	if err != nil {
		return "", classify(ctx, err, now)
	}
	return name, nil
}

// Build returns the FCM message for m as it would be sent now. It assumes m
// passed the checks Send makes (class known, data keys allowed, not expired).
func Build(m providers.Message) *messaging.Message {
	return build(m, time.Now())
}

func build(m providers.Message, now time.Time) *messaging.Message {
	data := make(map[string]string, len(m.Data)+2)
	for k, v := range m.Data {
		data[k] = v
	}
	// crier's own keys win over a publisher's data of the same name: the app
	// relies on them to open the post.
	if m.PostID != 0 {
		data["post_id"] = strconv.FormatInt(m.PostID, 10)
	}
	if m.URL != "" {
		data["url"] = m.URL
	}
	if len(data) == 0 {
		data = nil
	}

	android := &messaging.AndroidConfig{
		CollapseKey: m.CollapseKey,
		Priority:    "normal",
		Notification: &messaging.AndroidNotification{
			ChannelID: "crier_" + string(m.Class),
		},
	}
	if m.CollapseKey != "" {
		// collapse_key only replaces messages not yet delivered; the tag
		// has Android replace the notification already shown, so the
		// newest message of an incident is the one the resident sees.
		android.Notification.Tag = m.CollapseKey
	}
	switch m.Class {
	case crier.ClassEmergency:
		android.Priority = "high"
		android.Notification.Visibility = messaging.VisibilityPublic
		android.Notification.Priority = messaging.PriorityMax
	case crier.ClassOfficial:
		android.Priority = "high"
	}
	if !m.ExpiresAt.IsZero() {
		// Whole seconds, rounded down, so a message never outlives its post.
		ttl := m.ExpiresAt.Sub(now).Truncate(time.Second)
		ttl = max(0, min(ttl, maxTTL))
		android.TTL = &ttl
	}

	return &messaging.Message{
		Token:        m.Token,
		Notification: &messaging.Notification{Title: m.Title, Body: m.Body},
		Data:         data,
		Android:      android,
	}
}

// CheckDataKey reports whether FCM accepts key in a message's data: it rejects
// "from", "notification", "message_type" and keys starting with "google" or
// "gcm" with INVALID_ARGUMENT. The API can call it when a post is published.
func CheckDataKey(key string) error {
	switch {
	case key == "":
		return errors.New("data key must not be empty")
	case key == "from", key == "notification", key == "message_type",
		strings.HasPrefix(key, "google"), strings.HasPrefix(key, "gcm"):
		return fmt.Errorf("data key %q is reserved by FCM", key)
	}
	return nil
}

// check rejects locally what FCM would reject for every device, or what must
// not be sent at all. Local reasons are lower case, FCM's upper case.
func check(m providers.Message, now time.Time) error {
	if err := providers.Check("fcm", m, now); err != nil {
		return err
	}
	for k := range m.Data {
		if err := CheckDataKey(k); err != nil {
			return &providers.Error{Kind: providers.Invalid, Reason: "reserved_data_key",
				Err: fmt.Errorf("fcm: %w", err)}
		}
	}
	return nil
}

// outcome is one row of the classification table.
type outcome struct {
	is     func(error) bool
	reason string
	kind   providers.Kind
}

// outcomes maps the SDK's error predicates to crier's kinds, most specific
// first: FCM's own error codes (from the FcmError detail), then the Google API
// status, which is all some answers carry.
var outcomes = [...]outcome{
	{messaging.IsUnregistered, "UNREGISTERED", providers.TokenDead},
	// The token belongs to another sender (project): it will never work for
	// this tenant.
	{messaging.IsSenderIDMismatch, "SENDER_ID_MISMATCH", providers.TokenDead},
	{messaging.IsQuotaExceeded, "QUOTA_EXCEEDED", providers.Throttled},
	// The tenant's APNs key or web push credentials in the Firebase console
	// are broken. That fails only iOS/web targets, but crier's FCM devices
	// are Android, so it is a configuration problem to fix, not a message one.
	{messaging.IsThirdPartyAuthError, "THIRD_PARTY_AUTH_ERROR", providers.AuthBroken},
	{messaging.IsInvalidArgument, "INVALID_ARGUMENT", providers.Invalid},
	{messaging.IsUnavailable, "UNAVAILABLE", providers.Retry},
	{messaging.IsInternal, "INTERNAL", providers.Retry},
	// FCM's project quota answers 429 RESOURCE_EXHAUSTED with a
	// google.rpc.ErrorInfo detail and no FcmError, so IsQuotaExceeded misses
	// it (firebase/firebase-admin-go#719).
	{errorutils.IsResourceExhausted, "RESOURCE_EXHAUSTED", providers.Throttled},
	// The service account was rejected or lacks the permission to send.
	{errorutils.IsUnauthenticated, "UNAUTHENTICATED", providers.AuthBroken},
	{errorutils.IsPermissionDenied, "PERMISSION_DENIED", providers.AuthBroken},
	{errorutils.IsInvalidArgument, "INVALID_ARGUMENT", providers.Invalid},
	// NOT_FOUND without the UNREGISTERED detail is a wrong project (path),
	// not a dead token: pausing the tenant is loud and recoverable, while
	// deactivating devices on a guess is silent and is not.
	{errorutils.IsNotFound, "NOT_FOUND", providers.AuthBroken},
	{errorutils.IsUnavailable, "UNAVAILABLE", providers.Retry},
	{errorutils.IsInternal, "INTERNAL", providers.Retry},
	{errorutils.IsDeadlineExceeded, "DEADLINE_EXCEEDED", providers.Retry},
	// Network failures and statuses the SDK has no code for.
	{errorutils.IsUnknown, "UNKNOWN", providers.Retry},
}

// classify turns the SDK's error into a *providers.Error.
func classify(ctx context.Context, err error, now time.Time) *providers.Error {
	pe := &providers.Error{Kind: providers.Retry, Err: fmt.Errorf("fcm send: %w", err)}
	resp := errorutils.HTTPResponse(err)
	if resp != nil {
		pe.Status = resp.StatusCode
		pe.RetryAfter = providers.RetryAfter(resp.Header.Get("Retry-After"), now)
	}

	// Without an answer from FCM, an ended context is the cause. The SDK
	// returns the bare context error when ctx ends between its retries, and
	// an UNKNOWN or DEADLINE_EXCEEDED error (without the cause) when it ends
	// mid-request, so keep ctx's error in the chain for errors.Is.
	if cerr := ctx.Err(); resp == nil && cerr != nil {
		pe.Reason = "context"
		if !errors.Is(err, cerr) {
			pe.Err = fmt.Errorf("fcm send: %w (%w)", cerr, err)
		}
		return pe
	}

	for _, o := range outcomes {
		if o.is(err) {
			pe.Kind, pe.Reason = o.kind, o.reason
			// FCM answers a malformed or foreign token with INVALID_ARGUMENT
			// and "The registration token is not a valid FCM registration
			// token"; the token, not the message, is what is wrong.
			if o.reason == "INVALID_ARGUMENT" && strings.Contains(strings.ToLower(err.Error()), "registration token") {
				pe.Kind = providers.TokenDead
			}
			return pe
		}
	}

	switch {
	case pe.Status >= 500:
		pe.Reason = "HTTP_" + strconv.Itoa(pe.Status)
	case pe.Status >= 400:
		pe.Kind, pe.Reason = providers.Invalid, "HTTP_"+strconv.Itoa(pe.Status)
	default:
		// Not an answer from FCM: the SDK's own validation refused the message.
		pe.Kind, pe.Reason = providers.Invalid, "invalid_message"
	}
	return pe
}

// classifyToken classifies a failure to get an OAuth access token: the token
// endpoint refusing the service account (deleted key, disabled account) is
// AuthBroken; its 5xx, 429 and network failures are Retry.
func classifyToken(err error, now time.Time) *providers.Error {
	pe := &providers.Error{Kind: providers.Retry, Reason: "token_fetch", Err: fmt.Errorf("fcm: oauth token: %w", err)}
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		return pe
	}
	// RFC 6749's error code, e.g. "invalid_grant". The JWT flow leaves
	// ErrorCode empty, so read it from the body.
	code := re.ErrorCode
	if code == "" {
		var body struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(re.Body, &body) == nil {
			code = body.Error
		}
	}
	if code != "" {
		pe.Reason = code
	}
	if re.Response != nil {
		pe.Status = re.Response.StatusCode
		pe.RetryAfter = providers.RetryAfter(re.Response.Header.Get("Retry-After"), now)
	}
	if pe.Status >= 400 && pe.Status < 500 && pe.Status != http.StatusTooManyRequests {
		pe.Kind = providers.AuthBroken
	}
	return pe
}
