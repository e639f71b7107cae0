package api_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/api"
	"github.com/crier-push/crier/internal/testenv"
	"github.com/crier-push/crier/providers/emulator"
	"github.com/crier-push/crier/storage"
)

// apiError is the API's error body.
type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field"`
	} `json:"error"`
}

// errorWant is what a test checks of an error answer; the message must be
// there but its wording is free.
type errorWant struct {
	Status int
	Code   string
	Field  string
}

// postCreated is the answer to POST /v1/posts.
type postCreated struct {
	ID        int64  `json:"id"`
	State     string `json:"state"`
	Duplicate bool   `json:"duplicate"`
	StatusURL string `json:"status_url"`
}

// checkError checks that an answer is the error wanted, with a message.
func checkError(t *testing.T, want errorWant, status int, got apiError) {
	t.Helper()
	if diff := cmp.Diff(want, errorWant{Status: status, Code: got.Error.Code, Field: got.Error.Field}); diff != "" {
		t.Errorf("error answer (-want +got):\n%s\n(message %q)", diff, got.Error.Message)
	}
	if got.Error.Message == "" {
		t.Errorf("error answer has no message")
	}
}

func TestAPIAuth(t *testing.T) {
	t.Parallel()
	s := newEnv(t)
	s.feed(t, s.Org, "fotball", "fotball", false)
	post := `{"feed": "fotball", "title": "Tittel", "body": "Tekst"}`
	device := `{"provider": "fcm", "token": "tok-auth"}`
	tests := []struct {
		name         string
		method, path string
		auth         string // the whole Authorization header; none when empty
		body         string
		want         errorWant
	}{
		{"no header", "POST", "/v1/posts", "", post, errorWant{401, "unauthorized", ""}},
		{"no header on devices", "PUT", "/v1/devices/x", "", device, errorWant{401, "unauthorized", ""}},
		{"empty bearer", "POST", "/v1/posts", "Bearer ", post, errorWant{401, "unauthorized", ""}},
		{"not bearer", "POST", "/v1/posts", "Basic " + s.OrgKey, post, errorWant{401, "unauthorized", ""}},
		{"bad key", "POST", "/v1/posts", "Bearer crier_publisher_nosuchkeyatall", post, errorWant{401, "unauthorized", ""}},
		{"bad key on devices", "GET", "/v1/devices/x", "Bearer " + s.AppKey + "x", "", errorWant{401, "unauthorized", ""}},
		{"app key posts", "POST", "/v1/posts", "Bearer " + s.AppKey, post, errorWant{403, "forbidden", ""}},
		{"app key reads a post", "GET", "/v1/posts/1", "Bearer " + s.AppKey, "", errorWant{403, "forbidden", ""}},
		{"publisher key puts a device", "PUT", "/v1/devices/x", "Bearer " + s.MuniKey, device, errorWant{403, "forbidden", ""}},
		{"organisation key reads a device", "GET", "/v1/devices/x", "Bearer " + s.OrgKey, "", errorWant{403, "forbidden", ""}},
		{"organisation key deletes a device", "DELETE", "/v1/devices/x", "Bearer " + s.OrgKey, "", errorWant{403, "forbidden", ""}},
	}
	// The refusals run in parallel within a group, which ends when they
	// all have: only then can the check below see what they left.
	t.Run("refusals", func(t *testing.T) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				h := http.Header{"Content-Type": {"application/json"}}
				if tt.auth != "" {
					h.Set("Authorization", tt.auth)
				}
				status, header, raw, err := s.send(tt.method, tt.path, h, tt.body)
				if err != nil {
					t.Fatal(err)
				}
				var got apiError
				if err := json.Unmarshal(raw, &got); err != nil {
					t.Fatalf("decode %q: %v", raw, err)
				}
				checkError(t, tt.want, status, got)
				if status == http.StatusUnauthorized && header.Get("WWW-Authenticate") == "" {
					t.Errorf("401 without WWW-Authenticate")
				}
			})
		}
	})
	// The refused requests created nothing: no device x, no post.
	var e apiError
	if code := s.on(t).do("GET", "/v1/devices/x", s.AppKey, nil, &e); code != http.StatusNotFound {
		t.Errorf("GET device x after refused PUTs: %d, want 404", code)
	}
	var posts int
	if err := s.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM posts`).Scan(&posts); err != nil {
		t.Fatal(err)
	}
	if posts != 0 {
		t.Errorf("%d posts after refused POSTs, want 0", posts)
	}
}

func TestAPIPostPermissions(t *testing.T) {
	t.Parallel()
	s := newEnv(t)
	ctx := context.Background()
	s.feed(t, s.Org, "fotball", "fotball", false)
	s.feed(t, s.muni, "kunngjoringer", "kunngjoringer", false)
	other, err := s.db.PublisherBySlug(ctx, s.tenant.ID, "korpset")
	if err != nil {
		t.Fatal(err)
	}
	s.feed(t, other, "korps", "korps", false)

	post := func(feed, class string) map[string]any {
		m := map[string]any{"feed": feed, "title": "Tittel", "body": "Tekst"}
		if class != "" {
			m["class"] = class
		}
		return m
	}
	type who struct{ name, key string }
	org, other2, muni := who{"org", s.OrgKey}, who{"other", s.OtherKey}, who{"muni", s.MuniKey}
	allowed := []struct {
		by          who
		feed, class string
	}{
		{org, "fotball", ""},
		{org, "fotball", "community"},
		{other2, "korps", ""},
		{muni, "kunngjoringer", ""},
		{muni, "kunngjoringer", "emergency"},
		{muni, "fotball", ""},
		{muni, "korps", "official"},
	}
	for _, tt := range allowed {
		t.Run(fmt.Sprintf("%s posts to %s %s", tt.by.name, tt.feed, tt.class), func(t *testing.T) {
			t.Parallel()
			var got postCreated
			if code := s.on(t).do("POST", "/v1/posts", tt.by.key, post(tt.feed, tt.class), &got); code != http.StatusAccepted {
				t.Fatalf("POST: %d, want 202", code)
			}
			if got.ID == 0 || got.Duplicate || got.StatusURL != "/v1/posts/"+strconv.FormatInt(got.ID, 10) {
				t.Errorf("answer %+v", got)
			}
		})
	}
	refused := []struct {
		by          who
		feed, class string
		want        errorWant
	}{
		{other2, "fotball", "", errorWant{403, "forbidden", "feed"}},
		{org, "korps", "", errorWant{403, "forbidden", "feed"}},
		{org, "kunngjoringer", "", errorWant{403, "forbidden", "feed"}},
		{org, "fotball", "official", errorWant{403, "forbidden", "class"}},
		{org, "fotball", "emergency", errorWant{403, "forbidden", "class"}},
		{other2, "korps", "emergency", errorWant{403, "forbidden", "class"}},
	}
	for _, tt := range refused {
		t.Run(fmt.Sprintf("%s refused on %s %s", tt.by.name, tt.feed, tt.class), func(t *testing.T) {
			t.Parallel()
			var got apiError
			code := s.on(t).do("POST", "/v1/posts", tt.by.key, post(tt.feed, tt.class), &got)
			checkError(t, tt.want, code, got)
		})
	}

	t.Run("reading posts", func(t *testing.T) {
		t.Parallel()
		s := s.on(t)
		ids := map[string]int64{}
		for _, p := range []struct {
			by   who
			feed string
		}{{org, "fotball"}, {muni, "kunngjoringer"}} {
			var got postCreated
			if code := s.do("POST", "/v1/posts", p.by.key, post(p.feed, ""), &got); code != http.StatusAccepted {
				t.Fatalf("POST as %s: %d", p.by.name, code)
			}
			ids[p.by.name] = got.ID
		}
		reads := []struct {
			by     who
			of     string
			status int
		}{
			{org, "org", http.StatusOK},
			{muni, "org", http.StatusOK},
			{muni, "muni", http.StatusOK},
			{other2, "org", http.StatusNotFound},
			{org, "muni", http.StatusNotFound},
		}
		for _, r := range reads {
			var e apiError
			code := s.do("GET", "/v1/posts/"+strconv.FormatInt(ids[r.of], 10), r.by.key, nil, &e)
			if code != r.status {
				t.Errorf("%s reads %s's post: %d, want %d", r.by.name, r.of, code, r.status)
			}
			if r.status == http.StatusNotFound {
				checkError(t, errorWant{404, "not_found", ""}, code, e)
			}
		}
	})
}

func TestAPIPostValidation(t *testing.T) {
	t.Parallel()
	s := newEnv(t)
	s.feed(t, s.Org, "fotball", "fotball", false)
	testenv.Interests(t, s.db, s.tenant.ID, []string{"fotball", "kamp"}, s.Org)
	testenv.Interests(t, s.db, s.tenant.ID, []string{"a", "b", "c", "d", "e", "f", "skole"})

	valid := func(change func(m map[string]any)) map[string]any {
		m := map[string]any{"feed": "fotball", "title": "Kampstart flyttet", "body": "Søndagens kamp starter 18:00."}
		change(m)
		return m
	}
	set := func(k string, v any) func(map[string]any) { return func(m map[string]any) { m[k] = v } }
	del := func(k string) func(map[string]any) { return func(m map[string]any) { delete(m, k) } }
	longBody := strings.Repeat("x", 2000)
	validJSON := `{"feed": "fotball", "title": "t", "body": "b"}`
	past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)

	tests := []struct {
		name  string
		body  any
		field string
	}{
		{"missing feed", valid(del("feed")), "feed"},
		{"unknown feed", valid(set("feed", "finnes-ikke")), "feed"},
		{"missing title", valid(del("title")), "title"},
		{"empty title", valid(set("title", "")), "title"},
		{"missing body", valid(del("body")), "body"},
		{"title too long", valid(set("title", strings.Repeat("å", 201))), "title"},
		{"body too long", valid(set("body", strings.Repeat("x", 2001))), "body"},
		{"title of the wrong type", valid(set("title", 5)), "title"},
		{"tags of the wrong type", valid(set("tags", "fotball")), "tags"},
		{"unknown field", valid(set("titel", "Tittel")), "titel"},
		{"ftp url", valid(set("url", "ftp://x")), "url"},
		{"url that is no url", valid(set("url", "not a url")), "url"},
		{"url without host", valid(set("url", "https://")), "url"},
		{"unknown class", valid(set("class", "urgent")), "class"},
		{"reserved data key from", valid(set("data", map[string]string{"from": "x"})), "data.from"},
		{"reserved data key google.x", valid(set("data", map[string]string{"google.x": "x"})), "data.google.x"},
		{"reserved data key gcm.x", valid(set("data", map[string]string{"gcm.x": "x"})), "data.gcm.x"},
		{"reserved data key aps", valid(set("data", map[string]string{"aps": "x"})), "data.aps"},
		{"data value a number", valid(set("data", map[string]any{"match": 42})), "data"},
		{"data not an object", valid(set("data", []string{"x"})), "data"},
		{"tag with uppercase", valid(set("tags", []string{"Fotball"})), "tags[0]"},
		{"second tag with uppercase", valid(set("tags", []string{"fotball", "Kamp"})), "tags[1]"},
		{"tag with a space", valid(set("tags", []string{"fot ball"})), "tags[0]"},
		{"tag not in the catalogue", valid(set("tags", []string{"fotball", "zzz"})), "tags"},
		{"six tags", valid(set("tags", []string{"a", "b", "c", "d", "e", "f"})), "tags"},
		{"expires before now", valid(set("expires_at", past)), "expires_at"},
		{"publish more than a year ahead", valid(set("publish_at", time.Now().AddDate(2, 0, 0).UTC().Format(time.RFC3339))), "publish_at"},
		{"external id too long", valid(set("external_id", strings.Repeat("e", 201))), "external_id"},
		{"malformed JSON", `{"feed": "fotball",`, ""},
		{"malformed JSON syntax", `{feed: "fotball"}`, ""},
		{"empty body", "", ""},
		{"two JSON objects", validJSON + validJSON, ""},
		{"trailing garbage", validJSON + " x", ""},
		{"an array", `[` + validJSON + `]`, ""},
		{"payload over 4096 bytes", valid(func(m map[string]any) {
			m["body"] = longBody
			m["data"] = map[string]string{"a": strings.Repeat("y", 1500), "b": strings.Repeat("z", 1500)}
		}), "body"},
		{"payload over 4096 bytes in runes", valid(set("body", strings.Repeat("😀", 2000))), "body"},

		// Text Postgres cannot store must be refused as invalid, not
		// answered with a 500.
		{"NUL in title", valid(set("title", "a\x00b")), "title"},
		{"NUL in body", valid(set("body", "a\x00b")), "body"},
		{"NUL in data value", valid(set("data", map[string]string{"k": "a\x00b"})), "data.k"},
		{"NUL in external id", valid(set("external_id", "a\x00b")), "external_id"},
		{"NUL in collapse key", valid(set("collapse_key", "a\x00b")), "collapse_key"},
		// A field that holds a malformed time is named like any other.
		{"expires_at not a time", valid(set("expires_at", "tomorrow")), "expires_at"},
		{"publish_at not a time", valid(set("publish_at", 5)), "publish_at"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got apiError
			code := s.on(t).do("POST", "/v1/posts", s.OrgKey, tt.body, &got)
			checkError(t, errorWant{400, "invalid_request", tt.field}, code, got)
		})
	}

	// An organisation tags its posts only with the interests the
	// municipality granted it; the municipality with any of the catalogue.
	t.Run("a tag not granted to the organisation", func(t *testing.T) {
		t.Parallel()
		var got apiError
		code := s.on(t).do("POST", "/v1/posts", s.OrgKey, valid(set("tags", []string{"fotball", "skole"})), &got)
		checkError(t, errorWant{403, "forbidden", "tags"}, code, got)
		if !strings.Contains(got.Error.Message, "skole") || strings.Contains(got.Error.Message, "fotball") {
			t.Errorf("message %q: want it to name skole only", got.Error.Message)
		}
		s.feed(t, s.muni, "skolenytt", "Skolenytt", false)
		if code := s.on(t).do("POST", "/v1/posts", s.MuniKey, map[string]any{"feed": "skolenytt", "title": "t", "body": "b",
			"tags": []string{"skole", "fotball"}}, nil); code != http.StatusAccepted {
			t.Errorf("the municipality tagging with catalogue interests: %d, want 202", code)
		}
	})

	// The limits themselves are allowed.
	accepted := []struct {
		name string
		body any
	}{
		{"title of 200 characters", valid(set("title", strings.Repeat("å", 200)))},
		{"body of 2000 characters", valid(set("body", longBody))},
		{"every optional field", valid(func(m map[string]any) {
			m["url"] = "https://sandefjordfotball.no/kamp?id=1"
			m["data"] = map[string]string{"match": "42"}
			m["tags"] = []string{"fotball", "kamp", "fotball"}
			m["class"] = "community"
			m["external_id"] = "cms-1"
			m["collapse_key"] = "kamp-42"
			m["publish_at"] = time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
			m["expires_at"] = time.Now().Add(2 * time.Hour).UTC().Format(time.RFC3339)
		})},
		{"trailing white space", validJSON + "\n\t "},
	}
	for _, tt := range accepted {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if code := s.on(t).do("POST", "/v1/posts", s.OrgKey, tt.body, nil); code != http.StatusAccepted {
				t.Errorf("POST: %d, want 202", code)
			}
		})
	}

	t.Run("not JSON", func(t *testing.T) {
		t.Parallel()
		h := http.Header{"Authorization": {"Bearer " + s.OrgKey}, "Content-Type": {"text/plain"}}
		status, _, raw, err := s.send("POST", "/v1/posts", h, validJSON)
		if err != nil {
			t.Fatal(err)
		}
		var got apiError
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Fatalf("decode %q: %v", raw, err)
		}
		checkError(t, errorWant{415, "unsupported_media_type", ""}, status, got)
	})
}

func TestAPIDeviceValidation(t *testing.T) {
	t.Parallel()
	s := newEnv(t)
	s.feed(t, s.Org, "fotball", "fotball", false)

	fcm := func(extra map[string]any) map[string]any {
		m := map[string]any{"provider": "fcm", "token": "tok-valid"}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	hexToken := strings.Repeat("ab", 32)
	tests := []struct {
		name  string
		inst  string // escaped path segment; a fresh id when empty
		body  any
		field string
		// msg must appear in the message.
		msg string
	}{
		{"new device without provider", "", map[string]any{"token": "tok-1"}, "provider", ""},
		{"new device without token", "", map[string]any{"provider": "fcm"}, "token", ""},
		{"bad provider", "", map[string]any{"provider": "gcm", "token": "tok-1"}, "provider", ""},
		{"empty token", "", map[string]any{"provider": "fcm", "token": " "}, "token", ""},
		{"fcm token with white space", "", map[string]any{"provider": "fcm", "token": "ab cd"}, "token", ""},
		{"apns token not hex", "", map[string]any{"provider": "apns", "token": strings.Repeat("zz", 32)}, "token", ""},
		{"apns token too short", "", map[string]any{"provider": "apns", "token": "abcd"}, "token", ""},
		{"bad platform", "", fcm(map[string]any{"platform": "windows"}), "platform", ""},
		{"apns on android", "", map[string]any{"provider": "apns", "token": hexToken, "platform": "android"}, "platform", ""},
		{"unknown follows slug", "", fcm(map[string]any{"follows": []string{"fotball", "finnes-ikke"}}), "follows", "finnes-ikke"},
		{"follows slug with uppercase", "", fcm(map[string]any{"follows": []string{"Fotball"}}), "follows[0]", ""},
		{"unknown mutes slug", "", fcm(map[string]any{"mutes": []string{"finnes-ikke"}}), "mutes", "finnes-ikke"},
		{"unknown area", "", fcm(map[string]any{"areas": []string{"sentrum"}}), "areas", "sentrum"},
		{"interest with uppercase", "", fcm(map[string]any{"interests": []string{"kultur", "Fotball"}}), "interests[1]", ""},
		{"bad locale", "", fcm(map[string]any{"locale": "norsk"}), "locale", ""},
		{"upper-case locale", "", fcm(map[string]any{"locale": "NB"}), "locale", ""},
		{"bad time zone", "", fcm(map[string]any{"time_zone": "Mars/Olympus"}), "time_zone", ""},
		{"Local time zone", "", fcm(map[string]any{"time_zone": "Local"}), "time_zone", ""},
		{"empty time zone", "", fcm(map[string]any{"time_zone": ""}), "time_zone", ""},
		{"app version too long", "", fcm(map[string]any{"app_version": strings.Repeat("1", 65)}), "app_version", ""},
		{"place lat 91", "", fcm(map[string]any{"places": []map[string]any{{"name": "hjem", "lat": 91, "lon": 10}}}), "places[0].lat", ""},
		{"place lon -181", "", fcm(map[string]any{"places": []map[string]any{
			{"name": "hjem", "lat": 59, "lon": 10}, {"name": "hytta", "lat": 59, "lon": -181}}}), "places[1].lon", ""},
		{"place without a name", "", fcm(map[string]any{"places": []map[string]any{{"lat": 59, "lon": 10}}}), "places[0].name", ""},
		{"too many places", "", fcm(map[string]any{"places": func() []map[string]any {
			var ps []map[string]any
			for i := range 11 {
				ps = append(ps, map[string]any{"name": fmt.Sprint(i), "lat": 59, "lon": 10})
			}
			return ps
		}()}), "places", ""},
		{"quiet hours start 25:00", "", fcm(map[string]any{"quiet_hours": map[string]string{"start": "25:00", "end": "07:00"}}), "quiet_hours.start", ""},
		{"quiet hours end 7:00", "", fcm(map[string]any{"quiet_hours": map[string]string{"start": "22:00", "end": "7:00"}}), "quiet_hours.end", ""},
		{"quiet hours of no length", "", fcm(map[string]any{"quiet_hours": map[string]string{"start": "22:00", "end": "22:00"}}), "quiet_hours", ""},
		{"quiet hours a string", "", fcm(map[string]any{"quiet_hours": "22-07"}), "quiet_hours", ""},
		{"quiet hours with an unknown field", "", fcm(map[string]any{"quiet_hours": map[string]string{"start": "22:00", "end": "07:00", "tz": "x"}}), "quiet_hours", ""},
		{"unknown field", "", fcm(map[string]any{"tokn": "x"}), "tokn", ""},
		{"follows of the wrong type", "", fcm(map[string]any{"follows": "fotball"}), "follows", ""},
		{"malformed JSON", "", `{"provider": "fcm"`, "", ""},
		{"empty body", "", "", "", ""},
		{"installation id with a space", "a%20b", fcm(nil), "installation_id", ""},
		{"installation id with a slash", "a%2Fb", fcm(nil), "installation_id", ""},
		{"installation id too long", strings.Repeat("i", 129), fcm(nil), "installation_id", ""},

		// Text Postgres cannot store must be refused as invalid, not
		// answered with a 500.
		{"NUL in token", "", map[string]any{"provider": "fcm", "token": "a\x00b"}, "token", ""},
		{"NUL in place name", "", fcm(map[string]any{"places": []map[string]any{{"name": "a\x00b", "lat": 59, "lon": 10}}}), "places[0].name", ""},
		{"NUL in app version", "", fcm(map[string]any{"app_version": "1\x00"}), "app_version", ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := s.on(t)
			inst := tt.inst
			if inst == "" {
				inst = "bad-" + strconv.Itoa(i)
			}
			if m, ok := tt.body.(map[string]any); ok && m["token"] == "tok-valid" {
				m["token"] = "tok-valid-" + strconv.Itoa(i)
			}
			var got apiError
			code := s.do("PUT", "/v1/devices/"+inst, s.AppKey, tt.body, &got)
			checkError(t, errorWant{400, "invalid_request", tt.field}, code, got)
			if !strings.Contains(got.Error.Message, tt.msg) {
				t.Errorf("message %q does not name %q", got.Error.Message, tt.msg)
			}
			if tt.inst == "" {
				if code := s.do("GET", "/v1/devices/"+inst, s.AppKey, nil, nil); code != http.StatusNotFound {
					t.Errorf("refused device: GET %d, want 404", code)
				}
			}
		})
	}

	// FCM tokens may be up to 4096 bytes by the API's rule; one that long
	// is stored, or refused as invalid, never a 500. Random letters, so
	// Postgres cannot compress it below its index row limit.
	t.Run("long token", func(t *testing.T) {
		t.Parallel()
		s := s.on(t)
		const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
		raw := make([]byte, 4000)
		if _, err := rand.Read(raw); err != nil {
			t.Fatal(err)
		}
		for i, b := range raw {
			raw[i] = letters[int(b)%len(letters)]
		}
		var got apiError
		code := s.do("PUT", "/v1/devices/long-token", s.AppKey, map[string]any{"provider": "fcm", "token": string(raw)}, &got)
		switch code {
		case http.StatusCreated:
		case http.StatusBadRequest:
			checkError(t, errorWant{400, "invalid_request", "token"}, code, got)
		default:
			t.Errorf("PUT a 4000-byte token: %d %+v, want 201, or 400 naming token", code, got)
		}
	})
}

func TestAPIDevices(t *testing.T) {
	t.Parallel()
	s := newEnv(t)
	ctx := context.Background()
	s.feed(t, s.Org, "fotball", "fotball", false)
	s.feed(t, s.muni, "veiarbeid", "veiarbeid", false)

	t.Run("token rotation keeps the choices", func(t *testing.T) {
		t.Parallel()
		s := s.on(t)
		body := map[string]any{
			"provider": "fcm", "token": "tok-rot-1", "locale": "nn", "time_zone": "Europe/Oslo",
			"app_version": "1.2.3",
			"follows":     []string{"fotball", "veiarbeid"},
			"mutes":       []string{},
			"interests":   []string{"kultur", "fotball", "kultur"},
			"places":      []map[string]any{{"name": "hjem", "lat": 59.1312, "lon": 10.2166}, {"name": "hytta", "lat": 59.0, "lon": 10.5}},
			"quiet_hours": map[string]string{"start": "22:00", "end": "07:00"},
		}
		var created registered
		if code := s.dev("PUT", "rot", "", body, &created); code != http.StatusCreated {
			t.Fatalf("register: %d, want 201", code)
		}
		secret := created.Secret
		if !strings.HasPrefix(secret, "crier_dev_") || len(secret) < 40 {
			t.Fatalf("device secret %q: want crier_dev_ and 256 random bits", secret)
		}
		want := api.Device{
			InstallationID: "rot", Provider: "fcm", Platform: "android", Token: "tok-rot-1", Locale: "nn",
			TimeZone: "Europe/Oslo", AppVersion: "1.2.3",
			Follows: []string{"fotball", "veiarbeid"}, Mutes: []string{}, Interests: []string{"kultur", "fotball"},
			Areas:      []string{},
			Places:     []storage.Place{{Name: "hjem", Lat: 59.1312, Lon: 10.2166}, {Name: "hytta", Lat: 59.0, Lon: 10.5}},
			QuietHours: &api.QuietHours{Start: "22:00", End: "07:00"}, Active: true,
		}
		if diff := cmp.Diff(want, created.Device); diff != "" {
			t.Errorf("registered device (-want +got):\n%s", diff)
		}
		var rotated registered
		if code := s.dev("PUT", "rot", secret, map[string]any{"provider": "fcm", "token": "tok-rot-2"}, &rotated); code != http.StatusOK {
			t.Fatalf("rotate: %d, want 200", code)
		}
		want.Token = "tok-rot-2"
		if diff := cmp.Diff(want, rotated.Device); diff != "" {
			t.Errorf("PUT answer after rotation (-want +got):\n%s", diff)
		}
		if rotated.Secret != "" {
			t.Errorf("an update answered a device secret: it is given once, at registration")
		}
		var got api.Device
		if code := s.dev("GET", "rot", secret, nil, &got); code != http.StatusOK {
			t.Fatalf("GET: %d", code)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("device after rotation (-want +got):\n%s", diff)
		}

		// null clears quiet hours; an absent field keeps them.
		var cleared api.Device
		if code := s.dev("PUT", "rot", secret, map[string]any{"quiet_hours": nil}, &cleared); code != http.StatusOK {
			t.Fatalf("clear quiet hours: %d", code)
		}
		want.QuietHours = nil
		if diff := cmp.Diff(want, cleared); diff != "" {
			t.Errorf("after clearing quiet hours (-want +got):\n%s", diff)
		}
		var stored []byte
		if err := s.db.Pool.QueryRow(ctx, `SELECT secret_hash FROM devices WHERE installation_id = 'rot'`).Scan(&stored); err != nil {
			t.Fatal(err)
		}
		if len(stored) != 32 || bytes.Contains([]byte(secret), stored) {
			t.Errorf("stored secret_hash %x: want the 32-byte SHA-256, not the secret", stored)
		}
	})

	// "Absent fields keep their stored value" (api/devices.go): an iPhone
	// app using FCM rotating its token sends only provider and token.
	t.Run("token rotation keeps the platform", func(t *testing.T) {
		t.Parallel()
		s := s.on(t)
		var got registered
		if code := s.dev("PUT", "fcm-ios", "", map[string]any{"provider": "fcm", "platform": "ios", "token": "tok-fi-1"}, &got); code != http.StatusCreated {
			t.Fatalf("register: %d", code)
		}
		if got.Platform != "ios" {
			t.Fatalf("registered platform %q, want ios", got.Platform)
		}
		if code := s.dev("PUT", "fcm-ios", got.Secret, map[string]any{"provider": "fcm", "token": "tok-fi-2"}, nil); code != http.StatusOK {
			t.Fatalf("rotate: %d", code)
		}
		var rotated api.Device
		if code := s.dev("GET", "fcm-ios", got.Secret, nil, &rotated); code != http.StatusOK {
			t.Fatalf("GET: %d", code)
		}
		if rotated.Platform != "ios" || rotated.Token != "tok-fi-2" {
			t.Errorf("after rotation: platform %q token %q, want ios and tok-fi-2", rotated.Platform, rotated.Token)
		}
	})

	t.Run("delete", func(t *testing.T) {
		t.Parallel()
		s := s.on(t)
		secret := s.register("del", map[string]any{"provider": "fcm", "token": "tok-del"})
		steps := []struct {
			method string
			want   int
		}{
			{"DELETE", http.StatusNoContent},
			{"GET", http.StatusNotFound},
			{"DELETE", http.StatusNotFound},
		}
		for _, st := range steps {
			var e apiError
			code := s.dev(st.method, "del", secret, nil, &e)
			if code != st.want {
				t.Errorf("%s: %d, want %d", st.method, code, st.want)
			}
			if st.want == http.StatusNotFound {
				checkError(t, errorWant{404, "not_found", ""}, code, e)
			}
		}
		// The installation can register afresh, with a new secret.
		if again := s.register("del", map[string]any{"provider": "fcm", "token": "tok-del"}); again == secret {
			t.Errorf("registered afresh with the old secret")
		}
	})

	// The app key ships in every copy of the app: alone it creates
	// installations and nothing more. Without the installation's secret,
	// or with another's, nothing of it is shown or changed.
	t.Run("an installation needs its secret", func(t *testing.T) {
		t.Parallel()
		s := s.on(t)
		body := map[string]any{"provider": "fcm", "token": "tok-own", "follows": []string{"fotball"},
			"places": []map[string]any{{"name": "hjem", "lat": 59.1312, "lon": 10.2166}}}
		secret := s.register("own", body)
		other := s.register("own-other", map[string]any{"provider": "fcm", "token": "tok-own-other"})
		for _, c := range []struct {
			name, secret string
			want         errorWant
		}{
			{"no secret", "", errorWant{401, "unauthorized", api.DeviceSecretHeader}},
			{"another installation's secret", other, errorWant{403, "forbidden", api.DeviceSecretHeader}},
			{"a made-up secret", "crier_dev_" + strings.Repeat("A", 43), errorWant{403, "forbidden", api.DeviceSecretHeader}},
		} {
			for _, req := range []struct {
				method string
				body   any
			}{{"GET", nil}, {"DELETE", nil}, {"PUT", map[string]any{"places": []map[string]any{}, "follows": []string{}}},
				{"PUT", map[string]any{"provider": "fcm", "token": "tok-attacker"}}} {
				var raw json.RawMessage
				code := s.dev(req.method, "own", c.secret, req.body, &raw)
				var e apiError
				json.Unmarshal(raw, &e) //nolint:errcheck // checkError reports an answer of the wrong shape
				checkError(t, c.want, code, e)
				if bytes.Contains(raw, []byte("59.13")) || bytes.Contains(raw, []byte("tok-own")) || bytes.Contains(raw, []byte("fotball")) {
					t.Errorf("%s %s %s: the answer shows the installation: %s", c.name, req.method, "own", raw)
				}
			}
		}
		var got api.Device
		if code := s.dev("GET", "own", secret, nil, &got); code != http.StatusOK {
			t.Fatalf("GET with the secret: %d", code)
		}
		if got.Token != "tok-own" || len(got.Places) != 1 || len(got.Follows) != 1 {
			t.Errorf("after the refused requests the installation is %+v; want it unchanged", got)
		}
	})

	// Installations registered before device secrets are claimed by the
	// app sending the token it holds, which only the phone knows; the
	// answer carries the new secret, and from then on the secret is needed.
	t.Run("an installation from before secrets is claimed with its token", func(t *testing.T) {
		t.Parallel()
		s := s.on(t)
		s.register("legacy", map[string]any{"provider": "fcm", "token": "tok-legacy", "follows": []string{"fotball"}})
		if _, err := s.db.Pool.Exec(ctx, `UPDATE devices SET secret_hash = NULL WHERE installation_id = 'legacy'`); err != nil {
			t.Fatal(err)
		}
		var e apiError
		if code := s.dev("GET", "legacy", "", nil, &e); code != http.StatusUnauthorized {
			t.Errorf("GET a legacy installation without a claim: %d, want 401", code)
		}
		if code := s.dev("PUT", "legacy", "", map[string]any{"provider": "fcm", "token": "tok-guess"}, &e); code != http.StatusUnauthorized {
			t.Errorf("claim with the wrong token: %d, want 401", code)
		}
		if code := s.dev("PUT", "legacy", "", map[string]any{"follows": []string{}}, &e); code != http.StatusUnauthorized {
			t.Errorf("claim without a token: %d, want 401", code)
		}
		var claimed registered
		if code := s.dev("PUT", "legacy", "", map[string]any{"provider": "fcm", "token": "tok-legacy"}, &claimed); code != http.StatusOK {
			t.Fatalf("claim with its token: %d, want 200", code)
		}
		if claimed.Secret == "" || len(claimed.Follows) != 1 {
			t.Fatalf("claimed installation %+v: want its choices and a device secret", claimed)
		}
		if code := s.dev("PUT", "legacy", "", map[string]any{"provider": "fcm", "token": "tok-legacy"}, &e); code != http.StatusUnauthorized {
			t.Errorf("a second claim after the secret was issued: %d, want 401", code)
		}
		if code := s.dev("GET", "legacy", claimed.Secret, nil, nil); code != http.StatusOK {
			t.Errorf("GET with the claimed secret: %d, want 200", code)
		}
	})

	// A token registered by a new installation (the app reinstalled) moves
	// there; the old installation is deactivated as token_moved and hands
	// over neither its places nor its choices.
	t.Run("a token moves to its new installation", func(t *testing.T) {
		t.Parallel()
		s := s.on(t)
		token := emulator.APNsToken(emulator.Behaviour{Kind: emulator.Accept}, 500)
		oldSecret := s.register("move-old", map[string]any{"provider": "apns", "token": token,
			"follows": []string{"fotball"}, "places": []map[string]any{{"name": "hjem", "lat": 59.1, "lon": 10.2}}})
		newSecret := s.register("move-new", map[string]any{"provider": "apns", "token": token})
		var old api.Device
		if code := s.dev("GET", "move-old", oldSecret, nil, &old); code != http.StatusOK {
			t.Fatalf("GET old installation: %d, want 200", code)
		}
		if old.Active || old.Deactivated != storage.ReasonTokenMoved {
			t.Errorf("old installation: active %v, reason %q; want inactive, %s", old.Active, old.Deactivated, storage.ReasonTokenMoved)
		}
		var got api.Device
		if code := s.dev("GET", "move-new", newSecret, nil, &got); code != http.StatusOK {
			t.Fatalf("GET new installation: %d", code)
		}
		if got.Token != token || got.Platform != "ios" || !got.Active || len(got.Follows) != 0 || len(got.Places) != 0 {
			t.Errorf("new installation %+v: want the token, active, without the old one's choices and places", got)
		}
	})

	t.Run("reactivation", func(t *testing.T) {
		t.Parallel()
		s := s.on(t)
		secret := s.register("react", map[string]any{"provider": "fcm", "token": "tok-react", "follows": []string{"fotball"}})
		d, err := s.db.DeviceByInstallation(ctx, s.tenant.ID, "react")
		if err != nil {
			t.Fatal(err)
		}
		if err := s.db.DeactivateDevice(ctx, d.ID, "tok-react", "UNREGISTERED"); err != nil {
			t.Fatal(err)
		}
		var got api.Device
		if code := s.dev("GET", "react", secret, nil, &got); code != http.StatusOK {
			t.Fatalf("GET: %d", code)
		}
		if got.Active || got.Deactivated != "UNREGISTERED" {
			t.Fatalf("deactivated device: active %v reason %q", got.Active, got.Deactivated)
		}
		// A fresh value: deactivated_reason is left out when empty.
		var again api.Device
		if code := s.dev("PUT", "react", secret, map[string]any{"provider": "fcm", "token": "tok-react"}, &again); code != http.StatusOK {
			t.Fatalf("register again: %d, want 200", code)
		}
		got = api.Device{}
		if code := s.dev("GET", "react", secret, nil, &got); code != http.StatusOK {
			t.Fatalf("GET: %d", code)
		}
		if diff := cmp.Diff(again, got); diff != "" {
			t.Errorf("GET differs from the PUT answer (-put +get):\n%s", diff)
		}
		if !got.Active || got.Deactivated != "" || len(got.Follows) != 1 {
			t.Errorf("re-registered device: active %v reason %q follows %v; want active, no reason, its follows",
				got.Active, got.Deactivated, got.Follows)
		}
	})

	t.Run("devices are the tenant's own", func(t *testing.T) {
		t.Parallel()
		s := s.on(t)
		secret := s.register("shared-id", map[string]any{"provider": "fcm", "token": "tok-shared"})
		other := testenv.Tenant(t, s.db, "larvik-dev", "Larvik kommune", "Europe/Oslo")
		key, err := s.db.NewAPIKey(ctx, other.ID, nil, "app")
		if err != nil {
			t.Fatal(err)
		}
		for _, method := range []string{"GET", "DELETE"} {
			h := http.Header{api.DeviceSecretHeader: {secret}, "Authorization": {"Bearer " + key}}
			if code, _, _, _ := s.send(method, "/v1/devices/shared-id", h, ""); code != http.StatusNotFound {
				t.Errorf("%s another tenant's device: %d, want 404", method, code)
			}
		}
		if code := s.dev("GET", "shared-id", secret, nil, nil); code != http.StatusOK {
			t.Errorf("own device after the other tenant's attempts: %d, want 200", code)
		}
	})
}

func TestAPIGetPost(t *testing.T) {
	t.Parallel()
	s := newEnv(t)
	ctx := context.Background()
	s.feed(t, s.muni, "kunngjoringer", "kunngjoringer", false)

	// A second tenant with a feed of the same slug.
	larvik := testenv.Tenant(t, s.db, "larvik", "Larvik kommune", "Europe/Oslo")
	pub := testenv.Publisher(t, s.db, larvik.ID, "kommunen", "Larvik kommune", crier.RoleMunicipality)
	testenv.Feed(t, s.db, larvik.ID, pub.ID, "kunngjoringer", "Kunngjøringer", false)
	larvikKey, err := s.db.NewAPIKey(ctx, larvik.ID, &pub.ID, "cms")
	if err != nil {
		t.Fatal(err)
	}

	body := map[string]any{"feed": "kunngjoringer", "title": "Vannavstengning", "body": "Vannet stenges i natt."}
	var ours, theirs postCreated
	if code := s.do("POST", "/v1/posts", s.MuniKey, body, &ours); code != http.StatusAccepted {
		t.Fatalf("POST: %d", code)
	}
	if code := s.do("POST", "/v1/posts", larvikKey, body, &theirs); code != http.StatusAccepted {
		t.Fatalf("POST in larvik: %d", code)
	}
	path := func(id int64) string { return "/v1/posts/" + strconv.FormatInt(id, 10) }

	tests := []struct {
		name string
		path string
		key  string
		want errorWant
	}{
		{"id not a number", "/v1/posts/abc", s.MuniKey, errorWant{400, "invalid_request", "id"}},
		{"id zero", "/v1/posts/0", s.MuniKey, errorWant{400, "invalid_request", "id"}},
		{"id negative", "/v1/posts/-1", s.MuniKey, errorWant{400, "invalid_request", "id"}},
		{"id too big", "/v1/posts/99999999999999999999", s.MuniKey, errorWant{400, "invalid_request", "id"}},
		{"unknown id", path(theirs.ID + 1000), s.MuniKey, errorWant{404, "not_found", ""}},
		{"another tenant's post", path(theirs.ID), s.MuniKey, errorWant{404, "not_found", ""}},
		{"our post from the other tenant", path(ours.ID), larvikKey, errorWant{404, "not_found", ""}},
		{"our post from our organisation", path(ours.ID), s.OrgKey, errorWant{404, "not_found", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got apiError
			code := s.on(t).do("GET", tt.path, tt.key, nil, &got)
			checkError(t, tt.want, code, got)
		})
	}

	t.Run("own posts", func(t *testing.T) {
		t.Parallel()
		s := s.on(t)
		for _, p := range []struct {
			key string
			id  int64
		}{{s.MuniKey, ours.ID}, {larvikKey, theirs.ID}} {
			var got struct {
				ID    int64  `json:"id"`
				Feed  string `json:"feed"`
				Class string `json:"class"`
				Title string `json:"title"`
			}
			if code := s.do("GET", path(p.id), p.key, nil, &got); code != http.StatusOK {
				t.Fatalf("GET %d: %d", p.id, code)
			}
			want := struct {
				ID    int64  `json:"id"`
				Feed  string `json:"feed"`
				Class string `json:"class"`
				Title string `json:"title"`
			}{p.id, "kunngjoringer", "official", "Vannavstengning"}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("post %d (-want +got):\n%s", p.id, diff)
			}
		}
	})
}

func TestAPIHealth(t *testing.T) {
	t.Parallel()
	s := newEnvReady(t, map[string]api.Pinger{"redis": pinger{}})
	tests := []struct {
		method, path string
		status       int
		want         map[string]string
	}{
		{"GET", "/healthz", http.StatusOK, map[string]string{"status": "ok"}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			t.Parallel()
			var got map[string]string
			if code := s.on(t).do(tt.method, tt.path, "", nil, &got); code != tt.status {
				t.Errorf("%s %s: %d, want %d", tt.method, tt.path, code, tt.status)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("%s %s (-want +got):\n%s", tt.method, tt.path, diff)
			}
		})
	}
	for _, path := range []string{"/nope", "/v1/nope", "/v1/devices/", "/v2/posts"} {
		t.Run(path, func(t *testing.T) {
			t.Parallel()
			status, header, raw, err := s.send("GET", path, http.Header{"Authorization": {"Bearer " + s.AppKey}}, "")
			if err != nil {
				t.Fatal(err)
			}
			if ct := header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q, want JSON", ct)
			}
			var got apiError
			if err := json.Unmarshal(raw, &got); err != nil {
				t.Fatalf("decode %q: %v", raw, err)
			}
			checkError(t, errorWant{404, "not_found", ""}, status, got)
		})
	}
}
