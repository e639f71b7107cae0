// Package segments decides who a post is for. It parses and validates
// segment expressions, compiles them (and DESIGN.md's default rule) into
// one parameterized SQL condition over the devices table (alias d), and
// evaluates the same expressions in pure Go as the reference the SQL is
// tested against. It is the one place in crier that builds SQL, and it only
// ever adds placeholders: values travel as arguments.
//
// # Grammar
//
// An expression is a JSON object with exactly one key:
//
//	{"all": true}                          every device of the tenant
//	{"and": [S, ...]}  {"or": [S, ...]}    intersection, union (non-empty)
//	{"not": S}                             complement within the tenant
//	{"feed": "slug"}                       follows the feed
//	{"interest": "tag"}                    has the interest
//	{"area": "slug"}                       located in the tenant's area
//	{"within": <GeoJSON Polygon or MultiPolygon geometry>}
//	{"near": {"lat": 59.13, "lon": 10.22, "radius_m": 500}}
//	{"platform": "android" | "ios"}
//	{"locale": "nb"}                       the language tag or a more specific one
//	{"device": ["installation-id", ...]}   test devices
//
// Parsing is strict: unknown and duplicate keys, trailing data and
// non-finite numbers are errors, and every error is an *Error naming the
// JSON path of the bad node ("segment.and[1].near.radius_m: must be between
// 1 and 100000"). Organisations (Options.Organisation) may not use all or
// device, and may name only their own feeds.
//
// # Bounds
//
// At most MaxDepth (8) nodes from root to leaf, MaxLeaves (64) leaves,
// MaxVertices (10,000) positions across all within geometries, MaxDevices
// (100) installation ids per device node, radius_m from 1 to 100,000, 2 MiB
// of JSON. Slugs follow the database's slug rule; tags are at most 64 bytes
// and installation ids 128, without control characters.
//
// Within geometries are WGS84 longitude/latitude (a "crs" member may only
// name CRS84 or EPSG:4326). Rings are closed with at least 4 positions
// (consecutive duplicates are dropped), longitudes lie in [-180, 180] and
// latitudes in [-90, 90]. They must be valid, and stricter than OGC: rings
// are simple, no two rings touch or cross, holes lie inside their shell and
// polygons do not overlap. So PostGIS never sees a geometry it cannot
// relate, and the two implementations agree.
//
// # Semantics
//
// A device is located in a geometry G when one of its places lies in G,
// boundary included (ST_Intersects), or when one of its subscribed areas
// intersects G, meaning their interiors overlap (ST_Relate(area, G,
// 'T********')). An area that merely touches G does not count: neighbouring
// municipalities share their borders, and a post for Sandefjord must not
// reach residents who chose Larvik. The rule is exact, so it relies on
// neighbours' borders being identical where they meet, as in topologically
// simplified data such as Kartverket's; it needs no tolerance the Go
// evaluator could not reproduce.
//
// {"area": slug} is located in that area's geometry: its own subscribers,
// residents with a place in it, and subscribers of areas that overlap it
// (a district inside the kommune, say), not of its neighbours.
//
// {"near": c} is located in the spherical cap around c: a place whose
// great-circle distance from the centre is at most radius_m on a sphere of
// radius EarthRadius (6,371,008.7714 m, the WGS84 mean radius;
// ST_DWithin(geography, geography, r, false)), or a subscribed area whose
// geography, with edges as great-circle arcs, comes that close or holds the
// centre.
//
// A device follows, has interests and subscribes to areas by id in the
// database; slugs resolve against the tenant inside the statement, and a
// slug that does not exist matches nobody (so its not matches everybody).
package segments
