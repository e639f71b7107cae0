// Package areas turns a GeoJSON FeatureCollection of a tenant's districts,
// school zones or municipalities into crier's areas: a slug and a name from
// the features' properties, and the geometry, checked by package geojson and
// repaired or refused by PostGIS.
package areas

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"unicode"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/geojson"
	"github.com/crier-push/crier/storage"
)

// MaxFeatures bounds one import.
const MaxFeatures = 10_000

// Options say which feature properties give an area its slug and name.
type Options struct {
	SlugProperty string // default "slug"
	NameProperty string // default "name"
}

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
		out = append(out, storage.AreaInput{Slug: slug, Name: name, GeoJSON: f.Geometry.JSON()})
	}
	return out, nil
}

func property(props map[string]any, key string) (string, bool) {
	switch v := props[key].(type) {
	case string:
		return v, true
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), true
	}
	return "", false
}

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
