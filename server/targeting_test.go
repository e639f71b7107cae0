package server_test

import (
	"context"
	"net/http"
	"os"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/internal/testenv"
	"github.com/crier-push/crier/providers/emulator"
)

// Homes inside three Vestfold municipalities.
var (
	inSandefjord = map[string]float64{"lat": 59.1312, "lon": 10.2167}
	inLarvik     = map[string]float64{"lat": 59.0530, "lon": 10.0270}
	inTonsberg   = map[string]float64{"lat": 59.2676, "lon": 10.4076}
)

// pushedTo lists the installation ids a post was pushed to (tokens are
// emu-ok-<installation id>).
func (s *stack) pushedTo(t *testing.T, postID int64) []string {
	t.Helper()
	rows, err := s.db.Pool.Query(context.Background(), `SELECT d.installation_id FROM deliveries dl
		JOIN devices d ON d.id = dl.device_id WHERE dl.post_id = $1 AND dl.state = 'sent' ORDER BY 1`, postID)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		out = append(out, id)
	}
	return out
}

// importVestfold imports the Vestfold municipalities through the API as
// the tenant's areas, slugged by their names.
func (s *stack) importVestfold(t *testing.T) {
	t.Helper()
	vestfold, err := os.ReadFile("../demo/vestfold-kommuner-2024.geojson")
	if err != nil {
		t.Fatal(err)
	}
	if code, _, b, err := s.send("PUT", "/v1/areas?slug_property=kommunenavn&name_property=kommunenavn",
		http.Header{"Authorization": {"Bearer " + s.MuniKey}}, string(vestfold)); err != nil || code != http.StatusOK {
		t.Fatalf("areas: %d %s %v", code, b, err)
	}
}

func (s *stack) publish(t *testing.T, key string, body map[string]any) int64 {
	t.Helper()
	var created struct{ ID int64 }
	var e map[string]any
	if code := s.do("POST", "/v1/posts", key, body, &created); code != http.StatusAccepted {
		s.do("POST", "/v1/posts", key, body, &e)
		t.Fatalf("publish %v: %d %v", body, code, e)
	}
	s.waitDone(s.MuniKey, created.ID)
	return created.ID
}

// TestTargeting: posts reach exactly the residents the audience rule says,
// through the API end to end: by area (home or subscription), mandatory
// feeds (whole tenant, never another), geographic narrowing, mutes, and
// explicit segments; the preview counts what a post would reach.
func TestTargeting(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	ctx := context.Background()
	s.importVestfold(t)
	testenv.Interests(t, s.db, s.tenant.ID, []string{"handball"}, s.Org)
	for _, f := range []struct {
		pub       crier.Publisher
		slug      string
		mandatory bool
	}{{s.Org, "fotball", false}, {s.muni, "viktig", true}, {s.muni, "nyheter", false}} {
		s.feed(t, f.pub, f.slug, f.slug, f.mandatory)
	}
	ok := emulator.Behaviour{Kind: emulator.Accept}
	devices := []struct {
		id       string
		provider string
		home     map[string]float64
		body     map[string]any
	}{
		{"sandefjord-fan", "fcm", inSandefjord, map[string]any{"follows": []string{"fotball"}}},
		{"larvik-fan", "fcm", inLarvik, map[string]any{"follows": []string{"fotball"}}},
		{"larvik-fan-subscribed-sandefjord", "apns", inLarvik, map[string]any{"follows": []string{"fotball"}, "areas": []string{"sandefjord"}}},
		{"tonsberg-fan", "apns", inTonsberg, map[string]any{"follows": []string{"fotball"}}},
		{"sandefjord-muted", "fcm", inSandefjord, map[string]any{"follows": []string{"fotball"}, "mutes": []string{"fotball", "viktig"}}},
		{"sandefjord-handball", "fcm", inSandefjord, map[string]any{"interests": []string{"handball"}}},
		{"larvik-nobody", "apns", inLarvik, map[string]any{}},
	}
	for i, d := range devices {
		d.body["provider"] = d.provider
		if d.provider == "fcm" {
			d.body["token"] = emulator.FCMToken(ok, d.id)
		} else {
			d.body["token"] = emulator.APNsToken(ok, uint64(i+1))
		}
		d.body["places"] = []map[string]any{{"name": "home", "lat": d.home["lat"], "lon": d.home["lon"]}}
		if code := s.do("PUT", "/v1/devices/"+d.id, s.AppKey, d.body, nil); code != http.StatusCreated {
			t.Fatalf("register %s: %d", d.id, code)
		}
	}
	// Another tenant's device, which nothing here may reach.
	other := testenv.Tenant(t, s.db, "larvik", "Larvik kommune", "")
	otherApp, err := s.db.NewAPIKey(ctx, other.ID, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if code := s.do("PUT", "/v1/devices/other-tenant", otherApp, map[string]any{"provider": "fcm",
		"token": emulator.FCMToken(ok, "other-tenant"), "places": []any{map[string]any{"name": "home", "lat": inSandefjord["lat"], "lon": inSandefjord["lon"]}}}, nil); code != http.StatusCreated {
		t.Fatalf("register other tenant's device: %d", code)
	}

	all := []string{"larvik-fan", "larvik-fan-subscribed-sandefjord", "larvik-nobody", "sandefjord-fan",
		"sandefjord-handball", "sandefjord-muted", "tonsberg-fan"}
	without := func(ids ...string) []string {
		var out []string
	next:
		for _, a := range all {
			for _, x := range ids {
				if a == x {
					continue next
				}
			}
			out = append(out, a)
		}
		return out
	}
	cases := []struct {
		name string
		key  string
		post map[string]any
		want []string
	}{
		{"followers, less the muted", s.OrgKey, map[string]any{"feed": "fotball"},
			[]string{"larvik-fan", "larvik-fan-subscribed-sandefjord", "sandefjord-fan", "tonsberg-fan"}},
		{"one area: who lives or subscribes there", s.OrgKey, map[string]any{"feed": "fotball", "target": []string{"sandefjord"}},
			[]string{"larvik-fan-subscribed-sandefjord", "sandefjord-fan"}},
		{"followers or interested", s.OrgKey, map[string]any{"feed": "fotball", "tags": []string{"handball"}, "target": []string{"sandefjord"}},
			[]string{"larvik-fan-subscribed-sandefjord", "sandefjord-fan", "sandefjord-handball"}},
		{"mandatory: the whole tenant, less mutes", s.MuniKey, map[string]any{"feed": "viktig"}, without("sandefjord-muted")},
		// A subscribed area that meets the circle counts as being there.
		{"mandatory within 3 km of Sandefjord centre", s.MuniKey, map[string]any{"feed": "viktig",
			"target": map[string]any{"lat": 59.1312, "lon": 10.2167, "radius_m": 3000}},
			[]string{"larvik-fan-subscribed-sandefjord", "sandefjord-fan", "sandefjord-handball"}},
		{"mandatory in a polygon around Larvik centre", s.MuniKey, map[string]any{"feed": "viktig",
			"target": map[string]any{"type": "Polygon", "coordinates": [][][]float64{{{10.0, 59.03}, {10.06, 59.03}, {10.06, 59.07}, {10.0, 59.07}, {10.0, 59.03}}}}},
			[]string{"larvik-fan", "larvik-fan-subscribed-sandefjord", "larvik-nobody"}},
		{"emergency ignores mutes", s.MuniKey, map[string]any{"feed": "viktig", "class": "emergency", "target": []string{"sandefjord"}},
			[]string{"larvik-fan-subscribed-sandefjord", "sandefjord-fan", "sandefjord-handball", "sandefjord-muted"}},
		{"a segment: iOS in Larvik", s.MuniKey, map[string]any{"feed": "nyheter",
			"segment": map[string]any{"and": []any{map[string]any{"platform": "ios"}, map[string]any{"area": "larvik"}}}},
			[]string{"larvik-fan-subscribed-sandefjord", "larvik-nobody"}},
		{"a segment: test devices", s.MuniKey, map[string]any{"feed": "nyheter",
			"segment": map[string]any{"device": []string{"tonsberg-fan", "larvik-nobody"}}},
			[]string{"larvik-nobody", "tonsberg-fan"}},
		{"an organisation's segment on its own feed, not in Larvik", s.OrgKey, map[string]any{"feed": "fotball",
			"segment": map[string]any{"and": []any{map[string]any{"feed": "fotball"}, map[string]any{"not": map[string]any{"area": "larvik"}}}}},
			[]string{"sandefjord-fan", "tonsberg-fan"}},
		// An organisation's segment narrows its opt-ins, never replaces
		// them: "everyone without an interest nobody has" is its followers.
		{"an organisation's segment of everyone reaches its followers only", s.OrgKey, map[string]any{"feed": "fotball",
			"segment": map[string]any{"or": []any{map[string]any{"platform": "android"}, map[string]any{"platform": "ios"}}}},
			[]string{"larvik-fan", "larvik-fan-subscribed-sandefjord", "sandefjord-fan", "tonsberg-fan"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// The preview counts what the post will reach (the municipality
			// sees exact numbers).
			if c.key == s.MuniKey {
				var pv struct{ Total, Android, IOS int }
				preview := map[string]any{}
				for _, k := range []string{"feed", "tags", "class", "target", "segment"} {
					if v, ok := c.post[k]; ok {
						preview[k] = v
					}
				}
				if code := s.do("POST", "/v1/audience/preview", c.key, preview, &pv); code != http.StatusOK || pv.Total != len(c.want) || pv.Android+pv.IOS != pv.Total {
					t.Errorf("preview: %d %+v, want total %d", code, pv, len(c.want))
				}
			}
			body := map[string]any{"title": c.name, "body": "b"}
			for k, v := range c.post {
				body[k] = v
			}
			got := s.pushedTo(t, s.publish(t, c.key, body))
			sort.Strings(c.want)
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("reached (-want +got):\n%s", diff)
			}
		})
	}
	for _, r := range s.emu.Records() {
		if r.Token == emulator.FCMToken(ok, "other-tenant") {
			t.Errorf("a post reached another tenant's device")
		}
	}
}

func TestTargetingErrorsAndPreviewRounding(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.feed(t, s.Org, "fotball", "Fotball", false)
	s.feed(t, s.muni, "nyheter", "Nyheter", false)
	for i := 0; i < 12; i++ {
		body := map[string]any{"provider": "fcm", "token": emulator.FCMToken(emulator.Behaviour{Kind: emulator.Accept}, string(rune('a'+i))),
			"follows": []string{"fotball"}}
		if i < 3 {
			body["interests"] = []string{"korps"}
		}
		if code := s.do("PUT", "/v1/devices/d"+string(rune('a'+i)), s.AppKey, body, nil); code != http.StatusCreated {
			t.Fatalf("register: %d", code)
		}
	}
	var pv map[string]any
	if code := s.do("POST", "/v1/audience/preview", s.OrgKey, map[string]any{"feed": "fotball"}, &pv); code != http.StatusOK || pv["total"] != float64(10) {
		t.Errorf("organisation preview of 12: %d %v, want 10 (rounded to tens)", code, pv)
	}
	if code := s.do("POST", "/v1/audience/preview", s.OrgKey, map[string]any{"feed": "fotball",
		"segment": map[string]any{"and": []any{map[string]any{"feed": "fotball"}, map[string]any{"interest": "korps"}}}}, &pv); code != http.StatusOK || pv["total"] != "<10" || pv["ios"] != "<10" {
		t.Errorf("organisation preview of 3: %d %v, want <10", code, pv)
	}
	type apiErr struct {
		Error struct{ Code, Field, Message string }
	}
	bad := []struct {
		name   string
		key    string
		post   map[string]any
		status int
		field  string
	}{
		{"unknown area", s.OrgKey, map[string]any{"target": []string{"atlantis"}}, 400, "target"},
		{"radius out of range", s.OrgKey, map[string]any{"target": map[string]any{"lat": 59.1, "lon": 10.2, "radius_m": 0}}, 400, "target.radius_m"},
		{"organisation uses all", s.OrgKey, map[string]any{"segment": map[string]any{"all": true}}, 400, "segment.all"},
		{"organisation uses device", s.OrgKey, map[string]any{"segment": map[string]any{"or": []any{map[string]any{"feed": "fotball"}, map[string]any{"device": []string{"x"}}}}}, 400, "segment.or[1].device"},
		{"organisation targets another's followers", s.OrgKey, map[string]any{"segment": map[string]any{"feed": "nyheter"}}, 400, "segment.feed"},
		{"unknown feed in a segment", s.MuniKey, map[string]any{"feed": "nyheter", "segment": map[string]any{"feed": "nope"}}, 400, "segment"},
		{"bad segment node", s.MuniKey, map[string]any{"feed": "nyheter", "segment": map[string]any{"and": []any{map[string]any{"platform": "android"}, map[string]any{"near": map[string]any{"lat": 59, "lon": 10, "radius_m": 200000}}}}}, 400, "segment.and[1].near.radius_m"},
	}
	for _, c := range bad {
		body := map[string]any{"feed": "fotball", "title": "t", "body": "b"}
		for k, v := range c.post {
			body[k] = v
		}
		var e apiErr
		if code := s.do("POST", "/v1/posts", c.key, body, &e); code != c.status || e.Error.Field != c.field || e.Error.Message == "" {
			t.Errorf("%s: %d %+v, want %d naming %s", c.name, code, e, c.status, c.field)
		}
		delete(body, "title")
		delete(body, "body")
		if code := s.do("POST", "/v1/audience/preview", c.key, body, &e); code != c.status || e.Error.Field != c.field {
			t.Errorf("%s (preview): %d %+v, want %d naming %s", c.name, code, e, c.status, c.field)
		}
	}
}
