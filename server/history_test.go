package server_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/crier-push/crier/internal/testenv"
	"github.com/crier-push/crier/providers/emulator"
)

// historyEntry is one entry of GET /v1/devices/{id}/deliveries.
type historyEntry struct {
	PostID        int64      `json:"post_id"`
	Title         string     `json:"title"`
	State         string     `json:"state"`
	Reason        string     `json:"reason"`
	DeferredUntil *time.Time `json:"deferred_until"`
	ReceivedAt    *time.Time `json:"received_at"`
	Why           whyEntry   `json:"why"`
}

type whyEntry struct {
	Rule           string `json:"rule"`
	Interest       string `json:"interest,omitempty"`
	Area           string `json:"area,omitempty"`
	Place          string `json:"place,omitempty"`
	SubscribedArea string `json:"subscribed_area,omitempty"`
}

// history reads a device's whole notification history page by page, pages
// of size, newest first, following next_before.
func (s *stack) history(t *testing.T, inst string, size int) []historyEntry {
	t.Helper()
	var all []historyEntry
	path := fmt.Sprintf("/v1/devices/%s/deliveries?limit=%d", inst, size)
	for pages := 0; path != ""; pages++ {
		var page struct {
			Deliveries []historyEntry
			Next       string
		}
		if code := s.do("GET", path, s.AppKey, nil, &page); code != http.StatusOK {
			t.Fatalf("GET %s: %d", path, code)
		}
		if len(page.Deliveries) > size || pages > 20 {
			t.Fatalf("GET %s: %d entries on a page of %d, page %d", path, len(page.Deliveries), size, pages)
		}
		all = append(all, page.Deliveries...)
		path = page.Next
	}
	return all
}

// TestWhyDidIGetThis: each delivery records the rule that put its device in
// the audience, and the app reads it in the device's history, newest first
// and paged, and for one post: followed the feed, an interest and which, a
// mandatory feed to an area through a place or a subscribed area, the
// municipality's segment, an alert's area through a place, an incident's
// earlier message, a test device's exercise.
func TestWhyDidIGetThis(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.importVestfold(t)
	testenv.Interests(t, s.db, s.tenant.ID, []string{"handball"}, s.Org)
	s.feed(t, s.Org, "fotball", "Fotball", false)
	s.feed(t, s.muni, "viktig", "Viktig", true)
	s.feed(t, s.muni, "nyheter", "Nyheter", false)
	s.feed(t, s.muni, "beredskap", "Beredskap", false)
	ok := emulator.Behaviour{Kind: emulator.Accept}
	place := func(name string, at map[string]float64) []map[string]any {
		return []map[string]any{{"name": name, "lat": at["lat"], "lon": at["lon"]}}
	}
	s.register("fan", map[string]any{"provider": "fcm", "token": emulator.FCMToken(ok, "fan"),
		"follows": []string{"fotball"}, "places": place("Hjemme", inSandefjord)})
	s.register("handballer", map[string]any{"provider": "apns", "token": emulator.APNsToken(ok, 31),
		"interests": []string{"handball"}, "places": place("Hytta", inLarvik)})
	s.register("subscriber", map[string]any{"provider": "fcm", "token": emulator.FCMToken(ok, "subscriber"),
		"areas": []string{"sandefjord"}, "places": place("Jobben", inTonsberg)})
	s.register("staff", map[string]any{"provider": "fcm", "token": emulator.FCMToken(ok, "staff"),
		"places": place("Rådhuset", inLarvik)})
	if code := s.do("PUT", "/v1/test-devices", s.MuniKey, map[string]any{"installation_ids": []string{"staff"}}, nil); code != http.StatusOK {
		t.Fatalf("marking the test device: %d", code)
	}

	club := s.publish(t, s.OrgKey, map[string]any{"feed": "fotball", "title": "Kamp i kveld", "body": "Kl. 19.", "tags": []string{"handball"}})
	toArea := s.publish(t, s.MuniKey, map[string]any{"feed": "viktig", "title": "Vann stengt", "body": "I Sandefjord.",
		"target": []string{"sandefjord"}})
	segment := s.publish(t, s.MuniKey, map[string]any{"feed": "nyheter", "title": "Hallen åpner", "body": "Ny hall.",
		"segment": map[string]any{"interest": "handball"}})
	circle := func(at map[string]float64) map[string]any {
		return map[string]any{"lat": at["lat"], "lon": at["lon"], "radius_m": 300}
	}
	var alert, update, exercise struct{ ID int64 }
	if code := s.do("POST", "/v1/alerts", s.MuniKey, map[string]any{"feed": "beredskap", "title": "Gasslekkasje",
		"body": "Hold vinduene lukket.", "area": circle(inLarvik)}, &alert); code != http.StatusAccepted {
		t.Fatalf("alert: %d", code)
	}
	s.waitDone(s.MuniKey, alert.ID)
	if code := s.do("POST", fmt.Sprintf("/v1/alerts/%d/update", alert.ID), s.MuniKey, map[string]any{"title": "Lekkasjen flytter seg",
		"body": "Nå i Tønsberg.", "area": circle(inTonsberg)}, &update); code != http.StatusAccepted {
		t.Fatalf("update: %d", code)
	}
	s.waitDone(s.MuniKey, update.ID)
	if code := s.do("POST", "/v1/alerts", s.MuniKey, map[string]any{"feed": "beredskap", "title": "Øvelse", "body": "Øvelse.",
		"exercise": true, "area": circle(inLarvik)}, &exercise); code != http.StatusAccepted {
		t.Fatalf("exercise: %d", code)
	}
	s.waitDone(s.MuniKey, exercise.ID)

	want := map[string]map[int64]whyEntry{
		"fan": {
			club:   {Rule: "feed"},
			toArea: {Rule: "mandatory", Area: "sandefjord", Place: "Hjemme"},
		},
		"handballer": {
			club:     {Rule: "interest", Interest: "handball"},
			segment:  {Rule: "segment"},
			alert.ID: {Rule: "alert", Place: "Hytta"},
			// Outside the update's area, but it got the alert.
			update.ID: {Rule: "incident"},
		},
		"subscriber": {
			toArea:    {Rule: "mandatory", Area: "sandefjord", SubscribedArea: "sandefjord"},
			update.ID: {Rule: "alert", Place: "Jobben"},
		},
		"staff": {
			alert.ID:    {Rule: "alert", Place: "Rådhuset"},
			update.ID:   {Rule: "incident"},
			exercise.ID: {Rule: "test_device", Place: "Rådhuset"},
		},
	}
	for inst, posts := range want {
		got := map[int64]whyEntry{}
		var order []int64
		for _, e := range s.history(t, inst, 1) {
			got[e.PostID] = e.Why
			order = append(order, e.PostID)
			if e.State != "sent" {
				t.Errorf("%s: post %d is %s (%s), want sent", inst, e.PostID, e.State, e.Reason)
			}
		}
		if diff := cmp.Diff(posts, got); diff != "" {
			t.Errorf("why %s got each post (-want +got):\n%s", inst, diff)
		}
		for i := 1; i < len(order); i++ {
			if order[i] >= order[i-1] {
				t.Errorf("%s's history is not newest first: %v", inst, order)
			}
		}
		// One delivery's reason.
		for id, w := range posts {
			var e historyEntry
			if code := s.do("GET", fmt.Sprintf("/v1/devices/%s/deliveries/%d", inst, id), s.AppKey, nil, &e); code != http.StatusOK || e.Why != w {
				t.Errorf("GET %s's delivery of %d: %d %+v, want %+v", inst, id, code, e.Why, w)
			}
			break
		}
	}
	// A post the device did not get is not found; another device's
	// history needs that device's secret.
	if code := s.do("GET", fmt.Sprintf("/v1/devices/fan/deliveries/%d", segment), s.AppKey, nil, nil); code != http.StatusNotFound {
		t.Errorf("a post the device did not get: %d, want 404", code)
	}
	code, _, _, err := s.send("GET", "/v1/devices/fan/deliveries", http.Header{"Authorization": {"Bearer " + s.AppKey},
		"X-Device-Secret": {s.secrets.Get("handballer")}}, "")
	if err != nil || code != http.StatusForbidden {
		t.Errorf("fan's history with another device's secret: %d %v, want 403", code, err)
	}
	for _, q := range []string{"limit=0", "limit=101", "before=x", "sort=asc"} {
		if code := s.do("GET", "/v1/devices/fan/deliveries?"+q, s.AppKey, nil, nil); code != http.StatusBadRequest {
			t.Errorf("history ?%s: %d, want 400", q, code)
		}
	}
}

// TestExportAndErasure: a resident's export holds the device's record and
// every delivery with its reason and receipt; deleting the device removes
// its record and every link from its deliveries and receipts to it, and
// the posts' counts and reach stay as they were.
func TestExportAndErasure(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	ctx := context.Background()
	s.feed(t, s.muni, "nyheter", "Nyheter", false)
	ok := emulator.Behaviour{Kind: emulator.Accept}
	tokens := map[string]string{}
	for _, inst := range []string{"leaving", "staying"} {
		tokens[emulator.FCMToken(ok, inst)] = inst
		s.register(inst, map[string]any{"provider": "fcm", "token": emulator.FCMToken(ok, inst), "follows": []string{"nyheter"},
			"interests": []string{"kultur"}, "locale": "nb-NO",
			"places": []map[string]any{{"name": "Hjemme", "lat": inSandefjord["lat"], "lon": inSandefjord["lon"]}}})
	}
	if err := s.emu.PostReceipts(emulator.ReceiptsConfig{URL: s.base, Displayed: true,
		Device: func(_, token string, _ int64) (emulator.ReceiptDevice, bool) {
			inst, ok := tokens[token]
			return emulator.ReceiptDevice{AppKey: s.AppKey, InstallationID: inst, Secret: s.secrets.Get(inst)}, ok
		}}); err != nil {
		t.Fatal(err)
	}
	var posts []int64
	for i := range 3 {
		posts = append(posts, s.publish(t, s.MuniKey, map[string]any{"feed": "nyheter", "title": fmt.Sprintf("Nyhet %d", i), "body": "Tekst."}))
	}
	received := func(id int64) int {
		var n int
		if err := s.db.Pool.QueryRow(ctx, `SELECT count(*) FROM receipts WHERE post_id = $1`, id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	eventually(t, 20*time.Second, func() error {
		for _, id := range posts {
			if n := received(id); n != 2 {
				return fmt.Errorf("%w: post %d has %d receipts", errNotYet, id, n)
			}
		}
		return nil
	})

	var export struct {
		Device struct {
			InstallationID string `json:"installation_id"`
			Token          string
			Interests      []string
			Places         []struct{ Name string }
		}
		Deliveries []historyEntry
	}
	if code := s.do("GET", "/v1/devices/leaving/export", s.AppKey, nil, &export); code != http.StatusOK {
		t.Fatalf("export: %d", code)
	}
	if export.Device.InstallationID != "leaving" || export.Device.Token != emulator.FCMToken(ok, "leaving") ||
		!cmp.Equal(export.Device.Interests, []string{"kultur"}) || len(export.Device.Places) != 1 || export.Device.Places[0].Name != "Hjemme" {
		t.Errorf("exported device: %+v", export.Device)
	}
	if len(export.Deliveries) != 3 {
		t.Fatalf("exported %d deliveries, want 3", len(export.Deliveries))
	}
	for i, d := range export.Deliveries {
		if d.PostID != posts[2-i] || d.State != "sent" || d.Why.Rule != "feed" || d.ReceivedAt == nil || d.Title != fmt.Sprintf("Nyhet %d", 2-i) {
			t.Errorf("exported delivery %d: %+v", i, d)
		}
	}
	if code := s.do("GET", "/v1/devices/leaving/export", s.AppKey, nil, nil); code != http.StatusOK {
		t.Errorf("export again: %d", code)
	}

	before := map[int64]postStatus{}
	for _, id := range posts {
		before[id] = s.getPost(s.MuniKey, id)
	}
	leaving := s.deviceID("leaving")
	if code := s.do("DELETE", "/v1/devices/leaving", s.AppKey, nil, nil); code != http.StatusNoContent {
		t.Fatalf("delete: %d", code)
	}
	var linked, anonymous int
	if err := s.db.Pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM deliveries WHERE device_id = $1)
		+ (SELECT count(*) FROM receipts WHERE device_id = $1), (SELECT count(*) FROM deliveries WHERE device_id < 0)`,
		leaving).Scan(&linked, &anonymous); err != nil {
		t.Fatal(err)
	}
	if linked != 0 || anonymous != 3 {
		t.Errorf("after erasure: %d rows still name the device, %d deliveries anonymous (want 0 and 3)", linked, anonymous)
	}
	var distinct int
	if err := s.db.Pool.QueryRow(ctx, `SELECT count(DISTINCT device_id) FROM deliveries WHERE device_id < 0`).Scan(&distinct); err != nil {
		t.Fatal(err)
	}
	if distinct != 3 {
		t.Errorf("the erased device's deliveries share %d ids between 3 rows: they must not be joinable", distinct)
	}
	for _, id := range posts {
		after := s.getPost(s.MuniKey, id)
		if !cmp.Equal(before[id].Counts, after.Counts) || *after.Audience != 2 || received(id) != 2 {
			t.Errorf("post %d after erasure: counts %v → %v, audience %v, %d receipts", id, before[id].Counts, after.Counts,
				*after.Audience, received(id))
		}
	}
	if code := s.do("GET", "/v1/devices/leaving/export", s.AppKey, nil, nil); code != http.StatusNotFound && code != http.StatusUnauthorized {
		t.Errorf("export of an erased device: %d, want 404 or 401", code)
	}
	if got := s.history(t, "staying", 2); len(got) != 3 {
		t.Errorf("the other device's history has %d entries, want 3", len(got))
	}
}

// TestQuietHoursSayWhen: a device in its quiet hours sees in its history
// when a deferred post will go; a post that expires before they end is
// expired, with that reason, not sent in the morning about something over.
func TestQuietHoursSayWhen(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.feed(t, s.muni, "nyheter", "Nyheter", false)
	ok := emulator.Behaviour{Kind: emulator.Accept}
	now := time.Now().UTC()
	end := now.Truncate(time.Minute).Add(2 * time.Hour)
	quiet := map[string]string{"start": now.Add(-time.Hour).Format("15:04"), "end": end.Format("15:04")}
	s.register("sleeper", map[string]any{"provider": "fcm", "token": emulator.FCMToken(ok, "sleeper"), "follows": []string{"nyheter"},
		"time_zone": "UTC", "quiet_hours": quiet})
	s.register("awake", map[string]any{"provider": "fcm", "token": emulator.FCMToken(ok, "awake"), "follows": []string{"nyheter"}})
	var later, soon struct{ ID int64 }
	if code := s.do("POST", "/v1/posts", s.MuniKey, map[string]any{"feed": "nyheter", "title": "I morgen", "body": "Lenge."}, &later); code != http.StatusAccepted {
		t.Fatalf("post: %d", code)
	}
	if code := s.do("POST", "/v1/posts", s.MuniKey, map[string]any{"feed": "nyheter", "title": "Nå", "body": "Kort.",
		"expires_at": now.Add(time.Hour).Format(time.RFC3339)}, &soon); code != http.StatusAccepted {
		t.Fatalf("post: %d", code)
	}
	st := s.waitDone(s.MuniKey, soon.ID)
	if st.Counts["sent"] != 1 || st.Counts["expired"] != 1 {
		t.Errorf("the expiring post's counts %v: want 1 sent, 1 expired", st.Counts)
	}
	var got map[int64]historyEntry
	eventually(t, 20*time.Second, func() error {
		got = map[int64]historyEntry{}
		for _, e := range s.history(t, "sleeper", 5) {
			got[e.PostID] = e
		}
		if got[later.ID].State != "deferred" {
			return fmt.Errorf("%w: %v", errNotYet, got)
		}
		return nil
	})
	if e := got[later.ID]; e.DeferredUntil == nil || !e.DeferredUntil.Equal(end) {
		t.Errorf("the deferred post: %+v, want deferred until %s", e, end)
	}
	if e := got[soon.ID]; e.State != "expired" || e.Reason != "expires_in_quiet_hours" || e.DeferredUntil != nil {
		t.Errorf("the post expiring in the quiet hours: %+v", e)
	}
	if got := s.pushedTo(t, soon.ID); !cmp.Equal(got, []string{"awake"}) {
		t.Errorf("the expiring post reached %v, want only the awake device", got)
	}
}
