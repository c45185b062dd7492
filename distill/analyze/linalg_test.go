package analyze

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/meshnode/meshnode/distill/checkpoint"
)

func randomMatrix(rng *rand.Rand, rows, cols int) checkpoint.Matrix {
	m := checkpoint.Matrix{Rows: rows, Cols: cols, Data: make([]float32, rows*cols)}
	for i := range m.Data {
		m.Data[i] = float32(rng.NormFloat64())
	}
	return m
}

func largestSingularValue(m checkpoint.Matrix) float64 {
	d := make([]float64, len(m.Data))
	for i, v := range m.Data {
		d[i] = float64(v)
	}
	var svd mat.SVD
	if !svd.Factorize(mat.NewDense(m.Rows, m.Cols, d), mat.SVDNone) {
		panic("SVD failed")
	}
	return svd.Values(nil)[0]
}

func TestMeasure(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	lowRank := func(rows, cols int) checkpoint.Matrix {
		// A rank-one matrix of norm ~30 plus small noise: a clear top singular value.
		u, v := randomMatrix(rng, rows, 1), randomMatrix(rng, 1, cols)
		m := randomMatrix(rng, rows, cols)
		for i := range rows {
			for j := range cols {
				m.Data[i*cols+j] = 0.05*m.Data[i*cols+j] + u.Data[i]*v.Data[j]
			}
		}
		return m
	}
	tests := []struct {
		name   string
		m      checkpoint.Matrix
		iters  int
		relTol float64 // how far below σ_max the estimate may be
	}{
		{"dominant direction, 3 iterations", lowRank(40, 64), 3, 1e-3},
		{"dominant direction, wide", lowRank(20, 300), 3, 1e-3},
		{"Gaussian (flat spectrum), 3 iterations", randomMatrix(rng, 40, 64), 3, 0.25},
		{"Gaussian, 30 iterations", randomMatrix(rng, 40, 64), 30, 0.02},
		{"one iteration", randomMatrix(rng, 64, 40), 1, 0.5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			probes := randomMatrix(rng, 3, tc.m.Cols)
			out := make([]float32, tc.m.Rows*3)
			ss, sigma := measure(tc.m, probes, out, tc.iters, rand.New(rand.NewPCG(1, 1)), make([]float32, 400), make([]float32, 400))
			if want := naiveSumSquares(tc.m.Data); math.Abs(ss-want) > 1e-4*want {
				t.Errorf("Σm² = %v, want %v", ss, want)
			}
			for i := range tc.m.Rows {
				for j := range 3 {
					var want float64
					for k := range tc.m.Cols {
						want += float64(tc.m.Data[i*tc.m.Cols+k]) * float64(probes.Data[j*tc.m.Cols+k])
					}
					if math.Abs(float64(out[i*3+j])-want) > 1e-3*(1+math.Abs(want)) {
						t.Fatalf("probe product (%d,%d) = %v, want %v", i, j, out[i*3+j], want)
					}
				}
			}
			want := largestSingularValue(tc.m)
			if sigma > want*(1+1e-5) {
				t.Errorf("estimate %v exceeds σ_max %v: it must be a lower bound", sigma, want)
			}
			if rel := (want - sigma) / want; rel > tc.relTol {
				t.Errorf("estimate %v, σ_max %v: %.2g%% low", sigma, want, 100*rel)
			}
		})
	}
	zero := checkpoint.Matrix{Rows: 2, Cols: 2, Data: make([]float32, 4)}
	if ss, sigma := measure(zero, zero, make([]float32, 4), 3, rand.New(rand.NewPCG(1, 1)), make([]float32, 2), make([]float32, 2)); ss != 0 || sigma != 0 {
		t.Errorf("zero matrix: %v, %v", ss, sigma)
	}
}

func naiveSumSquares(v []float32) float64 {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	return s
}

func TestUnionFindGroups(t *testing.T) {
	u := newUnionFind(8)
	for _, p := range [][2]int{{5, 2}, {7, 2}, {0, 3}, {4, 4}} {
		u.union(p[0], p[1])
	}
	got := u.groups()
	want := [][]int{{0, 3}, {2, 5, 7}}
	if len(got) != len(want) || !slices.Equal(got[0], want[0]) || !slices.Equal(got[1], want[1]) {
		t.Fatalf("groups %v, want %v", got, want)
	}
}

func TestSamplePositions(t *testing.T) {
	pos, exact := samplePositions([3]int{10, 10, 5}, 100, 1)
	if !exact || len(pos[0]) != 10 || len(pos[2]) != 5 || pos[1][9] != 9 {
		t.Fatalf("small experts must be compared on all weights: %v", pos)
	}
	sizes := [3]int{4000, 4000, 4000}
	pos, exact = samplePositions(sizes, 1000, 1)
	if exact || len(pos[0])+len(pos[1])+len(pos[2]) != 1000 {
		t.Fatalf("sample of %d", len(pos[0])+len(pos[1])+len(pos[2]))
	}
	for p := range 3 {
		if !slices.IsSorted(pos[p]) || len(slices.Compact(slices.Clone(pos[p]))) != len(pos[p]) || pos[p][len(pos[p])-1] >= sizes[p] {
			t.Fatalf("projection %d positions unsorted, repeated or out of range", p)
		}
		if n := len(pos[p]); n < 300 || n > 370 {
			t.Errorf("projection %d holds %d of 1000 samples; strata should split them evenly", p, n)
		}
	}
	again, _ := samplePositions(sizes, 1000, 1)
	if !slices.Equal(again[1], pos[1]) {
		t.Error("positions depend on more than the seed")
	}
}
