package storage

import (
	"context"
	"fmt"

	"github.com/crier-push/crier/segments"
)

// Geometry is a compiled place (segments.CompileGeometry): an SQL geometry
// expression with $n placeholders numbered from 2, $1 being the tenant id,
// and their values. Only the segments package builds its SQL
// (CompileGeometry).
type Geometry struct {
	SQL  string
	Args []any
}

// CompileGeometry compiles the place an expression names for AlertArea;
// ok is false when the expression bounds no place (see
// segments.CompileGeometry).
func CompileGeometry(e *segments.Expr) (g Geometry, ok bool) {
	c, ok := segments.CompileGeometry(e, segments.Params{TenantParam: 1, ArgBase: 1})
	return Geometry{SQL: c.SQL, Args: c.Args}, ok
}

// AreaFacts are what an alert's area is, held against the tenant's
// territory: the union of its areas.
type AreaFacts struct {
	// KM2 is the area's size in square kilometres, on the WGS84 spheroid,
	// with edges straight in longitude and latitude as the audience takes
	// them.
	KM2 float64
	// HasTerritory: the tenant has at least one area.
	HasTerritory bool
	// InTerritory: the area's interior overlaps the territory's. An area
	// that only touches it along a border, as a neighbouring municipality
	// does, is outside: residents who chose the neighbour are not located
	// in it (see segments' semantics).
	InTerritory bool
	// InsideKM2 is how much of KM2 lies inside the territory, when
	// measured.
	InsideKM2 float64
}

// AlertArea measures a place and holds it against the tenant's
// territory. The territory is never united as a whole: the GiST index on
// areas picks the areas whose boxes meet the place, the first whose
// interior overlaps it settles InTerritory, and with measureInside all of
// them are clipped by it and united (so areas that overlap, a district
// inside the kommune, count once) to give InsideKM2, 0 without. The check
// takes a few milliseconds even with all of Norway's kommuner as the
// territory; measuring the inside of a place that covers dozens of them
// takes tens (BenchmarkAlertArea), so only previews ask for it.
func (db *DB) AlertArea(ctx context.Context, tenantID int64, g Geometry, measureInside bool) (AreaFacts, error) {
	inside := `0::float8`
	if measureInside {
		inside = `COALESCE((SELECT ST_Area(ST_Segmentize(ST_UnaryUnion(ST_Collect(
			ST_CollectionExtract(ST_Intersection(t.geom, g.g), 3))), 0.01)::geography) FROM t, g), 0) / 1e6`
	}
	// Segmentize at 0.01° (about 1 km) before the cast to geography, whose
	// edges are geodesics: so the area is that of the lon/lat polygon the
	// audience uses, to far better than 0.1 %, for areas of any size. The
	// CTE t is scanned on demand: EXISTS reads only its first row.
	args := append([]any{tenantID}, g.Args...)
	var f AreaFacts
	err := db.pool.QueryRow(ctx, `
		WITH g AS MATERIALIZED (SELECT ST_CollectionExtract(`+g.SQL+`, 3) AS g),
		     t AS MATERIALIZED (SELECT a.geom FROM areas a, g
		                        WHERE a.tenant_id = $1::bigint AND a.geom && g.g AND ST_Relate(a.geom, g.g, 'T********'))
		SELECT (SELECT ST_Area(ST_Segmentize(g, 0.01)::geography) FROM g) / 1e6,
		       EXISTS (SELECT 1 FROM areas WHERE tenant_id = $1::bigint),
		       EXISTS (SELECT 1 FROM t),
		       `+inside, args...).Scan(&f.KM2, &f.HasTerritory, &f.InTerritory, &f.InsideKM2)
	if err != nil {
		return AreaFacts{}, fmt.Errorf("measure alert area: %w", err)
	}
	return f, nil
}
