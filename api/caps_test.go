package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/crier-push/crier"
)

// limitsAnswer is GET and PUT /v1/publishers/{slug}/limits' answer.
type limitsAnswer struct {
	Publisher            string `json:"publisher"`
	DailyPosts           *int   `json:"daily_posts"`
	DailyPushesPerDevice *int   `json:"daily_pushes_per_device"`
	DefaultDailyPosts    int    `json:"default_daily_posts"`
	Posts                struct {
		Limit       int        `json:"limit"`
		WindowHours float64    `json:"window_hours"`
		Sent        int        `json:"sent"`
		Left        int        `json:"left"`
		NextAt      *time.Time `json:"next_at"`
	} `json:"posts"`
}

// rawPost sends a post with key and returns the status, the Retry-After
// header and the answer's body.
func (e *env) rawPost(key string, body map[string]any) (int, string, []byte) {
	e.t.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		e.t.Fatal(err)
	}
	h := http.Header{"Content-Type": {"application/json"}, "Authorization": {"Bearer " + key}}
	status, header, answer, err := e.send("POST", "/v1/posts", h, string(raw))
	if err != nil {
		e.t.Fatal(err)
	}
	return status, header.Get("Retry-After"), answer
}

// TestAPICaps: past its daily post limit an organisation's post is 429
// with a Retry-After within the window and a message naming the limit;
// a CMS retry of a post made is not refused; the organisation's posts in a
// mandatory feed, the municipality's posts and alerts are not capped; the
// organisation sees what it has left; cleared, the tenant's default holds.
func TestAPICaps(t *testing.T) {
	t.Parallel()
	s := newEnv(t)
	s.feed(t, s.Org, "fotball", "Sandefjord Fotball", false)
	s.feed(t, s.Org, "banen-stengt", "Banen stengt", true)
	s.feed(t, s.muni, "kunngjoringer", "Kunngjøringer", false)
	s.feed(t, s.muni, "beredskap", "Beredskap", true)
	post := func(feed, externalID string) map[string]any {
		m := map[string]any{"feed": feed, "title": "Kampstart", "body": "Kampen starter 18:00."}
		if externalID != "" {
			m["external_id"] = externalID
		}
		return m
	}
	const limits = "/v1/publishers/sandefjord-fotball/limits"

	var got limitsAnswer
	if code := s.do("PUT", limits, s.MuniKey, map[string]any{"daily_posts": 2, "daily_pushes_per_device": 3}, &got); code != http.StatusOK {
		t.Fatalf("PUT limits: %d", code)
	}
	if got.Publisher != "sandefjord-fotball" || got.DailyPosts == nil || *got.DailyPosts != 2 ||
		got.DailyPushesPerDevice == nil || *got.DailyPushesPerDevice != 3 || got.DefaultDailyPosts != 20 ||
		got.Posts.Limit != 2 || got.Posts.Sent != 0 || got.Posts.Left != 2 || got.Posts.WindowHours != 24 || got.Posts.NextAt != nil {
		t.Fatalf("PUT limits answered %+v", got)
	}

	for i, ext := range []string{"cms-1", ""} {
		if code, _, raw := s.rawPost(s.OrgKey, post("fotball", ext)); code != http.StatusAccepted {
			t.Fatalf("post %d of 2: %d %s", i+1, code, raw)
		}
	}
	code, retry, raw := s.rawPost(s.OrgKey, post("fotball", "cms-3"))
	var e apiError
	if err := json.Unmarshal(raw, &e); err != nil {
		t.Fatalf("decode %q: %v", raw, err)
	}
	checkError(t, errorWant{http.StatusTooManyRequests, "too_many_requests", ""}, code, e)
	if !strings.Contains(e.Error.Message, "daily post limit") || !strings.Contains(e.Error.Message, "2 posts") {
		t.Errorf("the refusal's message %q does not name the limit", e.Error.Message)
	}
	secs, err := strconv.Atoi(retry)
	if err != nil || secs <= 0 || secs > int(crier.PostWindow/time.Second) {
		t.Errorf("Retry-After %q, want a positive whole number of seconds within %s", retry, crier.PostWindow)
	}

	// A CMS retry of a post made is that post.
	var dup postCreated
	if code := s.do("POST", "/v1/posts", s.OrgKey, post("fotball", "cms-1"), &dup); code != http.StatusOK || !dup.Duplicate {
		t.Errorf("cms-1 again at the limit: %d %+v, want 200 and the duplicate", code, dup)
	}
	// Not capped: the organisation's mandatory feed, the municipality's
	// posts (more than the organisation's limit) and alerts.
	if code, _, raw := s.rawPost(s.OrgKey, post("banen-stengt", "")); code != http.StatusAccepted {
		t.Errorf("the organisation's post in its mandatory feed: %d %s", code, raw)
	}
	for i := range 3 {
		if code, _, raw := s.rawPost(s.MuniKey, post("kunngjoringer", "")); code != http.StatusAccepted {
			t.Errorf("the municipality's post %d: %d %s", i+1, code, raw)
		}
	}
	alert := map[string]any{"feed": "beredskap", "title": "Gasslekkasje", "body": "Hold vinduene lukket.",
		"area": map[string]any{"lat": 59.13, "lon": 10.22, "radius_m": 300}}
	if code := s.do("POST", "/v1/alerts", s.MuniKey, alert, nil); code != http.StatusAccepted {
		t.Errorf("an alert: %d", code)
	}

	// The organisation sees what it has left; it may not raise it, nor
	// read another's.
	got = limitsAnswer{}
	if code := s.do("GET", limits, s.OrgKey, nil, &got); code != http.StatusOK {
		t.Fatalf("the organisation's GET: %d", code)
	}
	if got.Posts.Limit != 2 || got.Posts.Sent != 2 || got.Posts.Left != 0 || got.Posts.NextAt == nil {
		t.Errorf("the organisation's GET at its limit: %+v", got.Posts)
	}
	if code := s.do("PUT", limits, s.OrgKey, map[string]any{"daily_posts": 100}, &e); code != http.StatusForbidden {
		t.Errorf("the organisation's PUT: %d, want 403", code)
	}
	if code := s.do("GET", "/v1/publishers/korpset/limits", s.OrgKey, nil, &e); code != http.StatusForbidden {
		t.Errorf("the organisation's GET of another's limits: %d, want 403", code)
	}

	// Cleared, the tenant's default (20) is in force: PUT replaces both.
	got = limitsAnswer{}
	if code := s.do("PUT", limits, s.MuniKey, map[string]any{"daily_posts": nil}, &got); code != http.StatusOK {
		t.Fatalf("PUT null: %d", code)
	}
	if got.DailyPosts != nil || got.DailyPushesPerDevice != nil || got.Posts.Limit != 20 || got.Posts.Left != 18 {
		t.Errorf("cleared: %+v", got)
	}
	if code, _, raw := s.rawPost(s.OrgKey, post("fotball", "cms-3")); code != http.StatusAccepted {
		t.Errorf("cms-3 under the default: %d %s", code, raw)
	}

	var audited int
	if err := s.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM audit_log
		WHERE action = 'publisher.limits' AND object = 'sandefjord-fotball' AND actor = 'key'`).Scan(&audited); err != nil {
		t.Fatal(err)
	}
	if audited != 2 {
		t.Errorf("%d limit changes audited, want 2", audited)
	}
}

// TestAPILimitsRefused: bad limits are 400s naming the field; the
// municipality has no limits; only publisher keys ask.
func TestAPILimitsRefused(t *testing.T) {
	t.Parallel()
	s := newEnv(t)
	const limits = "/v1/publishers/sandefjord-fotball/limits"
	tests := []struct {
		name, key, method, path, body string
		want                          errorWant
	}{
		{"zero posts", s.MuniKey, "PUT", limits, `{"daily_posts": 0}`, errorWant{400, "invalid_request", "daily_posts"}},
		{"negative posts", s.MuniKey, "PUT", limits, `{"daily_posts": -3}`, errorWant{400, "invalid_request", "daily_posts"}},
		{"a fraction of a post", s.MuniKey, "PUT", limits, `{"daily_posts": 2.5}`, errorWant{400, "invalid_request", "daily_posts"}},
		{"too many posts", s.MuniKey, "PUT", limits, fmt.Sprintf(`{"daily_posts": %d}`, crier.MaxDailyPosts+1), errorWant{400, "invalid_request", "daily_posts"}},
		{"posts as a string", s.MuniKey, "PUT", limits, `{"daily_posts": "5"}`, errorWant{400, "invalid_request", "daily_posts"}},
		{"huge posts", s.MuniKey, "PUT", limits, `{"daily_posts": 1e400}`, errorWant{400, "invalid_request", "daily_posts"}},
		{"zero pushes", s.MuniKey, "PUT", limits, `{"daily_posts": 5, "daily_pushes_per_device": 0}`, errorWant{400, "invalid_request", "daily_pushes_per_device"}},
		{"too many pushes", s.MuniKey, "PUT", limits, `{"daily_pushes_per_device": 5000}`, errorWant{400, "invalid_request", "daily_pushes_per_device"}},
		{"unknown field", s.MuniKey, "PUT", limits, `{"daily_post": 5}`, errorWant{400, "invalid_request", "daily_post"}},
		{"the municipality's limits", s.MuniKey, "PUT", "/v1/publishers/kommunen/limits", `{"daily_posts": 5}`, errorWant{400, "invalid_request", "publisher"}},
		{"the municipality's limits read", s.MuniKey, "GET", "/v1/publishers/kommunen/limits", "", errorWant{400, "invalid_request", "publisher"}},
		{"no such publisher", s.MuniKey, "PUT", "/v1/publishers/nobody/limits", `{"daily_posts": 5}`, errorWant{404, "not_found", ""}},
		{"an organisation sets its own", s.OrgKey, "PUT", limits, `{"daily_posts": 500}`, errorWant{403, "forbidden", ""}},
		{"the app reads", s.AppKey, "GET", limits, "", errorWant{403, "forbidden", ""}},
	}
	// The refusals run in parallel within a group, which ends when they
	// all have: only then can the check below see what they left.
	t.Run("refusals", func(t *testing.T) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				h := http.Header{"Authorization": {"Bearer " + tt.key}}
				if tt.body != "" {
					h.Set("Content-Type", "application/json")
				}
				status, _, raw, err := s.send(tt.method, tt.path, h, tt.body)
				if err != nil {
					t.Fatal(err)
				}
				var got apiError
				if err := json.Unmarshal(raw, &got); err != nil {
					t.Fatalf("decode %q: %v", raw, err)
				}
				checkError(t, tt.want, status, got)
			})
		}
	})
	// Nothing refused was stored.
	var got limitsAnswer
	if code := s.do("GET", limits, s.MuniKey, nil, &got); code != http.StatusOK {
		t.Fatalf("GET: %d", code)
	}
	if got.DailyPosts != nil || got.DailyPushesPerDevice != nil {
		t.Errorf("limits after refusals: %+v, want none set", got)
	}
}
