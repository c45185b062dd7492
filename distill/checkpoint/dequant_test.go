package checkpoint

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestDequantizeFP8(t *testing.T) {
	tests := []struct {
		name       string
		rows, cols int
		br, bc     int
	}{
		{"single partial block", 40, 64, 128, 128},
		{"partial last row and column blocks", 300, 130, 128, 128},
		{"exact blocks", 256, 128, 128, 128},
		{"tiny blocks", 7, 9, 2, 4},
		{"one row", 1, 200, 128, 128},
		{"rectangular blocks", 50, 70, 16, 32},
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw := make([]byte, tc.rows*tc.cols)
			for i := range raw {
				raw[i] = byte(rng.IntN(256))
			}
			nbr, nbc := (tc.rows+tc.br-1)/tc.br, (tc.cols+tc.bc-1)/tc.bc
			scale := make([]float32, nbr*nbc)
			for i := range scale {
				scale[i] = float32(math.Ldexp(rng.Float64()+0.5, -rng.IntN(12)))
			}
			dst := make([]float32, len(raw))
			const eps = 1e-3
			nz, err := DequantizeFP8(dst, raw, tc.rows, tc.cols, BlockScale{tc.br, tc.bc, scale}, eps)
			if err != nil {
				t.Fatal(err)
			}
			var wantNZ int64
			for i := range tc.rows {
				for j := range tc.cols {
					want := float32(directE4M3(raw[i*tc.cols+j])) * scale[(i/tc.br)*nbc+j/tc.bc]
					got := dst[i*tc.cols+j]
					if math.Float32bits(got) != math.Float32bits(want) && !(got != got && want != want) {
						t.Fatalf("(%d,%d) code %#02x: got %v, want %v", i, j, raw[i*tc.cols+j], got, want)
					}
					if float32(math.Abs(float64(want))) < eps {
						wantNZ++
					}
				}
			}
			if nz != wantNZ {
				t.Errorf("near-zero count %d, direct count %d", nz, wantNZ)
			}
			if got := countNearZero(dst, eps); got != wantNZ {
				t.Errorf("countNearZero = %d, want %d", got, wantNZ)
			}
		})
	}
}

func TestDequantizeFP8Errors(t *testing.T) {
	tests := []struct {
		name       string
		rows, cols int
		raw, dst   int
		bs         BlockScale
		want       string
	}{
		{"too few scales", 4, 4, 16, 16, BlockScale{2, 2, make([]float32, 3)}, "needs 2×2=4 scales"},
		{"short input", 4, 4, 15, 16, BlockScale{2, 2, make([]float32, 4)}, "15 bytes"},
		{"short output", 4, 4, 16, 8, BlockScale{2, 2, make([]float32, 4)}, "into 8 values"},
		{"zero block", 4, 4, 16, 16, BlockScale{0, 2, nil}, "must be positive"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DequantizeFP8(make([]float32, tc.dst), make([]byte, tc.raw), tc.rows, tc.cols, tc.bs, 0)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
