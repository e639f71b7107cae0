package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"

	"github.com/crier-push/crier/api"
	"github.com/crier-push/crier/internal/apiclient"
)

// TestAPIDevicePost: the app's fetch of a post needs the app key and the
// installation's secret, reads nothing without the secret, and finds only
// the posts the device has a delivery of, in the device's language.
func TestAPIDevicePost(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.feed(t, e.muni, "nyheter", "Nyheter", false)
	secret := e.register("phone-en", map[string]any{"provider": "fcm", "token": "emu-ok-phone-en", "locale": "en-GB"})
	other := e.register("phone-other", map[string]any{"provider": "fcm", "token": "emu-ok-phone-other"})
	var sent, unsent postCreated
	for _, p := range []*postCreated{&sent, &unsent} {
		body := map[string]any{"feed": "nyheter", "title": "Vannet er stengt", "body": "Storgata i dag.",
			"url": "https://example.org/vann", "data": map[string]string{"street": "storgata"},
			"translations": map[string]any{"en": map[string]string{"title": "Water is off", "body": "Storgata today."}}}
		if code := e.do("POST", "/v1/posts", e.MuniKey, body, p); code != http.StatusAccepted {
			t.Fatalf("post: %d", code)
		}
	}
	// The API alone sends nothing: the delivery is the snapshot's.
	if _, err := e.db.Pool.Exec(context.Background(), `INSERT INTO deliveries (post_id, device_id, provider)
		SELECT $1, id, 'fcm' FROM devices WHERE tenant_id = $2 AND installation_id = 'phone-en'`, sent.ID, e.tenant.ID); err != nil {
		t.Fatal(err)
	}
	fetch := func(key, inst string, post, secret string) (int, []byte) {
		t.Helper()
		h := http.Header{}
		if secret != "" {
			h.Set(api.DeviceSecretHeader, secret)
		}
		code, _, b, err := apiclient.Client{Base: e.base, Key: key}.Send(context.Background(), "GET",
			"/v1/devices/"+inst+"/posts/"+post, h, "")
		if err != nil {
			t.Fatal(err)
		}
		return code, b
	}
	id := strconv.FormatInt(sent.ID, 10)

	code, raw := fetch(e.AppKey, "phone-en", id, secret)
	var got struct {
		ID               int64
		Title, Body, URL string
		Lang             string
		Data             map[string]string
		Feed             struct{ Slug, Name string }
		SentAt           *string `json:"sent_at"`
	}
	if code != http.StatusOK || json.Unmarshal(raw, &got) != nil {
		t.Fatalf("fetch: %d %s", code, raw)
	}
	if got.ID != sent.ID || got.Title != "Water is off" || got.Body != "Storgata today." || got.Lang != "en" ||
		got.URL != "https://example.org/vann" || got.Data["street"] != "storgata" || got.Feed.Slug != "nyheter" ||
		got.Feed.Name != "Nyheter" || got.SentAt != nil {
		t.Errorf("fetch: %s; want the English text, url, data and feed, not sent yet", raw)
	}

	for _, c := range []struct {
		name                string
		key, inst, post, sc string
		want                errorWant
	}{
		{"no secret", e.AppKey, "phone-en", id, "", errorWant{http.StatusUnauthorized, "unauthorized", api.DeviceSecretHeader}},
		// Without a secret not even whether the installation exists is told.
		{"no secret, unknown installation", e.AppKey, "phone-nobody", id, "", errorWant{http.StatusUnauthorized, "unauthorized", api.DeviceSecretHeader}},
		{"another's secret", e.AppKey, "phone-en", id, other, errorWant{http.StatusForbidden, "forbidden", api.DeviceSecretHeader}},
		{"a post without a delivery", e.AppKey, "phone-en", strconv.FormatInt(unsent.ID, 10), secret, errorWant{http.StatusNotFound, "not_found", ""}},
		{"a device without a delivery", e.AppKey, "phone-other", id, other, errorWant{http.StatusNotFound, "not_found", ""}},
		{"a post id that is none", e.AppKey, "phone-en", "seven", secret, errorWant{http.StatusBadRequest, "invalid_request", "post"}},
		{"a post id below 1", e.AppKey, "phone-en", "0", secret, errorWant{http.StatusBadRequest, "invalid_request", "post"}},
		{"a bad installation id", e.AppKey, "phone!en", id, secret, errorWant{http.StatusBadRequest, "invalid_request", "installation_id"}},
		{"a publisher key", e.MuniKey, "phone-en", id, secret, errorWant{http.StatusForbidden, "forbidden", ""}},
	} {
		code, raw := fetch(c.key, c.inst, c.post, c.sc)
		var ae apiError
		if err := json.Unmarshal(raw, &ae); err != nil {
			t.Fatalf("%s: %d %s", c.name, code, raw)
		}
		t.Run(c.name, func(t *testing.T) { checkError(t, c.want, code, ae) })
	}
}
