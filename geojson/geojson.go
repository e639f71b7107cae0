// Package geojson reads the GeoJSON crier accepts from outside: Polygon and
// MultiPolygon geometries in WGS84 longitude/latitude, alone or as the
// features of a FeatureCollection. It checks shape and ranges strictly and
// names the JSON path of anything wrong; ring validity (self-intersections)
// is left to PostGIS, which repairs what it can.
package geojson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
)

// Error is a rejection, with the JSON path of the bad value.
type Error struct {
	Path    string
	Message string
}

func (e *Error) Error() string { return e.Path + ": " + e.Message }

func errorf(path, format string, args ...any) *Error {
	return &Error{Path: path, Message: fmt.Sprintf(format, args...)}
}

// Position is a longitude/latitude pair.
type Position [2]float64

// MultiPolygon is polygons of rings of positions; a Polygon is read as a
// MultiPolygon of one.
type MultiPolygon [][][]Position

// Vertices counts the positions.
func (m MultiPolygon) Vertices() int {
	n := 0
	for _, p := range m {
		for _, r := range p {
			n += len(r)
		}
	}
	return n
}

// JSON is the geometry as a GeoJSON MultiPolygon.
func (m MultiPolygon) JSON() []byte {
	b, _ := json.Marshal(struct {
		Type        string         `json:"type"`
		Coordinates [][][]Position `json:"coordinates"`
	}{"MultiPolygon", m})
	return b
}

// Feature is one feature of a collection.
type Feature struct {
	Properties map[string]any
	Geometry   MultiPolygon
}

// wgs84 names accepted in a (deprecated) "crs" member.
var wgs84 = []string{"urn:ogc:def:crs:OGC:1.3:CRS84", "urn:ogc:def:crs:OGC::CRS84", "urn:ogc:def:crs:EPSG::4326",
	"EPSG:4326", "urn:ogc:def:crs:EPSG:4326"}

func checkCRS(raw json.RawMessage, path string) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var crs struct {
		Type       string `json:"type"`
		Properties struct {
			Name string `json:"name"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(raw, &crs); err != nil {
		return errorf(path, "must be a named CRS object")
	}
	for _, n := range wgs84 {
		if strings.EqualFold(crs.Properties.Name, n) {
			return nil
		}
	}
	return errorf(path, "coordinates must be WGS84 longitude/latitude (CRS84 or EPSG:4326), not %q; reproject the file first (e.g. ogr2ogr -t_srs EPSG:4326)", crs.Properties.Name)
}

// ParseGeometry reads a Polygon or MultiPolygon geometry object. path names
// it in errors (e.g. "segment.within").
func ParseGeometry(raw []byte, path string) (MultiPolygon, error) {
	var g struct {
		Type        string          `json:"type"`
		Coordinates json.RawMessage `json:"coordinates"`
		CRS         json.RawMessage `json:"crs"`
		BBox        json.RawMessage `json:"bbox"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&g); err != nil {
		return nil, errorf(path, "must be a GeoJSON Polygon or MultiPolygon object: %s", jsonProblem(err))
	}
	if err := checkCRS(g.CRS, path+".crs"); err != nil {
		return nil, err
	}
	if len(g.Coordinates) == 0 {
		return nil, errorf(path+".coordinates", "is required")
	}
	switch g.Type {
	case "Polygon":
		var rings [][][]float64
		if err := json.Unmarshal(g.Coordinates, &rings); err != nil {
			return nil, errorf(path+".coordinates", "a Polygon's coordinates are an array of rings of [lon, lat] positions")
		}
		p, err := polygon(rings, path+".coordinates")
		if err != nil {
			return nil, err
		}
		return MultiPolygon{p}, nil
	case "MultiPolygon":
		var polys [][][][]float64
		if err := json.Unmarshal(g.Coordinates, &polys); err != nil {
			return nil, errorf(path+".coordinates", "a MultiPolygon's coordinates are an array of polygons of rings of [lon, lat] positions")
		}
		if len(polys) == 0 {
			return nil, errorf(path+".coordinates", "must hold at least one polygon")
		}
		m := make(MultiPolygon, 0, len(polys))
		for i, rings := range polys {
			p, err := polygon(rings, fmt.Sprintf("%s.coordinates[%d]", path, i))
			if err != nil {
				return nil, err
			}
			m = append(m, p)
		}
		return m, nil
	case "":
		return nil, errorf(path+".type", "is required: Polygon or MultiPolygon")
	}
	return nil, errorf(path+".type", "must be Polygon or MultiPolygon, not %q", g.Type)
}

func polygon(rings [][][]float64, path string) ([][]Position, error) {
	if len(rings) == 0 {
		return nil, errorf(path, "a polygon needs an outer ring")
	}
	out := make([][]Position, 0, len(rings))
	for i, ring := range rings {
		rp := fmt.Sprintf("%s[%d]", path, i)
		if len(ring) < 4 {
			return nil, errorf(rp, "a ring needs at least 4 positions, has %d", len(ring))
		}
		r := make([]Position, len(ring))
		for j, pos := range ring {
			pp := fmt.Sprintf("%s[%d]", rp, j)
			if len(pos) < 2 || len(pos) > 3 {
				return nil, errorf(pp, "a position is [lon, lat] (or [lon, lat, alt])")
			}
			lon, lat := pos[0], pos[1]
			if math.IsNaN(lon) || math.IsNaN(lat) || math.IsInf(lon, 0) || math.IsInf(lat, 0) {
				return nil, errorf(pp, "must be finite numbers")
			}
			if lon < -180 || lon > 180 || lat < -90 || lat > 90 {
				return nil, errorf(pp, "[%g, %g] is not a WGS84 [lon, lat] position (lon within ±180, lat within ±90); projected coordinates such as UTM must be reprojected to EPSG:4326", lon, lat)
			}
			r[j] = Position{lon, lat}
		}
		if r[0] != r[len(r)-1] {
			return nil, errorf(rp, "a ring must end where it starts")
		}
		out = append(out, r)
	}
	return out, nil
}

// ParseFeatureCollection reads a FeatureCollection whose features are
// Polygons or MultiPolygons. Errors name the feature by index.
func ParseFeatureCollection(raw []byte) ([]Feature, error) {
	var fc struct {
		Type     string            `json:"type"`
		Features []json.RawMessage `json:"features"`
		CRS      json.RawMessage   `json:"crs"`
		Name     json.RawMessage   `json:"name"`
		BBox     json.RawMessage   `json:"bbox"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&fc); err != nil {
		return nil, errorf("$", "must be a GeoJSON FeatureCollection: %s", jsonProblem(err))
	}
	if fc.Type != "FeatureCollection" {
		return nil, errorf("type", "must be FeatureCollection, not %q", fc.Type)
	}
	if err := checkCRS(fc.CRS, "crs"); err != nil {
		return nil, err
	}
	if len(fc.Features) == 0 {
		return nil, errorf("features", "must hold at least one feature")
	}
	out := make([]Feature, 0, len(fc.Features))
	for i, rawF := range fc.Features {
		path := fmt.Sprintf("features[%d]", i)
		var f struct {
			Type       string          `json:"type"`
			ID         json.RawMessage `json:"id"`
			Properties map[string]any  `json:"properties"`
			Geometry   json.RawMessage `json:"geometry"`
			BBox       json.RawMessage `json:"bbox"`
		}
		dec := json.NewDecoder(bytes.NewReader(rawF))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&f); err != nil {
			return nil, errorf(path, "must be a GeoJSON Feature: %s", jsonProblem(err))
		}
		if f.Type != "Feature" {
			return nil, errorf(path+".type", "must be Feature, not %q", f.Type)
		}
		if len(f.Geometry) == 0 || string(f.Geometry) == "null" {
			return nil, errorf(path+".geometry", "is required")
		}
		g, err := ParseGeometry(f.Geometry, path+".geometry")
		if err != nil {
			return nil, err
		}
		out = append(out, Feature{Properties: f.Properties, Geometry: g})
	}
	return out, nil
}

func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field == "" {
			return "not a JSON object but " + te.Value
		}
		return fmt.Sprintf("%s must not be %s", te.Field, te.Value)
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}
