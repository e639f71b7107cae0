package segments

import (
	"math"
	"math/big"
)

// orientExact is orient's sign computed exactly, for the cases where the
// floating-point filter cannot tell: nearly collinear points, which a
// publisher can send by the thousand. Each difference of coordinates is
// exactly a sum of two floats, each product of two floats exactly a sum of
// two (by FMA), and the sign of the sum of the sixteen terms is that of
// their exact expansion (Shewchuk, "Adaptive precision floating-point
// arithmetic and fast robust geometric predicates", 1997). Products so
// small that they could underflow go to rational arithmetic instead; the
// GeoJSON reader reads coordinates that small as 0, so a publisher's
// geometry never does.
func orientExact(a, b, c Point) int {
	var f [8]float64
	f[0], f[1] = twoDiff(b.Lon, a.Lon)
	f[2], f[3] = twoDiff(c.Lat, a.Lat)
	f[4], f[5] = twoDiff(b.Lat, a.Lat)
	f[6], f[7] = twoDiff(c.Lon, a.Lon)
	for _, x := range f {
		if x != 0 && math.Abs(x) < 0x1p-480 {
			return orientRat(a, b, c)
		}
	}
	var buf [34]float64
	e := buf[:0]
	// (bx-ax)(cy-ay) - (by-ay)(cx-ax), the differences as hi+lo.
	for _, t := range [8][3]int{{0, 2, 1}, {0, 3, 1}, {1, 2, 1}, {1, 3, 1}, {4, 6, -1}, {4, 7, -1}, {5, 6, -1}, {5, 7, -1}} {
		u, v := f[t[0]], f[t[1]]*float64(t[2])
		p := u * v
		e = grow(grow(e, math.FMA(u, v, -p)), p)
	}
	if len(e) == 0 {
		return 0
	}
	return sign(e[len(e)-1])
}

// twoDiff is a-b exactly, as x + y with x the rounded difference.
func twoDiff(a, b float64) (x, y float64) {
	x = a - b
	bv := a - x
	av := x + bv
	return x, (a - av) + (bv - b)
}

// grow adds f to e, a nonoverlapping expansion in increasing magnitude
// without zeros, in place (e's array has room for one more).
func grow(e []float64, f float64) []float64 {
	q := f
	out := e[:0]
	for _, x := range e {
		s := q + x
		bv := s - q
		h := (q - (s - bv)) + (x - bv)
		q = s
		if h != 0 {
			out = append(out, h)
		}
	}
	if q != 0 {
		out = append(out, q)
	}
	return out
}

// orientRat is orient's sign in rational arithmetic.
func orientRat(a, b, c Point) int {
	rat := func(f float64) *big.Rat { return new(big.Rat).SetFloat64(f) }
	bx := new(big.Rat).Sub(rat(b.Lon), rat(a.Lon))
	cy := new(big.Rat).Sub(rat(c.Lat), rat(a.Lat))
	by := new(big.Rat).Sub(rat(b.Lat), rat(a.Lat))
	cx := new(big.Rat).Sub(rat(c.Lon), rat(a.Lon))
	return new(big.Rat).Mul(bx, cy).Cmp(new(big.Rat).Mul(by, cx))
}
