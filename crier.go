// Package crier is the domain model: the words of DESIGN.md as types
// (classes, post and delivery states, roles, providers, publishers, feeds),
// the principal an API key or a user speaks for with the authorisation
// questions asked of it, and the one error type every parser and rule
// returns. It imports nothing of crier's; every other package may import it.
package crier

import "fmt"

// Class is a post's class. It chooses the queue, the Android notification
// channel and the iOS interruption level.
type Class string

// The classes.
const (
	ClassCommunity Class = "community"
	ClassOfficial  Class = "official"
	ClassEmergency Class = "emergency"
)

// Classes lists every class, lowest priority first.
var Classes = []Class{ClassCommunity, ClassOfficial, ClassEmergency}

// ParseClass reads a class by name.
func ParseClass(s string) (Class, error) {
	switch c := Class(s); c {
	case ClassCommunity, ClassOfficial, ClassEmergency:
		return c, nil
	}
	return "", Invalid("class", "must be community, official or emergency, not %q", s)
}

// PostState is where a post is on its way: accepted, snapshotted into
// deliveries while dispatching, then sending until every delivery has an
// outcome (shown as done); or cancelled.
type PostState string

// The post states.
const (
	// An alert of a tenant with two-person release waits for a second
	// person's approval, and lapses if none comes in time.
	PostAwaitingApproval PostState = "awaiting_approval"
	PostLapsed           PostState = "lapsed"
	PostAccepted         PostState = "accepted"
	PostDispatching      PostState = "dispatching"
	PostSending          PostState = "sending"
	PostDone             PostState = "done"
	PostCancelled        PostState = "cancelled"
)

// DeliveryState is the state of one (post, device) pair.
type DeliveryState string

// The delivery states.
const (
	DeliveryPending   DeliveryState = "pending"
	DeliverySent      DeliveryState = "sent"
	DeliveryFailed    DeliveryState = "failed"
	DeliveryDeadToken DeliveryState = "dead_token"
	DeliveryDeferred  DeliveryState = "deferred"
	DeliverySkipped   DeliveryState = "skipped"
	DeliveryCancelled DeliveryState = "cancelled"
	DeliveryExpired   DeliveryState = "expired"
)

// DeliveryStates lists every delivery state, in the order a post's counts
// show them.
var DeliveryStates = []DeliveryState{DeliveryPending, DeliverySent, DeliveryFailed, DeliveryDeadToken,
	DeliveryDeferred, DeliverySkipped, DeliveryCancelled, DeliveryExpired}

// Final reports whether a delivery in this state is over: nothing more
// will be sent for it.
func (s DeliveryState) Final() bool {
	return s != DeliveryPending && s != DeliveryDeferred
}

// Provider is the push service a device is reached through.
type Provider string

// The providers.
const (
	FCM  Provider = "fcm"
	APNs Provider = "apns"
)

// ParseProvider reads a provider by name.
func ParseProvider(s string) (Provider, error) {
	switch p := Provider(s); p {
	case FCM, APNs:
		return p, nil
	}
	return "", Invalid("provider", "must be fcm or apns, not %q", s)
}

// Platform is a device's operating system.
type Platform string

// The platforms.
const (
	Android Platform = "android"
	IOS     Platform = "ios"
)

// DefaultPlatform is the platform a provider implies: FCM also reaches iOS,
// so the app may say otherwise.
func (p Provider) DefaultPlatform() Platform {
	if p == APNs {
		return IOS
	}
	return Android
}

// Role is a publisher's role.
type Role string

// The roles.
const (
	RoleMunicipality Role = "municipality"
	RoleOrganisation Role = "organisation"
)

// Publisher is who sends: the municipality itself or an organisation.
type Publisher struct {
	ID       int64
	TenantID int64
	Slug     string
	Name     string
	Role     Role
}

// Feed is a publisher's channel. A mandatory feed reaches every device of
// the tenant.
type Feed struct {
	ID          int64
	TenantID    int64
	PublisherID int64
	Slug        string
	Name        string
	Mandatory   bool
}

func (f Feed) String() string { return fmt.Sprintf("feed %q", f.Slug) }

// MsgType is a message's place in an incident (CAP's msgType): the first
// alert, an update of it, or its cancel (the all-clear).
type MsgType string

// The message types.
const (
	MsgAlert  MsgType = "alert"
	MsgUpdate MsgType = "update"
	MsgCancel MsgType = "cancel"
)

// Text is a post's title and body in one language.
type Text struct {
	Title string `json:"title"`
	Body  string `json:"body"`
}

// Translations are a post's texts in other languages than its own, by
// language tag ("en", "en-GB", "nn").
type Translations map[string]Text
