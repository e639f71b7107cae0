// Package cap reads alerts in the OASIS Common Alerting Protocol 1.2, as
// public warning systems publish them (met offices, civil protection), so
// that they can become crier's emergency posts.
//
// It is strict where a mistake would misdirect an alert (unknown status or
// message type, unparsable times, coordinates out of range) and lenient where
// real feeds commonly break the schema without ambiguity: elements out of
// order, empty optional elements, empty or degenerate polygons (left out
// with a warning), unclosed rings (closed, with a warning), Latin-1
// encodings. Errors and warnings name the element path, e.g.
// "alert.info[0].area[1].polygon[0]".
package cap

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/text/encoding/charmap"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/geojson"
)

// Namespace is CAP 1.2's XML namespace.
const Namespace = "urn:oasis:names:tc:emergency:cap:1.2"

// MaxSize is the largest alert Parse reads. Real alerts with dozens of
// detailed polygons stay well below it.
const MaxSize = 4 << 20

// Alert is a CAP alert message. Its JSON form (the field names below, times
// in RFC 3339, polygons as GeoJSON MultiPolygon coordinates) is stable:
// crier stores alerts in it and writes them back as CAP with Marshal.
type Alert struct {
	Identifier  string      `json:"identifier"`
	Sender      string      `json:"sender"`
	Sent        time.Time   `json:"sent"`
	Status      string      `json:"status"`   // Actual, Exercise, System, Test, Draft
	MsgType     string      `json:"msg_type"` // Alert, Update, Cancel, Ack, Error
	Scope       string      `json:"scope"`    // Public, Restricted, Private
	Source      string      `json:"source,omitempty"`
	Restriction string      `json:"restriction,omitempty"`
	Addresses   string      `json:"addresses,omitempty"`
	Codes       []string    `json:"codes,omitempty"`
	Note        string      `json:"note,omitempty"`
	References  []Reference `json:"references,omitempty"` // earlier alerts this one updates or cancels
	Incidents   string      `json:"incidents,omitempty"`
	Infos       []Info      `json:"infos,omitempty"`
	// Warnings say what was left out or mended to read the alert: an
	// empty polygon, a ring that was not closed.
	Warnings []string `json:"warnings,omitempty"`
}

// Reference names an earlier alert: CAP identifies an alert by its sender,
// identifier and sent time.
type Reference struct {
	Sender     string    `json:"sender"`
	Identifier string    `json:"identifier"`
	Sent       time.Time `json:"sent"`
}

// Info is one block of an alert's information, in one language.
type Info struct {
	Language      string    `json:"language"` // RFC 3066; "en-US" when absent, as CAP says
	Categories    []string  `json:"categories"`
	Event         string    `json:"event"`
	ResponseTypes []string  `json:"response_types,omitempty"`
	Urgency       string    `json:"urgency"`   // Immediate, Expected, Future, Past, Unknown
	Severity      string    `json:"severity"`  // Extreme, Severe, Moderate, Minor, Unknown
	Certainty     string    `json:"certainty"` // Observed, Likely, Possible, Unlikely, Unknown
	Audience      string    `json:"audience,omitempty"`
	EventCodes    []Value   `json:"event_codes,omitempty"`
	Effective     time.Time `json:"effective,omitzero"` // zero when absent
	Onset         time.Time `json:"onset,omitzero"`
	Expires       time.Time `json:"expires,omitzero"`
	SenderName    string    `json:"sender_name,omitempty"`
	Headline      string    `json:"headline,omitempty"`
	Description   string    `json:"description,omitempty"`
	Instruction   string    `json:"instruction,omitempty"`
	Web           string    `json:"web,omitempty"`
	Contact       string    `json:"contact,omitempty"`
	Parameters    []Value   `json:"parameters,omitempty"`
	Areas         []Area    `json:"areas,omitempty"`
}

// Value is a CAP name/value pair (eventCode, parameter, geocode).
type Value struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Area is where an info block applies. Its JSON form is written by
// MarshalJSON (write.go).
type Area struct {
	Desc string
	// Polygons are the area's polygons in GeoJSON order (longitude,
	// latitude), one closed ring each.
	Polygons geojson.MultiPolygon
	Circles  []Circle
	Geocodes []Value
}

// Circle is a point and a radius.
type Circle struct {
	Lat     float64 `json:"lat"`
	Lon     float64 `json:"lon"`
	RadiusM float64 `json:"radius_m"`
}

// errorf is a rejection naming the element path of the bad value: a
// *crier.Error, like every reader's.
func errorf(path, format string, args ...any) *crier.Error {
	return crier.Invalid(path, format, args...)
}

// The XML as it comes; Parse checks it and builds an Alert.
type xmlAlert struct {
	XMLName     xml.Name
	Identifier  string    `xml:"identifier"`
	Sender      string    `xml:"sender"`
	Sent        string    `xml:"sent"`
	Status      string    `xml:"status"`
	MsgType     string    `xml:"msgType"`
	Source      string    `xml:"source"`
	Scope       string    `xml:"scope"`
	Restriction string    `xml:"restriction"`
	Addresses   string    `xml:"addresses"`
	Codes       []string  `xml:"code"`
	Note        string    `xml:"note"`
	References  string    `xml:"references"`
	Incidents   string    `xml:"incidents"`
	Infos       []xmlInfo `xml:"info"`
}

type xmlInfo struct {
	Language      string     `xml:"language"`
	Categories    []string   `xml:"category"`
	Event         string     `xml:"event"`
	ResponseTypes []string   `xml:"responseType"`
	Urgency       string     `xml:"urgency"`
	Severity      string     `xml:"severity"`
	Certainty     string     `xml:"certainty"`
	Audience      string     `xml:"audience"`
	EventCodes    []xmlValue `xml:"eventCode"`
	Effective     string     `xml:"effective"`
	Onset         string     `xml:"onset"`
	Expires       string     `xml:"expires"`
	SenderName    string     `xml:"senderName"`
	Headline      string     `xml:"headline"`
	Description   string     `xml:"description"`
	Instruction   string     `xml:"instruction"`
	Web           string     `xml:"web"`
	Contact       string     `xml:"contact"`
	Parameters    []xmlValue `xml:"parameter"`
	Areas         []xmlArea  `xml:"area"`
}

type xmlValue struct {
	Name  string `xml:"valueName"`
	Value string `xml:"value"`
}

type xmlArea struct {
	Desc     string     `xml:"areaDesc"`
	Polygons []string   `xml:"polygon"`
	Circles  []string   `xml:"circle"`
	Geocodes []xmlValue `xml:"geocode"`
}

var (
	statuses   = []string{"Actual", "Exercise", "System", "Test", "Draft"}
	msgTypes   = []string{"Alert", "Update", "Cancel", "Ack", "Error"}
	scopes     = []string{"Public", "Restricted", "Private"}
	categories = []string{"Geo", "Met", "Safety", "Security", "Rescue", "Fire", "Health", "Env", "Transport", "Infra",
		"CBRNE", "Other"}
	responseTypes = []string{"Shelter", "Evacuate", "Prepare", "Execute", "Avoid", "Monitor", "Assess", "AllClear", "None"}
	urgencies     = []string{"Immediate", "Expected", "Future", "Past", "Unknown"}
	severities    = []string{"Extreme", "Severe", "Moderate", "Minor", "Unknown"}
	certainties   = []string{"Observed", "Likely", "Possible", "Unlikely", "Unknown"}
)

// Parse reads one CAP 1.2 alert.
func Parse(data []byte) (*Alert, error) {
	if len(data) > MaxSize {
		return nil, errorf("alert", "%d bytes, more than the %d an alert may have", len(data), MaxSize)
	}
	dec := xml.NewDecoder(bytes.NewReader(data))
	dec.CharsetReader = charsetReader
	var x xmlAlert
	if err := dec.Decode(&x); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errorf("alert", "empty document")
		}
		return nil, errorf("alert", "not well-formed XML: %s", strings.TrimPrefix(err.Error(), "XML syntax error "))
	}
	if x.XMLName.Local != "alert" {
		return nil, errorf(x.XMLName.Local, "the root element must be a CAP alert")
	}
	if x.XMLName.Space != Namespace {
		return nil, errorf("alert", "namespace %q; crier reads CAP 1.2 (%s)", x.XMLName.Space, Namespace)
	}
	return x.check()
}

// charsetReader decodes the encodings real feeds declare besides UTF-8.
func charsetReader(label string, in io.Reader) (io.Reader, error) {
	switch strings.ToLower(label) {
	case "iso-8859-1", "iso8859-1", "latin1", "latin-1", "l1":
		return charmap.ISO8859_1.NewDecoder().Reader(in), nil
	case "windows-1252", "cp1252":
		return charmap.Windows1252.NewDecoder().Reader(in), nil
	case "us-ascii", "ascii":
		return in, nil
	}
	return nil, fmt.Errorf("encoding %q is not supported (UTF-8, ISO-8859-1 or windows-1252)", label)
}

func (x *xmlAlert) check() (*Alert, error) {
	a := &Alert{
		Identifier: strings.TrimSpace(x.Identifier), Sender: strings.TrimSpace(x.Sender),
		Status: strings.TrimSpace(x.Status), MsgType: strings.TrimSpace(x.MsgType), Scope: strings.TrimSpace(x.Scope),
		Source: strings.TrimSpace(x.Source), Restriction: strings.TrimSpace(x.Restriction),
		Addresses: strings.TrimSpace(x.Addresses), Note: strings.TrimSpace(x.Note),
		Incidents: strings.TrimSpace(x.Incidents),
	}
	for _, f := range []struct{ name, v string }{{"identifier", a.Identifier}, {"sender", a.Sender}} {
		if err := checkID("alert."+f.name, f.v); err != nil {
			return nil, err
		}
	}
	var err error
	if a.Sent, err = parseTime("alert.sent", x.Sent, true); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		name, v string
		in      []string
	}{{"status", a.Status, statuses}, {"msgType", a.MsgType, msgTypes}, {"scope", a.Scope, scopes}} {
		if err := oneOf("alert."+f.name, f.v, f.in); err != nil {
			return nil, err
		}
	}
	if a.Scope == "Restricted" && a.Restriction == "" {
		return nil, errorf("alert.restriction", "required when the scope is Restricted")
	}
	if a.Scope == "Private" && a.Addresses == "" {
		return nil, errorf("alert.addresses", "required when the scope is Private")
	}
	for _, c := range x.Codes {
		if c = strings.TrimSpace(c); c != "" {
			a.Codes = append(a.Codes, c)
		}
	}
	if a.References, err = parseReferences("alert.references", x.References); err != nil {
		return nil, err
	}
	for i := range x.Infos {
		info, warnings, err := x.Infos[i].check(fmt.Sprintf("alert.info[%d]", i))
		if err != nil {
			return nil, err
		}
		a.Infos = append(a.Infos, info)
		a.Warnings = append(a.Warnings, warnings...)
	}
	return a, nil
}

// checkID checks an identifier or sender: present, and free of the
// characters CAP restricts in them (references list them separated by
// commas and spaces).
func checkID(path, v string) error {
	if v == "" {
		return errorf(path, "required")
	}
	if i := strings.IndexAny(v, " ,<&\t\r\n"); i >= 0 {
		return errorf(path, "must not contain spaces, commas, < or & (found %q)", v[i])
	}
	return nil
}

func oneOf(path, v string, allowed []string) error {
	if v == "" {
		return errorf(path, "required; one of %s", strings.Join(allowed, ", "))
	}
	if !slices.Contains(allowed, v) {
		return errorf(path, "%q is not one of %s", v, strings.Join(allowed, ", "))
	}
	return nil
}

// parseTime reads a CAP dateTime: RFC 3339 with an explicit offset
// ("-00:00" means UTC; "Z", which CAP forbids but feeds use, is taken too).
func parseTime(path, v string, required bool) (time.Time, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		if required {
			return time.Time{}, errorf(path, "required")
		}
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, errorf(path, "%q is not a date and time with an offset, like 2026-11-27T14:05:00+01:00", v)
	}
	return t, nil
}

// parseReferences reads "sender,identifier,sent" triples separated by
// whitespace.
func parseReferences(path, v string) ([]Reference, error) {
	var refs []Reference
	for i, f := range strings.Fields(v) {
		p := fmt.Sprintf("%s[%d]", path, i)
		parts := strings.Split(f, ",")
		if len(parts) != 3 {
			return nil, errorf(p, "%q is not sender,identifier,sent", f)
		}
		sent, err := parseTime(p, parts[2], true)
		if err != nil {
			return nil, err
		}
		if parts[0] == "" || parts[1] == "" {
			return nil, errorf(p, "%q lacks its sender or identifier", f)
		}
		refs = append(refs, Reference{Sender: parts[0], Identifier: parts[1], Sent: sent})
	}
	return refs, nil
}

func (x *xmlInfo) check(path string) (Info, []string, error) {
	in := Info{
		Language: strings.TrimSpace(x.Language), Event: strings.TrimSpace(x.Event),
		Urgency: strings.TrimSpace(x.Urgency), Severity: strings.TrimSpace(x.Severity),
		Certainty: strings.TrimSpace(x.Certainty), Audience: strings.TrimSpace(x.Audience),
		SenderName: strings.TrimSpace(x.SenderName), Headline: strings.TrimSpace(x.Headline),
		Description: strings.TrimSpace(x.Description), Instruction: strings.TrimSpace(x.Instruction),
		Web: strings.TrimSpace(x.Web), Contact: strings.TrimSpace(x.Contact),
		EventCodes: values(x.EventCodes), Parameters: values(x.Parameters),
	}
	if in.Language == "" {
		in.Language = "en-US"
	}
	if len(x.Categories) == 0 {
		return in, nil, errorf(path+".category", "required; one or more of %s", strings.Join(categories, ", "))
	}
	for i, c := range x.Categories {
		c = strings.TrimSpace(c)
		if err := oneOf(fmt.Sprintf("%s.category[%d]", path, i), c, categories); err != nil {
			return in, nil, err
		}
		in.Categories = append(in.Categories, c)
	}
	if in.Event == "" {
		return in, nil, errorf(path+".event", "required")
	}
	for i, r := range x.ResponseTypes {
		if r = strings.TrimSpace(r); r == "" {
			continue
		}
		if err := oneOf(fmt.Sprintf("%s.responseType[%d]", path, i), r, responseTypes); err != nil {
			return in, nil, err
		}
		in.ResponseTypes = append(in.ResponseTypes, r)
	}
	// CAP 1.0's "Very Likely" is read as 1.2's "Likely", as the standard
	// says to.
	if in.Certainty == "Very Likely" {
		in.Certainty = "Likely"
	}
	for _, f := range []struct {
		name, v string
		in      []string
	}{{"urgency", in.Urgency, urgencies}, {"severity", in.Severity, severities}, {"certainty", in.Certainty, certainties}} {
		if err := oneOf(path+"."+f.name, f.v, f.in); err != nil {
			return in, nil, err
		}
	}
	var err error
	for _, f := range []struct {
		name string
		v    string
		t    *time.Time
	}{{"effective", x.Effective, &in.Effective}, {"onset", x.Onset, &in.Onset}, {"expires", x.Expires, &in.Expires}} {
		if *f.t, err = parseTime(path+"."+f.name, f.v, false); err != nil {
			return in, nil, err
		}
	}
	var warnings []string
	for i := range x.Areas {
		area, w, err := x.Areas[i].check(fmt.Sprintf("%s.area[%d]", path, i))
		if err != nil {
			return in, nil, err
		}
		in.Areas = append(in.Areas, area)
		warnings = append(warnings, w...)
	}
	return in, warnings, nil
}

func values(xs []xmlValue) []Value {
	var out []Value
	for _, x := range xs {
		v := Value{Name: strings.TrimSpace(x.Name), Value: strings.TrimSpace(x.Value)}
		if v.Name != "" || v.Value != "" {
			out = append(out, v)
		}
	}
	return out
}

func (x *xmlArea) check(path string) (Area, []string, error) {
	a := Area{Desc: strings.TrimSpace(x.Desc), Geocodes: values(x.Geocodes)}
	if a.Desc == "" {
		return a, nil, errorf(path+".areaDesc", "required")
	}
	var warnings []string
	for i, p := range x.Polygons {
		ring, warning, err := parsePolygon(fmt.Sprintf("%s.polygon[%d]", path, i), p)
		if err != nil {
			return a, nil, err
		}
		if warning != "" {
			warnings = append(warnings, warning)
		}
		if ring != nil {
			a.Polygons = append(a.Polygons, geojson.Polygon{ring})
		}
	}
	for i, c := range x.Circles {
		p := fmt.Sprintf("%s.circle[%d]", path, i)
		if strings.TrimSpace(c) == "" {
			warnings = append(warnings, p+": empty; left out")
			continue
		}
		circle, err := parseCircle(p, c)
		if err != nil {
			return a, nil, err
		}
		a.Circles = append(a.Circles, circle)
	}
	return a, warnings, nil
}

// parsePolygon reads "lat,lon lat,lon ..." into a closed GeoJSON ring. An
// empty polygon or one of fewer than three distinct points is left out,
// and a ring that does not end where it starts is closed, each with a
// warning; bad numbers are errors.
func parsePolygon(path, v string) (geojson.Ring, string, error) {
	fields := strings.Fields(v)
	if len(fields) == 0 {
		return nil, path + ": empty; left out", nil
	}
	ring := make(geojson.Ring, 0, len(fields)+1)
	for i, f := range fields {
		lat, lon, err := parsePoint(fmt.Sprintf("%s[%d]", path, i), f)
		if err != nil {
			return nil, "", err
		}
		ring = append(ring, geojson.Point{Lon: lon, Lat: lat})
	}
	distinct := map[geojson.Point]bool{}
	for _, p := range ring {
		distinct[p] = true
	}
	if len(distinct) < 3 {
		return nil, fmt.Sprintf("%s: %d distinct points do not enclose an area; left out", path, len(distinct)), nil
	}
	if ring[0] != ring[len(ring)-1] {
		return append(ring, ring[0]), path + ": the ring did not end where it began; closed", nil
	}
	return ring, "", nil
}

// parsePoint reads "lat,lon" in WGS 84.
func parsePoint(path, f string) (lat, lon float64, err error) {
	latS, lonS, ok := strings.Cut(f, ",")
	if !ok {
		return 0, 0, errorf(path, "%q is not latitude,longitude", f)
	}
	lat, err1 := strconv.ParseFloat(latS, 64)
	lon, err2 := strconv.ParseFloat(lonS, 64)
	switch {
	case err1 != nil || err2 != nil || math.IsNaN(lat) || math.IsNaN(lon):
		return 0, 0, errorf(path, "%q is not latitude,longitude in decimal degrees", f)
	case lat < -90 || lat > 90:
		return 0, 0, errorf(path, "latitude %g is outside -90..90", lat)
	case lon < -180 || lon > 180:
		return 0, 0, errorf(path, "longitude %g is outside -180..180", lon)
	}
	return lat, lon, nil
}

// maxRadiusKM bounds a circle: half the earth's circumference.
const maxRadiusKM = 20037.5

// parseCircle reads "lat,lon radius", the radius in kilometres.
func parseCircle(path, v string) (Circle, error) {
	fields := strings.Fields(v)
	if len(fields) != 2 {
		return Circle{}, errorf(path, "%q is not \"latitude,longitude radius_km\"", strings.TrimSpace(v))
	}
	lat, lon, err := parsePoint(path, fields[0])
	if err != nil {
		return Circle{}, err
	}
	r, err := strconv.ParseFloat(fields[1], 64)
	if err != nil || math.IsNaN(r) || r < 0 || r > maxRadiusKM {
		return Circle{}, errorf(path, "radius %q is not a distance in kilometres from 0 to %g", fields[1], maxRadiusKM)
	}
	return Circle{Lat: lat, Lon: lon, RadiusM: r * 1000}, nil
}
