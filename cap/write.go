package cap

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/crier-push/crier/geojson"
)

// Marshal writes the alert as a CAP 1.2 document, in the element order of
// the CAP 1.2 schema, so that regional warning systems can read what crier
// sent. Times are written as CAP requires: to the second, with their
// offset ("-00:00" for UTC). An alert CAP forbids (see Validate) is a
// *crier.Error naming the element; Warnings are not written.
//
// Parse of Marshal's output gives the alert back, but for what CAP cannot
// say: fractions of seconds, and an empty language (CAP's default, en-US).
func Marshal(a *Alert) ([]byte, error) {
	if err := a.Validate(); err != nil {
		return nil, err
	}
	w := &writer{}
	w.b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	w.b.WriteString(`<alert xmlns="` + Namespace + `">` + "\n")
	w.depth = 1
	w.text("identifier", a.Identifier)
	w.text("sender", a.Sender)
	w.time("sent", a.Sent)
	w.text("status", a.Status)
	w.text("msgType", a.MsgType)
	w.text("source", a.Source)
	w.text("scope", a.Scope)
	w.text("restriction", a.Restriction)
	w.text("addresses", a.Addresses)
	for _, c := range a.Codes {
		w.text("code", c)
	}
	w.text("note", a.Note)
	if len(a.References) > 0 {
		refs := make([]string, len(a.References))
		for i, r := range a.References {
			refs[i] = r.Sender + "," + r.Identifier + "," + formatTime(r.Sent)
		}
		w.text("references", strings.Join(refs, " "))
	}
	w.text("incidents", a.Incidents)
	for i := range a.Infos {
		w.info(&a.Infos[i])
	}
	w.b.WriteString("</alert>\n")
	return w.b.Bytes(), nil
}

type writer struct {
	b     bytes.Buffer
	depth int
}

func (w *writer) indent() {
	for range w.depth {
		w.b.WriteString("  ")
	}
}

func (w *writer) open(name string) {
	w.indent()
	w.b.WriteString("<" + name + ">\n")
	w.depth++
}

func (w *writer) close(name string) {
	w.depth--
	w.indent()
	w.b.WriteString("</" + name + ">\n")
}

// text writes an element of text; an empty one is left out (every required
// element has been checked by Validate).
func (w *writer) text(name, v string) {
	if v == "" {
		return
	}
	w.indent()
	w.b.WriteString("<" + name + ">")
	escape(&w.b, v)
	w.b.WriteString("</" + name + ">\n")
}

func (w *writer) time(name string, t time.Time) {
	if !t.IsZero() {
		w.text(name, formatTime(t))
	}
}

func (w *writer) values(name string, vs []Value) {
	for _, v := range vs {
		w.open(name)
		w.indent()
		w.b.WriteString("<valueName>")
		escape(&w.b, v.Name)
		w.b.WriteString("</valueName>\n")
		w.indent()
		w.b.WriteString("<value>")
		escape(&w.b, v.Value)
		w.b.WriteString("</value>\n")
		w.close(name)
	}
}

func (w *writer) info(in *Info) {
	w.open("info")
	w.text("language", in.Language)
	for _, c := range in.Categories {
		w.text("category", c)
	}
	w.text("event", in.Event)
	for _, r := range in.ResponseTypes {
		w.text("responseType", r)
	}
	w.text("urgency", in.Urgency)
	w.text("severity", in.Severity)
	w.text("certainty", in.Certainty)
	w.text("audience", in.Audience)
	w.values("eventCode", in.EventCodes)
	w.time("effective", in.Effective)
	w.time("onset", in.Onset)
	w.time("expires", in.Expires)
	w.text("senderName", in.SenderName)
	w.text("headline", in.Headline)
	w.text("description", in.Description)
	w.text("instruction", in.Instruction)
	w.text("web", in.Web)
	w.text("contact", in.Contact)
	w.values("parameter", in.Parameters)
	for i := range in.Areas {
		w.area(&in.Areas[i])
	}
	w.close("info")
}

func (w *writer) area(a *Area) {
	w.open("area")
	w.text("areaDesc", a.Desc)
	// Numbers need no escaping: polygons, which may hold thousands of
	// positions, are written straight into the buffer.
	var num []byte
	for _, p := range a.Polygons {
		w.indent()
		w.b.WriteString("<polygon>")
		for i, pt := range p[0] {
			if i > 0 {
				w.b.WriteByte(' ')
			}
			num = strconv.AppendFloat(num[:0], pt.Lat, 'f', -1, 64)
			num = append(num, ',')
			num = strconv.AppendFloat(num, pt.Lon, 'f', -1, 64)
			w.b.Write(num)
		}
		w.b.WriteString("</polygon>\n")
	}
	for _, c := range a.Circles {
		w.text("circle", formatFloat(c.Lat)+","+formatFloat(c.Lon)+" "+formatFloat(c.RadiusM/1000))
	}
	w.values("geocode", a.Geocodes)
	w.close("area")
}

// escape writes text content: &, < and > as entities, and a carriage
// return as a character reference, since XML readers turn a literal one
// into a line feed. What XML cannot carry at all (most control
// characters, broken UTF-8) becomes U+FFFD.
func escape(b *bytes.Buffer, s string) {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch {
		case r == '&':
			b.WriteString("&amp;")
		case r == '<':
			b.WriteString("&lt;")
		case r == '>':
			b.WriteString("&gt;")
		case r == '\r':
			b.WriteString("&#xD;")
		case r == utf8.RuneError && size == 1, !xmlChar(r):
			b.WriteRune(utf8.RuneError)
		default:
			b.WriteRune(r)
		}
	}
}

// xmlChar says whether XML 1.0 may carry the character.
func xmlChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D || r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF
}

// formatTime writes a CAP dateTime: seconds, no fraction, an explicit
// offset, and "-00:00" for UTC as CAP says. An offset CAP's schema cannot
// hold (seconds in it, or more than 14 hours) is written in UTC: the same
// instant.
func formatTime(t time.Time) string {
	t = t.Truncate(time.Second)
	_, off := t.Zone()
	if off%60 != 0 || off > 14*3600 || off < -14*3600 {
		t, off = t.UTC(), 0
	}
	if off == 0 {
		return t.Format("2006-01-02T15:04:05") + "-00:00"
	}
	return t.Format("2006-01-02T15:04:05-07:00")
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// capTime is the schema's pattern of a dateTime.
var capTime = regexp.MustCompile(`^\d\d\d\d-\d\d-\d\dT\d\d:\d\d:\d\d[-+]\d\d:\d\d$`)

// languageTag is the schema's xs:language.
var languageTag = regexp.MustCompile(`^[a-zA-Z]{1,8}(-[a-zA-Z0-9]{1,8})*$`)

// Validate says whether CAP 1.2 allows the alert: its required elements
// are there, its enumerations hold known values, identifiers and
// references can be written unambiguously, times are within the years
// 0001 to 9999, and every polygon is one closed ring of at least four
// positions (CAP has no holes). Errors are *crier.Error naming the
// element, as Parse's are.
func (a *Alert) Validate() error {
	for _, f := range []struct{ name, v string }{{"identifier", a.Identifier}, {"sender", a.Sender}} {
		if err := checkID("alert."+f.name, f.v); err != nil {
			return err
		}
	}
	if err := checkTime("alert.sent", a.Sent, true); err != nil {
		return err
	}
	for _, f := range []struct {
		name, v string
		in      []string
	}{{"status", a.Status, statuses}, {"msgType", a.MsgType, msgTypes}, {"scope", a.Scope, scopes}} {
		if err := oneOf("alert."+f.name, f.v, f.in); err != nil {
			return err
		}
	}
	if a.Scope == "Restricted" && a.Restriction == "" {
		return errorf("alert.restriction", "required when the scope is Restricted")
	}
	if a.Scope == "Private" && a.Addresses == "" {
		return errorf("alert.addresses", "required when the scope is Private")
	}
	for i, r := range a.References {
		p := fmt.Sprintf("alert.references[%d]", i)
		for _, v := range []string{r.Sender, r.Identifier} {
			if v == "" || strings.ContainsFunc(v, func(r rune) bool { return r == ',' || unicode.IsSpace(r) }) {
				return errorf(p, "sender and identifier must be given, without commas or spaces (%q, %q)", r.Sender, r.Identifier)
			}
		}
		if err := checkTime(p, r.Sent, true); err != nil {
			return err
		}
	}
	for i := range a.Infos {
		if err := a.Infos[i].validate(fmt.Sprintf("alert.info[%d]", i)); err != nil {
			return err
		}
	}
	return nil
}

func (in *Info) validate(path string) error {
	if in.Language != "" && !languageTag.MatchString(in.Language) {
		return errorf(path+".language", "%q is not a language tag like nb-NO", in.Language)
	}
	if len(in.Categories) == 0 {
		return errorf(path+".category", "required; one or more of %s", strings.Join(categories, ", "))
	}
	for i, c := range in.Categories {
		if err := oneOf(fmt.Sprintf("%s.category[%d]", path, i), c, categories); err != nil {
			return err
		}
	}
	if in.Event == "" {
		return errorf(path+".event", "required")
	}
	for i, r := range in.ResponseTypes {
		if err := oneOf(fmt.Sprintf("%s.responseType[%d]", path, i), r, responseTypes); err != nil {
			return err
		}
	}
	for _, f := range []struct {
		name, v string
		in      []string
	}{{"urgency", in.Urgency, urgencies}, {"severity", in.Severity, severities}, {"certainty", in.Certainty, certainties}} {
		if err := oneOf(path+"."+f.name, f.v, f.in); err != nil {
			return err
		}
	}
	for _, f := range []struct {
		name string
		t    time.Time
	}{{"effective", in.Effective}, {"onset", in.Onset}, {"expires", in.Expires}} {
		if err := checkTime(path+"."+f.name, f.t, false); err != nil {
			return err
		}
	}
	for i := range in.Areas {
		if err := in.Areas[i].validate(fmt.Sprintf("%s.area[%d]", path, i)); err != nil {
			return err
		}
	}
	return nil
}

func (a *Area) validate(path string) error {
	if a.Desc == "" {
		return errorf(path+".areaDesc", "required")
	}
	for i, p := range a.Polygons {
		pp := fmt.Sprintf("%s.polygon[%d]", path, i)
		if len(p) != 1 {
			return errorf(pp, "%d rings; a CAP polygon is one ring, without holes", len(p))
		}
		ring := p[0]
		if len(ring) < 4 || ring[0] != ring[len(ring)-1] {
			return errorf(pp, "a CAP polygon is a closed ring of at least 4 positions, the first equal to the last")
		}
		for j, pt := range ring {
			// The path is made only for the bad one: rings have thousands
			// of positions.
			if !(pt.Lat >= -90 && pt.Lat <= 90 && pt.Lon >= -180 && pt.Lon <= 180) {
				return checkPosition(fmt.Sprintf("%s[%d]", pp, j), pt.Lat, pt.Lon)
			}
		}
	}
	for i, c := range a.Circles {
		cp := fmt.Sprintf("%s.circle[%d]", path, i)
		if err := checkPosition(cp, c.Lat, c.Lon); err != nil {
			return err
		}
		if !(c.RadiusM >= 0 && c.RadiusM <= maxRadiusKM*1000) {
			return errorf(cp, "radius %g m is not from 0 to %g km", c.RadiusM, maxRadiusKM)
		}
	}
	return nil
}

func checkPosition(path string, lat, lon float64) error {
	if !(lat >= -90 && lat <= 90) {
		return errorf(path, "latitude %g is outside -90..90", lat)
	}
	if !(lon >= -180 && lon <= 180) {
		return errorf(path, "longitude %g is outside -180..180", lon)
	}
	return nil
}

// checkTime checks that a time can be written as CAP's four-digit years.
func checkTime(path string, t time.Time, required bool) error {
	if t.IsZero() {
		if required {
			return errorf(path, "required")
		}
		return nil
	}
	// Go writes other years with more digits or a sign, which no reader
	// takes; the schema's xs:dateTime has no year 0000.
	if s := formatTime(t); strings.HasPrefix(s, "0000") || !capTime.MatchString(s) {
		return errorf(path, "%s is outside the years 0001 to 9999", t.Format(time.RFC3339))
	}
	return nil
}

// areaJSON is an Area's JSON form: polygons as GeoJSON MultiPolygon
// coordinates ([longitude, latitude] positions).
type areaJSON struct {
	Desc     string           `json:"desc"`
	Polygons [][][][2]float64 `json:"polygons,omitempty"`
	Circles  []Circle         `json:"circles,omitempty"`
	Geocodes []Value          `json:"geocodes,omitempty"`
}

// MarshalJSON writes the area's stable JSON form.
func (a Area) MarshalJSON() ([]byte, error) {
	j := areaJSON{Desc: a.Desc, Circles: a.Circles, Geocodes: a.Geocodes}
	for _, p := range a.Polygons {
		poly := make([][][2]float64, len(p))
		for i, r := range p {
			poly[i] = make([][2]float64, len(r))
			for k, pt := range r {
				poly[i][k] = [2]float64{pt.Lon, pt.Lat}
			}
		}
		j.Polygons = append(j.Polygons, poly)
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (a *Area) UnmarshalJSON(b []byte) error {
	var j areaJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*a = Area{Desc: j.Desc, Circles: j.Circles, Geocodes: j.Geocodes}
	for _, p := range j.Polygons {
		poly := make(geojson.Polygon, len(p))
		for i, r := range p {
			poly[i] = make(geojson.Ring, len(r))
			for k, pt := range r {
				poly[i][k] = geojson.Point{Lon: pt[0], Lat: pt[1]}
			}
		}
		a.Polygons = append(a.Polygons, poly)
	}
	return nil
}
