package cap

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/geojson"
)

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// counts is what a test expects of a parsed alert, counted by hand from
// the fixture.
type counts struct {
	msgType   string
	infos     int
	areas     int // over every info block
	polygons  int
	circles   int
	refs      int
	warnings  int
	languages string
}

func countsOf(a *Alert) counts {
	c := counts{msgType: a.MsgType, infos: len(a.Infos), refs: len(a.References), warnings: len(a.Warnings)}
	var langs []string
	for _, in := range a.Infos {
		langs = append(langs, in.Language)
		for _, ar := range in.Areas {
			c.areas++
			c.polygons += len(ar.Polygons)
			c.circles += len(ar.Circles)
		}
	}
	c.languages = strings.Join(langs, " ")
	return c
}

// TestFixtures reads every real alert in testdata (see SOURCES.md), each
// with its own way of bending the schema.
func TestFixtures(t *testing.T) {
	for _, tc := range []struct {
		file string
		want counts
	}{
		{"no-metno-gale-marine-polygon-emma-2info-no-en.cap.xml", counts{"Alert", 2, 2, 2, 0, 0, 0, "no en-GB"}},
		// Its one polygon has two distinct points: left out, with a warning.
		{"de-dwd-update-references-degenerate-polygon-warncellid.cap.xml", counts{"Update", 1, 2, 0, 0, 1, 1, "de-DE"}},
		{"fr-meteofrance-geocode-only-nuts3-multiarea-fr-en.cap.xml", counts{"Alert", 2, 8, 0, 0, 0, 0, "fr-FR en-GB"}},
		{"us-ntwc-tsunami-info-circle.cap.xml", counts{"Alert", 1, 1, 0, 1, 0, 0, "en-US"}},
		{"us-nws-oasis-example-severe-tstorm-polygon-same-fips.cap.xml", counts{"Alert", 1, 1, 1, 0, 0, 0, "en-US"}},
		{"mo-smg-update-allclear-3lang-multiline-polygon.cap.xml", counts{"Update", 3, 3, 3, 0, 1, 0, "zh-mo pt-PT en-US"}},
		// Six empty polygons, each left out with a warning.
		{"il-ims-empty-polygon-emma-geocode-en-he.cap.xml", counts{"Alert", 2, 6, 0, 0, 0, 6, "en-GB he-IL"}},
		{"rs-hidmet-meteoalarm-update-references-3lang.cap.xml", counts{"Update", 3, 3, 3, 0, 1, 0, "en-GB sr sr-Latn"}},
		{"ca-ec-update-multiref-allclear-en-fr-empty-elements.cap.xml", counts{"Update", 2, 4, 4, 0, 2, 0, "en-CA fr-CA"}},
		{"us-usgs-earthquake-circle-radius0-iso8859-1.cap.xml", counts{"Alert", 1, 1, 0, 1, 0, 0, "en-US"}},
		{"de-mowas-cancel-probealarm-hessen-9lang-multipolygon.CONVERTED-from-nina-json.cap.xml",
			counts{"Cancel", 9, 9, 225, 0, 1, 0, "de de-LS en ar es fr pl ru tr"}},
		{"us-nws-ipaws-sps-same-ugc-blockchannel.GEOCODE-EXPANDED-polygons.cap.xml", counts{"Alert", 1, 1, 18, 0, 0, 0, "en-US"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			a, err := Parse(readFixture(t, tc.file))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got := countsOf(a); got != tc.want {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
			checkInvariants(t, a)
		})
	}
}

// TestMetNo checks the values of the Norwegian alert, field by field.
func TestMetNo(t *testing.T) {
	a, err := Parse(readFixture(t, "no-metno-gale-marine-polygon-emma-2info-no-en.cap.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if a.Identifier != "2.49.0.1.578.0.210921070421906.1705" || a.Sender != "noreply@met.no" ||
		a.Status != "Actual" || a.Scope != "Public" {
		t.Errorf("header: %+v", a)
	}
	if want := time.Date(2021, 9, 21, 7, 4, 21, 0, time.UTC); !a.Sent.Equal(want) {
		t.Errorf("sent %v, want %v", a.Sent, want)
	}
	no := a.Infos[0]
	if no.Event != "Kuling" || no.Severity != "Moderate" || no.Urgency != "Future" || no.Certainty != "Likely" ||
		no.Categories[0] != "Met" || no.ResponseTypes[0] != "Monitor" {
		t.Errorf("info: %+v", no)
	}
	if !strings.HasPrefix(no.Headline, "Kuling, gult nivå, Måløy") || no.Instruction != "Vurder å la båten ligge. Ikke dra ut i småbåt." {
		t.Errorf("texts: %q / %q", no.Headline, no.Instruction)
	}
	if want := time.Date(2021, 9, 22, 10, 0, 0, 0, time.UTC); !no.Expires.Equal(want) {
		t.Errorf("expires %v, want %v", no.Expires, want)
	}
	area := no.Areas[0]
	if area.Desc != "Måløy - Svinøy" || len(area.Geocodes) != 2 || area.Geocodes[0] != (Value{"emma_id", "NO809"}) {
		t.Errorf("area: %+v", area)
	}
	// CAP writes latitude first; GeoJSON longitude first.
	ring := area.Polygons[0][0]
	if len(ring) != 7 || ring[0] != (geojson.Point{Lon: 4.9325, Lat: 62.217167}) || ring[0] != ring[6] {
		t.Errorf("ring %v", ring)
	}
	if len(no.Parameters) != 8 || no.Parameters[2] != (Value{"awareness_level", "2; yellow; Moderate"}) {
		t.Errorf("parameters %v", no.Parameters)
	}
}

func TestCircleAndReferences(t *testing.T) {
	a, err := Parse(readFixture(t, "us-ntwc-tsunami-info-circle.cap.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if c := a.Infos[0].Areas[0].Circles[0]; c != (Circle{Lat: 53.401, Lon: -165.164, RadiusM: 1000}) {
		t.Errorf("circle %+v", c)
	}
	m, err := Parse(readFixture(t, "de-mowas-cancel-probealarm-hessen-9lang-multipolygon.CONVERTED-from-nina-json.cap.xml"))
	if err != nil {
		t.Fatal(err)
	}
	want := Reference{Sender: "DE-HE-KS-SE106", Identifier: "mow.DE-HE-KS-SE106-20250313-106-000",
		Sent: time.Date(2025, 3, 13, 9, 15, 6, 0, time.UTC)}
	if len(m.References) != 1 || m.References[0].Sender != want.Sender || m.References[0].Identifier != want.Identifier ||
		!m.References[0].Sent.Equal(want.Sent) {
		t.Errorf("references %+v, want %+v", m.References, want)
	}
}

// minimal is a valid alert; the reject cases break one thing in it.
const minimal = `<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>sandefjord-2026-001</identifier>
  <sender>beredskap@sandefjord.kommune.no</sender>
  <sent>2026-11-27T14:05:00+01:00</sent>
  <status>Actual</status>
  <msgType>Alert</msgType>
  <scope>Public</scope>
  <info>
    <language>nb-NO</language>
    <category>Safety</category>
    <event>Flom</event>
    <urgency>Immediate</urgency>
    <severity>Severe</severity>
    <certainty>Observed</certainty>
    <headline>Flom i Sandefjord sentrum</headline>
    <area>
      <areaDesc>Sentrum</areaDesc>
      <polygon>59.13,10.21 59.14,10.21 59.14,10.23 59.13,10.21</polygon>
      <circle>59.131,10.216 0.5</circle>
    </area>
  </info>
</alert>`

func TestMinimal(t *testing.T) {
	a, err := Parse([]byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, a)
	if c := a.Infos[0].Areas[0].Circles[0]; c.RadiusM != 500 {
		t.Errorf("radius %v m, want 500", c.RadiusM)
	}
}

func TestRejects(t *testing.T) {
	for _, tc := range []struct {
		name, old, new string
		path, msg      string
	}{
		{"CAP 1.1", "cap:1.2", "cap:1.1", "alert", "crier reads CAP 1.2"},
		{"no namespace", ` xmlns="urn:oasis:names:tc:emergency:cap:1.2"`, "", "alert", "namespace"},
		{"no identifier", "<identifier>sandefjord-2026-001</identifier>", "", "alert.identifier", "required"},
		{"identifier with a space", "sandefjord-2026-001", "sandefjord 2026", "alert.identifier", "must not contain"},
		{"sender with a comma", "beredskap@sandefjord.kommune.no", "a,b", "alert.sender", "must not contain"},
		{"no sent", "<sent>2026-11-27T14:05:00+01:00</sent>", "", "alert.sent", "required"},
		{"sent without offset", "2026-11-27T14:05:00+01:00", "2026-11-27T14:05:00", "alert.sent", "offset"},
		{"unknown status", "<status>Actual</status>", "<status>Real</status>", "alert.status", `"Real" is not one of`},
		{"unknown msgType", "<msgType>Alert</msgType>", "<msgType>Warning</msgType>", "alert.msgType", "not one of"},
		{"restricted without restriction", "<scope>Public</scope>", "<scope>Restricted</scope>", "alert.restriction", "required"},
		{"private without addresses", "<scope>Public</scope>", "<scope>Private</scope>", "alert.addresses", "required"},
		{"bad reference", "<scope>Public</scope>", "<scope>Public</scope><references>a,b</references>",
			"alert.references[0]", "sender,identifier,sent"},
		{"reference with a bad time", "<scope>Public</scope>", "<scope>Public</scope><references>a,b,yesterday</references>",
			"alert.references[0]", "offset"},
		{"no category", "<category>Safety</category>", "", "alert.info[0].category", "required"},
		{"unknown category", "<category>Safety</category>", "<category>Flood</category>", "alert.info[0].category[0]", "not one of"},
		{"no event", "<event>Flom</event>", "", "alert.info[0].event", "required"},
		{"unknown urgency", "<urgency>Immediate</urgency>", "<urgency>Now</urgency>", "alert.info[0].urgency", "not one of"},
		{"no severity", "<severity>Severe</severity>", "", "alert.info[0].severity", "required"},
		{"unknown response", "<event>Flom</event>", "<event>Flom</event><responseType>Run</responseType>",
			"alert.info[0].responseType[0]", "not one of"},
		{"bad expires", "<headline>", "<expires>soon</expires><headline>", "alert.info[0].expires", "offset"},
		{"no areaDesc", "<areaDesc>Sentrum</areaDesc>", "", "alert.info[0].area[0].areaDesc", "required"},
		{"polygon point not a pair", "59.14,10.21 59.14", "59.14,10.21 59.14;10.23", "alert.info[0].area[0].polygon[0][2]", "latitude,longitude"},
		{"polygon not numbers", "59.14,10.23", "north,east", "alert.info[0].area[0].polygon[0][2]", "decimal degrees"},
		{"polygon NaN", "59.14,10.23", "NaN,10.23", "alert.info[0].area[0].polygon[0][2]", "decimal degrees"},
		{"latitude out of range", "59.14,10.23", "99.14,10.23", "alert.info[0].area[0].polygon[0][2]", "latitude 99.14"},
		{"longitude out of range", "59.14,10.23", "59.14,190.23", "alert.info[0].area[0].polygon[0][2]", "longitude 190.23"},
		{"circle without radius", "59.131,10.216 0.5", "59.131,10.216", "alert.info[0].area[0].circle[0]", "radius_km"},
		{"circle negative radius", "59.131,10.216 0.5", "59.131,10.216 -1", "alert.info[0].area[0].circle[0]", "radius"},
		{"circle huge radius", "59.131,10.216 0.5", "59.131,10.216 1e9", "alert.info[0].area[0].circle[0]", "radius"},
		{"circle bad centre", "59.131,10.216 0.5", "591.31,10.216 0.5", "alert.info[0].area[0].circle[0]", "latitude"},
		{"root not alert", "<alert ", "<alarm ", "alert", "not well-formed"},
		{"unsupported encoding", `encoding="UTF-8"`, `encoding="EBCDIC"`, "alert", "not supported"},
		{"not well-formed", "</info>", "</inf>", "alert", "not well-formed"},
		{"an entity", "<event>Flom</event>",
			"<event>&xxe;</event>", "alert", "not well-formed"},
		{"a doctype with an external entity", `<?xml version="1.0" encoding="UTF-8"?>`,
			`<?xml version="1.0" encoding="UTF-8"?><!DOCTYPE alert [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>`,
			"", ""}, // accepted: the DTD is not read, and no entity is used
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := strings.Replace(minimal, tc.old, tc.new, 1)
			if in == minimal {
				t.Fatalf("the case changes nothing: %q not in the alert", tc.old)
			}
			a, err := Parse([]byte(in))
			if tc.path == "" {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				checkInvariants(t, a)
				return
			}
			var ce *crier.Error
			if !errors.As(err, &ce) {
				t.Fatalf("Parse: %v (%T), want a *cap.Error at %s", err, err, tc.path)
			}
			if ce.Field != tc.path || !strings.Contains(ce.Message, tc.msg) {
				t.Errorf("error %q, want path %s and a message with %q", err, tc.path, tc.msg)
			}
		})
	}
}

func TestEmptyAndHuge(t *testing.T) {
	for _, in := range [][]byte{nil, []byte("   "), bytes.Repeat([]byte(" "), MaxSize+1)} {
		if _, err := Parse(in); err == nil {
			t.Errorf("Parse of %d bytes: no error", len(in))
		}
	}
}

func TestLatin1(t *testing.T) {
	in := strings.Replace(minimal, `encoding="UTF-8"`, `encoding="ISO-8859-1"`, 1)
	in = strings.Replace(in, "<areaDesc>Sentrum</areaDesc>", "<areaDesc>M\xe5l\xf8y</areaDesc>", 1)
	a, err := Parse([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if got := a.Infos[0].Areas[0].Desc; got != "Måløy" {
		t.Errorf("areaDesc %q, want Måløy", got)
	}
}

func TestMendedRing(t *testing.T) {
	in := strings.Replace(minimal, "59.13,10.21 59.14,10.21 59.14,10.23 59.13,10.21", "59.13,10.21 59.14,10.21 59.14,10.23", 1)
	a, err := Parse([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	ring := a.Infos[0].Areas[0].Polygons[0][0]
	if len(ring) != 4 || ring[0] != ring[3] {
		t.Errorf("ring %v, want the three points closed", ring)
	}
	if len(a.Warnings) != 1 || !strings.Contains(a.Warnings[0], "alert.info[0].area[0].polygon[0]: the ring did not end") {
		t.Errorf("warnings %q", a.Warnings)
	}
}

// checkInvariants holds for every alert Parse returns.
func checkInvariants(t testing.TB, a *Alert) {
	t.Helper()
	if checkID("", a.Identifier) != nil || checkID("", a.Sender) != nil || a.Sent.IsZero() {
		t.Fatalf("header not checked: %+v", a)
	}
	for _, f := range []struct {
		v  string
		in []string
	}{{a.Status, statuses}, {a.MsgType, msgTypes}, {a.Scope, scopes}} {
		if oneOf("", f.v, f.in) != nil {
			t.Fatalf("%q accepted, not one of %v", f.v, f.in)
		}
	}
	for _, in := range a.Infos {
		if in.Event == "" || len(in.Categories) == 0 || oneOf("", in.Urgency, urgencies) != nil ||
			oneOf("", in.Severity, severities) != nil || oneOf("", in.Certainty, certainties) != nil {
			t.Fatalf("info not checked: %+v", in)
		}
		for _, ar := range in.Areas {
			if ar.Desc == "" {
				t.Fatalf("area without areaDesc")
			}
			for _, p := range ar.Polygons {
				ring := p[0]
				if len(p) != 1 || len(ring) < 4 || ring[0] != ring[len(ring)-1] {
					t.Fatalf("polygon not one closed ring of 4 or more points: %v", p)
				}
				for _, pos := range ring {
					if pos.Lon < -180 || pos.Lon > 180 || pos.Lat < -90 || pos.Lat > 90 {
						t.Fatalf("position %v out of range", pos)
					}
				}
			}
			for _, c := range ar.Circles {
				if c.RadiusM < 0 || c.RadiusM > maxRadiusKM*1000 || c.Lat < -90 || c.Lat > 90 || c.Lon < -180 || c.Lon > 180 {
					t.Fatalf("circle %+v out of range", c)
				}
			}
		}
	}
}

// FuzzParse: no input panics Parse, and whatever it accepts holds the
// invariants; rejections are *cap.Error.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.xml"))
	for _, file := range files {
		f.Add(readFixture(f, filepath.Base(file)))
	}
	f.Add([]byte(minimal))
	f.Fuzz(func(t *testing.T, in []byte) {
		a, err := Parse(in)
		if err != nil {
			var ce *crier.Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %v is %T, not *cap.Error", err, err)
			}
			return
		}
		checkInvariants(t, a)
	})
}

func TestRootNotAlert(t *testing.T) {
	in := strings.Replace(strings.Replace(minimal, "<alert ", "<alarm ", 1), "</alert>", "</alarm>", 1)
	_, err := Parse([]byte(in))
	var ce *crier.Error
	if !errors.As(err, &ce) || ce.Field != "alarm" || !strings.Contains(ce.Message, "root element") {
		t.Errorf("Parse: %v, want the root element named", err)
	}
}

// BenchmarkParse reads each real alert of testdata.
func BenchmarkParse(b *testing.B) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.xml"))
	for _, file := range files {
		data := readFixture(b, filepath.Base(file))
		name := strings.Join(strings.SplitN(filepath.Base(file), "-", 4)[:3], "-")
		b.Run(name+"-"+strconv.Itoa(len(data)/1024)+"KB", func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Parse(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
