package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/crier-push/crier/providers/emulator"
	"github.com/crier-push/crier/storage"
)

// alertState reads the state of one message as GET /v1/alerts/{id} shows it.
func (s *stack) alertState(key string, id int64) string {
	s.t.Helper()
	var inc struct {
		Messages []struct {
			ID    int64
			State string
		}
	}
	if code := s.do("GET", fmt.Sprintf("/v1/alerts/%d", id), key, nil, &inc); code != http.StatusOK {
		s.t.Fatalf("GET /v1/alerts/%d: %d", id, code)
	}
	for _, m := range inc.Messages {
		if m.ID == id {
			return m.State
		}
	}
	s.t.Fatalf("alert %d is not among its incident's messages: %+v", id, inc)
	return ""
}

// TestTwoPersonRelease: with the tenant's approval rule on, an alert (an
// update, an emergency post, an exercise) waits, sending nothing, until a
// second key of the municipality approves it; its own key cannot; one that
// waits too long lapses, by the reconciler or when approved late; the
// all-clear of a live incident never waits.
func TestTwoPersonRelease(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStack(t)
	s.feed(t, s.muni, "beredskap", "Beredskap", false)
	if err := s.db.SetTenantAlertRules(ctx, s.tenant.ID, storage.AlertRules{Approval: true, ApprovalTTL: time.Hour,
		Language: "nb"}); err != nil {
		t.Fatal(err)
	}
	second, err := s.db.NewAPIKey(ctx, s.tenant.ID, &s.muni.ID, "vakthavende")
	if err != nil {
		t.Fatal(err)
	}
	ok := emulator.Behaviour{Kind: emulator.Accept}
	for _, id := range []string{"resident-1", "resident-2"} {
		s.register(id, map[string]any{"provider": "fcm", "platform": "android", "token": emulator.FCMToken(ok, id),
			"places": []map[string]any{{"name": "home", "lat": 59.13, "lon": 10.21}}})
	}
	area := `{"lat": 59.13, "lon": 10.21, "radius_m": 2000}`
	var created struct {
		ID         int64
		State      string
		IncidentID int64     `json:"incident_id"`
		LapsesAt   time.Time `json:"lapses_at"`
	}
	alert := func(key string, body string) int64 {
		t.Helper()
		created.ID, created.State = 0, ""
		code, _, raw, err := s.send("POST", "/v1/alerts", http.Header{"Authorization": {"Bearer " + key},
			"Content-Type": {"application/json"}}, body)
		if err != nil || code != http.StatusAccepted {
			t.Fatalf("alert: %d %s %v", code, raw, err)
		}
		if err := json.Unmarshal(raw, &created); err != nil {
			t.Fatal(err)
		}
		return created.ID
	}
	approve := func(key string, id int64) (int, map[string]any) {
		var out map[string]any
		return s.do("POST", fmt.Sprintf("/v1/alerts/%d/approve", id), key, nil, &out), out
	}

	first := alert(s.MuniKey, `{"feed": "beredskap", "title": "Gasslekkasje", "body": "Hold vinduene lukket.", "area": `+area+`}`)
	if created.State != "awaiting_approval" || created.LapsesAt.Before(time.Now().Add(59*time.Minute)) {
		t.Fatalf("the alert: %+v, want awaiting approval for an hour", created)
	}
	time.Sleep(2500 * time.Millisecond) // a reconciler pass and more
	if got := s.pushedTo(t, first); len(got) != 0 || s.alertState(s.MuniKey, first) != "awaiting_approval" {
		t.Fatalf("an unapproved alert reached %v", got)
	}
	if code, out := approve(s.MuniKey, first); code != http.StatusForbidden || !strings.Contains(fmt.Sprint(out), "second person") {
		t.Errorf("self-approval: %d %v, want 403", code, out)
	}
	if code, out := approve(s.OrgKey, first); code != http.StatusForbidden {
		t.Errorf("an organisation approving: %d %v, want 403", code, out)
	}
	if code, out := approve(second, first); code != http.StatusOK || out["state"] != "accepted" {
		t.Fatalf("approval by the second key: %d %v", code, out)
	}
	s.waitDone(s.MuniKey, first)
	if got := s.pushedTo(t, first); !cmp.Equal(got, []string{"resident-1", "resident-2"}) {
		t.Errorf("the approved alert reached %v", got)
	}
	if code, _ := approve(second, first); code != http.StatusConflict {
		t.Errorf("approving it again: %d, want 409", code)
	}

	// An update waits too.
	var upd struct {
		ID    int64
		State string
	}
	if code := s.do("POST", fmt.Sprintf("/v1/alerts/%d/update", first), s.MuniKey,
		map[string]any{"title": "Gasslekkasje", "body": "Gå innendørs."}, &upd); code != http.StatusAccepted || upd.State != "awaiting_approval" {
		t.Fatalf("the update: %d %+v, want awaiting approval", code, upd)
	}
	// So does an emergency post.
	var post struct {
		ID    int64
		State string
	}
	if code := s.do("POST", "/v1/posts", s.MuniKey, map[string]any{"feed": "beredskap", "title": "Flom", "body": "Evakuer",
		"class": "emergency"}, &post); code != http.StatusAccepted || post.State != "awaiting_approval" {
		t.Errorf("an emergency post: %d %+v, want awaiting approval", code, post)
	}
	// The all-clear does not wait, and the unapproved update is
	// superseded by it: it never goes.
	var cancel struct {
		ID    int64
		State string
	}
	if code := s.do("POST", fmt.Sprintf("/v1/alerts/%d/cancel", first), s.MuniKey, map[string]any{}, &cancel); code != http.StatusAccepted ||
		cancel.State != "accepted" {
		t.Fatalf("the all-clear: %d %+v, want accepted at once", code, cancel)
	}
	s.waitDone(s.MuniKey, cancel.ID)
	if got := s.pushedTo(t, cancel.ID); !cmp.Equal(got, []string{"resident-1", "resident-2"}) {
		t.Errorf("the all-clear reached %v", got)
	}
	if st := s.alertState(s.MuniKey, upd.ID); st != "cancelled" {
		t.Errorf("the unapproved update after the all-clear is %s, want cancelled", st)
	}
	if code, _ := approve(second, upd.ID); code != http.StatusConflict {
		t.Errorf("approving the superseded update: %d, want 409", code)
	}

	// Lapse: by the reconciler, and when approved too late.
	for _, late := range []bool{false, true} {
		id := alert(s.MuniKey, `{"feed": "beredskap", "title": "Øvelse", "body": "Ingen fare.", "exercise": true, "area": `+area+`}`)
		if _, err := s.db.Pool.Exec(ctx, `UPDATE posts SET lapses_at = now() - interval '1 second' WHERE id = $1`, id); err != nil {
			t.Fatal(err)
		}
		if late {
			if code, out := approve(second, id); code != http.StatusConflict || !strings.Contains(fmt.Sprint(out), "lapsed") {
				t.Errorf("approving a lapsed alert: %d %v, want 409", code, out)
			}
		}
		eventually(t, 10*time.Second, func() error {
			if st := s.alertState(s.MuniKey, id); st != "lapsed" {
				return fmt.Errorf("%w: state %s", errNotYet, st)
			}
			return nil
		})
		if got := s.pushedTo(t, id); len(got) != 0 {
			t.Errorf("a lapsed alert reached %v", got)
		}
	}
}

// TestExercises: CAP Exercise and Test messages and JSON exercises go to
// the tenant's test devices in their area only, through the same path as a
// real alert, marked as an exercise in the device's language; residents
// get nothing. Test devices are the municipality's to mark.
func TestExercises(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.feed(t, s.muni, "beredskap", "Beredskap", false)
	ok := emulator.Behaviour{Kind: emulator.Accept}
	for _, d := range []struct{ id, locale string }{{"resident", "nb"}, {"staff-nb", "nb-NO"}, {"staff-en", "en-GB"}} {
		s.register(d.id, map[string]any{"provider": "fcm", "platform": "android", "token": emulator.FCMToken(ok, d.id), "locale": d.locale,
			"places": []map[string]any{{"name": "home", "lat": 59.13, "lon": 10.21}}})
	}
	s.register("staff-away", map[string]any{"provider": "fcm", "platform": "android", "token": emulator.FCMToken(ok, "staff-away"),
		"places": []map[string]any{{"name": "home", "lat": 59.91, "lon": 10.75}}})

	var marked struct {
		Changed int
		Unknown []string
	}
	if code := s.do("PUT", "/v1/test-devices", s.MuniKey, map[string]any{"installation_ids": []string{"staff-nb", "staff-en",
		"staff-away", "nobody"}}, &marked); code != http.StatusOK || marked.Changed != 3 || !cmp.Equal(marked.Unknown, []string{"nobody"}) {
		t.Fatalf("marking test devices: %d %+v", code, marked)
	}
	if code := s.do("PUT", "/v1/test-devices", s.OrgKey, map[string]any{"installation_ids": []string{"resident"}}, nil); code != http.StatusForbidden {
		t.Errorf("an organisation marking test devices: %d, want 403", code)
	}
	var listed struct {
		InstallationIDs []string `json:"installation_ids"`
	}
	if s.do("GET", "/v1/test-devices", s.MuniKey, nil, &listed); !cmp.Equal(listed.InstallationIDs, []string{"staff-away", "staff-en", "staff-nb"}) {
		t.Errorf("test devices: %v", listed.InstallationIDs)
	}

	now := time.Now().Truncate(time.Second)
	area := `<area><areaDesc>Sentrum</areaDesc><circle>59.13,10.21 2</circle></area>`
	var ids []int64
	for i, status := range []string{"Exercise", "Test"} {
		doc := strings.Replace(capMessage(fmt.Sprintf("ovelse-%d", i), "Alert", "", "Flom i sentrum", area, now), "<status>Actual</status>",
			"<status>"+status+"</status>", 1)
		code, out := s.postAlert(s.MuniKey, "?feed=beredskap", "application/cap+xml", doc)
		if code != http.StatusAccepted || out["exercise"] != true {
			t.Fatalf("CAP %s: %d %v", status, code, out)
		}
		ids = append(ids, int64(out["id"].(float64)))
	}
	var created struct{ ID int64 }
	if code := s.do("POST", "/v1/alerts", s.MuniKey, map[string]any{"feed": "beredskap", "title": "Flom i sentrum", "body": "Øvelse.",
		"exercise": true, "area": map[string]any{"lat": 59.13, "lon": 10.21, "radius_m": 2000}}, &created); code != http.StatusAccepted {
		t.Fatalf("JSON exercise: %d", code)
	}
	ids = append(ids, created.ID)
	for _, id := range ids {
		s.waitDone(s.MuniKey, id)
		if got := s.pushedTo(t, id); !cmp.Equal(got, []string{"staff-en", "staff-nb"}) {
			t.Errorf("exercise %d reached %v, want the test devices in its area", id, got)
		}
	}
	for tok, prefix := range map[string]string{emulator.FCMToken(ok, "staff-nb"): "ØVELSE", emulator.FCMToken(ok, "staff-en"): "EXERCISE"} {
		got := s.pushesTo(t, tok)
		if len(got) != len(ids) {
			t.Errorf("%s got %d pushes, want %d", tok, len(got), len(ids))
		}
		for _, p := range got {
			if !strings.HasPrefix(p.Title, prefix) || p.Data["exercise"] != "true" {
				t.Errorf("%s got %q with data %v, want it marked %s", tok, p.Title, p.Data, prefix)
			}
		}
	}
	if got := s.pushesTo(t, emulator.FCMToken(ok, "resident")); len(got) != 0 {
		t.Errorf("a resident got %d pushes of exercises", len(got))
	}
	// An exercise's follow-up is an exercise; an Actual one cannot follow it.
	actual := capMessage("ovelse-2", "Update", capSender+",ovelse-0,"+now.Format(time.RFC3339), "Flom", area, now.Add(time.Minute))
	if code, out := s.postAlert(s.MuniKey, "?feed=beredskap", "application/cap+xml", actual); code != http.StatusBadRequest ||
		out["error"].(map[string]any)["field"] != "alert.status" {
		t.Errorf("an Actual update of an exercise: %d %v, want 400 naming alert.status", code, out)
	}
	var upd struct {
		ID       int64
		Exercise bool
	}
	if code := s.do("POST", fmt.Sprintf("/v1/alerts/%d/cancel", created.ID), s.MuniKey, map[string]any{}, &upd); code != http.StatusAccepted ||
		!upd.Exercise {
		t.Fatalf("the exercise's all-clear: %d %+v", code, upd)
	}
	s.waitDone(s.MuniKey, upd.ID)
	if got := s.pushedTo(t, upd.ID); !cmp.Equal(got, []string{"staff-en", "staff-nb"}) {
		t.Errorf("the exercise's all-clear reached %v", got)
	}
}
