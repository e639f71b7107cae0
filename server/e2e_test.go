package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/crier-push/crier/internal/apiclient"
	"github.com/crier-push/crier/providers/emulator"
)

// postStatus is what GET /v1/posts/{id} answers.
type postStatus = apiclient.PostStatus

// waitDone polls the post until it is done and returns its status.
func (s *stack) waitDone(key string, id int64) postStatus {
	s.t.Helper()
	var st postStatus
	eventually(s.t, 60*time.Second, func() error {
		st = postStatus{}
		if code := s.do("GET", "/v1/posts/"+strconv.FormatInt(id, 10), key, nil, &st); code != http.StatusOK {
			return fmt.Errorf("GET post: %d", code)
		}
		if st.State != "done" {
			return fmt.Errorf("%w: state %s, counts %v", errNotYet, st.State, st.Counts)
		}
		return nil
	})
	return st
}

// TestPostReachesFollowers is the first slice end to end: a feed followed by
// three Android and two iOS devices and not by a sixth; a post reaches
// exactly the five through the real SDKs and the emulator, with the right
// content; the follower whose token is unregistered ends deactivated.
func TestPostReachesFollowers(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	ctx := context.Background()
	s.feed(t, s.Org, "fotball", "Sandefjord Fotball", false)
	s.feed(t, s.muni, "veiarbeid", "Veiarbeid", false)
	ok := emulator.Behaviour{Kind: emulator.Accept}
	devices := []struct {
		id, provider, token string
		follows             []string
	}{
		{"android-1", "fcm", emulator.FCMToken(ok, "a1"), []string{"fotball"}},
		{"android-2", "fcm", emulator.FCMToken(ok, "a2"), []string{"fotball", "veiarbeid"}},
		{"android-dead", "fcm", emulator.FCMToken(emulator.Behaviour{Kind: emulator.Unregistered}, "a3"), []string{"fotball"}},
		{"iphone-1", "apns", emulator.APNsToken(ok, 1), []string{"fotball"}},
		{"iphone-2", "apns", emulator.APNsToken(ok, 2), []string{"fotball"}},
		{"android-other", "fcm", emulator.FCMToken(ok, "a9"), []string{"veiarbeid"}},
	}
	for _, d := range devices {
		body := map[string]any{"provider": d.provider, "token": d.token, "follows": d.follows, "locale": "nb"}
		if code := s.do("PUT", "/v1/devices/"+d.id, s.AppKey, body, nil); code != http.StatusCreated {
			t.Fatalf("register %s: %d", d.id, code)
		}
	}

	var created struct {
		ID    int64  `json:"id"`
		State string `json:"state"`
	}
	post := map[string]any{"feed": "fotball", "title": "Kampstart flyttet", "body": "Søndagens kamp starter 18:00.",
		"url": "https://sandefjordfotball.no/kamp", "data": map[string]string{"match": "42"}}
	if code := s.do("POST", "/v1/posts", s.OrgKey, post, &created); code != http.StatusAccepted {
		t.Fatalf("POST /v1/posts: %d", code)
	}
	st := s.waitDone(s.MuniKey, created.ID)

	wantCounts := map[string]int{"pending": 0, "sent": 4, "failed": 0, "dead_token": 1, "deferred": 0,
		"skipped": 0, "cancelled": 0, "expired": 0}
	if diff := cmp.Diff(wantCounts, st.Counts); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
	sum := 0
	for _, n := range st.Counts {
		sum += n
	}
	if st.Audience == nil || *st.Audience != 5 || sum != 5 {
		t.Errorf("audience %v, counts add up to %d; want 5 and 5", st.Audience, sum)
	}

	// Exactly the five followers were pushed to, once each.
	var pushed []string
	for _, r := range s.emu.Records() {
		pushed = append(pushed, r.Token)
	}
	var want []string
	for _, d := range devices[:5] {
		want = append(want, d.token)
	}
	sort.Strings(pushed)
	sort.Strings(want)
	if diff := cmp.Diff(want, pushed); diff != "" {
		t.Errorf("tokens pushed to (-want +got):\n%s", diff)
	}

	// The content arrived as sent, in both providers' shapes.
	for _, r := range s.emu.Records() {
		if !r.Accepted() {
			continue
		}
		var title, body, link string
		switch r.Provider {
		case "fcm":
			var m struct {
				Message struct {
					Notification struct{ Title, Body string } `json:"notification"`
					Data         map[string]string            `json:"data"`
				} `json:"message"`
			}
			if err := json.Unmarshal([]byte(r.Body), &m); err != nil {
				t.Fatal(err)
			}
			title, body, link = m.Message.Notification.Title, m.Message.Notification.Body, m.Message.Data["url"]
			if m.Message.Data["match"] != "42" {
				t.Errorf("fcm data %v: want match=42", m.Message.Data)
			}
		case "apns":
			var p struct {
				Aps struct {
					Alert struct{ Title, Body string } `json:"alert"`
				} `json:"aps"`
				URL string `json:"url"`
			}
			if err := json.Unmarshal([]byte(r.Body), &p); err != nil {
				t.Fatal(err)
			}
			title, body, link = p.Aps.Alert.Title, p.Aps.Alert.Body, p.URL
			if r.Headers["apns-topic"] != "no.sandefjord.app" || r.Headers["apns-push-type"] != "alert" {
				t.Errorf("apns headers %v", r.Headers)
			}
		}
		got := [3]string{title, body, link}
		want := [3]string{"Kampstart flyttet", "Søndagens kamp starter 18:00.", "https://sandefjordfotball.no/kamp"}
		if got != want {
			t.Errorf("%s payload to %s: got %q, want %q", r.Provider, r.Token, got, want)
		}
	}

	// The unregistered follower is deactivated and its delivery says why.
	var dev struct {
		Active      bool   `json:"active"`
		Deactivated string `json:"deactivated_reason"`
	}
	if code := s.do("GET", "/v1/devices/android-dead", s.AppKey, nil, &dev); code != http.StatusOK {
		t.Fatalf("GET device: %d", code)
	}
	if dev.Active || dev.Deactivated != "UNREGISTERED" {
		t.Errorf("dead device: active %v, reason %q; want inactive with UNREGISTERED", dev.Active, dev.Deactivated)
	}
	var state, reason string
	if err := s.db.Pool.QueryRow(ctx, `SELECT dl.state, dl.reason FROM deliveries dl JOIN devices d ON d.id = dl.device_id
		WHERE dl.post_id = $1 AND d.installation_id = 'android-dead'`, created.ID).Scan(&state, &reason); err != nil {
		t.Fatal(err)
	}
	if state != "dead_token" || reason != "UNREGISTERED" {
		t.Errorf("dead device's delivery: %s/%s, want dead_token/UNREGISTERED", state, reason)
	}

	// A second post to the same feed skips the deactivated device.
	var second struct{ ID int64 }
	post["title"] = "Ny kamp"
	if code := s.do("POST", "/v1/posts", s.OrgKey, post, &second); code != http.StatusAccepted {
		t.Fatalf("second post: %d", code)
	}
	if st := s.waitDone(s.MuniKey, second.ID); st.Counts["sent"] != 4 || *st.Audience != 4 {
		t.Errorf("second post: audience %v counts %v, want 4 sent", *st.Audience, st.Counts)
	}
}
