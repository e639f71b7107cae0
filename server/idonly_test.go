package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/crier-push/crier/providers/emulator"
)

// idOnlyDevice is a phone of the ID-only test.
type idOnlyDevice struct {
	installation, provider, locale, token string
}

// fetchPost is the app's fetch of a post with the app key and, if not "",
// a device secret; it returns the status and the answer.
func (s *stack) fetchPost(installation string, postID int64, secret string) (int, []byte) {
	s.t.Helper()
	h := http.Header{"Authorization": {"Bearer " + s.AppKey}}
	if secret != "" {
		h.Set("X-Device-Secret", secret)
	}
	code, _, body, err := s.send("GET", "/v1/devices/"+installation+"/posts/"+strconv.FormatInt(postID, 10), h, "")
	if err != nil {
		s.t.Fatal(err)
	}
	return code, body
}

// notificationBody is the body text of a push as the emulator took it,
// FCM's notification.body or APNs' aps.alert.body.
func notificationBody(t *testing.T, r emulator.Record) string {
	t.Helper()
	var b struct {
		Message struct{ Notification struct{ Body string } } // FCM
		APS     struct {
			Alert struct{ Body string }
		} `json:"aps"`
	}
	if err := json.Unmarshal([]byte(r.Body), &b); err != nil {
		t.Fatal(err)
	}
	return b.Message.Notification.Body + b.APS.Alert.Body
}

// TestIDOnlyPushes: a tenant with ID-only pushes sends through the real
// SDKs a push that carries the post id and a generic text in the phone's
// language, and none of the post's title, body, link, data or translations
// (as the emulator, standing for Google and Apple, recorded it); the app
// fetches the content with its device secret, only of a post it was sent.
// An emergency post still carries its text, and with the setting off every
// post does again.
func TestIDOnlyPushes(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	ctx := context.Background()
	s.feed(t, s.muni, "nyheter", "Nyheter", false)
	s.feed(t, s.muni, "kultur", "Kultur", false)
	ok := emulator.Behaviour{Kind: emulator.Accept}
	phones := []idOnlyDevice{
		{"idonly-android", "fcm", "nb", emulator.FCMToken(ok, "idonly-android")},
		{"idonly-iphone", "apns", "en-GB", emulator.APNsToken(ok, 1301)},
	}
	for _, p := range phones {
		s.register(p.installation, map[string]any{"provider": p.provider, "token": p.token, "locale": p.locale,
			"follows": []string{"nyheter"}})
	}
	// A phone that follows only kultur: the nyheter post is none of its.
	bystander := idOnlyDevice{"idonly-bystander", "fcm", "nb", emulator.FCMToken(ok, "idonly-bystander")}
	s.register(bystander.installation, map[string]any{"provider": "fcm", "token": bystander.token, "follows": []string{"kultur"}})

	if err := s.db.SetTenantIDOnlyPushes(ctx, s.tenant.ID, true); err != nil {
		t.Fatal(err)
	}
	// Every word of the post's content: none may reach a provider.
	content := []string{"Vannledningsbrudd", "Kirkegata stengt til klokka femten", "Water main burst",
		"Kirkegata closed until three", "https://example.org/vannbrudd", "gate-4711"}
	id := s.post(s.MuniKey, map[string]any{"feed": "nyheter", "title": content[0], "body": content[1],
		"url": content[4], "data": map[string]string{"street": content[5]}, "collapse_key": "vann",
		"translations": map[string]any{"en": map[string]string{"title": content[2], "body": content[3]}}})
	kultur := s.post(s.MuniKey, map[string]any{"feed": "kultur", "title": "Konsert i parken", "body": "Lørdag kl. 18."})
	s.waitDone(s.MuniKey, id)
	s.waitDone(s.MuniKey, kultur)

	wantTitle := map[string]string{"nb": "Ny melding fra Sandefjord kommune", "en-GB": "New message from Sandefjord kommune"}
	for _, p := range phones {
		recs := s.emu.RecordsFor(p.token)
		if len(recs) == 0 {
			t.Fatalf("%s: the emulator took no push", p.installation)
		}
		for _, r := range recs {
			for _, word := range content {
				if strings.Contains(r.Body, word) {
					t.Errorf("%s (%s): the push carries %q of the post:\n%s", p.installation, r.Provider, word, r.Body)
				}
			}
			if b := notificationBody(t, r); b != "" {
				t.Errorf("%s (%s): the push has the body %q, want none", p.installation, r.Provider, b)
			}
			if r.Provider == "apns" && !strings.Contains(r.Body, `"mutable-content":1`) {
				t.Errorf("%s: an ID-only APNs push is not mutable-content, so no service extension can show the post:\n%s", p.installation, r.Body)
			}
		}
		got := s.pushesTo(t, p.token)
		if len(got) != 1 {
			t.Fatalf("%s: %d pushes accepted, want 1", p.installation, len(got))
		}
		if g := got[0]; g.PostID != id || g.Title != wantTitle[p.locale] || g.Data["id_only"] != "true" || g.Data["url"] != "" {
			t.Errorf("%s: push of post %d titled %q with data %v; want post %d titled %q, id_only and no url",
				p.installation, g.PostID, g.Title, g.Data, id, wantTitle[p.locale])
		}
	}

	// The app fetches what the push left out, in its phone's language.
	type fetched struct {
		ID    int64  `json:"id"`
		Title string `json:"title"`
		Body  string `json:"body"`
		URL   string `json:"url"`
		Lang  string `json:"lang"`
		Feed  struct {
			Slug, Name string
		} `json:"feed"`
		Data   map[string]string `json:"data"`
		SentAt *time.Time        `json:"sent_at"`
	}
	want := map[string]fetched{
		"idonly-android": {ID: id, Title: content[0], Body: content[1], Lang: "nb"},
		"idonly-iphone":  {ID: id, Title: content[2], Body: content[3], Lang: "en"},
	}
	for _, p := range phones {
		code, raw := s.fetchPost(p.installation, id, s.secrets.Get(p.installation))
		var f fetched
		if code != http.StatusOK || json.Unmarshal(raw, &f) != nil {
			t.Fatalf("%s: fetch: %d %s", p.installation, code, raw)
		}
		w := want[p.installation]
		if f.ID != w.ID || f.Title != w.Title || f.Body != w.Body || f.Lang != w.Lang || f.URL != content[4] ||
			f.Data["street"] != content[5] || f.Feed.Slug != "nyheter" || f.Feed.Name != "Nyheter" || f.SentAt == nil {
			t.Errorf("%s: fetched %s; want %+v with its url, data, feed and sent time", p.installation, raw, w)
		}
	}
	android := phones[0]
	for _, c := range []struct {
		name         string
		installation string
		post         int64
		secret       string
		want         int
	}{
		{"without the device secret", android.installation, id, "", http.StatusUnauthorized},
		{"with another phone's secret", android.installation, id, s.secrets.Get(phones[1].installation), http.StatusForbidden},
		{"a post the phone was not sent", android.installation, kultur, s.secrets.Get(android.installation), http.StatusNotFound},
		{"a phone not sent the post, with its own secret", bystander.installation, id, s.secrets.Get(bystander.installation), http.StatusNotFound},
		{"a post that does not exist", android.installation, kultur + 1000, s.secrets.Get(android.installation), http.StatusNotFound},
		{"an unknown installation", "idonly-nobody", id, s.secrets.Get(android.installation), http.StatusNotFound},
	} {
		code, raw := s.fetchPost(c.installation, c.post, c.secret)
		if code != c.want {
			t.Errorf("fetch %s: %d %s, want %d", c.name, code, raw, c.want)
		}
		for _, word := range content {
			if code != http.StatusOK && strings.Contains(string(raw), word) {
				t.Errorf("fetch %s: the refusal tells %q: %s", c.name, word, raw)
			}
		}
	}

	// An emergency alert carries its text whatever the setting: a phone
	// shows it without a round trip.
	alert := s.post(s.MuniKey, map[string]any{"feed": "nyheter", "class": "emergency",
		"title": "Flom ved Kirkebrua", "body": "Hold deg unna elvebredden."})
	s.waitDone(s.MuniKey, alert)
	for _, p := range phones {
		var found bool
		for _, r := range s.emu.RecordsFor(p.token) {
			if !r.Accepted() || !strings.Contains(r.Body, `"post_id":"`+strconv.FormatInt(alert, 10)+`"`) {
				continue
			}
			found = true
			if !strings.Contains(r.Body, "Flom ved Kirkebrua") || notificationBody(t, r) != "Hold deg unna elvebredden." {
				t.Errorf("%s: the alert's push lacks its text:\n%s", p.installation, r.Body)
			}
		}
		if !found {
			t.Errorf("%s: no push of the alert", p.installation)
		}
	}

	// A cancelled post is gone for the app as well.
	if _, err := s.db.Pool.Exec(ctx, `UPDATE posts SET state = 'cancelled' WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	if code, raw := s.fetchPost(android.installation, id, s.secrets.Get(android.installation)); code != http.StatusNotFound ||
		strings.Contains(string(raw), content[0]) {
		t.Errorf("fetch of a cancelled post: %d %s, want 404 without its text", code, raw)
	}

	// Off again, a post's push carries its text.
	if err := s.db.SetTenantIDOnlyPushes(ctx, s.tenant.ID, false); err != nil {
		t.Fatal(err)
	}
	open := s.post(s.MuniKey, map[string]any{"feed": "nyheter", "title": "Brua er åpen igjen", "body": "Kirkegata er åpnet.",
		"translations": map[string]any{"en": map[string]string{"title": "The bridge is open", "body": "Kirkegata is open."}}})
	s.waitDone(s.MuniKey, open)
	wantOpen := map[string][2]string{"nb": {"Brua er åpen igjen", "Kirkegata er åpnet."}, "en-GB": {"The bridge is open", "Kirkegata is open."}}
	for _, p := range phones {
		var found bool
		for _, r := range s.emu.RecordsFor(p.token) {
			if !r.Accepted() || !strings.Contains(r.Body, `"post_id":"`+strconv.FormatInt(open, 10)+`"`) {
				continue
			}
			found = true
			w := wantOpen[p.locale]
			if !strings.Contains(r.Body, w[0]) || notificationBody(t, r) != w[1] || strings.Contains(r.Body, `"id_only"`) {
				t.Errorf("%s: with the setting off the push lacks %q / %q:\n%s", p.installation, w[0], w[1], r.Body)
			}
		}
		if !found {
			t.Errorf("%s: no push of the post sent with the setting off", p.installation)
		}
	}
}
