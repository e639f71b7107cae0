package segments

import "math"

// EarthRadius is the radius in metres of the sphere near measures on: the
// WGS84 mean radius (2a+b)/3, which PostGIS uses for geography with
// use_spheroid = false.
const EarthRadius = 6371008.7714150598

type vec3 struct{ x, y, z float64 }

func toVec(p Point) vec3 {
	lat, lon := p.Lat*math.Pi/180, p.Lon*math.Pi/180
	return vec3{math.Cos(lat) * math.Cos(lon), math.Cos(lat) * math.Sin(lon), math.Sin(lat)}
}

func (a vec3) dot(b vec3) float64 { return a.x*b.x + a.y*b.y + a.z*b.z }
func (a vec3) cross(b vec3) vec3 {
	return vec3{a.y*b.z - a.z*b.y, a.z*b.x - a.x*b.z, a.x*b.y - a.y*b.x}
}
func (a vec3) scale(f float64) vec3 { return vec3{a.x * f, a.y * f, a.z * f} }
func (a vec3) sub(b vec3) vec3      { return vec3{a.x - b.x, a.y - b.y, a.z - b.z} }
func (a vec3) norm() float64        { return math.Sqrt(a.dot(a)) }

// sphereAngle is the great-circle angle between two positions, in radians,
// by the atan2 form that stays accurate for tiny and for antipodal angles.
func sphereAngle(s, e Point) float64 {
	latS, latE := s.Lat*math.Pi/180, e.Lat*math.Pi/180
	dLon := (e.Lon - s.Lon) * math.Pi / 180
	a1 := math.Cos(latE) * math.Sin(dLon)
	a2 := math.Cos(latS)*math.Sin(latE) - math.Sin(latS)*math.Cos(latE)*math.Cos(dLon)
	b := math.Sin(latS)*math.Sin(latE) + math.Cos(latS)*math.Cos(latE)*math.Cos(dLon)
	return math.Atan2(math.Sqrt(a1*a1+a2*a2), b)
}

// sphereDistance is the great-circle distance in metres.
func sphereDistance(a, b Point) float64 { return sphereAngle(a, b) * EarthRadius }

// arcAngle is the angle from p to the great-circle arc a→b (the shorter
// arc): to the foot of the perpendicular if it falls on the arc, else to the
// nearer end.
func arcAngle(p, a, b Point) float64 {
	va, vb, vp := toVec(a), toVec(b), toVec(p)
	n := va.cross(vb)
	if nn := n.norm(); nn > 0 {
		n = n.scale(1 / nn)
		h := vp.dot(n)
		foot := vp.sub(n.scale(h))
		if va.cross(foot).dot(n) >= 0 && foot.cross(vb).dot(n) >= 0 {
			return math.Atan2(math.Abs(h), foot.norm())
		}
	}
	return math.Min(sphereAngle(p, a), sphereAngle(p, b))
}

// containsOnSphere reports whether p lies inside the shape with its edges
// taken as great-circle arcs, as geography sees a polygon: an even-odd count
// of the edges that cross p's meridian north of p. Edges span less than 180
// degrees of longitude (no antimeridian crossing).
func (s *shape) containsOnSphere(p Point) bool {
	vp := toVec(p)
	inside := false
	for _, e := range s.edges {
		if (e.a.Lon > p.Lon) == (e.b.Lon > p.Lon) {
			continue
		}
		// The edge's great circle has p on its north side when p lies to
		// the left of an eastward edge.
		side := toVec(e.a).cross(toVec(e.b)).dot(vp)
		if e.b.Lon < e.a.Lon {
			side = -side
		}
		if side < 0 {
			inside = !inside
		}
	}
	return inside
}

// nearShape reports whether the shape, as geography, comes within the
// circle: ST_DWithin(geom::geography, centre::geography, radius, false).
func (s *shape) nearShape(c Circle) bool {
	centre := Point{Lon: c.Lon, Lat: c.Lat}
	limit := c.RadiusM / EarthRadius
	for _, e := range s.edges {
		if arcAngle(centre, e.a, e.b) <= limit {
			return true
		}
	}
	return s.containsOnSphere(centre)
}

// capBox is a longitude/latitude box that holds every point within the
// circle, with a margin, for the index prefilter of near.
func (c Circle) capBox() bbox {
	const margin = 1e-6 // degrees, about 0.1 m
	d := c.RadiusM / EarthRadius
	dLat := d*180/math.Pi + margin
	b := bbox{minX: -180, maxX: 180, minY: math.Max(-90, c.Lat-dLat), maxY: math.Min(90, c.Lat+dLat)}
	if c.Lat+dLat >= 90 || c.Lat-dLat <= -90 {
		return b // the cap holds a pole: every longitude
	}
	dLon := math.Asin(math.Min(1, math.Sin(d)/math.Cos(c.Lat*math.Pi/180)))*180/math.Pi + margin
	if c.Lon-dLon > -180 && c.Lon+dLon < 180 {
		b.minX, b.maxX = c.Lon-dLon, c.Lon+dLon
	}
	return b
}

// The WGS84 ellipsoid, for areas.
const (
	wgs84A = 6378137.0
	wgs84F = 1 / 298.257223563
)

// The WGS84 ellipsoid's area function: the area in square metres between
// the equator and latitude φ over one radian of longitude is
// authalicRadius2 · Σ authalicSine[k]·sin((2k+1)φ). It is a²q(φ)/2 in
// Snyder's notation (Map Projections, 3-12) as a sine series, which
// integrates along an edge in closed form; the terms fall like e^2k, so
// six are exact to double precision.
var authalicRadius2, authalicSine = authalicSeries()

func authalicSeries() (radius2 float64, sine [6]float64) {
	e2 := wgs84F * (2 - wgs84F)
	e := math.Sqrt(e2)
	q := func(s float64) float64 { return (1 - e2) * (s/(1-e2*s*s) + math.Atanh(e*s)/e) }
	qp := q(1)
	// q(sin φ) is odd and periodic: its sine coefficients by the
	// trapezoid rule, exact here to rounding.
	const n = 64
	for k := range sine {
		m := float64(2*k + 1)
		var sum float64
		for j := range n {
			phi := 2 * math.Pi * (float64(j) + 0.5) / n
			sum += q(math.Sin(phi)) / qp * math.Sin(m*phi)
		}
		sine[k] = 2 * sum / n
	}
	return wgs84A * wgs84A * qp / 2, sine
}

// ringArea is the area in square metres on the WGS84 ellipsoid of the
// region a ring encloses, its edges straight in longitude and latitude, as
// the evaluator and PostGIS's geometry take them. An edge of a few
// kilometres is that close to the geodesic geography takes, so for rings
// of that size this is ST_Area(geography) to well within 0.1 %.
//
// By Green's theorem the area is the integral of the area function along
// the boundary; along a straight edge sin((2k+1)φ) integrates to
// sin((2k+1)φm)·sinc((2k+1)Δφ/2) per unit of longitude, φm the edge's
// middle latitude, which holds as well for the shortest edges.
func ringArea(r Ring) float64 {
	const rad = math.Pi / 180
	var sum float64
	for i := 0; i+1 < len(r); i++ {
		a, b := r[i], r[i+1]
		if a.Lon == b.Lon {
			continue
		}
		mid, half := (a.Lat+b.Lat)/2*rad, (b.Lat-a.Lat)/2*rad
		var f float64
		for k, c := range authalicSine {
			m := float64(2*k + 1)
			f += c * math.Sin(m*mid) * sinc(m*half)
		}
		sum += (b.Lon - a.Lon) * rad * f
	}
	return math.Abs(sum) * authalicRadius2
}

// sinc is sin(x)/x.
func sinc(x float64) float64 {
	if math.Abs(x) < 1e-4 {
		return 1 - x*x/6
	}
	return math.Sin(x) / x
}

// polygonArea is the area of a valid polygon: its shell's less its holes'.
func polygonArea(p Polygon) float64 {
	a := ringArea(p[0])
	for _, h := range p[1:] {
		a -= ringArea(h)
	}
	return a
}
