// Package areas turns a GeoJSON FeatureCollection of a tenant's districts,
// school zones or municipalities into crier's areas: a slug, a name and
// codes from the features' properties, and the geometry, checked by package
// geojson and repaired or refused by PostGIS.
package areas

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/geojson"
	"github.com/crier-push/crier/storage"
)

// MaxFeatures bounds one import.
const MaxFeatures = 10_000

// Options say which feature properties give an area its slug, name and
// codes.
type Options struct {
	SlugProperty string // default "slug"
	NameProperty string // default "name"
	// CodeProperties are properties whose values are codes of their own
	// name, besides those of the "codes" object. Nil means
	// DefaultCodeProperties; empty, none. A feature without one has no
	// such code.
	CodeProperties []string
}

// DefaultCodeProperties: Kartverket's municipality borders carry the
// kommunenummer that Norwegian warnings give as a geocode.
var DefaultCodeProperties = []string{"kommunenummer"}

// Bounds on an area's codes.
const (
	MaxCodes        = 50
	MaxCodeNameLen  = 64
	MaxCodeValueLen = 200
	codesProperty   = "codes"
)

// Parse reads a FeatureCollection into areas to import. A slug is made from
// the slug property (lowercased; æ, ø, å and other letters folded to a-z;
// anything else becomes "-"). Two features with the same slug are refused.
func Parse(raw []byte, opt Options) ([]storage.AreaInput, error) {
	if opt.SlugProperty == "" {
		opt.SlugProperty = "slug"
	}
	if opt.NameProperty == "" {
		opt.NameProperty = "name"
	}
	fs, err := geojson.ParseFeatureCollection(raw)
	if err != nil {
		return nil, err
	}
	if len(fs) > MaxFeatures {
		return nil, crier.Invalid("features", "at most %d features in one import", MaxFeatures)
	}
	seen := map[string]int{}
	out := make([]storage.AreaInput, 0, len(fs))
	for i, f := range fs {
		path := fmt.Sprintf("features[%d].properties", i)
		rawSlug, ok := property(f.Properties, opt.SlugProperty)
		if !ok {
			return nil, crier.Invalid(path+"."+opt.SlugProperty, "is missing: the slug property must be a string or number on every feature")
		}
		slug := Slugify(rawSlug)
		if slug == "" {
			return nil, crier.Invalid(path+"."+opt.SlugProperty, "%q makes no slug", rawSlug)
		}
		if j, dup := seen[slug]; dup {
			return nil, crier.Invalid(path+"."+opt.SlugProperty, "slug %q is also the slug of features[%d]", slug, j)
		}
		seen[slug] = i
		name, ok := property(f.Properties, opt.NameProperty)
		if !ok || strings.TrimSpace(name) == "" {
			name = rawSlug
		}
		codes, err := readCodes(f.Properties, path, opt.CodeProperties)
		if err != nil {
			return nil, err
		}
		out = append(out, storage.AreaInput{Slug: slug, Name: name, GeoJSON: f.Geometry.JSON(), Codes: codes})
	}
	return out, nil
}

// readCodes reads a feature's codes: each code property named in the
// options (a string or number), and each member of the "codes" object
// property, {"EMMA_ID": "NO123", "SAME": ["039001", "039002"]}: a name
// and a string, number or list of them. Names are compared without case:
// the first spelling is kept; repeats are dropped.
func readCodes(props map[string]any, path string, codeProps []string) ([]storage.Geocode, error) {
	if codeProps == nil {
		codeProps = DefaultCodeProperties
	}
	var codes []storage.Geocode
	spelling := map[string]string{}
	seen := map[storage.Geocode]bool{}
	add := func(p, name string, v any) error {
		name = strings.TrimSpace(name)
		switch {
		case name == "":
			return crier.Invalid(p, "a code needs a name")
		case len(name) > MaxCodeNameLen:
			return crier.Invalid(p, "a code's name has at most %d bytes", MaxCodeNameLen)
		case strings.ContainsFunc(name, func(r rune) bool { return r == '=' || unicode.IsControl(r) }):
			return crier.Invalid(p, "a code's name may not hold = or control characters")
		}
		value, ok := scalar(v)
		value = strings.TrimSpace(value)
		switch {
		case !ok:
			return crier.Invalid(p, "must be a string or a number, not %s", kind(v))
		case value == "":
			return crier.Invalid(p, "is empty")
		case len(value) > MaxCodeValueLen:
			return crier.Invalid(p, "a code's value has at most %d bytes", MaxCodeValueLen)
		case strings.ContainsFunc(value, unicode.IsControl):
			return crier.Invalid(p, "a code's value may not hold control characters")
		}
		lower := strings.ToLower(name)
		if first, ok := spelling[lower]; ok {
			name = first
		}
		spelling[lower] = name
		c := storage.Geocode{Name: name, Value: value}
		if seen[c] {
			return nil
		}
		if len(codes) == MaxCodes {
			return crier.Invalid(p, "an area has at most %d codes", MaxCodes)
		}
		seen[c] = true
		codes = append(codes, c)
		return nil
	}
	for _, name := range codeProps {
		if v, ok := props[name]; ok && v != nil {
			if err := add(path+"."+name, name, v); err != nil {
				return nil, err
			}
		}
	}
	raw, ok := props[codesProperty]
	if !ok || raw == nil {
		return codes, nil
	}
	obj, ok := raw.(map[string]any)
	if !ok {
		return nil, crier.Invalid(path+"."+codesProperty, `must be an object of codes, like {"EMMA_ID": "NO123"}, not %s`, kind(raw))
	}
	names := make([]string, 0, len(obj))
	for name := range obj {
		names = append(names, name)
	}
	slices.Sort(names) // errors and spellings the same on every run
	for _, name := range names {
		p := path + "." + codesProperty + "." + name
		if list, ok := obj[name].([]any); ok {
			if len(list) == 0 {
				return nil, crier.Invalid(p, "is an empty list")
			}
			for i, v := range list {
				if err := add(fmt.Sprintf("%s[%d]", p, i), name, v); err != nil {
					return nil, err
				}
			}
			continue
		}
		if err := add(p, name, obj[name]); err != nil {
			return nil, err
		}
	}
	return codes, nil
}

func scalar(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), true
	}
	return "", false
}

func kind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

func property(props map[string]any, key string) (string, bool) { return scalar(props[key]) }

var folds = strings.NewReplacer("æ", "ae", "ø", "o", "å", "a", "ä", "a", "ö", "o", "ü", "u", "ß", "ss", "é", "e", "è", "e", "á", "a", "ó", "o")

// Slugify makes an area slug of a name: "Færder" → "faerder",
// "Nord-Fron" → "nord-fron", "3907" → "3907".
func Slugify(s string) string {
	s = folds.Replace(strings.ToLower(strings.TrimSpace(s)))
	var b strings.Builder
	dash := false
	for _, r := range s {
		if r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)) {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	out := strings.TrimRight(b.String(), "-")
	if len(out) > 63 {
		out = strings.TrimRight(out[:63], "-")
	}
	return out
}

// Import parses and stores the areas in one transaction. A feature PostGIS
// cannot make a polygon of is a *crier.Error naming it.
func Import(ctx context.Context, db *storage.DB, tenantID int64, raw []byte, opt Options) ([]storage.AreaInput, error) {
	in, err := Parse(raw, opt)
	if err != nil {
		return nil, err
	}
	if err := db.ImportAreas(ctx, tenantID, in); err != nil {
		if ae, ok := err.(*storage.AreaError); ok {
			return nil, crier.Invalid(fmt.Sprintf("features[%d].geometry", ae.Index), "%s", ae.Reason)
		}
		return nil, err
	}
	return in, nil
}
