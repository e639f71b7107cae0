package cap

import (
	"bufio"
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/geojson"
)

// sameAlert compares alerts as CAP sees them: times as instants, absent
// and empty lists alike, warnings (which are not written) left out.
var sameAlert = cmp.Options{cmpopts.EquateEmpty(), cmpopts.IgnoreFields(Alert{}, "Warnings")}

func fixtures(t testing.TB) []string {
	files, err := filepath.Glob(filepath.Join("testdata", "*.cap.xml"))
	if err != nil || len(files) < 12 {
		t.Fatalf("fixtures: %v, %v", files, err)
	}
	return files
}

// TestRoundTrip: every real alert, read and written again, reads back as
// the same alert; writing is a fixed point; and the JSON form crier
// stores gives the same alert and the same CAP.
func TestRoundTrip(t *testing.T) {
	t.Parallel()
	for _, file := range fixtures(t) {
		t.Run(filepath.Base(file), func(t *testing.T) {
			t.Parallel()
			a, err := Parse(readFixture(t, filepath.Base(file)))
			if err != nil {
				t.Fatal(err)
			}
			out, err := Marshal(a)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			b, err := Parse(out)
			if err != nil {
				t.Fatalf("Parse of what Marshal wrote: %v\n%s", err, out)
			}
			if len(b.Warnings) != 0 {
				t.Errorf("what Marshal wrote needs mending: %q", b.Warnings)
			}
			if diff := roundTripDiff(a, b); diff != "" {
				t.Errorf("round trip (-parsed +written and parsed again):\n%s", diff)
			}
			if again, err := Marshal(b); err != nil || !bytes.Equal(again, out) {
				t.Errorf("Marshal is not a fixed point: %v\n%s", err, diffLines(out, again))
			}

			js, err := json.Marshal(a)
			if err != nil {
				t.Fatalf("json: %v", err)
			}
			var c Alert
			if err := json.Unmarshal(js, &c); err != nil {
				t.Fatalf("json back: %v\n%s", err, js)
			}
			if diff := roundTripDiff(a, &c); diff != "" {
				t.Errorf("JSON round trip (-parsed +from JSON):\n%s", diff)
			}
			if fromJSON, err := Marshal(&c); err != nil || !bytes.Equal(fromJSON, out) {
				t.Errorf("the JSON form writes other CAP: %v\n%s", err, diffLines(out, fromJSON))
			}
		})
	}
}

// roundTripDiff says how b, an alert written and read back, differs from
// a: times to the second, warnings left out. It compares the JSON forms
// first, as cmp takes seconds over the thousands of positions of a big
// alert.
func roundTripDiff(a, b *Alert) string {
	if bytes.Equal(kept(a), kept(b)) {
		return ""
	}
	truncated := cmp.Transformer("second", func(t time.Time) time.Time { return t.Truncate(time.Second) })
	return cmp.Diff(a, b, sameAlert, truncated)
}

// kept is what a round trip keeps of an alert, as JSON.
func kept(a *Alert) []byte {
	c := *a
	c.Warnings = nil
	c.Sent = c.Sent.Truncate(time.Second)
	c.References = slices.Clone(c.References)
	for i := range c.References {
		c.References[i].Sent = c.References[i].Sent.Truncate(time.Second)
	}
	c.Infos = slices.Clone(c.Infos)
	for i := range c.Infos {
		in := &c.Infos[i]
		for _, t := range []*time.Time{&in.Effective, &in.Onset, &in.Expires} {
			*t = t.Truncate(time.Second)
		}
	}
	b, err := json.Marshal(&c)
	if err != nil {
		panic(err)
	}
	return b
}

func diffLines(a, b []byte) string {
	return cmp.Diff(strings.Split(string(a), "\n"), strings.Split(string(b), "\n"))
}

// TestJSONForm pins the stored JSON's names: stored alerts must stay
// readable.
func TestJSONForm(t *testing.T) {
	t.Parallel()
	a, err := Parse([]byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	a.References = []Reference{{Sender: "s", Identifier: "i", Sent: time.Date(2026, 11, 27, 13, 0, 0, 0, time.UTC)}}
	a.Infos[0].Areas[0].Geocodes = []Value{{Name: "kommunenummer", Value: "3907"}}
	got, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"identifier":"sandefjord-2026-001","sender":"beredskap@sandefjord.kommune.no",` +
		`"sent":"2026-11-27T14:05:00+01:00","status":"Actual","msg_type":"Alert","scope":"Public",` +
		`"references":[{"sender":"s","identifier":"i","sent":"2026-11-27T13:00:00Z"}],` +
		`"infos":[{"language":"nb-NO","categories":["Safety"],"event":"Flom","urgency":"Immediate",` +
		`"severity":"Severe","certainty":"Observed","headline":"Flom i Sandefjord sentrum",` +
		`"areas":[{"desc":"Sentrum","polygons":[[[[10.21,59.13],[10.21,59.14],[10.23,59.14],[10.21,59.13]]]],` +
		`"circles":[{"lat":59.131,"lon":10.216,"radius_m":500}],"geocodes":[{"name":"kommunenummer","value":"3907"}]}]}]}`
	if diff := cmp.Diff(want, string(got)); diff != "" {
		t.Errorf("JSON (-want +got):\n%s", diff)
	}
}

// TestMarshal pins the written form: CAP times, references, latitude
// first, radius in km, name/value pairs, escaping.
func TestMarshal(t *testing.T) {
	t.Parallel()
	oslo := time.FixedZone("", 3600)
	a := &Alert{
		Identifier: "sandefjord-2026-002", Sender: "beredskap@sandefjord.kommune.no",
		Sent:   time.Date(2026, 11, 27, 15, 0, 0, 999_000_000, oslo), // the fraction is dropped
		Status: "Actual", MsgType: "Update", Scope: "Public",
		References: []Reference{
			{Sender: "beredskap@sandefjord.kommune.no", Identifier: "sandefjord-2026-001", Sent: time.Date(2026, 11, 27, 13, 5, 0, 0, time.UTC)},
			{Sender: "beredskap@sandefjord.kommune.no", Identifier: "sandefjord-2026-000", Sent: time.Date(2026, 11, 27, 14, 0, 0, 0, oslo)},
		},
		Infos: []Info{{
			Language: "nb-NO", Categories: []string{"Met", "Safety"}, Event: "Flom", ResponseTypes: []string{"Avoid"},
			Urgency: "Immediate", Severity: "Severe", Certainty: "Observed",
			Expires:  time.Date(2026, 11, 28, 0, 0, 0, 0, oslo),
			Headline: "Flom i <sentrum> & havna", Description: "Linje 1\r\nLinje 2\x00",
			Parameters: []Value{{"awareness_level", "3; orange; Severe"}},
			Areas: []Area{{
				Desc:     "Sentrum",
				Polygons: geojson.MultiPolygon{{{{Lon: 10.21, Lat: 59.13}, {Lon: 10.21, Lat: 59.14}, {Lon: 10.23, Lat: 59.14}, {Lon: 10.21, Lat: 59.13}}}},
				Circles:  []Circle{{Lat: 59.131, Lon: 10.216, RadiusM: 300}},
				Geocodes: []Value{{"kommunenummer", "3907"}},
			}},
		}, {Language: "en-GB", Categories: []string{"Met"}, Event: "Flood", Urgency: "Immediate", Severity: "Severe", Certainty: "Observed"}},
	}
	got, err := Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	want := `<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>sandefjord-2026-002</identifier>
  <sender>beredskap@sandefjord.kommune.no</sender>
  <sent>2026-11-27T15:00:00+01:00</sent>
  <status>Actual</status>
  <msgType>Update</msgType>
  <scope>Public</scope>
  <references>beredskap@sandefjord.kommune.no,sandefjord-2026-001,2026-11-27T13:05:00-00:00 beredskap@sandefjord.kommune.no,sandefjord-2026-000,2026-11-27T14:00:00+01:00</references>
  <info>
    <language>nb-NO</language>
    <category>Met</category>
    <category>Safety</category>
    <event>Flom</event>
    <responseType>Avoid</responseType>
    <urgency>Immediate</urgency>
    <severity>Severe</severity>
    <certainty>Observed</certainty>
    <expires>2026-11-28T00:00:00+01:00</expires>
    <headline>Flom i &lt;sentrum&gt; &amp; havna</headline>
    <description>Linje 1&#xD;
Linje 2` + "\uFFFD" + `</description>
    <parameter>
      <valueName>awareness_level</valueName>
      <value>3; orange; Severe</value>
    </parameter>
    <area>
      <areaDesc>Sentrum</areaDesc>
      <polygon>59.13,10.21 59.14,10.21 59.14,10.23 59.13,10.21</polygon>
      <circle>59.131,10.216 0.3</circle>
      <geocode>
        <valueName>kommunenummer</valueName>
        <value>3907</value>
      </geocode>
    </area>
  </info>
  <info>
    <language>en-GB</language>
    <category>Met</category>
    <event>Flood</event>
    <urgency>Immediate</urgency>
    <severity>Severe</severity>
    <certainty>Observed</certainty>
  </info>
</alert>
`
	if diff := cmp.Diff(strings.Split(want, "\n"), strings.Split(string(got), "\n")); diff != "" {
		t.Errorf("written (-want +got):\n%s", diff)
	}
	b, err := Parse(got)
	if err != nil {
		t.Fatal(err)
	}
	if b.Infos[0].Description != "Linje 1\r\nLinje 2\uFFFD" || b.Infos[0].Headline != "Flom i <sentrum> & havna" {
		t.Errorf("texts read back: %q, %q", b.Infos[0].Description, b.Infos[0].Headline)
	}
}

func TestFormatTime(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   time.Time
		want string
	}{
		{time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC), "2026-01-02T03:04:05-00:00"},
		{time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("", -5*3600)), "2026-01-02T03:04:05-05:00"},
		{time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("", 5*3600+1800)), "2026-01-02T03:04:05+05:30"},
		// Offsets the schema cannot write: the same instant in UTC.
		{time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("LMT", 3600+17)), "2026-01-02T02:03:48-00:00"},
		{time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("", 15*3600)), "2026-01-01T12:04:05-00:00"},
	} {
		if got := formatTime(tc.in); got != tc.want {
			t.Errorf("formatTime(%v) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// TestValidate: what CAP forbids is refused, naming the element.
func TestValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		break_ func(a *Alert)
		path   string
	}{
		{"no identifier", func(a *Alert) { a.Identifier = "" }, "alert.identifier"},
		{"identifier with a comma", func(a *Alert) { a.Identifier = "a,b" }, "alert.identifier"},
		{"no sender", func(a *Alert) { a.Sender = "" }, "alert.sender"},
		{"no sent", func(a *Alert) { a.Sent = time.Time{} }, "alert.sent"},
		{"sent in year 10000", func(a *Alert) { a.Sent = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, "alert.sent"},
		{"sent in year 0", func(a *Alert) { a.Sent = time.Date(0, 6, 1, 0, 0, 0, 0, time.UTC) }, "alert.sent"},
		{"no status", func(a *Alert) { a.Status = "" }, "alert.status"},
		{"unknown msgType", func(a *Alert) { a.MsgType = "Warning" }, "alert.msgType"},
		{"no scope", func(a *Alert) { a.Scope = "" }, "alert.scope"},
		{"restricted", func(a *Alert) { a.Scope = "Restricted" }, "alert.restriction"},
		{"private", func(a *Alert) { a.Scope = "Private" }, "alert.addresses"},
		{"reference with a space", func(a *Alert) {
			a.References = []Reference{{Sender: "a b", Identifier: "i", Sent: a.Sent}}
		}, "alert.references[0]"},
		{"reference without identifier", func(a *Alert) { a.References = []Reference{{Sender: "s", Sent: a.Sent}} }, "alert.references[0]"},
		{"reference without sent", func(a *Alert) { a.References = []Reference{{Sender: "s", Identifier: "i"}} }, "alert.references[0]"},
		{"bad language", func(a *Alert) { a.Infos[0].Language = "nb_NO" }, "alert.info[0].language"},
		{"no category", func(a *Alert) { a.Infos[0].Categories = nil }, "alert.info[0].category"},
		{"unknown category", func(a *Alert) { a.Infos[0].Categories = []string{"Flood"} }, "alert.info[0].category[0]"},
		{"no event", func(a *Alert) { a.Infos[0].Event = "" }, "alert.info[0].event"},
		{"unknown response", func(a *Alert) { a.Infos[0].ResponseTypes = []string{"Run"} }, "alert.info[0].responseType[0]"},
		{"no urgency", func(a *Alert) { a.Infos[0].Urgency = "" }, "alert.info[0].urgency"},
		{"no severity", func(a *Alert) { a.Infos[0].Severity = "" }, "alert.info[0].severity"},
		{"unknown certainty", func(a *Alert) { a.Infos[0].Certainty = "Very Likely" }, "alert.info[0].certainty"},
		{"expires in year 0", func(a *Alert) { a.Infos[0].Expires = time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC) }, "alert.info[0].expires"},
		{"no areaDesc", func(a *Alert) { a.Infos[0].Areas[0].Desc = "" }, "alert.info[0].area[0].areaDesc"},
		{"polygon with a hole", func(a *Alert) {
			p := a.Infos[0].Areas[0].Polygons[0]
			a.Infos[0].Areas[0].Polygons[0] = geojson.Polygon{p[0], p[0]}
		}, "alert.info[0].area[0].polygon[0]"},
		{"open ring", func(a *Alert) {
			r := a.Infos[0].Areas[0].Polygons[0][0]
			a.Infos[0].Areas[0].Polygons[0][0] = r[:len(r)-1]
		}, "alert.info[0].area[0].polygon[0]"},
		{"latitude out of range", func(a *Alert) { a.Infos[0].Areas[0].Polygons[0][0][1].Lat = 91 }, "alert.info[0].area[0].polygon[0][1]"},
		{"NaN longitude", func(a *Alert) { a.Infos[0].Areas[0].Circles[0].Lon = math.NaN() }, "alert.info[0].area[0].circle[0]"},
		{"negative radius", func(a *Alert) { a.Infos[0].Areas[0].Circles[0].RadiusM = -1 }, "alert.info[0].area[0].circle[0]"},
		{"huge radius", func(a *Alert) { a.Infos[0].Areas[0].Circles[0].RadiusM = 3e7 }, "alert.info[0].area[0].circle[0]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, err := Parse([]byte(minimal))
			if err != nil {
				t.Fatal(err)
			}
			if err := a.Validate(); err != nil {
				t.Fatalf("the minimal alert: %v", err)
			}
			tc.break_(a)
			out, err := Marshal(a)
			var ce *crier.Error
			if !errors.As(err, &ce) || ce.Field != tc.path {
				t.Errorf("Marshal: %v, want a *crier.Error naming %s\n%s", err, tc.path, out)
			}
		})
	}
}

// schemaSequences reads the CAP 1.2 XSD: for each element with children,
// its children in the order the schema's sequence requires, each with
// whether it is required and whether it may repeat.
type child struct {
	name     string
	required bool
	repeats  bool
}

func schemaSequences(t testing.TB) map[string][]child {
	f, err := os.Open(filepath.Join("testdata", "CAP-v1.2.xsd"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := xml.NewDecoder(f)
	seqs := map[string][]child{}
	// The stack holds the name of each open xs:element (or "" for other
	// schema elements).
	var stack []string
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch e := tok.(type) {
		case xml.StartElement:
			name := ""
			if e.Name.Local == "element" {
				attr := map[string]string{}
				for _, a := range e.Attr {
					attr[a.Name.Local] = a.Value
				}
				name = attr["name"]
				if name == "" {
					name = strings.TrimPrefix(attr["ref"], "cap:")
				}
				// The parent is the nearest open xs:element.
				for i := len(stack) - 1; i >= 0; i-- {
					if stack[i] != "" {
						seqs[stack[i]] = append(seqs[stack[i]], child{name, attr["minOccurs"] != "0", attr["maxOccurs"] == "unbounded"})
						break
					}
				}
			}
			stack = append(stack, name)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		}
	}
	return seqs
}

// checkOrder checks a document's elements against the schema's sequences:
// known, in order, required ones present, single ones once.
func checkOrder(seqs map[string][]child, doc []byte) error {
	dec := xml.NewDecoder(bytes.NewReader(doc))
	dec.CharsetReader = charsetReader
	type open struct {
		name string
		next int // index in the parent's sequence of the last child seen
		seen map[string]int
	}
	var stack []*open
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		switch e := tok.(type) {
		case xml.StartElement:
			if len(stack) == 0 && (e.Name.Local != "alert" || e.Name.Space != Namespace) {
				return fmt.Errorf("root %v", e.Name)
			}
			if len(stack) > 0 {
				p := stack[len(stack)-1]
				seq, ok := seqs[p.name]
				if !ok {
					return fmt.Errorf("%s has a child %s; the schema gives it none", p.name, e.Name.Local)
				}
				i := -1
				for k := p.next; k < len(seq); k++ {
					if seq[k].name == e.Name.Local {
						i = k
						break
					}
				}
				if i < 0 {
					return fmt.Errorf("%s: %s is out of the schema's order or unknown", p.name, e.Name.Local)
				}
				if p.seen[e.Name.Local] > 0 && !seq[i].repeats {
					return fmt.Errorf("%s: %s given twice", p.name, e.Name.Local)
				}
				p.next = i
				p.seen[e.Name.Local]++
			}
			stack = append(stack, &open{name: e.Name.Local, seen: map[string]int{}})
		case xml.EndElement:
			o := stack[len(stack)-1]
			for _, c := range seqs[o.name] {
				if c.required && o.seen[c.name] == 0 {
					return fmt.Errorf("%s lacks its required %s", o.name, c.name)
				}
			}
			stack = stack[:len(stack)-1]
		}
	}
}

// TestSchemaOrder checks every written fixture against the element order
// of the official CAP 1.2 schema (testdata/CAP-v1.2.xsd).
func TestSchemaOrder(t *testing.T) {
	t.Parallel()
	seqs := schemaSequences(t)
	if got := len(seqs["alert"]) + len(seqs["info"]) + len(seqs["area"]); got != 14+21+6 {
		t.Fatalf("read %d elements of alert, info and area from the schema, want 41: %v", got, seqs)
	}
	// The checker itself: the MeteoAlarm feed puts geocode before polygon,
	// which the schema forbids.
	raw := readFixture(t, "rs-hidmet-meteoalarm-update-references-3lang.cap.xml")
	if err := checkOrder(seqs, raw); err == nil || !strings.Contains(err.Error(), "polygon") {
		t.Errorf("the out-of-order MeteoAlarm original: %v, want polygon out of order", err)
	}
	for _, file := range fixtures(t) {
		a, err := Parse(readFixture(t, filepath.Base(file)))
		if err != nil {
			t.Fatal(err)
		}
		out, err := Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		if err := checkOrder(seqs, out); err != nil {
			t.Errorf("%s: %v", filepath.Base(file), err)
		}
	}
}

// TestSchemaValid validates every written fixture with a real XML Schema
// validator, the JDK's, against the official CAP 1.2 schema; the
// originals that break the schema show that it is not a rubber stamp.
func TestSchemaValid(t *testing.T) {
	t.Parallel()
	java, err := exec.LookPath("java")
	if err != nil {
		t.Skip("SKIPPED: no java on PATH to validate against CAP-v1.2.xsd (the element order is still checked by TestSchemaOrder)")
	}
	dir := t.TempDir()
	var files []string
	for _, file := range fixtures(t) {
		a, err := Parse(readFixture(t, filepath.Base(file)))
		if err != nil {
			t.Fatal(err)
		}
		out, err := Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Join(dir, filepath.Base(file))
		if err := os.WriteFile(name, out, 0o600); err != nil {
			t.Fatal(err)
		}
		files = append(files, name)
	}
	invalid := map[string]bool{}
	for _, f := range []string{"rs-hidmet-meteoalarm-update-references-3lang.cap.xml",
		"de-mowas-cancel-probealarm-hessen-9lang-multipolygon.CONVERTED-from-nina-json.cap.xml",
		"us-nws-ipaws-sps-same-ugc-blockchannel.GEOCODE-EXPANDED-polygons.cap.xml",
		"us-nws-oasis-example-severe-tstorm-polygon-same-fips.cap.xml"} {
		files = append(files, filepath.Join("testdata", f))
		invalid[filepath.Join("testdata", f)] = true
	}
	cmd := exec.Command(java, filepath.Join("testdata", "Validate.java"), filepath.Join("testdata", "CAP-v1.2.xsd"))
	cmd.Args = append(cmd.Args, files...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("java: %v\n%s", err, stderr.Bytes())
	}
	got := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		verdict, rest, _ := strings.Cut(sc.Text(), " ")
		file, _, _ := strings.Cut(rest, ": ")
		got[file] = sc.Text()
		if (verdict == "valid") == invalid[file] {
			t.Errorf("%s", sc.Text())
		}
	}
	if len(got) != len(files) {
		t.Errorf("the validator answered for %d of %d documents:\n%s", len(got), len(files), out)
	}
}

// FuzzRoundTrip: whatever Parse accepts, Marshal writes (or refuses with
// a *crier.Error), and what it writes reads back as the same alert, but
// for fractions of seconds, and writes again to the same bytes.
func FuzzRoundTrip(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.cap.xml"))
	for _, file := range files {
		// The big ones (hundreds of polygons) slow every mutation down and
		// hold nothing the small ones do not.
		if b := readFixture(f, filepath.Base(file)); len(b) < 16<<10 {
			f.Add(b)
		}
	}
	f.Add([]byte(minimal))
	f.Fuzz(func(t *testing.T, in []byte) {
		a, err := Parse(in)
		if err != nil {
			return
		}
		out, err := Marshal(a)
		if err != nil {
			var ce *crier.Error
			if !errors.As(err, &ce) {
				t.Fatalf("Marshal: %v is %T, not *crier.Error", err, err)
			}
			return
		}
		b, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse of what Marshal wrote: %v\n%s", err, out)
		}
		if diff := roundTripDiff(a, b); diff != "" {
			t.Fatalf("round trip (-parsed +written and parsed again):\n%s", diff)
		}
		if again, err := Marshal(b); err != nil || !bytes.Equal(again, out) {
			t.Fatalf("Marshal is not a fixed point: %v\n%s", err, diffLines(out, again))
		}
	})
}

// BenchmarkMarshal writes each real alert of testdata.
func BenchmarkMarshal(b *testing.B) {
	for _, file := range fixtures(b) {
		a, err := Parse(readFixture(b, filepath.Base(file)))
		if err != nil {
			b.Fatal(err)
		}
		name := strings.Join(strings.SplitN(filepath.Base(file), "-", 4)[:3], "-")
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Marshal(a); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
