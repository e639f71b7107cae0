package publish

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/cap"
	"github.com/crier-push/crier/providers"
	"github.com/crier-push/crier/providers/apns"
	"github.com/crier-push/crier/providers/fcm"
	"github.com/crier-push/crier/storage"
)

// A post's text may come in several languages: its own title and body (in
// its language, "" for the tenant's) and translations by language tag. Each
// device gets one of them (crier.ChooseText), so each must fit the
// providers' 4 KB as the worker sends it: with the language in its data,
// and an exercise's title marked.

// checkTranslations checks a post's language and its translations, and that
// the payload of every language fits, naming the field (language,
// translations.en.title); it returns them in canonical form (en-GB). The
// post must carry all else its payload holds: URL, data, class, collapse
// key, and Exercise.
func checkTranslations(post storage.Post, lang string, tr map[string]crier.Text) (string, crier.Translations, error) {
	if lang == "" && len(tr) == 0 {
		return "", nil, nil
	}
	var err error
	if lang != "" {
		if lang, err = crier.CheckLanguage("language", lang); err != nil {
			return "", nil, err
		}
	}
	if len(tr) > crier.MaxTranslations {
		return "", nil, crier.Invalid("translations", "at most %d languages beside the post's own, not %d", crier.MaxTranslations, len(tr))
	}
	if err := checkPayloadIn(post, lang, "body"); err != nil {
		return "", nil, err
	}
	var out crier.Translations
	seen := map[string]string{}
	// In key order, so that the same body is always refused for the same
	// key.
	for _, key := range slices.Sorted(mapKeys(tr)) {
		field := "translations." + key
		l, ok := crier.CanonicalLanguage(key)
		if !ok {
			return "", nil, crier.Invalid("translations", "%q: %s", key, crier.LanguageRule)
		}
		if l == lang {
			return "", nil, crier.Invalid(field, "is the post's own language: its text is the post's title and body")
		}
		if other, dup := seen[l]; dup {
			return "", nil, crier.Invalid(field, "is the same language as translations.%s", other)
		}
		seen[l] = key
		t := tr[key]
		if err := checkText(field, t); err != nil {
			return "", nil, err
		}
		p := post
		p.Title, p.Body = t.Title, t.Body
		if err := checkPayloadIn(p, l, field+".body"); err != nil {
			return "", nil, err
		}
		if out == nil {
			out = crier.Translations{}
		}
		out[l] = t
	}
	return lang, out, nil
}

// checkText checks one language's title and body as a post's own are.
func checkText(field string, t crier.Text) error {
	switch {
	case t.Title == "":
		return crier.Invalid(field+".title", "is required")
	case utf8.RuneCountInString(t.Title) > MaxTitle:
		return crier.Invalid(field+".title", "must be at most %d characters", MaxTitle)
	case t.Body == "":
		return crier.Invalid(field+".body", "is required")
	case utf8.RuneCountInString(t.Body) > MaxBody:
		return crier.Invalid(field+".body", "must be at most %d characters", MaxBody)
	}
	if err := crier.CheckText(field+".title", t.Title); err != nil {
		return err
	}
	return crier.CheckText(field+".body", t.Body)
}

// unknownLanguage stands for the tenant's language in a payload's size: a
// tag as long as any may be.
var unknownLanguage = strings.Repeat("x", crier.MaxLocaleLength)

// checkPayloadIn builds the FCM and APNs payloads the worker sends a device
// reading the post's own text in lang ("" the tenant's) and refuses the
// post, naming field, if either is over the providers' limit.
func checkPayloadIn(p storage.Post, lang, field string) error {
	m := pushIn(p, cmp.Or(lang, unknownLanguage), widestMarkLocale)
	fm, err := json.Marshal(fcm.Build(m))
	if err != nil {
		return crier.Invalid(field, "cannot build the FCM payload: %v", err)
	}
	an, err := json.Marshal(apns.Build(m, "topic").Payload)
	if err != nil {
		return crier.Invalid(field, "cannot build the APNs payload: %v", err)
	}
	if n := max(len(fm), len(an)); n > MaxPayload {
		in := ""
		if lang != "" {
			in = " in " + lang
		}
		return crier.Invalid(field, "the payload%s would be %d bytes, over the providers' %d-byte limit: shorten its title or body, or the url or data",
			in, n, MaxPayload)
	}
	return nil
}

// widestMarkLocale is a locale whose exercise mark is as long as any: an
// exercise is marked in the device's language, whatever the text's, so
// each text is sized with the widest mark.
const widestMarkLocale = "en"

// pushIn is the message worker.Message makes of the post's own text, in
// lang, for a device of the locale, with the largest ids.
func pushIn(p storage.Post, lang, locale string) providers.Message {
	t, _ := crier.DeviceText(locale, crier.Text{Title: p.Title, Body: p.Body}, lang, nil, lang, p.Exercise)
	m := providers.Message{PostID: 1 << 53, DeviceID: 1 << 53, Token: "x", Title: t.Title, Body: t.Body, URL: p.URL,
		Data: crier.PushData(p.Data, lang, p.Exercise), Class: p.Class, CollapseKey: p.CollapseKey}
	if p.ExpiresAt != nil {
		m.ExpiresAt = *p.ExpiresAt
	}
	return m
}

// capTexts sets a CAP message's texts on its post: its first info block's
// title and body in that block's language, the other blocks' as its
// translations by theirs. Each block's text is made as capPost makes it
// (title from headline or event, body from description and instruction),
// and its body shortened until its payload fits the providers' 4 KB as a
// device of its language gets it; the post must carry all else its payload
// holds (URL, data, class, Exercise). Blocks that cannot be sent in a
// language of their own are skipped with a warning: a language tag that is
// none (the first block's text then counts as the tenant's language), the
// same language as an earlier block, more than crier.MaxTranslations.
func capTexts(a *cap.Alert, post *storage.Post) ([]string, error) {
	if len(a.Infos) == 0 {
		return nil, crier.Invalid("alert.info", "an alert needs an info block to be sent")
	}
	var warnings []string
	var langs []string
	texts := map[string]crier.Text{}
	for i, in := range a.Infos {
		path := fmt.Sprintf("alert.info[%d]", i)
		lang, ok := crier.CanonicalLanguage(in.Language)
		if !ok && i > 0 {
			warnings = append(warnings, fmt.Sprintf("%s.language: %q is no language tag: block skipped", path, in.Language))
			continue
		}
		if !ok {
			warnings = append(warnings, fmt.Sprintf("%s.language: %q is no language tag: sent as the tenant's language", path, in.Language))
		}
		if _, dup := texts[lang]; dup {
			warnings = append(warnings, fmt.Sprintf("%s.language: a second block in %s: skipped", path, lang))
			continue
		}
		if len(langs) > crier.MaxTranslations {
			warnings = append(warnings, fmt.Sprintf("%s: more than %d languages: skipped", path, crier.MaxTranslations+1))
			continue
		}
		t, err := fitText(*post, lang, capText(in))
		if err != nil {
			return nil, crier.Invalid(path+".description", "%v", crier.AsError(err).Message)
		}
		if err := checkText(path, t); err != nil {
			e := *crier.AsError(err)
			e.Field = strings.NewReplacer(".title", ".headline", ".body", ".description").Replace(e.Field)
			return nil, &e
		}
		texts[lang] = t
		langs = append(langs, lang)
	}
	post.Language = langs[0]
	own := texts[post.Language]
	post.Title, post.Body, post.Translations = own.Title, own.Body, nil
	for _, l := range langs[1:] {
		if post.Translations == nil {
			post.Translations = crier.Translations{}
		}
		post.Translations[l] = texts[l]
	}
	return warnings, nil
}

// capText is the text of an info block: its headline (or event) and its
// description and instruction (or event), within a post's bounds.
func capText(in cap.Info) crier.Text {
	var parts []string
	for _, t := range []string{in.Description, in.Instruction} {
		if t != "" {
			parts = append(parts, t)
		}
	}
	return crier.Text{Title: truncate(cmp.Or(in.Headline, in.Event), MaxTitle),
		Body: truncate(cmp.Or(strings.Join(parts, "\n\n"), in.Event), MaxBody)}
}

// fitText shortens a text's body until the payload of a device reading it
// in lang fits the providers' 4 KB: a long alert in a script of several
// bytes a character can outgrow it, and is shortened rather than refused.
func fitText(post storage.Post, lang string, t crier.Text) (crier.Text, error) {
	for {
		post.Title, post.Body = t.Title, t.Body
		err := checkPayloadIn(post, lang, "body")
		if err == nil {
			return t, nil
		}
		n := utf8.RuneCountInString(t.Body) * 4 / 5
		if n < 40 {
			return t, err
		}
		t.Body = truncate(t.Body, n)
	}
}
