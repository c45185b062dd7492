package secagg

import (
	"fmt"
	"math"
)

// Updates travel as fixed-point numbers modulo 2^64: a value x is round(x·scale) in two's
// complement. Masks are uniform modulo 2^64, so a masked value says nothing of x; the sum of
// the unmasked values is exact as long as it stays within ±2^63.

// Scale is the fixed-point scale for sums of up to n values each at most bound in absolute
// value: the largest power of two that keeps n·bound·scale within 2^61, leaving room for
// rounding.
func Scale(n int, bound float64) (float64, error) {
	if n < 1 || !(bound > 0) || math.IsInf(bound, 0) {
		return 0, fmt.Errorf("secagg: fixed-point scale for %d values bounded by %g", n, bound)
	}
	e := math.Floor(61 - math.Log2(float64(n)*bound))
	if e < 1 {
		return 0, fmt.Errorf("secagg: %d values bounded by %g do not fit 64-bit fixed point", n, bound)
	}
	return math.Exp2(min(e, 52)), nil
}

// Quantize encodes x at scale, refusing values beyond bound (they could overflow the sum).
func Quantize(x []float64, scale, bound float64) ([]uint64, error) {
	out := make([]uint64, len(x))
	for i, v := range x {
		if !(math.Abs(v) <= bound) {
			return nil, fmt.Errorf("secagg: value %d is %g, outside ±%g", i, v, bound)
		}
		out[i] = uint64(int64(math.Round(v * scale)))
	}
	return out, nil
}

// Dequantize decodes a sum at scale.
func Dequantize(sum []uint64, scale float64) []float64 {
	out := make([]float64, len(sum))
	for i, v := range sum {
		out[i] = float64(int64(v)) / scale
	}
	return out
}
