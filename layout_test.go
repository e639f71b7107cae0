package crier_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/areas"
	"github.com/crier-push/crier/segments"
)

const module = "github.com/crier-push/crier"

// deps lists the crier packages pkg depends on, itself included, as the go
// command reads the import graph; imports, only those it imports itself.
func deps(t *testing.T, pkg string) []string {
	t.Helper()
	return list(t, "-deps", "-f", "{{.ImportPath}}", pkg)
}

func imports(t *testing.T, pkg string) []string {
	t.Helper()
	return list(t, "-f", `{{join .Imports "\n"}}`, pkg)
}

func list(t *testing.T, args ...string) []string {
	t.Helper()
	out, err := exec.Command("go", append([]string{"list"}, args...)...).Output()
	if err != nil {
		t.Fatalf("go list %v: %v", args, err)
	}
	var mine []string
	for _, p := range strings.Fields(string(out)) {
		if p == module || strings.HasPrefix(p, module+"/") {
			mine = append(mine, p)
		}
	}
	return mine
}

// TestImportRules holds the package map of the README: handlers only
// translate, so the HTTP API imports no provider and depends on neither the
// dispatcher nor the worker (publish checks payloads with the providers'
// builders); the domain model imports nothing of crier's.
func TestImportRules(t *testing.T) {
	t.Parallel()
	for _, p := range imports(t, module+"/api") {
		if strings.HasPrefix(p, module+"/providers") {
			t.Errorf("api imports %s", p)
		}
	}
	for _, p := range deps(t, module+"/api") {
		if p == module+"/dispatcher" || p == module+"/worker" {
			t.Errorf("api depends on %s", p)
		}
	}
	if got := deps(t, module); !slices.Equal(got, []string{module}) {
		t.Errorf("the domain model imports crier packages: %v", got)
	}
}

// TestOneGeoJSONReader: only package geojson reads GeoJSON. A reader of it
// names its members: the string "coordinates", "Polygon" or "MultiPolygon"
// as a literal or a json tag outside package geojson is a second reader.
func TestOneGeoJSONReader(t *testing.T) {
	t.Parallel()
	fset := token.NewFileSet()
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != "." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") ||
			filepath.Dir(path) == "geojson" {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			v, err := strconv.Unquote(lit.Value)
			if err != nil {
				return true
			}
			for _, member := range []string{"coordinates", "Polygon", "MultiPolygon"} {
				if v == member || strings.Contains(v, `json:"`+member) {
					t.Errorf("%s: %s: GeoJSON is read outside package geojson", fset.Position(lit.Pos()), lit.Value)
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestGeometryReadAlike: the inputs on which area import and segments
// disagreed before they shared one reader are read the same way by area
// import, a segment's within, a post's target and a JSON alert's area.
func TestGeometryReadAlike(t *testing.T) {
	t.Parallel()
	ring := `[[10,59],[10.1,59],[10.1,59.1],[10,59.1],[10,59]]`
	cases := []struct {
		name     string
		geometry string
		// field and reason of the refusal, below the geometry's own path;
		// empty for accepted.
		field, reason string
	}{
		{"EPSG:4326 crs", `{"type":"Polygon","crs":{"type":"name","properties":{"name":"urn:ogc:def:crs:EPSG:4326"}},"coordinates":[` + ring + `]}`, "", ""},
		{"EPSG::4326 crs", `{"type":"Polygon","crs":{"type":"name","properties":{"name":"urn:ogc:def:crs:EPSG::4326"}},"coordinates":[` + ring + `]}`, "", ""},
		{"CRS84 in other case", `{"type":"Polygon","crs":{"type":"name","properties":{"name":"URN:OGC:DEF:CRS:OGC:1.3:CRS84"}},"coordinates":[` + ring + `]}`, "", ""},
		{"UTM crs", `{"type":"Polygon","crs":{"type":"name","properties":{"name":"EPSG:25832"}},"coordinates":[` + ring + `]}`,
			".crs", `coordinates must be WGS84 longitude/latitude (CRS84 or EPSG:4326), not "EPSG:25832"; reproject the file first (e.g. ogr2ogr -t_srs EPSG:4326)`},
		{"repeated positions", `{"type":"Polygon","coordinates":[[[10,59],[10,59],[10.1,59],[10.1,59.1],[10,59.1],[10,59]]]}`, "", ""},
		{"degenerate ring", `{"type":"Polygon","coordinates":[[[10,59],[11,59],[11,59],[10,59]]]}`, ".coordinates[0]", "must have at least 3 distinct positions"},
		{"duplicate member", `{"type":"Polygon","type":"Polygon","coordinates":[` + ring + `]}`, ".type", "duplicate key"},
		{"altitude", `{"type":"Polygon","coordinates":[[[10,59,3],[10.1,59,3],[10.1,59.1,3],[10,59.1,3],[10,59,3]]]}`, "", ""},
		{"projected", `{"type":"Polygon","coordinates":[[[570000,6550000],[571000,6550000],[571000,6551000],[570000,6550000]]]}`,
			".coordinates[0][0][0]", "longitude 570000 is outside -180..180; projected coordinates such as UTM must be reprojected to WGS84 (EPSG:4326)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			readers := []struct {
				root string
				read func() error
			}{
				{"features[0].geometry", func() error {
					_, err := areas.Parse([]byte(`{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"slug":"a"},"geometry":`+c.geometry+`}]}`), areas.Options{})
					return err
				}},
				{"segment.within", func() error {
					_, err := segments.Parse([]byte(`{"within":`+c.geometry+`}`), segments.Options{})
					return err
				}},
				{"target", func() error {
					_, err := segments.ParseTarget([]byte(c.geometry), segments.Options{})
					return err
				}},
				{"area", func() error { // a JSON alert's area, as package publish reads it
					_, err := segments.ParseTarget([]byte(c.geometry), segments.Options{Root: "area"})
					return err
				}},
			}
			for _, r := range readers {
				err := r.read()
				if c.reason == "" {
					if err != nil {
						t.Errorf("%s: refused: %v", r.root, err)
					}
					continue
				}
				want := crier.Error{Code: crier.EINVALID, Field: r.root + c.field, Message: c.reason}
				got := crier.AsError(err)
				if got == nil {
					t.Errorf("%s: error %v, want %v", r.root, err, &want)
					continue
				}
				if diff := cmp.Diff(want, *got); diff != "" {
					t.Errorf("%s (-want +got):\n%s", r.root, diff)
				}
			}
		})
	}
}
