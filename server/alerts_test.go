package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/crier-push/crier/providers/emulator"
)

// postAlert posts a body to /v1/alerts with a Content-Type and returns the
// status and the decoded answer.
func (s *stack) postAlert(key, query, contentType, body string) (int, map[string]any) {
	s.t.Helper()
	req, err := http.NewRequest("POST", s.base+"/v1/alerts"+query, strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		s.t.Fatalf("POST /v1/alerts: %d %q: %v", resp.StatusCode, raw, err)
	}
	return resp.StatusCode, out
}

// capAlert is a CAP 1.2 alert from Sandefjord's emergency office: a polygon
// over Sandefjord sentrum and a 1 km circle around a home in Tønsberg.
type capAlert struct {
	Identifier, MsgType, Status, References, Area string
	Sent, Expires                                 time.Time
}

const capSender = "beredskap@sandefjord.kommune.no"

func (a capAlert) xml() string {
	if a.MsgType == "" {
		a.MsgType = "Alert"
	}
	if a.Status == "" {
		a.Status = "Actual"
	}
	if a.Area == "" {
		a.Area = `<area><areaDesc>Sandefjord sentrum</areaDesc>
        <polygon>59.12,10.20 59.14,10.20 59.14,10.23 59.12,10.23 59.12,10.20</polygon></area>
      <area><areaDesc>Tønsberg, Kaldnes</areaDesc><circle>59.2676,10.4076 1.0</circle></area>`
	}
	refs := ""
	if a.References != "" {
		refs = "<references>" + a.References + "</references>"
	}
	return fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>%s</identifier>
  <sender>%s</sender>
  <sent>%s</sent>
  <status>%s</status>
  <msgType>%s</msgType>
  <scope>Public</scope>
  %s
  <info>
    <language>en-GB</language>
    <category>Met</category>
    <event>Flood</event>
    <urgency>Immediate</urgency>
    <severity>Severe</severity>
    <certainty>Observed</certainty>
    <headline>Flood in the centre</headline>
    <description>The river has flooded the centre.</description>
  </info>
  <info>
    <language>nb-NO</language>
    <category>Met</category>
    <event>Flom</event>
    <urgency>Immediate</urgency>
    <severity>Severe</severity>
    <certainty>Observed</certainty>
    <expires>%s</expires>
    <headline>Flom i sentrum</headline>
    <description>Elva har gått over sine bredder.</description>
    <instruction>Hold deg unna sentrum.</instruction>
    <web>https://www.sandefjord.kommune.no/beredskap</web>
    %s
  </info>
</alert>`, a.Identifier, capSender, a.Sent.Format(time.RFC3339), a.Status, a.MsgType, refs,
		a.Expires.Format(time.RFC3339), a.Area)
}

// ref is the CAP reference to the alert.
func (a capAlert) ref() string {
	return capSender + "," + a.Identifier + "," + a.Sent.Format(time.RFC3339)
}

// TestAlerts: the municipality's alerts, as CAP 1.2 and as JSON, reach
// every device located in their area, whatever the resident chose; a feed
// that delivers an alert twice makes one post; an Update replaces what it
// refers to and a Cancel stops it; alerts crier must not send are refused
// naming the element.
func TestAlerts(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	ctx := context.Background()
	s.feed(t, s.muni, "beredskap", "Beredskap", false)
	ok := emulator.Behaviour{Kind: emulator.Accept}
	for i, d := range []struct {
		id   string
		home map[string]float64
		body map[string]any
	}{
		{"sandefjord-nothing-chosen", inSandefjord, map[string]any{}},
		{"sandefjord-muted", inSandefjord, map[string]any{"mutes": []string{"beredskap"}}},
		{"tonsberg-nothing-chosen", inTonsberg, map[string]any{}},
		{"larvik-follower", inLarvik, map[string]any{"follows": []string{"beredskap"}}},
	} {
		d.body["provider"] = "apns"
		d.body["token"] = emulator.APNsToken(ok, uint64(i+1))
		if i%2 == 0 {
			d.body["provider"], d.body["token"] = "fcm", emulator.FCMToken(ok, d.id)
		}
		d.body["places"] = []map[string]any{{"name": "home", "lat": d.home["lat"], "lon": d.home["lon"]}}
		if code := s.do("PUT", "/v1/devices/"+d.id, s.AppKey, d.body, nil); code != http.StatusCreated {
			t.Fatalf("register %s: %d", d.id, code)
		}
	}
	now := time.Now().Truncate(time.Second)
	first := capAlert{Identifier: "sandefjord-flom-1", Sent: now, Expires: now.Add(6 * time.Hour)}

	code, out := s.postAlert(s.MuniKey, "?feed=beredskap", "application/cap+xml", first.xml())
	if code != http.StatusAccepted {
		t.Fatalf("CAP alert: %d %v", code, out)
	}
	id := int64(out["id"].(float64))
	s.waitDone(s.MuniKey, id)
	if got, want := s.pushedTo(t, id), []string{"sandefjord-muted", "sandefjord-nothing-chosen", "tonsberg-nothing-chosen"}; !cmp.Equal(got, want) {
		t.Errorf("the CAP alert reached %v, want %v (everyone located in its polygon and circle)", got, want)
	}
	var post struct {
		Class, Title, Body, URL string
		ExternalID              string    `json:"external_id"`
		ExpiresAt               time.Time `json:"expires_at"`
		State                   string
	}
	s.do("GET", "/v1/posts/"+strconv.FormatInt(id, 10), s.MuniKey, nil, &post)
	if post.Class != "emergency" || post.Title != "Flood in the centre" || post.Body != "The river has flooded the centre." ||
		!post.ExpiresAt.Equal(first.Expires) || post.ExternalID != "cap:"+first.ref() {
		t.Errorf("the post of the CAP alert (its first info, the others its translations): %+v", post)
	}
	stored, err := s.db.Post(ctx, s.tenant.ID, id)
	if nb := stored.Translations["nb-NO"]; err != nil || stored.Language != "en-GB" || nb.Title != "Flom i sentrum" ||
		nb.Body != "Elva har gått over sine bredder.\n\nHold deg unna sentrum." {
		t.Errorf("the stored alert: language %q, translations %+v (%v); want en-GB with nb-NO", stored.Language, stored.Translations, err)
	}
	if out["msg_type"] != "alert" || out["incident_id"] != out["id"] {
		t.Errorf("the CAP alert: %v, want the first message of its own incident", out)
	}

	// The feed delivers the same alert again.
	if code, again := s.postAlert(s.MuniKey, "?feed=beredskap", "application/cap+xml", first.xml()); code != http.StatusOK ||
		again["id"] != out["id"] || again["duplicate"] != true {
		t.Errorf("the same alert again: %d %v, want 200 with post %v", code, again, out["id"])
	}

	// An Update: a new message of the same incident.
	update := capAlert{Identifier: "sandefjord-flom-2", MsgType: "Update", References: first.ref(), Sent: now.Add(time.Minute),
		Expires: now.Add(6 * time.Hour)}
	code, out2 := s.postAlert(s.MuniKey, "?feed=beredskap", "text/xml; charset=utf-8", update.xml())
	if code != http.StatusAccepted || out2["id"] == out["id"] {
		t.Fatalf("CAP update: %d %v", code, out2)
	}
	if out2["msg_type"] != "update" || out2["incident_id"] != out["id"] {
		t.Errorf("the update: %v, want an update of incident %d", out2, id)
	}
	s.waitDone(s.MuniKey, int64(out2["id"].(float64)))

	// A Cancel of an incident that reached no one withdraws it: here an
	// emergency post scheduled for later that carries the CAP identity of
	// an alert.
	later := capAlert{Identifier: "sandefjord-flom-3", Sent: now.Add(2 * time.Minute)}
	var scheduled struct{ ID int64 }
	if code := s.do("POST", "/v1/posts", s.MuniKey, map[string]any{"feed": "beredskap", "title": "Flom", "body": "Varsel",
		"class": "emergency", "external_id": "cap:" + later.ref(), "publish_at": now.Add(time.Hour).Format(time.RFC3339)},
		&scheduled); code != http.StatusAccepted {
		t.Fatalf("scheduled post: %d", code)
	}
	cancel := capAlert{Identifier: "sandefjord-flom-4", MsgType: "Cancel", Sent: now.Add(3 * time.Minute),
		References: later.ref() + " " + capSender + ",never-sent," + now.Format(time.RFC3339), Expires: now.Add(time.Hour)}
	code, res := s.postAlert(s.MuniKey, "", "application/cap+xml", cancel.xml())
	if code != http.StatusOK || fmt.Sprint(res["withdrawn"]) != fmt.Sprintf("[%d]", scheduled.ID) || res["sent"] != false ||
		fmt.Sprint(res["unknown_references"]) != "["+capSender+",never-sent,"+now.Format(time.RFC3339)+"]" {
		t.Errorf("CAP cancel: %d %v", code, res)
	}
	s.do("GET", "/v1/posts/"+strconv.FormatInt(scheduled.ID, 10), s.MuniKey, nil, &post)
	if post.State != "cancelled" {
		t.Errorf("the cancelled alert's post is %s", post.State)
	}

	// A JSON alert: a circle around a home in Larvik.
	var created struct{ ID int64 }
	if code := s.do("POST", "/v1/alerts", s.MuniKey, map[string]any{"feed": "beredskap", "title": "Gasslekkasje",
		"body": "Hold vinduene lukket.", "area": map[string]any{"lat": inLarvik["lat"], "lon": inLarvik["lon"], "radius_m": 300}},
		&created); code != http.StatusAccepted {
		t.Fatalf("JSON alert: %d", code)
	}
	s.waitDone(s.MuniKey, created.ID)
	if got := s.pushedTo(t, created.ID); !cmp.Equal(got, []string{"larvik-follower"}) {
		t.Errorf("the JSON alert reached %v, want the one device in its circle", got)
	}

	// A polygon of 12,000 positions, more than an audience holds: simplified
	// and grown to still cover Sandefjord sentrum.
	var ring strings.Builder
	for k := range 12000 {
		a := 2 * math.Pi * float64(k) / 12000
		fmt.Fprintf(&ring, "%.6f,%.6f ", inSandefjord["lat"]+0.01*math.Sin(a), inSandefjord["lon"]+0.02*math.Cos(a))
	}
	fmt.Fprintf(&ring, "%.6f,%.6f", inSandefjord["lat"], inSandefjord["lon"]+0.02)
	big := capAlert{Identifier: "sandefjord-flom-5", Sent: now.Add(4 * time.Minute), Expires: now.Add(time.Hour),
		Area: "<area><areaDesc>Sentrum</areaDesc><polygon>" + ring.String() + "</polygon></area>"}
	code, out = s.postAlert(s.MuniKey, "?feed=beredskap", "application/cap+xml", big.xml())
	if code != http.StatusAccepted || !strings.Contains(fmt.Sprint(out["warnings"]), "alert.info[1].area: 12001 positions") {
		t.Fatalf("an alert of 12,001 positions: %d %v", code, out)
	}
	bigID := int64(out["id"].(float64))
	s.waitDone(s.MuniKey, bigID)
	if got, want := s.pushedTo(t, bigID), []string{"sandefjord-muted", "sandefjord-nothing-chosen"}; !cmp.Equal(got, want) {
		t.Errorf("the simplified alert reached %v, want %v", got, want)
	}

	metno, err := os.ReadFile("../cap/testdata/no-metno-gale-marine-polygon-emma-2info-no-en.cap.xml")
	if err != nil {
		t.Fatal(err)
	}
	fresh := capAlert{Identifier: "x", Sent: now, Expires: now.Add(time.Hour)}
	for _, tc := range []struct {
		name, key, query, contentType, body string
		status                              int
		field                               string
	}{
		{"an organisation", s.OrgKey, "?feed=beredskap", "application/cap+xml", fresh.xml(), 403, ""},
		{"a draft", s.MuniKey, "?feed=beredskap", "application/cap+xml",
			capAlert{Identifier: "t", Status: "Draft", Sent: now, Expires: now.Add(time.Hour)}.xml(), 400, "alert.status"},
		{"an Ack", s.MuniKey, "?feed=beredskap", "application/cap+xml",
			capAlert{Identifier: "a", MsgType: "Ack", Sent: now, Expires: now.Add(time.Hour)}.xml(), 400, "alert.msgType"},
		{"a Cancel naming nothing", s.MuniKey, "", "application/cap+xml",
			capAlert{Identifier: "c", MsgType: "Cancel", Sent: now, Expires: now.Add(time.Hour)}.xml(), 400, "alert.references"},
		{"met.no's gale warning of 2021, expired", s.MuniKey, "?feed=beredskap", "application/xml", string(metno), 400,
			"alert.info[0].expires"},
		{"geocodes only", s.MuniKey, "?feed=beredskap", "application/cap+xml", capAlert{Identifier: "g", Sent: now,
			Expires: now.Add(time.Hour), Area: `<area><areaDesc>Vestfold</areaDesc><geocode><valueName>kommunenummer</valueName>` +
				`<value>3907</value></geocode></area>`}.xml(), 400, "alert.info[1].area[0]"},
		{"a circle of radius 0", s.MuniKey, "?feed=beredskap", "application/cap+xml", capAlert{Identifier: "r", Sent: now,
			Expires: now.Add(time.Hour), Area: `<area><areaDesc>Epicentre</areaDesc><circle>59.13,10.21 0</circle></area>`}.xml(),
			400, "alert.info[1].area[0].circle[0]"},
		{"a latitude out of range", s.MuniKey, "?feed=beredskap", "application/cap+xml",
			strings.Replace(fresh.xml(), "59.14,10.20", "95.14,10.20", 1), 400, "alert.info[1].area[0].polygon[0][1]"},
		{"not XML", s.MuniKey, "?feed=beredskap", "application/cap+xml", "{}", 400, "alert"},
		{"no feed", s.MuniKey, "", "application/cap+xml", fresh.xml(), 400, "feed"},
		{"an unknown feed", s.MuniKey, "?feed=nope", "application/cap+xml", fresh.xml(), 400, "feed"},
		{"plain text", s.MuniKey, "?feed=beredskap", "text/plain", fresh.xml(), 415, ""},
		{"a JSON alert without an area", s.MuniKey, "", "application/json",
			`{"feed": "beredskap", "title": "Flom", "body": "Evakuer"}`, 400, "area"},
		{"a JSON alert with a bad circle", s.MuniKey, "", "application/json",
			`{"feed": "beredskap", "title": "Flom", "body": "Evakuer", "area": {"lat": 59.1, "lon": 10.2, "radius_m": 0}}`, 400,
			"area.radius_m"},
	} {
		code, out := s.postAlert(tc.key, tc.query, tc.contentType, tc.body)
		e, _ := out["error"].(map[string]any)
		if code != tc.status || (tc.field != "" && (e == nil || e["field"] != tc.field)) {
			t.Errorf("%s: %d %v, want %d naming %q", tc.name, code, out, tc.status, tc.field)
		}
	}
	// Nothing refused made a post.
	var n int
	if err := s.db.Pool.QueryRow(ctx, `SELECT count(*) FROM posts WHERE tenant_id = $1`, s.tenant.ID).Scan(&n); err != nil || n != 5 {
		t.Errorf("%d posts (%v), want 5: the alert, its update, the scheduled one, the JSON alert and the big one", n, err)
	}
}

// TestAlertsFromRealFeeds: the real CAP alerts of cap/testdata come through
// the API to the answer each should get: sent where they have geometry
// (their expiry moved into the future), refused naming the element where
// crier cannot place them, never a 500.
func TestAlertsFromRealFeeds(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.feed(t, s.muni, "beredskap", "Beredskap", false)
	future := time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339)
	expires := regexp.MustCompile(`<expires>[^<]*</expires>`)
	// "sent" with the info block sent, "cancel", or the element refused.
	want := map[string]string{
		"ca-ec-update-multiref-allclear-en-fr-empty-elements.cap.xml": "sent alert",
		// Its only polygon has two distinct points; its geocodes cannot be placed.
		"de-dwd-update-references-degenerate-polygon-warncellid.cap.xml":                        "alert.info[0].area[1]",
		"de-mowas-cancel-probealarm-hessen-9lang-multipolygon.CONVERTED-from-nina-json.cap.xml": "cancel",
		"fr-meteofrance-geocode-only-nuts3-multiarea-fr-en.cap.xml":                             "alert.info[0].area[0]",
		"il-ims-empty-polygon-emma-geocode-en-he.cap.xml":                                       "alert.info[0].area[0]",
		"mo-smg-update-allclear-3lang-multiline-polygon.cap.xml":                                "sent alert",
		"no-metno-gale-marine-polygon-emma-2info-no-en.cap.xml":                                 "sent alert",
		"rs-hidmet-meteoalarm-update-references-3lang.cap.xml":                                  "sent alert",
		"us-ntwc-tsunami-info-circle.cap.xml":                                                   "sent alert",
		// Overlapping polygons and rings that touch: united and repaired.
		"us-nws-ipaws-sps-same-ugc-blockchannel.GEOCODE-EXPANDED-polygons.cap.xml": "sent alert",
		"us-nws-oasis-example-severe-tstorm-polygon-same-fips.cap.xml":             "sent alert",
		"us-usgs-earthquake-circle-radius0-iso8859-1.cap.xml":                      "alert.info[0].area[0].circle[0]",
	}
	files, err := filepath.Glob("../cap/testdata/*.xml")
	if err != nil || len(files) != len(want) {
		t.Fatalf("%d fixtures (%v), want %d", len(files), err, len(want))
	}
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		raw = expires.ReplaceAll(raw, []byte("<expires>"+future+"</expires>"))
		code, out := s.postAlert(s.MuniKey, "?feed=beredskap", "application/cap+xml", string(raw))
		e, _ := out["error"].(map[string]any)
		var got string
		switch {
		case code == http.StatusAccepted:
			got = fmt.Sprintf("sent %v", out["msg_type"])
			// Macao's update names itself among its references: it must
			// not cancel itself.
			var st postStatus
			s.do("GET", fmt.Sprintf("/v1/posts/%v", out["id"]), s.MuniKey, nil, &st)
			if st.State == "cancelled" {
				got += " but cancelled"
			}
		case code == http.StatusOK && out["withdrawn"] != nil:
			got = "cancel"
		case code == http.StatusBadRequest && e != nil:
			got = fmt.Sprint(e["field"])
		default:
			got = fmt.Sprintf("%d %v", code, out)
		}
		name := filepath.Base(file)
		if got != want[name] {
			t.Errorf("%s: %s (%v), want %s", name, got, out, want[name])
		}
	}
}
