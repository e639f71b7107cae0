package crier

import (
	"cmp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// A post has its own text, in its own language, and may carry translations;
// each device gets the one closest to its locale (DESIGN.md): the exact
// language tag, then the same primary language (nb, nn and no are one
// family: the written forms of Norwegian), then the tenant's default
// language, then the post's own text.

// MaxTranslations bounds the languages a post may carry beside its own.
const MaxTranslations = 10

// LanguageRule says what a language tag must look like, for error messages.
const LanguageRule = "must be a language tag such as nb, nn, en or en-GB"

// CanonicalLanguage is tag written as BCP 47 writes it (en-GB, zh-Hant-TW,
// nb), with "_" read as "-", and whether it is a language tag at all: a
// primary language of 2 or 3 letters, then subtags of 1 to 8 letters or
// digits, at most MaxLocaleLength bytes.
func CanonicalLanguage(tag string) (string, bool) {
	tag = strings.ReplaceAll(strings.TrimSpace(tag), "_", "-")
	if tag == "" || len(tag) > MaxLocaleLength {
		return "", false
	}
	parts := strings.Split(tag, "-")
	for i, p := range parts {
		if !alnum(p) || len(p) > 8 || i == 0 && (len(p) < 2 || len(p) > 3 || !letters(p)) {
			return "", false
		}
		p = strings.ToLower(p)
		switch {
		case i == 0:
		case i <= 2 && len(p) == 2 && letters(p):
			p = strings.ToUpper(p) // region: GB
		case i == 1 && len(p) == 4 && letters(p):
			p = strings.ToUpper(p[:1]) + p[1:] // script: Hant
		}
		parts[i] = p
	}
	return strings.Join(parts, "-"), true
}

// CheckLanguage reads a language tag of the input, in its canonical form;
// a tag that is none is refused naming the field.
func CheckLanguage(field, tag string) (string, error) {
	c, ok := CanonicalLanguage(tag)
	if !ok {
		return "", Invalid(field, "%s, not %q", LanguageRule, tag)
	}
	return c, nil
}

// PrimaryLanguage is the primary language of a tag, lower case: "en" for
// en-GB and en_gb. It reads any string without complaint.
func PrimaryLanguage(tag string) string {
	tag = strings.ToLower(strings.TrimSpace(tag))
	// A POSIX locale such as nb_NO.UTF-8 or de_DE@euro is read too.
	p, _, _ := strings.Cut(tag, ".")
	p, _, _ = strings.Cut(p, "@")
	p, _, _ = strings.Cut(strings.ReplaceAll(p, "_", "-"), "-")
	return p
}

// LanguageFamily is the language a reader of tag also reads: "no" for
// Norwegian in any of its tags (nb Bokmål, nn Nynorsk, no), the primary
// language otherwise.
func LanguageFamily(tag string) string {
	switch p := PrimaryLanguage(tag); p {
	case "nb", "nn", "no":
		return "no"
	default:
		return p
	}
}

// ChooseText is the text a device of the given locale gets, and its
// language: the post's own text (in ownLang, "" for the tenant's) or one of
// its translations, by the closest language tag to the locale, else to the
// tenant's default language, else the own text. Ties go to the own text,
// then to the shorter tag (en before en-US), then alphabetically, so the
// choice never depends on a map's order.
func ChooseText(locale string, own Text, ownLang string, tr Translations, tenantDefault string) (Text, string) {
	ownLang = cmp.Or(ownLang, tenantDefault)
	for _, want := range []string{locale, tenantDefault} {
		if t, lang, ok := closest(want, own, ownLang, tr); ok {
			return t, lang
		}
	}
	return own, ownLang
}

// DeviceText is what a device of the locale is pushed of a post: the text
// ChooseText chooses and its language, an exercise's title marked as one in
// the device's language (in the text's, for a device without a locale):
// whatever language the text is in, its reader must see that it is an
// exercise.
func DeviceText(locale string, own Text, ownLang string, tr Translations, tenantDefault string, exercise bool) (Text, string) {
	t, lang := ChooseText(locale, own, ownLang, tr, tenantDefault)
	if exercise {
		markIn := locale
		if PrimaryLanguage(locale) == "" {
			markIn = lang
		}
		t.Title = MarkExercise(t.Title, markIn)
	}
	return t, lang
}

// The data keys crier adds to a push beside its post id and link: the
// language of its text, and that it is an exercise.
const (
	DataLanguage = "lang"
	DataExercise = "exercise"
)

// PushData is a post's data as a device is pushed it: a copy (the post's
// own map is shared by every send), with the language of the text chosen
// and the exercise flag added; they win over a publisher's keys of the same
// name, as the post id and link do.
func PushData(data map[string]string, lang string, exercise bool) map[string]string {
	out := make(map[string]string, len(data)+2)
	for k, v := range data {
		out[k] = v
	}
	if lang != "" {
		out[DataLanguage] = lang
	}
	if exercise {
		out[DataExercise] = "true"
	}
	return out
}

// exerciseMarks is the word an exercise's title starts with, by language
// family (LanguageFamily); English for the others.
var exerciseMarks = map[string]string{
	"no": "ØVELSE",
	"da": "ØVELSE",
	"sv": "ÖVNING",
	"de": "ÜBUNG",
	"fr": "EXERCICE",
	"en": "EXERCISE",
}

// ExerciseMark is the word that marks an exercise in a language.
func ExerciseMark(lang string) string {
	if m, ok := exerciseMarks[LanguageFamily(lang)]; ok {
		return m
	}
	return exerciseMarks["en"]
}

// MarkExercise starts an exercise's title with the mark of its language,
// "ØVELSE: Flom i sentrum", unless it starts with the mark already, as
// titles of exercises written by hand often do.
func MarkExercise(title, lang string) string {
	mark := ExerciseMark(lang)
	if len(title) >= len(mark) && strings.EqualFold(title[:len(mark)], mark) {
		if next, _ := utf8.DecodeRuneInString(title[len(mark):]); !unicode.IsLetter(next) {
			return title
		}
	}
	return mark + ": " + title
}

// closest finds the text whose language is closest to want, if any is
// related to it at all.
func closest(want string, own Text, ownLang string, tr Translations) (Text, string, bool) {
	if PrimaryLanguage(want) == "" {
		return Text{}, "", false
	}
	best, bestLang, bestScore, bestOwn := own, ownLang, languageScore(want, ownLang), true
	for lang, t := range tr {
		s := languageScore(want, lang)
		switch {
		case s < bestScore, s == 0,
			s == bestScore && (bestOwn || len(lang) > len(bestLang) || len(lang) == len(bestLang) && lang > bestLang):
			continue
		}
		best, bestLang, bestScore, bestOwn = t, lang, s, false
	}
	return best, bestLang, bestScore > 0
}

// languageScore is how well a text in lang serves a reader of want: 4 the
// same tag, 3 the same primary language, 2 or 1 another of the Norwegian
// family (Bokmål and "no" are the closer pair), 0 not at all.
func languageScore(want, lang string) int {
	w, l := foldLanguage(want), foldLanguage(lang)
	switch {
	case w == "" || l == "":
		return 0
	case w == l:
		return 4
	}
	wp, lp := PrimaryLanguage(w), PrimaryLanguage(l)
	switch {
	case wp == lp:
		return 3
	case LanguageFamily(wp) != "no" || LanguageFamily(lp) != "no":
		return 0
	case wp != "nn" && lp != "nn":
		return 2 // nb and no
	}
	return 1
}

// foldLanguage is a tag in the form tags are compared in: lower case, "_"
// read as "-", without a POSIX locale's encoding or modifier.
func foldLanguage(tag string) string {
	tag = strings.ToLower(strings.TrimSpace(tag))
	tag, _, _ = strings.Cut(tag, ".")
	tag, _, _ = strings.Cut(tag, "@")
	return strings.ReplaceAll(tag, "_", "-")
}

func alnum(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i] | 0x20; !(c >= 'a' && c <= 'z') && !(s[i] >= '0' && s[i] <= '9') {
			return false
		}
	}
	return true
}

func letters(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i] | 0x20; c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}
