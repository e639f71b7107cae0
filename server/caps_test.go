package server_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/crier-push/crier/providers/emulator"
)

// TestPushesPerDeviceCapped: the municipality limits an organisation to two
// pushes a device a day; the club's third post is kept for its followers
// (skipped, sender_cap, and so in their history) and pushed to nobody, while
// another organisation's post and the municipality's still go.
func TestPushesPerDeviceCapped(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	ctx := context.Background()
	s.feed(t, s.Org, "fotball", "Fotball", false)
	s.feed(t, s.muni, "nyheter", "Nyheter", false)
	var band string
	if err := s.db.Pool.QueryRow(ctx, `SELECT slug FROM publishers WHERE tenant_id = $1 AND slug = 'korpset'`, s.tenant.ID).Scan(&band); err != nil {
		t.Fatal(err)
	}
	bandPub, err := s.db.PublisherBySlug(ctx, s.tenant.ID, band)
	if err != nil {
		t.Fatal(err)
	}
	s.feed(t, bandPub, "korps", "Korps", false)
	ok := emulator.Behaviour{Kind: emulator.Accept}
	for _, inst := range []string{"fan-1", "fan-2"} {
		s.register(inst, map[string]any{"provider": "fcm", "token": emulator.FCMToken(ok, inst),
			"follows": []string{"fotball", "nyheter", "korps"}})
	}
	if code := s.do("PUT", "/v1/publishers/sandefjord-fotball/limits", s.MuniKey,
		map[string]any{"daily_posts": 10, "daily_pushes_per_device": 2}, nil); code != http.StatusOK {
		t.Fatalf("set limits: %d", code)
	}
	var club []int64
	for i := range 3 {
		club = append(club, s.publish(t, s.OrgKey, map[string]any{"feed": "fotball", "title": fmt.Sprintf("Mål %d", i+1), "body": "!"}))
	}
	other := s.publish(t, s.OtherKey, map[string]any{"feed": "korps", "title": "Konsert", "body": "I kveld."})
	muni := s.publish(t, s.MuniKey, map[string]any{"feed": "nyheter", "title": "Nyhet", "body": "Tekst."})

	for i, id := range club {
		want := []string{"fan-1", "fan-2"}
		if i == 2 {
			want = nil
		}
		if got := s.pushedTo(t, id); !cmp.Equal(got, want) {
			t.Errorf("club post %d reached %v, want %v", i+1, got, want)
		}
	}
	for _, id := range []int64{other, muni} {
		if got := s.pushedTo(t, id); !cmp.Equal(got, []string{"fan-1", "fan-2"}) {
			t.Errorf("post %d reached %v, want both fans", id, got)
		}
	}
	st := s.getPost(s.MuniKey, club[2])
	if st.Counts["skipped"] != 2 || st.Counts["sent"] != 0 {
		t.Errorf("the capped post's counts %v: want 2 skipped", st.Counts)
	}
	var e historyEntry
	if code := s.do("GET", fmt.Sprintf("/v1/devices/fan-1/deliveries/%d", club[2]), s.AppKey, nil, &e); code != http.StatusOK ||
		e.State != "skipped" || e.Reason != "sender_cap" || e.Why.Rule != "feed" {
		t.Errorf("fan-1's delivery of the capped post: %d %+v", code, e)
	}
}
