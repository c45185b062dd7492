package checkpoint

import (
	"math"
)

// E4M3 (the "FN" variant used by PyTorch's float8_e4m3fn and by DeepSeek-V3
// and Kimi-K2 checkpoints) packs a value in one byte as S.EEEE.MMM with
// exponent bias 7. There are no infinities: the only special code is
// S.1111.111, which is NaN. Exponent 0 holds the subnormals m/8 · 2⁻⁶, so the
// representable magnitudes run from 2⁻⁹ to 448.

// MaxE4M3 is the largest finite E4M3FN magnitude.
const MaxE4M3 = 448

// E4M3ToFloat32 decodes one E4M3FN byte. The conversion is exact: every E4M3
// value is a float32.
func E4M3ToFloat32(b byte) float32 {
	sign := uint32(b&0x80) << 24
	exp := uint32(b>>3) & 0x0f
	mant := uint32(b & 0x07)
	switch {
	case exp == 0x0f && mant == 0x07:
		return math.Float32frombits(sign | 0x7fc00000) // quiet NaN
	case exp == 0:
		// Subnormal (or zero): mant · 2⁻⁹, exact in float32.
		return math.Float32frombits(sign | math.Float32bits(float32(mant)*(1.0/512)))
	}
	// Normal: rebias the exponent from 7 to 127 and widen the mantissa.
	return math.Float32frombits(sign | (exp+120)<<23 | mant<<20)
}

// Float32ToE4M3 encodes f as E4M3FN, rounding to nearest with ties to even.
// It saturates: finite values (and infinities) beyond ±448 become ±448, as
// quantisers that scale blocks to the E4M3 range expect. NaN becomes the NaN
// code 0x7f (sign kept).
func Float32ToE4M3(f float32) byte {
	bits := math.Float32bits(f)
	sign := byte(bits>>24) & 0x80
	abs := bits & 0x7fffffff
	if abs > 0x7f800000 {
		return sign | 0x7f
	}
	if abs < 0x3c800000 { // below 2⁻⁶, the smallest normal: subnormal range
		q := float64(math.Float32frombits(abs)) * 512 // exact: a power-of-two scale
		return sign | byte(math.RoundToEven(q))       // 8 rounds up to 0x08, the smallest normal
	}
	exp := abs>>23 - 120 // E4M3 biased exponent, ≥ 1 here
	if exp > 15 {
		return sign | 0x7e
	}
	keep := exp<<3 | (abs>>20)&0x07
	rem := abs & 0xfffff
	if rem > 0x80000 || (rem == 0x80000 && keep&1 == 1) {
		keep++ // may carry into the exponent, which is correct
	}
	if keep > 0x7e {
		keep = 0x7e // saturate rather than produce NaN
	}
	return sign | byte(keep)
}

// e4m3Table holds the decoded value of every byte; building it costs 256
// conversions, so readers build one per call rather than share mutable state.
type e4m3Table [256]float32

func newE4M3Table() *e4m3Table {
	var t e4m3Table
	for i := range t {
		t[i] = E4M3ToFloat32(byte(i))
	}
	return &t
}
