package checkpoint

import (
	"math"
	"math/rand/v2"
	"testing"
)

// directE4M3 decodes a code from the format's definition with math.Ldexp:
// sign, 4 exponent bits with bias 7, 3 mantissa bits, subnormals at exponent
// 0, and S.1111.111 the only NaN (no infinities).
func directE4M3(b byte) float64 {
	sign := 1.0
	if b&0x80 != 0 {
		sign = -1
	}
	e, m := int(b>>3)&0xf, int(b&7)
	switch {
	case e == 15 && m == 7:
		return math.NaN()
	case e == 0:
		return sign * math.Ldexp(float64(m)/8, -6)
	}
	return sign * math.Ldexp(1+float64(m)/8, e-7)
}

func TestE4M3ToFloat32AllCodes(t *testing.T) {
	nans := 0
	for c := range 256 {
		got, want := E4M3ToFloat32(byte(c)), directE4M3(byte(c))
		if math.IsNaN(want) {
			nans++
			if !math.IsNaN(float64(got)) {
				t.Errorf("code %#02x: got %v, want NaN", c, got)
			}
			continue
		}
		if float64(got) != want || math.Signbit(float64(got)) != math.Signbit(want) {
			t.Errorf("code %#02x: got %v, want %v", c, got, want)
		}
		if math.IsInf(float64(got), 0) {
			t.Errorf("code %#02x decodes to an infinity; E4M3FN has none", c)
		}
	}
	if nans != 2 {
		t.Errorf("%d NaN codes, want 2 (0x7f and 0xff)", nans)
	}
	for _, tc := range []struct {
		code byte
		want float64
	}{
		{0x00, 0}, {0x01, 1.0 / 512}, {0x07, 7.0 / 512}, {0x08, 1.0 / 64}, {0x38, 1}, {0x7e, 448}, {0xfe, -448},
		{0x40, 2}, {0x3f, 1.875}, {0xb8, -1},
	} {
		if got := E4M3ToFloat32(tc.code); float64(got) != tc.want {
			t.Errorf("code %#02x: got %v, want %v", tc.code, got, tc.want)
		}
	}
}

// nearestE4M3 finds the nearest finite code by brute force, ties to the even code.
func nearestE4M3(f float32) byte {
	if f != f {
		return 0x7f
	}
	best, bestErr := byte(0), math.Inf(1)
	for c := range 256 {
		v := directE4M3(byte(c))
		if math.IsNaN(v) || (v == 0 && c == 0x80) {
			continue
		}
		d := math.Abs(float64(f) - v)
		if d < bestErr || (d == bestErr && c&1 == 0) {
			best, bestErr = byte(c), d
		}
	}
	if f < 0 && best == 0 {
		return 0x80
	}
	return best
}

func TestFloat32ToE4M3(t *testing.T) {
	// Every finite code round-trips.
	for c := range 256 {
		if c&0x7f == 0x7f {
			continue
		}
		if got := Float32ToE4M3(E4M3ToFloat32(byte(c))); got != byte(c) {
			t.Errorf("round trip of code %#02x gave %#02x", c, got)
		}
	}
	// Midpoints between neighbours round to the even code.
	for c := 0; c < 0x7e; c++ {
		lo, hi := float64(E4M3ToFloat32(byte(c))), float64(E4M3ToFloat32(byte(c+1)))
		mid := float32((lo + hi) / 2)
		want := byte(c)
		if c&1 == 1 {
			want = byte(c + 1)
		}
		if got := Float32ToE4M3(mid); got != want {
			t.Errorf("midpoint %v between codes %#02x and %#02x: got %#02x, want %#02x", mid, c, c+1, got, want)
		}
	}
	tests := []struct {
		name string
		in   float32
		want byte
	}{
		{"saturates above 448", 1000, 0x7e},
		{"saturates below -448", -1e30, 0xfe},
		{"infinity saturates", float32(math.Inf(1)), 0x7e},
		{"NaN", float32(math.NaN()), 0x7f},
		{"just below 464 rounds to 448", 463.9, 0x7e},
		{"tiny rounds to zero", 1e-9, 0x00},
		{"negative tiny keeps its sign", -1e-9, 0x80},
		{"smallest subnormal", 1.0 / 512, 0x01},
		{"subnormal rounding up to the smallest normal", 0.0155, 0x08},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Float32ToE4M3(tc.in); got != tc.want {
				t.Errorf("Float32ToE4M3(%v) = %#02x, want %#02x", tc.in, got, tc.want)
			}
		})
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		f := float32(rng.NormFloat64() * math.Pow(2, float64(rng.IntN(24)-14)))
		if got, want := Float32ToE4M3(f), nearestE4M3(f); got != want {
			t.Fatalf("Float32ToE4M3(%v) = %#02x, brute force nearest %#02x", f, got, want)
		}
	}
}
