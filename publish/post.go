package publish

import (
	"encoding/json"
	"net/url"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/storage"
)

// Bounds on a post. The payload limit itself (4096 bytes at FCM and APNs) is
// checked on the payloads the worker would build (payload.go).
const (
	MaxTitle = 200
	MaxBody  = 2000
	MaxURL   = 2048
	// MaxTags: a post is about a few interests, not a way to reach
	// everyone interested in anything.
	MaxTags       = 5
	MaxDataKeys   = 32
	MaxExternalID = 200
	MaxCollapse   = 64
	MaxAhead      = 366 * 24 * time.Hour
)

// PostRequest is a post as a publisher sends it (POST /v1/posts).
type PostRequest struct {
	Feed  string `json:"feed"`
	Title string `json:"title"`
	Body  string `json:"body"`
	// Language is the language of title and body, "" for the tenant's;
	// Translations are the texts in other languages, by language tag. Each
	// device gets the one of its language (crier.ChooseText).
	Language     string                `json:"language"`
	Translations map[string]crier.Text `json:"translations"`
	URL          string                `json:"url"`
	Data         map[string]string     `json:"data"`
	Tags         []string              `json:"tags"`
	Class        string                `json:"class"`
	ExternalID   string                `json:"external_id"`
	// Target is where the post is for: area slugs, a GeoJSON Polygon or
	// MultiPolygon, or {"lat", "lon", "radius_m"}.
	Target json.RawMessage `json:"target"`
	// Segment is an explicit audience expression (DESIGN.md's grammar).
	Segment     json.RawMessage `json:"segment"`
	CollapseKey string          `json:"collapse_key"`
	// Times are RFC 3339 strings, read here so that a bad one is refused
	// naming its field.
	PublishAt *string `json:"publish_at"`
	ExpiresAt *string `json:"expires_at"`
}

// validatePost checks a post's content and times field by field, and that
// the principal may send its class; the post comes back all but its
// audience and feed.
func (s *Service) validatePost(p crier.Principal, r PostRequest) (storage.Post, error) {
	post := storage.Post{Title: r.Title, Body: r.Body, URL: r.URL, Data: r.Data,
		ExternalID: r.ExternalID, CollapseKey: r.CollapseKey}
	if err := checkContent(r); err != nil {
		return post, err
	}
	post.Tags = crier.Distinct(r.Tags)
	class, err := postClass(p, r.Class)
	if err != nil {
		return post, err
	}
	post.Class = class
	if post.PublishAt, post.ExpiresAt, err = postTimes(s.cfg.Now(), r.PublishAt, r.ExpiresAt); err != nil {
		return post, err
	}
	if err := checkPayloadSize(post); err != nil {
		return post, err
	}
	if post.Language, post.Translations, err = checkTranslations(post, r.Language, r.Translations); err != nil {
		return post, err
	}
	return post, nil
}

// checkContent checks the text of a post: sizes, encoding, the link, tags
// and data.
func checkContent(r PostRequest) error {
	switch {
	case r.Title == "":
		return crier.Invalid("title", "is required")
	case utf8.RuneCountInString(r.Title) > MaxTitle:
		return crier.Invalid("title", "must be at most %d characters", MaxTitle)
	case r.Body == "":
		return crier.Invalid("body", "is required")
	case utf8.RuneCountInString(r.Body) > MaxBody:
		return crier.Invalid("body", "must be at most %d characters", MaxBody)
	case len(r.ExternalID) > MaxExternalID:
		return crier.Invalid("external_id", "must be at most %d bytes", MaxExternalID)
	case len(r.CollapseKey) > MaxCollapse:
		return crier.Invalid("collapse_key", "must be at most %d bytes", MaxCollapse)
	case len(r.Data) > MaxDataKeys:
		return crier.Invalid("data", "at most %d keys", MaxDataKeys)
	}
	for _, f := range []struct{ name, value string }{{"title", r.Title}, {"body", r.Body}, {"url", r.URL},
		{"external_id", r.ExternalID}, {"collapse_key", r.CollapseKey}} {
		if err := crier.CheckText(f.name, f.value); err != nil {
			return err
		}
	}
	if r.URL != "" && !validLink(r.URL) {
		return crier.Invalid("url", "must be an absolute http or https URL of at most %d bytes", MaxURL)
	}
	// In key order, so that the same body is always refused for the same
	// key.
	for _, k := range slices.Sorted(mapKeys(r.Data)) {
		if err := crier.CheckText("data", k); err != nil {
			return err
		}
		if err := checkDataKey(k); err != nil {
			return crier.Invalid("data."+k, "%v", err)
		}
		if err := crier.CheckText("data."+k, r.Data[k]); err != nil {
			return err
		}
	}
	return nil
}

// validLink reports whether u is an absolute http or https URL short
// enough to send.
func validLink(u string) bool {
	parsed, err := url.Parse(u)
	return err == nil && (parsed.Scheme == "https" || parsed.Scheme == "http") && parsed.Host != "" && len(u) <= MaxURL
}

// postClass reads a post's class, the principal's default when it names
// none, and checks that the principal may send it.
func postClass(p crier.Principal, name string) (crier.Class, error) {
	if name == "" {
		return p.DefaultClass(), nil
	}
	class, err := crier.ParseClass(name)
	if err != nil {
		return "", err
	}
	return class, p.MaySend(class)
}

// postTimes reads when a post is published (now, unless later within a
// year) and when it expires (after it is published).
func postTimes(now time.Time, publishAt, expiresAt *string) (time.Time, *time.Time, error) {
	publish := now
	if publishAt != nil {
		at, err := time.Parse(time.RFC3339, *publishAt)
		if err != nil {
			return now, nil, crier.Invalid("publish_at", "must be an RFC 3339 time such as 2026-12-01T18:00:00+01:00, not %q", *publishAt)
		}
		if at.After(now.Add(MaxAhead)) {
			return now, nil, crier.Invalid("publish_at", "must be within a year")
		}
		if at.After(now) {
			publish = at
		}
	}
	if expiresAt == nil {
		return publish, nil, nil
	}
	at, err := time.Parse(time.RFC3339, *expiresAt)
	if err != nil {
		return publish, nil, crier.Invalid("expires_at", "must be an RFC 3339 time such as 2026-12-01T18:00:00+01:00, not %q", *expiresAt)
	}
	if !at.After(publish) {
		return publish, nil, crier.Invalid("expires_at", "must be after the post is published")
	}
	return publish, &at, nil
}

func mapKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
