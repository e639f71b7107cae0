package worker

import (
	"github.com/crier-push/crier"
	"github.com/crier-push/crier/providers"
	"github.com/crier-push/crier/storage"
)

// DataIDOnly marks an ID-only push in its data ("id_only": "true"): the
// app fetches the post whose id the push carries as "post_id" from
// GET /v1/devices/{installation_id}/posts/{post_id}.
const DataIDOnly = "id_only"

// newMessageFrom is the start of an ID-only push's title, "Ny melding fra
// Sandefjord kommune", by language: English is the text of last resort,
// the others are chosen as a post's translations are (crier.ChooseText).
var (
	newMessageFrom   = crier.Text{Title: "New message from "}
	newMessageFromIn = crier.Translations{
		"nb": {Title: "Ny melding fra "},
		"nn": {Title: "Ny melding frå "},
		"sv": {Title: "Nytt meddelande från "},
		"da": {Title: "Ny besked fra "},
		"de": {Title: "Neue Nachricht von "},
	}
)

// GenericText is the text of an ID-only push to a device of the locale, and
// its language: "New message from <tenant>" in the language closest to the
// locale, else in the tenant's default language, else in English; an
// exercise marked as one. It names the tenant, never the feed or publisher:
// which club or service writes to a resident can say as much as what it
// writes.
func GenericText(locale, tenantName, tenantLang string, exercise bool) (crier.Text, string) {
	t, lang := crier.DeviceText(locale, newMessageFrom, "en", newMessageFromIn, tenantLang, exercise)
	t.Title += tenantName
	return t, lang
}

// idOnly reports whether a post is pushed without its content: its tenant
// asked for it, and it is no emergency, which a phone must be able to show
// without a network round trip.
func idOnly(post storage.Post) bool {
	return post.IDOnlyPushes && post.Class != crier.ClassEmergency
}

// idOnlyMessage is the push of a post in an ID-only tenant: the generic
// text, no body, link, translation or publisher data, the post id (the
// providers add it as "post_id") and the language and exercise flag.
// Class, collapse key and expiry stay: they decide how the phone and the
// provider treat the push.
func idOnlyMessage(post storage.Post, deviceID int64, token, locale string) providers.Message {
	text, lang := GenericText(locale, post.TenantName, post.TenantLanguage, post.Exercise)
	data := crier.PushData(nil, lang, post.Exercise)
	data[DataIDOnly] = "true"
	m := providers.Message{PostID: post.ID, DeviceID: deviceID, Token: token, Title: text.Title,
		Data: data, Class: post.Class, CollapseKey: post.CollapseKey, Fetched: true}
	if post.ExpiresAt != nil {
		m.ExpiresAt = *post.ExpiresAt
	}
	return m
}
