package publish

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/hibiken/asynq"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/areas"
	"github.com/crier-push/crier/internal/testenv"
	"github.com/crier-push/crier/segments"
	"github.com/crier-push/crier/storage"
)

// areaWorld is the Vestfold kommuner as one tenant's territory, with a
// resident in Andebu (Sandefjord), one who subscribed to Sandefjord, one
// with a place in Oslo (outside the territory), a muted one and an
// inactive one in Andebu; a tenant for Oslo with a resident of its own,
// and a tenant without areas.
type areaWorld struct {
	s                *Service
	muni, oslo, bare crier.Principal
	org              crier.Principal
}

func newAreaWorld(t *testing.T, cfg Config) areaWorld {
	t.Helper()
	ctx := context.Background()
	db := testenv.DB(t)
	rds := testenv.StartRedis(t)
	client := asynq.NewClient(rds.AsynqOpt())
	t.Cleanup(func() { client.Close() })
	s, err := New(db, client, cfg)
	if err != nil {
		t.Fatal(err)
	}
	principal := func(slug string, role crier.Role, tenantID int64) crier.Principal {
		pub := testenv.Publisher(t, db, tenantID, slug, slug, role)
		return crier.Principal{TenantID: tenantID, Kind: crier.KeyPublisher, Publisher: &pub}
	}
	vf := testenv.Tenant(t, db, "vestfold", "Vestfold", "Europe/Oslo")
	raw, err := os.ReadFile("../demo/vestfold-kommuner-2024.geojson")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := areas.Import(ctx, db, vf.ID, raw, areas.Options{SlugProperty: "name", NameProperty: "name"}); err != nil {
		t.Fatal(err)
	}
	w := areaWorld{s: s, muni: principal("kommunen", crier.RoleMunicipality, vf.ID), org: principal("klubben", crier.RoleOrganisation, vf.ID)}
	feed := testenv.Feed(t, db, vf.ID, w.muni.PublisherID(), "nyheter", "Nyheter", false)
	sandefjord, _, err := db.AreaIDs(ctx, vf.ID, []string{"sandefjord"})
	if err != nil {
		t.Fatal(err)
	}
	andebu := []storage.Place{{Name: "home", Lat: 59.265, Lon: 10.07}}
	put := func(tenantID int64, id string, d storage.Device) {
		t.Helper()
		d.TenantID, d.InstallationID, d.Provider, d.Platform, d.Token = tenantID, id, crier.FCM, crier.Android, "tok-"+id
		if _, err := db.PutDevice(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	put(vf.ID, "andebu", storage.Device{Places: andebu, Active: true})
	put(vf.ID, "subscriber", storage.Device{Areas: sandefjord, Active: true})
	put(vf.ID, "oslo-cabin", storage.Device{Places: []storage.Place{{Name: "cabin", Lat: 59.91, Lon: 10.75}}, Active: true})
	put(vf.ID, "muted", storage.Device{Places: andebu, Mutes: []int64{feed.ID}, Active: true})
	put(vf.ID, "inactive", storage.Device{Places: andebu, Active: false})

	osl := testenv.Tenant(t, db, "oslo", "Oslo", "Europe/Oslo")
	if _, err := db.PutArea(ctx, osl.ID, "sentrum", "Sentrum", []byte(
		`{"type":"Polygon","coordinates":[[[10.6,59.85],[10.9,59.85],[10.9,60.0],[10.6,60.0],[10.6,59.85]]]}`)); err != nil {
		t.Fatal(err)
	}
	put(osl.ID, "oslo-home", storage.Device{Places: []storage.Place{{Name: "home", Lat: 59.92, Lon: 10.76}}, Active: true})
	put(osl.ID, "oslo-andebu-cabin", storage.Device{Places: andebu, Active: true})
	w.oslo = principal("oslo-kommune", crier.RoleMunicipality, osl.ID)
	bare := testenv.Tenant(t, db, "bare", "No areas", "Europe/Oslo")
	put(bare.ID, "bare-andebu", storage.Device{Places: andebu, Active: true})
	w.bare = principal("bare-kommune", crier.RoleMunicipality, bare.ID)
	return w
}

func rectJSON(lon0, lat0, lon1, lat1 float64) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"type":"Polygon","coordinates":[[[%[1]g,%[2]g],[%[3]g,%[2]g],[%[3]g,%[4]g],[%[1]g,%[4]g],[%[1]g,%[2]g]]]}`,
		lon0, lat0, lon1, lat1))
}

// capAreaAlert is a CAP Alert for the area given as CAP elements.
func capAreaAlert(msgType, area string) []byte {
	refs := ""
	if msgType != "Alert" {
		refs = "<references>beredskap@example.org,cap-0,2026-11-27T11:00:00+01:00</references>"
	}
	return []byte(`<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>cap-area-1</identifier><sender>beredskap@example.org</sender><sent>2026-11-27T12:00:00+01:00</sent>
  <status>Actual</status><msgType>` + msgType + `</msgType><scope>Public</scope>` + refs + `
  <info><language>nb-NO</language><category>Met</category><event>Flom</event><urgency>Immediate</urgency>
  <severity>Severe</severity><certainty>Observed</certainty><headline>Flom</headline>
  <area><areaDesc>Test</areaDesc>` + area + `</area></info>
</alert>`)
}

// refusal is Check's message for an area of km2 (as formatted) reaching n
// devices.
func refusal(km2 string, n int) string {
	devices := "devices"
	if n == 1 {
		devices = "device"
	}
	return fmt.Sprintf("area: meets none of the tenant's areas (GET /v1/areas): %s km², %d %s now; "+
		"check the coordinates (GeoJSON positions are [longitude, latitude], CAP's latitude,longitude)", km2, n, devices)
}

// TestAlertAreaChecksTheTerritory: an alert whose area meets none of the
// tenant's areas is refused, saying its size and how many devices it would
// reach; inside, across the coast and named areas pass; another tenant's
// areas are not the tenant's territory, and a tenant without areas has no
// territory to refuse by. The audience is an emergency's: mutes count, an
// inactive device does not.
func TestAlertAreaChecksTheTerritory(t *testing.T) {
	t.Parallel()
	w := newAreaWorld(t, Config{})
	ctx := context.Background()
	tests := []struct {
		name     string
		p        crier.Principal
		area     json.RawMessage
		audience int
		in, has  bool
		refusal  string // the Check's message; "" for none
	}{
		{"polygon inside", w.muni, rectJSON(10.05, 59.25, 10.10, 59.28), 3, true, true, ""},
		{"polygon across the coast", w.muni, rectJSON(10.0, 58.9, 10.3, 59.1), 1, true, true, ""},
		{"polygon in Oslo", w.muni, rectJSON(10.70, 59.90, 10.80, 59.95), 1, false, true,
			refusal("31.2", 1)},
		// Latitude and longitude swapped: the Arabian Sea.
		{"positions swapped", w.muni, rectJSON(59.25, 10.05, 59.28, 10.10), 0, false, true,
			refusal("18.2", 0)},
		{"circle in Oslo", w.muni, json.RawMessage(`{"lat":59.91,"lon":10.75,"radius_m":5000}`), 1, false, true,
			refusal("78.6", 1)},
		{"circle inside", w.muni, json.RawMessage(`{"lat":59.265,"lon":10.07,"radius_m":500}`), 3, true, true, ""},
		{"named area", w.muni, json.RawMessage(`["sandefjord"]`), 3, true, true, ""},
		{"a named area without residents", w.muni, json.RawMessage(`["horten"]`), 0, true, true, ""},
		{"Oslo for Oslo", w.oslo, rectJSON(10.70, 59.90, 10.80, 59.95), 1, true, true, ""},
		{"Andebu for Oslo", w.oslo, rectJSON(10.05, 59.25, 10.10, 59.28), 1, false, true,
			refusal("9.53", 1)},
		{"a tenant without areas", w.bare, rectJSON(10.70, 59.90, 10.80, 59.95), 0, false, false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, err := w.s.PreviewAlert(ctx, tc.p, AlertRequest{Area: tc.area})
			if err != nil {
				t.Fatal(err)
			}
			if a.Audience != tc.audience || a.InTerritory != tc.in || a.TenantHasTerritory != tc.has {
				t.Errorf("audience %d, in territory %v, tenant has one %v; want %d, %v, %v",
					a.Audience, a.InTerritory, a.TenantHasTerritory, tc.audience, tc.in, tc.has)
			}
			if a.AreaKM2 <= 0 || a.InsideKM2 < 0 || a.InsideKM2 > a.AreaKM2*1.0001 || (a.InsideKM2 > 0) != tc.in {
				t.Errorf("%g km², %g inside", a.AreaKM2, a.InsideKM2)
			}
			err = a.Check()
			got := ""
			if err != nil {
				got = err.Error()
				if e := crier.AsError(err); e == nil || e.Code != crier.EINVALID || e.Field != "area" {
					t.Errorf("refusal %#v, want EINVALID on area", err)
				}
			}
			if got != tc.refusal {
				t.Errorf("Check: %q, want %q", got, tc.refusal)
			}
			if a.Refusal != tc.refusal {
				t.Errorf("the preview's refusal: %q, want %q", a.Refusal, tc.refusal)
			}
			if noTerritory := slices.Contains(a.Warnings, NoTerritory); noTerritory == tc.has {
				t.Errorf("warnings %q: a tenant with areas %v", a.Warnings, tc.has)
			}
			// The check before sending, on the segment CreateAlert stores,
			// refuses alike.
			_, seg, err := w.s.parseExpr(ctx, tc.p.TenantID, tc.area, "area", segments.Options{}, segments.ParseTarget)
			if err != nil {
				t.Fatal(err)
			}
			check, err := w.s.AlertArea(ctx, tc.p, seg)
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprint(check.Check()); got != cmpOr(tc.refusal, "<nil>") {
				t.Errorf("AlertArea(%s).Check: %s, want %q", seg, got, tc.refusal)
			}
		})
	}
}

// TestPreviewCAPAlert: a CAP alert's polygons and circles are previewed as
// capSegment takes them; a Cancel has no area.
func TestPreviewCAPAlert(t *testing.T) {
	t.Parallel()
	w := newAreaWorld(t, Config{})
	ctx := context.Background()
	inside, err := w.s.PreviewCAPAlert(ctx, w.muni, capAreaAlert("Alert",
		`<polygon>59.25,10.05 59.25,10.10 59.28,10.10 59.28,10.05 59.25,10.05</polygon><circle>59.91,10.75 5</circle>`))
	if err != nil {
		t.Fatal(err)
	}
	// The Oslo circle holds the cabin: four devices in all.
	if inside.Audience != 4 || !inside.InTerritory || inside.Check() != nil {
		t.Errorf("polygon in Andebu and circle in Oslo: %+v, check %v; want 4 devices, in the territory", inside, inside.Check())
	}
	outside, err := w.s.PreviewCAPAlert(ctx, w.muni, capAreaAlert("Alert", `<circle>59.91,10.75 5</circle>`))
	if err != nil {
		t.Fatal(err)
	}
	if outside.InTerritory || outside.Audience != 1 || !strings.Contains(fmt.Sprint(outside.Check()), ": 78.6 km², 1 device now;") {
		t.Errorf("circle in Oslo: %+v, check %v; want 1 device, refused", outside, outside.Check())
	}
	_, err = w.s.PreviewCAPAlert(ctx, w.muni, capAreaAlert("Cancel", `<circle>59.91,10.75 5</circle>`))
	if e := crier.AsError(err); e == nil || e.Code != crier.EINVALID || e.Field != "alert.msgType" {
		t.Errorf("a Cancel: %v, want EINVALID on alert.msgType", err)
	}
}

// TestPreviewAlertRefusals: only the municipality previews alerts, an alert
// needs an area, slugs must exist, and previews are counted against the
// publisher's budget.
func TestPreviewAlertRefusals(t *testing.T) {
	t.Parallel()
	w := newAreaWorld(t, Config{PreviewLimit: NewLocalLimiter(1, 3)})
	ctx := context.Background()
	type outcome struct {
		Code  crier.Code
		Field string
	}
	for _, c := range []struct {
		name string
		p    crier.Principal
		area json.RawMessage
		want outcome
	}{
		{"an organisation", w.org, rectJSON(10.05, 59.25, 10.10, 59.28), outcome{crier.EFORBIDDEN, ""}},
		{"no area", w.muni, nil, outcome{crier.EINVALID, "area"}},
		{"an unknown area", w.muni, json.RawMessage(`["atlantis"]`), outcome{crier.EINVALID, "area"}},
		{"an invalid circle", w.muni, json.RawMessage(`{"lat":59.91,"lon":10.75,"radius_m":0}`), outcome{crier.EINVALID, "area.radius_m"}},
		{"past the budget", w.muni, rectJSON(10.05, 59.25, 10.10, 59.28), outcome{crier.ETOOMANY, ""}},
	} {
		_, err := w.s.PreviewAlert(ctx, c.p, AlertRequest{Area: c.area})
		var got outcome
		if e := crier.AsError(err); e != nil {
			got = outcome{e.Code, e.Field}
		}
		if diff := cmp.Diff(c.want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%s: %v (-want +got)\n%s", c.name, err, diff)
		}
	}
	// The organisation's refusal spends nothing: AlertArea itself refuses
	// it too, whatever segment it is given.
	if _, err := w.s.AlertArea(ctx, w.org, []byte(`{"all":true}`)); crier.AsError(err) == nil || crier.AsError(err).Code != crier.EFORBIDDEN {
		t.Errorf("AlertArea for an organisation: %v, want EFORBIDDEN", err)
	}
	if _, err := w.s.AlertArea(ctx, w.muni, []byte(`{"all":true}`)); crier.AsError(err) == nil || crier.AsError(err).Field != "area" {
		t.Errorf("AlertArea of a segment without a place: %v, want EINVALID on area", err)
	}
}
