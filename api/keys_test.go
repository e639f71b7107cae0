package api_test

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/internal/testenv"
)

// keyJSON is a key as GET /v1/keys shows it; Key is set only in the answer
// to its creation.
type keyJSON struct {
	ID         int64      `json:"id"`
	Prefix     string     `json:"prefix"`
	Kind       string     `json:"kind"`
	Publisher  string     `json:"publisher"`
	Label      string     `json:"label"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
	Key        string     `json:"key"`
}

// keys lists the tenant's keys with the municipality's key, by label.
func (e *env) keys(t *testing.T) map[string]keyJSON {
	t.Helper()
	var list struct{ Keys []keyJSON }
	if code := e.on(t).do("GET", "/v1/keys", e.MuniKey, nil, &list); code != http.StatusOK {
		t.Fatalf("GET /v1/keys: %d", code)
	}
	byLabel := map[string]keyJSON{}
	for _, k := range list.Keys {
		byLabel[k.Label] = k
	}
	return byLabel
}

// newKey makes a key through the API with the municipality's key.
func (e *env) newKey(t *testing.T, body map[string]any) keyJSON {
	t.Helper()
	var k keyJSON
	if code := e.on(t).do("POST", "/v1/keys", e.MuniKey, body, &k); code != http.StatusCreated {
		t.Fatalf("POST /v1/keys %v: %d %+v", body, code, k)
	}
	return k
}

// TestAPIKeys: the municipality lists, makes and revokes its tenant's keys;
// a key made works at once, a key revoked is refused at once; organisations
// and the app may do none of it.
func TestAPIKeys(t *testing.T) {
	t.Parallel()
	s := newEnv(t)
	s.feed(t, s.Org, "fotball", "Fotball", false)
	post := map[string]any{"feed": "fotball", "title": "Kamp", "body": "Kamp i dag."}

	// The list: every key of the tenant, never a hash nor a key itself.
	_, _, raw, err := s.send("GET", "/v1/keys", http.Header{"Authorization": {"Bearer " + s.MuniKey}}, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"hash", s.MuniKey, s.OrgKey, s.AppKey, s.OtherKey, s.MuniKey[len(s.MuniKey)-20:]} {
		if strings.Contains(string(raw), secret) {
			t.Errorf("GET /v1/keys shows %q: %s", secret, raw)
		}
	}
	type shown struct{ Kind, Publisher, Label string }
	var got []shown
	for _, k := range s.keys(t) {
		got = append(got, shown{k.Kind, k.Publisher, k.Label})
	}
	want := []shown{{"app", "", "app"}, {"publisher", "kommunen", "cms"},
		{"publisher", "sandefjord-fotball", "club site"}, {"publisher", "korpset", "band site"}}
	if diff := cmp.Diff(want, got, cmpopts.SortSlices(func(a, b shown) bool { return a.Label < b.Label })); diff != "" {
		t.Errorf("GET /v1/keys (-want +got):\n%s", diff)
	}

	refusals := []struct {
		name         string
		method, path string
		key          string
		body         any
		want         errorWant
	}{
		{"organisation lists", "GET", "/v1/keys", s.OrgKey, nil, errorWant{403, "forbidden", ""}},
		{"organisation makes", "POST", "/v1/keys", s.OrgKey, map[string]any{"publisher": "sandefjord-fotball", "label": "x"}, errorWant{403, "forbidden", ""}},
		{"organisation revokes", "DELETE", "/v1/keys/1", s.OrgKey, nil, errorWant{403, "forbidden", ""}},
		{"organisation revokes a bad id", "DELETE", "/v1/keys/abc", s.OrgKey, nil, errorWant{403, "forbidden", ""}},
		{"app lists", "GET", "/v1/keys", s.AppKey, nil, errorWant{403, "forbidden", ""}},
		{"app makes", "POST", "/v1/keys", s.AppKey, map[string]any{"kind": "app", "label": "x"}, errorWant{403, "forbidden", ""}},
		{"app revokes", "DELETE", "/v1/keys/1", s.AppKey, nil, errorWant{403, "forbidden", ""}},
		{"no label", "POST", "/v1/keys", s.MuniKey, map[string]any{"publisher": "sandefjord-fotball"}, errorWant{400, "invalid_request", "label"}},
		{"blank label", "POST", "/v1/keys", s.MuniKey, map[string]any{"kind": "app", "label": "   "}, errorWant{400, "invalid_request", "label"}},
		{"no publisher", "POST", "/v1/keys", s.MuniKey, map[string]any{"label": "x"}, errorWant{400, "invalid_request", "publisher"}},
		{"unknown publisher", "POST", "/v1/keys", s.MuniKey, map[string]any{"publisher": "nobody", "label": "x"}, errorWant{400, "invalid_request", "publisher"}},
		{"app key with a publisher", "POST", "/v1/keys", s.MuniKey, map[string]any{"kind": "app", "publisher": "kommunen", "label": "x"}, errorWant{400, "invalid_request", "publisher"}},
		{"unknown kind", "POST", "/v1/keys", s.MuniKey, map[string]any{"kind": "root", "label": "x"}, errorWant{400, "invalid_request", "kind"}},
		{"unknown field", "POST", "/v1/keys", s.MuniKey, map[string]any{"kind": "app", "label": "x", "tenant": "larvik"}, errorWant{400, "invalid_request", "tenant"}},
		{"revoke a bad id", "DELETE", "/v1/keys/abc", s.MuniKey, nil, errorWant{400, "invalid_request", "id"}},
		{"revoke an unknown key", "DELETE", "/v1/keys/999999", s.MuniKey, nil, errorWant{404, "not_found", ""}},
		{"revoke the key in use", "DELETE", fmt.Sprintf("/v1/keys/%d", s.keys(t)["cms"].ID), s.MuniKey, nil, errorWant{409, "conflict", "id"}},
	}
	t.Run("refusals", func(t *testing.T) {
		for _, tt := range refusals {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				var got apiError
				checkError(t, tt.want, s.on(t).do(tt.method, tt.path, tt.key, tt.body, &got), got)
			})
		}
	})
	if n := len(s.keys(t)); n != 4 {
		t.Errorf("after the refusals the tenant has %d keys, want the 4 it had", n)
	}
	if code := s.do("GET", "/v1/areas", s.MuniKey, nil, nil); code != http.StatusOK {
		t.Errorf("the municipality's key after trying to revoke itself: %d", code)
	}

	// A key for the club works at once; so does an app key; the
	// municipality may make one for itself.
	club := s.newKey(t, map[string]any{"publisher": "sandefjord-fotball", "label": "Kari, klubbens nettside"})
	if !strings.HasPrefix(club.Key, club.Prefix) || !regexp.MustCompile(`^crier_publisher_[a-z2-7]{8}$`).MatchString(club.Prefix) ||
		club.Kind != "publisher" || club.Publisher != "sandefjord-fotball" || club.RevokedAt != nil || club.LastUsedAt != nil {
		t.Errorf("the club's new key: %+v", club)
	}
	if code := s.do("POST", "/v1/posts", club.Key, post, nil); code != http.StatusAccepted {
		t.Errorf("posting with the new key: %d", code)
	}
	app := s.newKey(t, map[string]any{"kind": "app", "label": "app 2.0"})
	if code := s.do("PUT", "/v1/devices/phone", app.Key, map[string]any{"provider": "fcm", "token": "tok-keys"}, nil); code != http.StatusCreated {
		t.Errorf("registering with the new app key: %d", code)
	}
	if own := s.newKey(t, map[string]any{"kind": "publisher", "publisher": "kommunen", "label": "CMS 2"}); own.Publisher != "kommunen" {
		t.Errorf("the municipality's own new key: %+v", own)
	}

	// Revoked: refused at once, and still listed, with when.
	var revoked keyJSON
	if code := s.do("DELETE", fmt.Sprintf("/v1/keys/%d", club.ID), s.MuniKey, nil, &revoked); code != http.StatusOK || revoked.RevokedAt == nil {
		t.Fatalf("revoke: %d %+v", code, revoked)
	}
	var e apiError
	checkError(t, errorWant{401, "unauthorized", ""}, s.do("POST", "/v1/posts", club.Key, post, &e), e)
	if k := s.keys(t)["Kari, klubbens nettside"]; k.RevokedAt == nil || !k.RevokedAt.Equal(*revoked.RevokedAt) {
		t.Errorf("the revoked key as listed: %+v, want revoked at %v", k, revoked.RevokedAt)
	}
	var again keyJSON
	if code := s.do("DELETE", fmt.Sprintf("/v1/keys/%d", club.ID), s.MuniKey, nil, &again); code != http.StatusOK ||
		again.RevokedAt == nil || !again.RevokedAt.Equal(*revoked.RevokedAt) {
		t.Errorf("revoking again: %d %+v, want 200 and the first revocation's time %v", code, again, revoked.RevokedAt)
	}

	// Another tenant's keys are not this municipality's to see or revoke.
	ctx := context.Background()
	larvik := testenv.Tenant(t, s.db, "larvik", "Larvik kommune", "Europe/Oslo")
	larvikMuni := testenv.Publisher(t, s.db, larvik.ID, "kommunen", "Larvik kommune", crier.RoleMunicipality)
	larvikKey, err := s.db.NewAPIKey(ctx, larvik.ID, &larvikMuni.ID, "larvik cms")
	if err != nil {
		t.Fatal(err)
	}
	var list struct{ Keys []keyJSON }
	s.do("GET", "/v1/keys", larvikKey, nil, &list)
	if len(list.Keys) != 1 || list.Keys[0].Label != "larvik cms" {
		t.Errorf("Larvik's keys: %+v, want its own one", list.Keys)
	}
	checkError(t, errorWant{404, "not_found", ""}, s.do("DELETE", fmt.Sprintf("/v1/keys/%d", app.ID), larvikKey, nil, &e), e)
	if code := s.do("GET", "/v1/areas", app.Key, nil, nil); code != http.StatusOK {
		t.Errorf("the app key after another tenant tried to revoke it: %d", code)
	}
}

// TestAPIKeyLastUsed: a key's last use shows in the list once it has
// authenticated a request.
func TestAPIKeyLastUsed(t *testing.T) {
	t.Parallel()
	s := newEnv(t)
	k := s.newKey(t, map[string]any{"kind": "app", "label": "app 2.0"})
	byID := func() keyJSON {
		var list struct{ Keys []keyJSON }
		s.do("GET", "/v1/keys", s.MuniKey, nil, &list)
		for _, l := range list.Keys {
			if l.ID == k.ID {
				return l
			}
		}
		t.Fatalf("key %d not listed", k.ID)
		return keyJSON{}
	}
	if got := byID(); got.LastUsedAt != nil {
		t.Fatalf("an unused key has last_used_at %v", got.LastUsedAt)
	}
	if code := s.do("GET", "/v1/areas", k.Key, nil, nil); code != http.StatusOK {
		t.Fatalf("using the key: %d", code)
	}
	if got := byID(); got.LastUsedAt == nil || got.LastUsedAt.Before(got.CreatedAt) {
		t.Errorf("after a use, last_used_at %v (created %v)", got.LastUsedAt, got.CreatedAt)
	}
	if cms := s.keys(t)["cms"]; cms.LastUsedAt == nil {
		t.Errorf("the municipality's key, used to list, has no last_used_at")
	}
}

// TestAPIRequestID: every answer carries a request id: the client's own if
// it is sane, else a new one.
func TestAPIRequestID(t *testing.T) {
	t.Parallel()
	s := newEnv(t)
	generated := regexp.MustCompile(`^[0-9a-f]{32}$`)
	tests := []struct {
		name, sent string
		kept       bool
	}{
		{"none", "", false},
		{"uuid", "0b0e6c4e-8a7e-4bcb-9d0c-3e6f2f3f9a11", true},
		{"trace id", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", true},
		{"base64", "aGVsbG8gd29ybGQ=/+x", true},
		{"spaces", "one two", false},
		{"not ascii", "førespurnad", false},
		{"too long", strings.Repeat("a", 129), false},
		{"longest", strings.Repeat("a", 128), true},
	}
	for _, tt := range tests {
		for _, path := range []string{"/v1/areas", "/healthz", "/nowhere"} {
			h := http.Header{"Authorization": {"Bearer " + s.AppKey}}
			if tt.sent != "" {
				h.Set("X-Request-Id", tt.sent)
			}
			_, header, _, err := s.send("GET", path, h, "")
			if err != nil {
				t.Fatal(err)
			}
			got := header.Get("X-Request-Id")
			if tt.kept && got != tt.sent || !tt.kept && !generated.MatchString(got) {
				t.Errorf("%s on %s: X-Request-Id %q (sent %q), want it kept %v", tt.name, path, got, tt.sent, tt.kept)
			}
		}
	}
	// A refused key's answer has one too.
	_, header, _, err := s.send("GET", "/v1/keys", http.Header{"Authorization": {"Bearer nope"}, "X-Request-Id": {"r-401"}}, "")
	if err != nil || header.Get("X-Request-Id") != "r-401" {
		t.Errorf("a 401's X-Request-Id %q (%v), want r-401", header.Get("X-Request-Id"), err)
	}
}
