package worker

import (
	"github.com/crier-push/crier"
	"github.com/crier-push/crier/providers"
	"github.com/crier-push/crier/storage"
)

// Message is the push a device of the given locale gets for a post: the
// post's text in the language closest to the locale, an exercise marked as
// one in that language (crier.DeviceText), and the language and exercise
// in its data (crier.PushData). publish sizes every language's payload
// the same way. A tenant's ID-only pushes carry none of the post's content
// (idOnlyMessage); its emergency posts still carry their text.
func Message(post storage.Post, deviceID int64, token, locale string) providers.Message {
	if idOnly(post) {
		return idOnlyMessage(post, deviceID, token, locale)
	}
	text, lang := crier.DeviceText(locale, crier.Text{Title: post.Title, Body: post.Body}, post.Language,
		post.Translations, post.TenantLanguage, post.Exercise)
	m := providers.Message{PostID: post.ID, DeviceID: deviceID, Token: token, Title: text.Title, Body: text.Body,
		URL: post.URL, Data: crier.PushData(post.Data, lang, post.Exercise), Class: post.Class, CollapseKey: post.CollapseKey}
	if post.ExpiresAt != nil {
		m.ExpiresAt = *post.ExpiresAt
	}
	return m
}
