package dataset

import (
	"math"
	"slices"
	"strings"
	"testing"
)

// labels returns perClass samples of each of k classes, interleaved.
func labels(k, perClass int) []int {
	y := make([]int, k*perClass)
	for i := range y {
		y[i] = i % k
	}
	return y
}

func TestDirichletPartitionCoverage(t *testing.T) {
	tests := []struct {
		name    string
		y       []int
		classes int
		parts   int
		alpha   float64
	}{
		{"one part", labels(3, 10), 3, 1, 0.5},
		{"more parts than samples", labels(2, 2), 2, 10, 1},
		{"tiny alpha", labels(10, 100), 10, 8, 1e-4},
		{"huge alpha", labels(10, 100), 10, 8, 1e6},
		{"empty", nil, 4, 3, 1},
		{"unused class", []int{0, 0, 2, 2, 2}, 5, 2, 0.3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parts, err := DirichletPartition(tt.y, tt.classes, tt.parts, tt.alpha, 1)
			if err != nil {
				t.Fatal(err)
			}
			if len(parts) != tt.parts {
				t.Fatalf("%d parts, want %d", len(parts), tt.parts)
			}
			seen := make([]int, len(tt.y))
			for j, p := range parts {
				if p == nil {
					t.Errorf("part %d is nil, want empty slice", j)
				}
				if !slices.IsSorted(p) {
					t.Errorf("part %d not sorted", j)
				}
				for _, i := range p {
					seen[i]++
				}
			}
			for i, n := range seen {
				if n != 1 {
					t.Fatalf("sample %d assigned %d times", i, n)
				}
			}
		})
	}
}

func TestDirichletPartitionErrors(t *testing.T) {
	tests := []struct {
		name    string
		y       []int
		classes int
		parts   int
		alpha   float64
		want    string
	}{
		{"parts 0", []int{0}, 1, 0, 1, "parts = 0"},
		{"alpha 0", []int{0}, 1, 2, 0, "alpha = 0"},
		{"alpha negative", []int{0}, 1, 2, -1, "alpha"},
		{"alpha NaN", []int{0}, 1, 2, math.NaN(), "alpha"},
		{"alpha Inf", []int{0}, 1, 2, math.Inf(1), "alpha"},
		{"classes 0", nil, 0, 2, 1, "numClasses"},
		{"label range", []int{0, 3}, 3, 2, 1, "sample 1 has label 3"},
		{"negative label", []int{-1}, 3, 2, 1, "label -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DirichletPartition(tt.y, tt.classes, tt.parts, tt.alpha, 1)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestDirichletPartitionDeterminism(t *testing.T) {
	y := labels(10, 200)
	a, _ := DirichletPartition(y, 10, 5, 0.5, 42)
	b, _ := DirichletPartition(y, 10, 5, 0.5, 42)
	c, _ := DirichletPartition(y, 10, 5, 0.5, 43)
	same := func(p, q [][]int) bool { return slices.EqualFunc(p, q, slices.Equal) }
	if !same(a, b) {
		t.Error("same seed, different partitions")
	}
	if same(a, c) {
		t.Error("different seeds, same partition")
	}
}

// skew returns the mean over non-empty parts of the share of the part's
// samples that belong to its two most frequent classes, and the
// coefficient of variation of the part sizes.
func skew(y []int, k int, parts [][]int) (top2, sizeCV float64) {
	var n, sum, sumsq float64
	for _, p := range parts {
		sz := float64(len(p))
		sum += sz
		sumsq += sz * sz
		if len(p) == 0 {
			continue
		}
		counts := make([]int, k)
		for _, i := range p {
			counts[y[i]]++
		}
		slices.Sort(counts)
		top2 += float64(counts[k-1]+counts[k-2]) / sz
		n++
	}
	m := sum / float64(len(parts))
	return top2 / n, math.Sqrt(sumsq/float64(len(parts))-m*m) / m
}

func TestDirichletPartitionSkew(t *testing.T) {
	const k, parts = 10, 10
	y := labels(k, 1000)
	for seed := uint64(1); seed <= 5; seed++ {
		small, err := DirichletPartition(y, k, parts, 0.1, seed)
		if err != nil {
			t.Fatal(err)
		}
		large, err := DirichletPartition(y, k, parts, 1000, seed)
		if err != nil {
			t.Fatal(err)
		}
		sTop, _ := skew(y, k, small)
		lTop, lCV := skew(y, k, large)
		t.Logf("seed %d: alpha=0.1 top-2 share %.3f; alpha=1000 top-2 share %.3f, size CV %.4f", seed, sTop, lTop, lCV)
		// Uniform would give 0.2; alpha=0.1 parts are dominated by a few
		// classes (expected ≈ 0.85).
		if sTop < 0.6 {
			t.Errorf("seed %d: alpha=0.1 top-2 share %.3f, want ≥ 0.6", seed, sTop)
		}
		if lTop > 0.25 {
			t.Errorf("seed %d: alpha=1000 top-2 share %.3f, want ≤ 0.25", seed, lTop)
		}
		if lCV > 0.05 {
			t.Errorf("seed %d: alpha=1000 part sizes vary by CV %.4f, want ≤ 0.05", seed, lCV)
		}
	}
}

// The gamma sampler must have the right mean and variance (both alpha for
// Gamma(alpha, 1)), including the alpha < 1 boost.
func TestGammaMoments(t *testing.T) {
	for _, alpha := range []float64{0.1, 0.5, 1, 2.5, 30} {
		rng := NewRand(7)
		const n = 200000
		var sum, sumsq float64
		for range n {
			g := math.Exp(logGamma(rng, alpha))
			sum += g
			sumsq += g * g
		}
		mean := sum / n
		variance := sumsq/n - mean*mean
		if math.Abs(mean-alpha) > 0.02*alpha+0.005 {
			t.Errorf("alpha %v: mean %.4f", alpha, mean)
		}
		if math.Abs(variance-alpha) > 0.06*alpha+0.01 {
			t.Errorf("alpha %v: variance %.4f", alpha, variance)
		}
	}
}
