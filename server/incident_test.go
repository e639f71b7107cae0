package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/crier-push/crier/cap"
	"github.com/crier-push/crier/providers/emulator"
	"github.com/crier-push/crier/storage"
)

// pushed is one push the emulator took, as a phone would show it.
type pushed struct {
	Seq      int64
	PostID   int64
	Title    string
	Collapse string // FCM collapse_key and notification tag, or apns-collapse-id
	Tag      string
	Data     map[string]string
}

// pushesTo reads what the emulator accepted for a token, oldest first.
func (s *stack) pushesTo(t *testing.T, token string) []pushed {
	t.Helper()
	var out []pushed
	for _, r := range s.emu.RecordsFor(token) {
		if !r.Accepted() {
			continue
		}
		p := pushed{Seq: r.Seq}
		switch r.Provider {
		case "fcm":
			var b struct {
				Message struct {
					Notification struct{ Title string }
					Data         map[string]string
					Android      struct {
						CollapseKey  string `json:"collapse_key"`
						Notification struct{ Tag string }
					}
				}
			}
			if err := json.Unmarshal([]byte(r.Body), &b); err != nil {
				t.Fatal(err)
			}
			p.Title, p.Data = b.Message.Notification.Title, b.Message.Data
			p.Collapse, p.Tag = b.Message.Android.CollapseKey, b.Message.Android.Notification.Tag
		case "apns":
			var b map[string]any
			if err := json.Unmarshal([]byte(r.Body), &b); err != nil {
				t.Fatal(err)
			}
			aps, _ := b["aps"].(map[string]any)
			alert, _ := aps["alert"].(map[string]any)
			p.Title, _ = alert["title"].(string)
			p.Data = map[string]string{}
			for k, v := range b {
				if sv, ok := v.(string); ok {
					p.Data[k] = sv
				}
			}
			p.Collapse = r.Headers["apns-collapse-id"]
			p.Tag = p.Collapse
		}
		p.PostID, _ = strconv.ParseInt(p.Data["post_id"], 10, 64)
		out = append(out, p)
	}
	return out
}

// Where the incident test's devices are: the first message's area A over
// Sandefjord sentrum; the update's larger area B around it and east.
const (
	incidentAreaA = `{"type": "Polygon", "coordinates": [[[10.20, 59.12], [10.23, 59.12], [10.23, 59.14], [10.20, 59.14], [10.20, 59.12]]]}`
	incidentAreaB = `{"type": "Polygon", "coordinates": [[[10.18, 59.10], [10.30, 59.10], [10.30, 59.16], [10.18, 59.16], [10.18, 59.10]]]}`
	capAreaA      = `<area><areaDesc>Sentrum</areaDesc><polygon>59.12,10.20 59.12,10.23 59.14,10.23 59.14,10.20 59.12,10.20</polygon></area>`
	capAreaB      = `<area><areaDesc>Sentrum og Hjertnes</areaDesc><polygon>59.10,10.18 59.10,10.30 59.16,10.30 59.16,10.18 59.10,10.18</polygon></area>`
)

// capMessage is a CAP 1.2 message of the incident test: one Norwegian info
// block with an area, or none (a Cancel without text).
func capMessage(id, msgType, refs, title, area string, sent time.Time) string {
	info := ""
	if title != "" {
		info = fmt.Sprintf(`<info><language>nb-NO</language><category>Met</category><event>Flom</event>
    <urgency>Immediate</urgency><severity>Severe</severity><certainty>Observed</certainty>
    <expires>%s</expires><headline>%s</headline><description>Elva går over sine bredder.</description>%s</info>`,
			sent.Add(6*time.Hour).Format(time.RFC3339), title, area)
	}
	if refs != "" {
		refs = "<references>" + refs + "</references>"
	}
	return fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>%s</identifier><sender>%s</sender><sent>%s</sent>
  <status>Actual</status><msgType>%s</msgType><scope>Public</scope>%s%s
</alert>`, id, capSender, sent.Format(time.RFC3339), msgType, refs, info)
}

// TestIncident: an alert, an update with a larger area and a cancel, as
// CAP and as JSON, to four devices: inside both areas; inside the first,
// then moved away before the update; inside only the update's; outside
// all. Each gets exactly what DESIGN.md says (the update: whoever got an
// earlier message and whoever is in its area; the cancel: whoever got an
// earlier message), each message once, all with the incident's one
// collapse id; the cancel without text of its own says the all-clear. A
// slow lane of devices in the first area (their provider at 2 pushes a
// second) still waits for the first message when the update comes: its
// pending sends are cancelled, and no phone gets the old text after the
// new.
func TestIncident(t *testing.T) {
	t.Parallel()
	for _, format := range []string{"cap", "json"} {
		t.Run(format, func(t *testing.T) {
			t.Parallel()
			runIncident(t, format)
		})
	}
}

func runIncident(t *testing.T, format string) {
	ctx := context.Background()
	s := newStack(t)
	s.feed(t, s.muni, "beredskap", "Beredskap", false)
	if err := s.db.SetRateLimit(ctx, s.tenant.ID, "apns", 2); err != nil {
		t.Fatal(err)
	}
	ok := emulator.Behaviour{Kind: emulator.Accept}
	type device struct {
		id       string
		lat, lon float64
		want     []string // the messages it gets, in order
	}
	devices := []device{
		{"both", 59.13, 10.21, []string{"alert", "update", "cancel"}},
		{"moved", 59.131, 10.215, []string{"alert", "update", "cancel"}},
		{"update-only", 59.15, 10.28, []string{"update", "cancel"}},
		{"outside", 59.2676, 10.4076, nil},
	}
	tokens := map[string]string{}
	place := func(id string, lat, lon float64, provider, token string) {
		t.Helper()
		code := s.do("PUT", "/v1/devices/"+id, s.AppKey, map[string]any{"provider": provider, "token": token, "platform": map[string]string{"fcm": "android", "apns": "ios"}[provider],
			"places": []map[string]any{{"name": "home", "lat": lat, "lon": lon}},
			// Choices an emergency ignores.
			"mutes": []string{"beredskap"}, "quiet_hours": map[string]string{"start": "00:00", "end": "23:59"}}, nil)
		if code != http.StatusCreated && code != http.StatusOK {
			t.Fatalf("PUT device %s: %d", id, code)
		}
	}
	for _, d := range devices {
		tokens[d.id] = emulator.FCMToken(ok, format+"-"+d.id)
		place(d.id, d.lat, d.lon, "fcm", tokens[d.id])
	}
	const slow = 8
	var slowTokens []string
	for i := range slow {
		tok := emulator.APNsToken(ok, uint64(1000+i))
		slowTokens = append(slowTokens, tok)
		place(fmt.Sprintf("slow-%d", i), 59.125, 10.205, "apns", tok)
	}

	now := time.Now().Truncate(time.Second)
	var alertID, updateID, cancelID int64
	send := func(path, contentType, body string) map[string]any {
		t.Helper()
		req, _ := http.NewRequest("POST", s.base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+s.MuniKey)
		req.Header.Set("Content-Type", contentType)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusAccepted {
			t.Fatalf("POST %s: %d %v %v", path, resp.StatusCode, out, err)
		}
		return out
	}
	idOf := func(out map[string]any) int64 { return int64(out["id"].(float64)) }

	// The alert.
	var out map[string]any
	if format == "cap" {
		out = send("/v1/alerts?feed=beredskap", "application/cap+xml", capMessage("flom-1", "Alert", "", "Flom i sentrum", capAreaA, now))
	} else {
		out = send("/v1/alerts", "application/json", `{"feed": "beredskap", "title": "Flom i sentrum", "body": "Elva går over sine bredder.",
			"area": `+incidentAreaA+`}`)
	}
	alertID = idOf(out)
	if out["incident_id"] != out["id"] || out["msg_type"] != "alert" {
		t.Fatalf("the alert: %v", out)
	}
	// The fast devices in area A have it; then one of them moves away.
	eventually(t, 20*time.Second, func() error {
		for _, id := range []string{"both", "moved"} {
			if len(s.pushesTo(t, tokens[id])) == 0 {
				return fmt.Errorf("%w: %s has not got the alert", errNotYet, id)
			}
		}
		return nil
	})
	place("moved", 59.91, 10.75, "fcm", tokens["moved"]) // to Oslo

	// The update, with a larger area.
	if format == "cap" {
		out = send("/v1/alerts?feed=beredskap", "application/cap+xml", capMessage("flom-2", "Update",
			capSender+",flom-1,"+now.Format(time.RFC3339), "Flommen sprer seg", capAreaB, now.Add(time.Minute)))
	} else {
		out = send(fmt.Sprintf("/v1/alerts/%d/update", alertID), "application/json",
			`{"title": "Flommen sprer seg", "body": "Elva går over sine bredder.", "area": `+incidentAreaB+`}`)
	}
	updateID = idOf(out)
	if out["incident_id"] != float64(alertID) || out["msg_type"] != "update" {
		t.Fatalf("the update: %v", out)
	}
	s.waitDone(s.MuniKey, updateID)
	var superseded int
	if err := s.db.Pool.QueryRow(ctx, `SELECT count(*) FROM deliveries WHERE post_id = $1 AND state = 'cancelled'
		AND reason = $2`, alertID, storage.ReasonSuperseded).Scan(&superseded); err != nil {
		t.Fatal(err)
	}
	if superseded == 0 {
		t.Errorf("no send of the alert was pending when the update came: the slow lane sent it all (the test needs some)")
	}

	// The all-clear, without text of its own.
	if format == "cap" {
		out = send("/v1/alerts?feed=beredskap", "application/cap+xml", capMessage("flom-3", "Cancel",
			capSender+",flom-1,"+now.Format(time.RFC3339)+" "+capSender+",flom-2,"+now.Add(time.Minute).Format(time.RFC3339),
			"", "", now.Add(2*time.Minute)))
	} else {
		out = send(fmt.Sprintf("/v1/alerts/%d/cancel", updateID), "application/json", `{}`)
	}
	cancelID = idOf(out)
	if out["incident_id"] != float64(alertID) || out["msg_type"] != "cancel" {
		t.Fatalf("the cancel: %v", out)
	}
	s.waitDone(s.MuniKey, cancelID)

	kinds := map[int64]string{alertID: "alert", updateID: "update", cancelID: "cancel"}
	collapse := "incident-" + strconv.FormatInt(alertID, 10)
	received := func(token string) []string {
		var got []string
		for _, p := range s.pushesTo(t, token) {
			got = append(got, kinds[p.PostID])
			if p.Collapse != collapse || p.Tag != collapse {
				t.Errorf("token %s: post %d pushed with collapse %q and tag %q, want %q for the incident", token, p.PostID,
					p.Collapse, p.Tag, collapse)
			}
			if kinds[p.PostID] == "cancel" && p.Title != "Faren er over" {
				t.Errorf("token %s: the all-clear says %q, want the default \"Faren er over\"", token, p.Title)
			}
		}
		return got
	}
	for _, d := range devices {
		if got := received(tokens[d.id]); !cmp.Equal(got, d.want) {
			t.Errorf("%s received %v, want %v", d.id, got, d.want)
		}
	}
	// The slow lane: the update and the all-clear once each; the alert at
	// most once, and never after the update.
	for i, tok := range slowTokens {
		got := received(tok)
		want := []string{"update", "cancel"}
		if len(got) == 3 {
			want = []string{"alert", "update", "cancel"}
		}
		if !cmp.Equal(got, want) {
			t.Errorf("slow-%d received %v, want %v", i, got, want)
		}
	}

	// The incident as GET /v1/alerts/{id} shows it, by any message's id.
	var inc struct {
		IncidentID int64 `json:"incident_id"`
		Messages   []struct {
			ID      int64
			MsgType string `json:"msg_type"`
			State   string
			Reached int
		}
	}
	if code := s.do("GET", fmt.Sprintf("/v1/alerts/%d", cancelID), s.MuniKey, nil, &inc); code != http.StatusOK {
		t.Fatalf("GET alert: %d", code)
	}
	if inc.IncidentID != alertID || len(inc.Messages) != 3 {
		t.Fatalf("the incident: %+v", inc)
	}
	wantReach := []int{2 + slow - superseded, 3 + slow, 3 + slow}
	for i, m := range inc.Messages {
		if m.ID != []int64{alertID, updateID, cancelID}[i] || m.Reached != wantReach[i] {
			t.Errorf("message %d: %+v, want post %d reaching %d", i, m, []int64{alertID, updateID, cancelID}[i], wantReach[i])
		}
	}
	if inc.Messages[0].State != "cancelled" {
		t.Errorf("the superseded alert is %s, want cancelled", inc.Messages[0].State)
	}

	// Each message as CAP 1.2, references included.
	identity := func(id int64, capID string) string {
		if format == "cap" {
			return capSender + "," + capID
		}
		return fmt.Sprintf("crier@%s,crier-%s-%d", s.tenant.Slug, s.tenant.Slug, id)
	}
	for i, m := range []struct {
		id      int64
		capID   string
		msgType string
		refs    []string
	}{
		{alertID, "flom-1", "Alert", nil},
		{updateID, "flom-2", "Update", []string{identity(alertID, "flom-1")}},
		{cancelID, "flom-3", "Cancel", []string{identity(alertID, "flom-1"), identity(updateID, "flom-2")}},
	} {
		code, h, raw, err := s.send("GET", fmt.Sprintf("/v1/alerts/%d", m.id), http.Header{"Authorization": {"Bearer " + s.MuniKey},
			"Accept": {"application/cap+xml"}}, "")
		if err != nil || code != http.StatusOK || !strings.HasPrefix(h.Get("Content-Type"), "application/cap+xml") {
			t.Fatalf("GET alert %d as CAP: %d %s %v", m.id, code, raw, err)
		}
		a, err := cap.Parse(raw)
		if err != nil {
			t.Fatalf("message %d as CAP does not parse: %v\n%s", i, err, raw)
		}
		var refs []string
		for _, r := range a.References {
			refs = append(refs, r.Sender+","+r.Identifier)
		}
		if a.MsgType != m.msgType || a.Sender+","+a.Identifier != identity(m.id, m.capID) || !cmp.Equal(refs, m.refs) {
			t.Errorf("message %d as CAP: %s %s,%s references %v; want %s %s references %v", i, a.MsgType, a.Sender, a.Identifier,
				refs, m.msgType, identity(m.id, m.capID), m.refs)
		}
		if m.msgType != "Cancel" && (len(a.Infos) == 0 || len(a.Infos[0].Areas) == 0) {
			t.Errorf("message %d as CAP has no area:\n%s", i, raw)
		}
	}
}
