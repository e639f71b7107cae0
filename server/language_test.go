package server_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/providers/emulator"
)

// TestEachDeviceItsLanguage: a post with translations reaches each phone,
// Android and iPhone, in its own language through the real SDKs and the
// emulator: the exact tag, the same primary language, the Norwegian family,
// then the tenant's language (nb), then the post's own text.
func TestEachDeviceItsLanguage(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.feed(t, s.muni, "nyheter", "Nyheter", false)
	ok := emulator.Behaviour{Kind: emulator.Accept}
	devices := map[string]struct {
		provider, locale string
		n                uint64 // the APNs token's number
	}{
		"en":    {"fcm", "en", 0},
		"en-GB": {"apns", "en-GB", 71},
		"nb":    {"apns", "nb", 72},
		"nn":    {"fcm", "nn-NO", 0},
		"de":    {"fcm", "de", 0},
		"sv":    {"apns", "sv-SE", 73},
	}
	token := func(id string) string {
		if d := devices[id]; d.provider == "apns" {
			return emulator.APNsToken(ok, d.n)
		}
		return emulator.FCMToken(ok, "lang-"+id)
	}
	for id, d := range devices {
		s.register("lang-"+id, map[string]any{"provider": d.provider, "token": token(id), "locale": d.locale, "follows": []string{"nyheter"}})
	}

	// Own text in the tenant's language (nb), English beside it.
	own := s.post(s.MuniKey, map[string]any{"feed": "nyheter", "title": "Vannet er stengt", "body": "Storgata i dag.",
		"translations": map[string]any{"en": map[string]string{"title": "Water is off", "body": "Storgata today."}}})
	// Own text in Swedish, nb and English beside it: a device of none of
	// them reads the tenant's nb, not the own Swedish.
	sv := s.post(s.MuniKey, map[string]any{"feed": "nyheter", "title": "Vattnet är avstängt", "body": "Storgatan i dag.", "language": "sv",
		"translations": map[string]any{"en_gb": map[string]string{"title": "Water is off", "body": "Storgata today."},
			"nb": map[string]string{"title": "Vannet er stengt", "body": "Storgata i dag."}}})
	s.waitDone(s.MuniKey, own)
	s.waitDone(s.MuniKey, sv)

	want := map[int64]map[string][2]string{ // post → device → title, lang
		own: {"en": {"Water is off", "en"}, "en-GB": {"Water is off", "en"}, "nb": {"Vannet er stengt", "nb"},
			"nn": {"Vannet er stengt", "nb"}, "de": {"Vannet er stengt", "nb"}, "sv": {"Vannet er stengt", "nb"}},
		sv: {"en": {"Water is off", "en-GB"}, "en-GB": {"Water is off", "en-GB"}, "nb": {"Vannet er stengt", "nb"},
			"nn": {"Vannet er stengt", "nb"}, "de": {"Vannet er stengt", "nb"}, "sv": {"Vattnet är avstängt", "sv"}},
	}
	got := map[int64]map[string][2]string{own: {}, sv: {}}
	for id := range devices {
		for _, p := range s.pushesTo(t, token(id)) {
			if _, ok := got[p.PostID]; ok {
				got[p.PostID][id] = [2]string{p.Title, p.Data["lang"]}
			}
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("title and lang each device got, by post (-want +got):\n%s", diff)
	}

	// The post shows its language and translations, in canonical tags.
	var st struct {
		Language     string             `json:"language"`
		Translations crier.Translations `json:"translations"`
	}
	if code := s.do("GET", "/v1/posts/"+strconv.FormatInt(sv, 10), s.MuniKey, nil, &st); code != http.StatusOK {
		t.Fatalf("GET post: %d", code)
	}
	wantTr := crier.Translations{"en-GB": {Title: "Water is off", Body: "Storgata today."}, "nb": {Title: "Vannet er stengt", Body: "Storgata i dag."}}
	if diff := cmp.Diff(wantTr, st.Translations); st.Language != "sv" || diff != "" {
		t.Errorf("GET post: language %q, translations (-want +got):\n%s", st.Language, diff)
	}

	// A translation too big for its payload is refused naming it.
	var e struct{ Error struct{ Field string } }
	big := map[string]any{"feed": "nyheter", "title": "Stort", "body": "Kort.",
		"translations": map[string]any{"uk": map[string]string{"title": "t", "body": strings.Repeat("😀", 2000)}}}
	if code := s.do("POST", "/v1/posts", s.MuniKey, big, &e); code != http.StatusBadRequest || e.Error.Field != "translations.uk.body" {
		t.Errorf("a translation over 4 KB: %d naming %q, want 400 naming translations.uk.body", code, e.Error.Field)
	}
}
