package worker_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/storage"
	"github.com/crier-push/crier/worker"
)

// TestGenericText: an ID-only push says who wrote in the device's language,
// matched as a post's translations are (the Norwegian family, then the
// tenant's language, then English), an exercise marked.
func TestGenericText(t *testing.T) {
	t.Parallel()
	const name = "Sandefjord kommune"
	for _, tc := range []struct {
		locale, tenantLang string
		exercise           bool
		title, lang        string
	}{
		{"nb", "nb", false, "Ny melding fra Sandefjord kommune", "nb"},
		{"nb-NO", "nb", false, "Ny melding fra Sandefjord kommune", "nb"},
		{"no", "nb", false, "Ny melding fra Sandefjord kommune", "nb"},
		{"nn-NO", "nb", false, "Ny melding frå Sandefjord kommune", "nn"},
		{"en-GB", "nb", false, "New message from Sandefjord kommune", "en"},
		{"en", "nn", false, "New message from Sandefjord kommune", "en"},
		{"sv-SE", "nb", false, "Nytt meddelande från Sandefjord kommune", "sv"},
		// A language crier has no words in: the tenant's, else English.
		{"pl", "nb", false, "Ny melding fra Sandefjord kommune", "nb"},
		{"pl", "nn", false, "Ny melding frå Sandefjord kommune", "nn"},
		{"pl", "fi", false, "New message from Sandefjord kommune", "en"},
		{"", "nb", false, "Ny melding fra Sandefjord kommune", "nb"},
		{"nb", "nb", true, "ØVELSE: Ny melding fra Sandefjord kommune", "nb"},
		{"en", "nb", true, "EXERCISE: New message from Sandefjord kommune", "en"},
	} {
		text, lang := worker.GenericText(tc.locale, name, tc.tenantLang, tc.exercise)
		if text.Title != tc.title || text.Body != "" || lang != tc.lang {
			t.Errorf("locale %q, tenant %q, exercise %v: %q / %q in %q, want %q and no body in %q",
				tc.locale, tc.tenantLang, tc.exercise, text.Title, text.Body, lang, tc.title, tc.lang)
		}
	}
}

// TestMessageIDOnly: in an ID-only tenant a post's push carries the post id
// and the generic text, none of its title, body, link, translations or
// data; an emergency post carries its text still, and so does every post of
// a tenant without the setting.
func TestMessageIDOnly(t *testing.T) {
	t.Parallel()
	expires := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	post := storage.Post{ID: 41, Title: "Kampstart flyttet", Body: "Søndagens kamp starter 18:00.",
		URL: "https://example.org/kamp", Data: map[string]string{"match": "42"}, Class: crier.ClassCommunity,
		CollapseKey: "kamp-42", ExpiresAt: &expires, TenantLanguage: "nb", TenantName: "Sandefjord kommune",
		IDOnlyPushes: true,
		Translations: crier.Translations{"en": {Title: "Kick-off moved", Body: "Sunday's match starts at 18:00."}}}

	for locale, title := range map[string]string{"nb": "Ny melding fra Sandefjord kommune", "en": "New message from Sandefjord kommune"} {
		m := worker.Message(post, 3, "tok", locale)
		if m.Title != title || m.Body != "" || m.URL != "" {
			t.Errorf("%s: title %q body %q url %q, want %q and neither body nor url", locale, m.Title, m.Body, m.URL, title)
		}
		wantData := map[string]string{"lang": locale, worker.DataIDOnly: "true"}
		if diff := cmp.Diff(wantData, m.Data); diff != "" {
			t.Errorf("%s: data (-want +got):\n%s", locale, diff)
		}
		if m.PostID != 41 || m.DeviceID != 3 || m.Token != "tok" || m.Class != crier.ClassCommunity ||
			m.CollapseKey != "kamp-42" || !m.ExpiresAt.Equal(expires) {
			t.Errorf("%s: message = %+v: the post id, class, collapse key and expiry must stay", locale, m)
		}
		for _, secret := range []string{"Kampstart", "Søndagens", "Kick-off", "Sunday", "example.org", "42"} {
			if strings.Contains(m.Title+m.Body+m.URL+strings.Join(mapValues(m.Data), " "), secret) {
				t.Errorf("%s: the push carries %q of the post: %+v", locale, secret, m)
			}
		}
	}
	if diff := cmp.Diff(map[string]string{"match": "42"}, post.Data); diff != "" {
		t.Errorf("Message changed the post's own data (-want +got):\n%s", diff)
	}

	alert := post
	alert.Class, alert.Title, alert.Body = crier.ClassEmergency, "Flom i sentrum", "Evakuer nå."
	if m := worker.Message(alert, 3, "tok", "nb"); m.Title != "Flom i sentrum" || m.Body != "Evakuer nå." ||
		m.URL != post.URL || m.Data[worker.DataIDOnly] != "" {
		t.Errorf("an emergency post of an ID-only tenant: %+v, want its own text", m)
	}
	open := post
	open.IDOnlyPushes = false
	if m := worker.Message(open, 3, "tok", "en"); m.Title != "Kick-off moved" || m.Body != "Sunday's match starts at 18:00." ||
		m.Data["match"] != "42" || m.Data[worker.DataIDOnly] != "" {
		t.Errorf("a post of a tenant without ID-only pushes: %+v, want its text", m)
	}
}

func mapValues(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}
