package safetensors

import (
	"math"
	"math/rand/v2"
	"testing"
)

var (
	posInf = float32(math.Inf(1))
	negInf = float32(math.Inf(-1))
	nan32  = float32(math.NaN())
)

func TestFloat16KnownValues(t *testing.T) {
	tests := []struct {
		name string
		f    float32
		bits uint16
		back float32 // Float16ToFloat32(bits); equal to f when exact
	}{
		{"zero", 0, 0x0000, 0},
		{"one", 1, 0x3c00, 1},
		{"minus two", -2, 0xc000, -2},
		{"half", 0.5, 0x3800, 0.5},
		{"max finite", 65504, 0x7bff, 65504},
		{"smallest normal", 1.0 / (1 << 14), 0x0400, 1.0 / (1 << 14)},
		{"smallest subnormal", 1.0 / (1 << 24), 0x0001, 1.0 / (1 << 24)},
		{"largest subnormal", 1023.0 / (1 << 24), 0x03ff, 1023.0 / (1 << 24)},
		{"+inf", posInf, 0x7c00, posInf},
		{"-inf", negInf, 0xfc00, negInf},
		// 0.333 = 1.332 × 2^-2; mantissa 0.332×1024 = 339.968 rounds up to 340.
		{"0.333 rounds up", 0.333, 0x3554, 0.3330078125},
		{"1/3", 1.0 / 3, 0x3555, 0.333251953125},
		{"-0.1", -0.1, 0xae66, -0.0999755859375},
		// Ties go to even: 1 + 2^-11 is halfway between 0x3c00 and 0x3c01.
		{"tie to even down", 1 + 1.0/(1<<11), 0x3c00, 1},
		{"tie to even up", 1 + 3.0/(1<<11), 0x3c02, 1 + 2.0/(1<<10)},
		{"above tie", 1 + 1.0/(1<<11) + 1.0/(1<<20), 0x3c01, 1 + 1.0/(1<<10)},
		{"rounds to max", 65519, 0x7bff, 65504},
		{"tie rounds to inf", 65520, 0x7c00, posInf},
		{"overflow", 1e6, 0x7c00, posInf},
		{"negative overflow", -1e6, 0xfc00, negInf},
		{"half smallest subnormal ties to zero", 1.0 / (1 << 25), 0x0000, 0},
		{"just above half smallest subnormal", 1.0/(1<<25) + 1.0/(1<<40), 0x0001, 1.0 / (1 << 24)},
		{"1.5 subnormals ties to 2", 1.5 / (1 << 24), 0x0002, 2.0 / (1 << 24)},
		{"subnormal rounds to smallest normal", 1023.75 / (1 << 24), 0x0400, 1.0 / (1 << 14)},
		{"float32 subnormal underflows", math.Float32frombits(1), 0x0000, 0},
		{"tiny negative keeps sign", -1e-30, 0x8000, float32(math.Copysign(0, -1))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Float32ToFloat16(tc.f); got != tc.bits {
				t.Errorf("Float32ToFloat16(%g) = %#04x, want %#04x", tc.f, got, tc.bits)
			}
			if got := Float16ToFloat32(tc.bits); math.Float32bits(got) != math.Float32bits(tc.back) {
				t.Errorf("Float16ToFloat32(%#04x) = %g, want %g", tc.bits, got, tc.back)
			}
		})
	}
}

func TestFloat16NaN(t *testing.T) {
	for _, h := range []uint16{0x7e00, 0x7c01, 0xfe00, 0x7fff} {
		if f := Float16ToFloat32(h); !math.IsNaN(float64(f)) {
			t.Errorf("Float16ToFloat32(%#04x) = %g, want NaN", h, f)
		}
	}
	for _, f := range []float32{nan32, math.Float32frombits(0x7f800001), math.Float32frombits(0xffc00000)} {
		h := Float32ToFloat16(f)
		if h&0x7c00 != 0x7c00 || h&0x03ff == 0 {
			t.Errorf("Float32ToFloat16(NaN %#08x) = %#04x, not a NaN", math.Float32bits(f), h)
		}
		if h&0x0200 == 0 {
			t.Errorf("Float32ToFloat16(NaN %#08x) = %#04x, not a quiet NaN", math.Float32bits(f), h)
		}
		if h&0x8000 != uint16(math.Float32bits(f)>>16)&0x8000 {
			t.Errorf("Float32ToFloat16(NaN %#08x) = %#04x lost the sign", math.Float32bits(f), h)
		}
	}
}

func TestBFloat16KnownValues(t *testing.T) {
	tests := []struct {
		name string
		f    float32
		bits uint16
		back float32
	}{
		{"zero", 0, 0x0000, 0},
		{"one", 1, 0x3f80, 1},
		{"minus two", -2, 0xc000, -2},
		{"65504 rounds to 65536", 65504, 0x4780, 65536},
		{"max finite", math.Float32frombits(0x7f7f0000), 0x7f7f, math.Float32frombits(0x7f7f0000)},
		{"float32 max rounds to inf", math.MaxFloat32, 0x7f80, posInf},
		{"smallest subnormal", math.Float32frombits(0x00010000), 0x0001, math.Float32frombits(0x00010000)},
		{"smallest normal", math.Float32frombits(0x00800000), 0x0080, math.Float32frombits(0x00800000)},
		{"+inf", posInf, 0x7f80, posInf},
		{"-inf", negInf, 0xff80, negInf},
		// 0.333 = 0x3eaa7efa: low half 0x7efa < 0x8000, truncates.
		{"0.333 rounds down", 0.333, 0x3eaa, math.Float32frombits(0x3eaa0000)},
		// 1/3 = 0x3eaaaaab: low half 0xaaab > 0x8000, rounds up.
		{"1/3 rounds up", 1.0 / 3, 0x3eab, math.Float32frombits(0x3eab0000)},
		{"tie to even down", math.Float32frombits(0x3f808000), 0x3f80, 1},
		{"tie to even up", math.Float32frombits(0x3f818000), 0x3f82, math.Float32frombits(0x3f820000)},
		{"above tie", math.Float32frombits(0x3f808001), 0x3f81, math.Float32frombits(0x3f810000)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Float32ToBFloat16(tc.f); got != tc.bits {
				t.Errorf("Float32ToBFloat16(%g) = %#04x, want %#04x", tc.f, got, tc.bits)
			}
			if got := BFloat16ToFloat32(tc.bits); math.Float32bits(got) != math.Float32bits(tc.back) {
				t.Errorf("BFloat16ToFloat32(%#04x) = %g, want %g", tc.bits, got, tc.back)
			}
		})
	}
}

func TestBFloat16NaN(t *testing.T) {
	if f := BFloat16ToFloat32(0x7fc0); !math.IsNaN(float64(f)) {
		t.Errorf("BFloat16ToFloat32(0x7fc0) = %g, want NaN", f)
	}
	// 0x7f800001 is a NaN whose top 16 bits alone would read as +Inf.
	for _, f := range []float32{nan32, math.Float32frombits(0x7f800001), math.Float32frombits(0xff800001), math.Float32frombits(0x7fffffff)} {
		h := Float32ToBFloat16(f)
		if !math.IsNaN(float64(BFloat16ToFloat32(h))) || h&0x0040 == 0 {
			t.Errorf("Float32ToBFloat16(NaN %#08x) = %#04x, not a quiet NaN", math.Float32bits(f), h)
		}
	}
}

// Every 16-bit pattern must survive widening and narrowing unchanged (NaNs
// may only gain the quiet bit).
func TestHalfRoundTripExhaustive(t *testing.T) {
	for i := range 1 << 16 {
		h := uint16(i)
		isNaN16 := h&0x7c00 == 0x7c00 && h&0x03ff != 0
		if got := Float32ToFloat16(Float16ToFloat32(h)); got != h && !(isNaN16 && got == h|0x0200) {
			t.Fatalf("F16 %#04x -> %g -> %#04x", h, Float16ToFloat32(h), got)
		}
		isNaNbf := h&0x7f80 == 0x7f80 && h&0x007f != 0
		if got := Float32ToBFloat16(BFloat16ToFloat32(h)); got != h && !(isNaNbf && got == h|0x0040) {
			t.Fatalf("BF16 %#04x -> %g -> %#04x", h, BFloat16ToFloat32(h), got)
		}
	}
}

// Float16ToFloat32 must agree with a direct evaluation of the binary16
// definition: (-1)^s × 2^(e-15) × 1.m, or 2^-14 × 0.m for subnormals.
func TestFloat16ToFloat32Definition(t *testing.T) {
	for i := range 1 << 16 {
		h := uint16(i)
		s, e, m := h>>15, int(h>>10)&0x1f, float64(h&0x3ff)
		if e == 0x1f {
			continue
		}
		var want float64
		if e == 0 {
			want = math.Ldexp(m/1024, -14)
		} else {
			want = math.Ldexp(1+m/1024, e-15)
		}
		if s == 1 {
			want = -want
		}
		if got := Float16ToFloat32(h); float64(got) != want || math.Signbit(float64(got)) != (s == 1) {
			t.Fatalf("Float16ToFloat32(%#04x) = %g, want %g", h, got, want)
		}
	}
}

// checkNearestEven verifies that narrow(f) is the correctly rounded result:
// no representable neighbour is closer, and exact ties pick an even pattern.
func checkNearestEven(t *testing.T, kind string, f float32, h uint16, widen func(uint16) float32, maxFinite uint16) {
	t.Helper()
	x := float64(f)
	got := float64(widen(h))
	if math.IsInf(got, 0) {
		// Must be at least halfway past the largest finite value.
		mx := float64(widen(maxFinite))
		next := mx + (mx - float64(widen(maxFinite-1)))
		if math.Abs(x) < (mx+next)/2 {
			t.Fatalf("%s(%g) overflowed to %g", kind, f, got)
		}
		return
	}
	mag := h & 0x7fff
	for _, nb := range []uint16{mag - 1, mag + 1} {
		if mag == 0 && nb == 0xffff || nb > maxFinite {
			continue
		}
		alt := float64(widen(nb | h&0x8000))
		d, da := math.Abs(x-got), math.Abs(x-alt)
		if da < d || (da == d && h&1 == 1) {
			t.Fatalf("%s(%g) = %#04x (%g), but %#04x (%g) is closer or the even tie", kind, f, h, got, nb|h&0x8000, alt)
		}
	}
}

func TestNarrowingIsNearestEven(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 300000; i++ {
		var f float32
		switch i % 4 {
		case 0: // any bit pattern
			f = math.Float32frombits(rng.Uint32())
		case 1: // binary16 range, including subnormals
			f = math.Float32frombits(rng.Uint32N(0x47800000-0x33000000) + 0x33000000)
		case 2: // binary16 exact ties and near-ties
			f = math.Float32frombits(rng.Uint32()&^0x1fff | 0x1000 + rng.Uint32N(3) - 1)
		default: // bfloat16 exact ties and near-ties
			f = math.Float32frombits(rng.Uint32()&^0xffff | 0x8000 + rng.Uint32N(3) - 1)
		}
		if math.IsNaN(float64(f)) {
			continue
		}
		checkNearestEven(t, "Float32ToFloat16", f, Float32ToFloat16(f), Float16ToFloat32, 0x7bff)
		checkNearestEven(t, "Float32ToBFloat16", f, Float32ToBFloat16(f), BFloat16ToFloat32, 0x7f7f)
	}
}
