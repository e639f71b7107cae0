// Package providers holds what the push providers have in common: the message a
// worker hands to a provider, and the typed outcomes a provider answers with.
// The subpackages fcm and apns talk to Google's and Apple's services through
// their real client libraries; emulator stands in for both in tests and demos.
package providers

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/crier-push/crier"
)

// Names of the providers, as stored on devices.
const (
	FCM  = "fcm"
	APNs = "apns"
)

// Message is one push to one device, as the worker hands it to a provider.
type Message struct {
	PostID   int64
	DeviceID int64
	Token    string

	Title string
	Body  string
	URL   string
	Data  map[string]string

	Class       crier.Class
	CollapseKey string
	// ExpiresAt is zero when the post does not expire.
	ExpiresAt time.Time
	// Fetched: the push carries only the post id and a generic text, and
	// the app fetches the post (ID-only pushes). On iOS it is marked
	// mutable-content, so the app's notification service extension may
	// fetch and show the post's own text before the notification appears.
	Fetched bool
}

// Kind classifies a provider's answer into what crier should do about it.
type Kind int

const (
	// Retry: a transient failure (5xx, network); try again later with backoff.
	Retry Kind = iota + 1
	// Throttled: the provider asked us to slow down (429); try again after
	// RetryAfter without counting it as a failed attempt.
	Throttled
	// TokenDead: the token will never work again; deactivate the device.
	TokenDead
	// Invalid: the message itself was rejected; retrying cannot help.
	Invalid
	// AuthBroken: the tenant's credentials were rejected; pause the tenant and
	// provider until they are fixed.
	AuthBroken
)

func (k Kind) String() string {
	switch k {
	case Retry:
		return "retry"
	case Throttled:
		return "throttled"
	case TokenDead:
		return "token_dead"
	case Invalid:
		return "invalid"
	case AuthBroken:
		return "auth_broken"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Error is a provider's failure, classified once at the provider boundary.
type Error struct {
	Kind Kind
	// Reason is the provider's own short code, e.g. "UNREGISTERED" or
	// "BadDeviceToken"; it is what the delivery records as its last error.
	Reason string
	// Status is the HTTP status the provider answered with, 0 if none.
	Status int
	// RetryAfter is the provider's Retry-After, zero if it gave none.
	RetryAfter time.Duration
	// Device: the answer concerns this device token only (APNs' 429 is
	// per token), not the tenant's whole provider.
	Device bool
	Err    error
}

func (e *Error) Error() string {
	s := fmt.Sprintf("%s: %s", e.Kind, e.Reason)
	if e.Status != 0 {
		s += fmt.Sprintf(" (HTTP %d)", e.Status)
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// KindOf returns the kind of a provider error, and Retry for any error that was
// not classified (a network failure, a context deadline).
func KindOf(err error) Kind {
	var pe *Error
	if errors.As(err, &pe) {
		return pe.Kind
	}
	return Retry
}

// Check refuses, before any request, what no provider would take or what
// must not be sent at all: an unknown class, an empty token, an expired
// post. name prefixes the error ("fcm", "apns").
func Check(name string, m Message, now time.Time) error {
	switch m.Class {
	case crier.ClassCommunity, crier.ClassOfficial, crier.ClassEmergency:
	default:
		return &Error{Kind: Invalid, Reason: "unknown_class", Err: fmt.Errorf("%s: unknown class %q", name, m.Class)}
	}
	if m.Token == "" {
		return &Error{Kind: TokenDead, Reason: "missing_token", Err: fmt.Errorf("%s: empty device token", name)}
	}
	if !m.ExpiresAt.IsZero() && !m.ExpiresAt.After(now) {
		return &Error{Kind: Invalid, Reason: "expired",
			Err: fmt.Errorf("%s: post expired at %s", name, m.ExpiresAt.UTC().Format(time.RFC3339))}
	}
	return nil
}

// RetryAfter reads a Retry-After value, delay-seconds or an HTTP date, as a
// duration from now; zero if absent, malformed or past.
func RetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Duration(max(s, 0)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
