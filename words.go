package crier

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The shapes of the words residents and publishers use, checked the same
// way wherever they come in (a device's choices, a post, a segment).
var (
	slugRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	tagRE    = regexp.MustCompile(`^[\p{Ll}\p{N}][\p{Ll}\p{N}_-]{0,63}$`)
	localeRE = regexp.MustCompile(`^[a-z]{2,3}(-[A-Za-z0-9]{1,8})*$`)
)

// MaxTagLength bounds a tag (a post's tags, a device's interests).
const MaxTagLength = 64

// MaxLocaleLength bounds a language tag.
const MaxLocaleLength = 35

// ValidSlug reports whether s is a slug: a lowercase letter or digit, then
// up to 62 lowercase letters, digits or hyphens.
func ValidSlug(s string) bool { return slugRE.MatchString(s) }

// SlugRule says what ValidSlug wants, for error messages.
const SlugRule = "must be a slug: a lowercase letter or digit, then up to 62 lowercase letters, digits or hyphens"

// ValidTag reports whether s is a tag: a lowercase word of letters, digits,
// - and _.
func ValidTag(s string) bool { return tagRE.MatchString(s) }

// CheckTags refuses tags that are not lowercase words, naming the first bad
// one as field[i].
func CheckTags(field string, tags []string) error {
	for i, t := range tags {
		if !ValidTag(t) {
			return Invalid(fmt.Sprintf("%s[%d]", field, i), "must be a lowercase tag of at most %d characters (letters, digits, - and _), not %q", MaxTagLength, t)
		}
	}
	return nil
}

// ValidLocale reports whether s is a language tag such as nb, nn, en or
// en-GB (BCP 47's shape: a primary language of 2 or 3 lowercase letters,
// then subtags).
func ValidLocale(s string) bool { return len(s) <= MaxLocaleLength && localeRE.MatchString(s) }

// CheckText refuses text that PostgreSQL cannot store or a phone cannot
// show: invalid UTF-8, NUL, and other control characters but for line
// breaks and tabs in free text.
func CheckText(field, s string) error {
	if !utf8.ValidString(s) {
		return Invalid(field, "must be valid UTF-8")
	}
	if strings.IndexByte(s, 0) >= 0 {
		return Invalid(field, "must not contain NUL characters")
	}
	return nil
}

// CheckWord refuses a one-line value (a tag, an installation id) that is
// empty, longer than maxBytes, or holds control characters.
func CheckWord(field, s string, maxBytes int) error {
	if s == "" {
		return Invalid(field, "must not be empty")
	}
	if len(s) > maxBytes {
		return Invalid(field, "must be at most %d bytes", maxBytes)
	}
	for _, r := range s {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return Invalid(field, "must be valid UTF-8 without control characters")
		}
	}
	return nil
}

// Count is an audience or delivery count as a principal may see it: exact
// for the municipality; for an organisation "<10" below ten and rounded to
// tens above, so that no club can count the residents of one address, nor
// tell two counts apart by one device.
type Count struct {
	N int
	// Below10 hides N: it is shown as "<10".
	Below10 bool
}

// MarshalJSON shows the count as a number, or as "<10".
func (c Count) MarshalJSON() ([]byte, error) {
	if c.Below10 {
		return []byte(`"<10"`), nil
	}
	return json.Marshal(c.N)
}

// UnmarshalJSON reads a number or "<10".
func (c *Count) UnmarshalJSON(b []byte) error {
	if string(b) == `"<10"` {
		*c = Count{Below10: true}
		return nil
	}
	c.Below10 = false
	return json.Unmarshal(b, &c.N)
}

// PrivacyFloor is the smallest count an organisation sees as a number.
const PrivacyFloor = 10

// Count is n as the principal may see it.
func (p Principal) Count(n int) Count {
	switch {
	case p.SeesExactCounts():
		return Count{N: n}
	case n < PrivacyFloor:
		return Count{Below10: true}
	}
	return Count{N: (n + 5) / 10 * 10}
}

// Distinct is the words (tags, interests, slugs) in their order, each once.
func Distinct(in []string) []string {
	seen := make(map[string]bool, len(in))
	out := make([]string, 0, len(in))
	for _, v := range in {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}
