package server_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/crier-push/crier/cap"
	"github.com/crier-push/crier/providers/emulator"
)

// TestGeocodeAlerts: CAP areas given as geocodes only are placed through
// the tenant's areas that carry those codes: Météo-France's NUTS3 regions
// and MeteoAlarm's EMMA_ID (its polygon taken out, as geocode-only feeds
// send it) reach the devices in the matching areas, and no one in an
// area of another code; a region the tenant has no area for is a warning,
// and an alert of none of them is refused.
func TestGeocodeAlerts(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.feed(t, s.muni, "beredskap", "Beredskap", false)
	square := func(lon, lat float64) string {
		return fmt.Sprintf(`{"type":"Polygon","coordinates":[[[%[1]g,%[2]g],[%[3]g,%[2]g],[%[3]g,%[4]g],[%[1]g,%[4]g],[%[1]g,%[2]g]]]}`,
			lon, lat, lon+0.02, lat+0.02)
	}
	areas := `{"type":"FeatureCollection","features":[
		{"type":"Feature","properties":{"slug":"sentrum","name":"Sentrum","codes":{"NUTS3":"FR821"}},"geometry":` + square(10.20, 59.12) + `},
		{"type":"Feature","properties":{"slug":"torstrand","name":"Torstrand","codes":{"EMMA_ID":"RS010"}},"geometry":` + square(10.25, 59.12) + `},
		{"type":"Feature","properties":{"slug":"hvarnes","name":"Hvarnes","codes":{"NUTS3":"FR999"}},"geometry":` + square(10.30, 59.12) + `}]}`
	if code, _, b, err := s.send("PUT", "/v1/areas", http.Header{"Authorization": {"Bearer " + s.MuniKey},
		"Content-Type": {"application/geo+json"}}, areas); err != nil || code != http.StatusOK {
		t.Fatalf("areas: %d %s %v", code, b, err)
	}
	ok := emulator.Behaviour{Kind: emulator.Accept}
	for id, lon := range map[string]float64{"in-sentrum": 10.21, "in-torstrand": 10.26, "in-hvarnes": 10.31} {
		s.register(id, map[string]any{"provider": "fcm", "platform": "android", "token": emulator.FCMToken(ok, id),
			"places": []map[string]any{{"name": "home", "lat": 59.13, "lon": lon}}})
	}
	future := time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339)
	expires := regexp.MustCompile(`<expires>[^<]*</expires>`)
	read := func(name string) string {
		raw, err := os.ReadFile("../cap/testdata/" + name)
		if err != nil {
			t.Fatal(err)
		}
		return expires.ReplaceAllString(string(raw), "<expires>"+future+"</expires>")
	}
	polygon := regexp.MustCompile(`<polygon>[^<]*</polygon>`)
	for _, tc := range []struct {
		name, body string
		want       []string
		warns      int
	}{
		{"Météo-France NUTS3", read("fr-meteofrance-geocode-only-nuts3-multiarea-fr-en.cap.xml"), []string{"in-sentrum"}, 1},
		{"MeteoAlarm EMMA_ID", polygon.ReplaceAllString(read("rs-hidmet-meteoalarm-update-references-3lang.cap.xml"), ""),
			[]string{"in-torstrand"}, 0},
	} {
		code, out := s.postAlert(s.MuniKey, "?feed=beredskap", "application/cap+xml", tc.body)
		if code != http.StatusAccepted {
			t.Fatalf("%s: %d %v", tc.name, code, out)
		}
		id := int64(out["id"].(float64))
		s.waitDone(s.MuniKey, id)
		if got := s.pushedTo(t, id); !cmp.Equal(got, tc.want) {
			t.Errorf("%s reached %v, want %v", tc.name, got, tc.want)
		}
		warnings := 0
		ws, _ := out["warnings"].([]any)
		for _, w := range ws {
			if strings.Contains(w.(string), "name none of the tenant's areas") {
				warnings++
			}
		}
		if tc.warns > 0 && warnings == 0 {
			t.Errorf("%s: warnings %v, want the regions without an area named", tc.name, out["warnings"])
		}
	}
	// Codes the tenant has no area for, only: refused naming the area.
	other := strings.ReplaceAll(read("fr-meteofrance-geocode-only-nuts3-multiarea-fr-en.cap.xml"), "FR821", "FR888")
	other = strings.Replace(other, "<identifier>", "<identifier>x", 1)
	if code, out := s.postAlert(s.MuniKey, "?feed=beredskap", "application/cap+xml", other); code != http.StatusBadRequest ||
		!strings.HasPrefix(fmt.Sprint(out["error"].(map[string]any)["field"]), "alert.info[0].area[") {
		t.Errorf("an alert of regions without areas: %d %v, want 400 naming its area", code, out)
	}
}

// TestMetnoLanguages: met.no's gale warning, in Norwegian and English,
// reaches an en phone in English, an nb phone and an nn phone in
// Norwegian, and a de phone in the tenant's language (nb).
func TestMetnoLanguages(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.feed(t, s.muni, "beredskap", "Beredskap", false)
	raw, err := os.ReadFile("../cap/testdata/no-metno-gale-marine-polygon-emma-2info-no-en.cap.xml")
	if err != nil {
		t.Fatal(err)
	}
	body := regexp.MustCompile(`<expires>[^<]*</expires>`).ReplaceAllString(string(raw),
		"<expires>"+time.Now().Add(24*time.Hour).UTC().Format(time.RFC3339)+"</expires>")
	a, err := cap.Parse([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	// A point inside the warning's polygon, found by PostGIS.
	var lat, lon float64
	if err := s.db.Pool.QueryRow(context.Background(), `SELECT ST_Y(p), ST_X(p) FROM
		(SELECT ST_PointOnSurface(ST_GeomFromGeoJSON($1)) AS p) x`, string(a.Infos[0].Areas[0].Polygons.JSON())).Scan(&lat, &lon); err != nil {
		t.Fatal(err)
	}
	ok := emulator.Behaviour{Kind: emulator.Accept}
	phones := map[string]string{"en": "Gale, yellow level", "nb": "Kuling, gult nivå", "nn-NO": "Kuling, gult nivå", "de": "Kuling, gult nivå"}
	for locale := range phones {
		s.register("phone-"+locale, map[string]any{"provider": "fcm", "platform": "android", "token": emulator.FCMToken(ok, locale),
			"locale": locale, "places": []map[string]any{{"name": "boat", "lat": lat, "lon": lon}}})
	}
	code, out := s.postAlert(s.MuniKey, "?feed=beredskap", "application/cap+xml", body)
	if code != http.StatusAccepted {
		t.Fatalf("met.no alert: %d %v", code, out)
	}
	s.waitDone(s.MuniKey, int64(out["id"].(float64)))
	for locale, want := range phones {
		got := s.pushesTo(t, emulator.FCMToken(ok, locale))
		if len(got) != 1 || !strings.HasPrefix(got[0].Title, want) {
			t.Errorf("the %s phone got %+v, want one push titled %q…", locale, got, want)
		}
	}
}
