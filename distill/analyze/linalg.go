package analyze

import (
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"

	"github.com/meshnode/meshnode/distill/checkpoint"
)

func general(m checkpoint.Matrix) blas32.General {
	return blas32.General{Rows: m.Rows, Cols: m.Cols, Stride: m.Cols, Data: m.Data}
}

// measurer computes, in as few passes over a matrix m as possible, Σ m²,
// the products of m's rows with a few probe rows, and an estimate of σ_max
// by power iteration on mᵀm from a random unit vector v. The first pass —
// squared norms, probe products and the first power step (row·v)·row — is
// fed band by band while the rows are in cache ([measurer.rows]); each
// further power step takes one more pass ([measurer.finish]).
type measurer struct {
	probes checkpoint.Matrix
	out    []float32 // m.Rows × probes.Rows
	v, acc blas32.Vector
	sumsq  float64
}

// newMeasurer prepares to measure a matrix of cols columns; v and acc are
// scratch of at least cols values.
func newMeasurer(cols int, probes checkpoint.Matrix, out []float32, rng *rand.Rand, v, acc []float32) measurer {
	ms := measurer{probes: probes, out: out,
		v: blas32.Vector{N: cols, Inc: 1, Data: v[:cols]}, acc: blas32.Vector{N: cols, Inc: 1, Data: acc[:cols]}}
	for i := range ms.v.Data {
		ms.v.Data[i] = float32(rng.NormFloat64())
	}
	if n := blas32.Nrm2(ms.v); n > 0 {
		blas32.Scal(1/n, ms.v)
	}
	clear(ms.acc.Data)
	return ms
}

// rows makes the first pass over rows [lo, hi) of m.
func (ms *measurer) rows(m checkpoint.Matrix, lo, hi int) {
	p := ms.probes.Rows
	for i := lo; i < hi; i++ {
		x := blas32.Vector{N: m.Cols, Inc: 1, Data: m.Row(i)}
		ms.sumsq += float64(blas32.Dot(x, x))
		o := ms.out[i*p : (i+1)*p]
		for j := range p {
			o[j] = blas32.Dot(x, blas32.Vector{N: m.Cols, Inc: 1, Data: ms.probes.Row(j)})
		}
		blas32.Axpy(blas32.Dot(x, ms.v), x, ms.acc)
	}
}

// finish completes iters power steps (the first was made by rows) and
// returns Σ m² and √‖mᵀm·v‖ for the last unit vector v: a lower bound of
// σ_max that converges to it.
func (ms *measurer) finish(m checkpoint.Matrix, iters int) (sumsq, sigma float64) {
	if m.Rows == 0 || m.Cols == 0 {
		return 0, 0
	}
	for it := 1; ; it++ {
		n := blas32.Nrm2(ms.acc)
		if n == 0 || math.IsNaN(float64(n)) {
			return ms.sumsq, sigma
		}
		sigma = math.Sqrt(float64(n))
		if it >= iters {
			return ms.sumsq, sigma
		}
		blas32.Scal(1/n, ms.acc)
		ms.v, ms.acc = ms.acc, ms.v
		clear(ms.acc.Data)
		for i := range m.Rows {
			x := blas32.Vector{N: m.Cols, Inc: 1, Data: m.Row(i)}
			blas32.Axpy(blas32.Dot(x, ms.v), x, ms.acc)
		}
	}
}

// measure runs a measurer over all of m at once (see measurer).
func measure(m, probes checkpoint.Matrix, out []float32, iters int, rng *rand.Rand, v, acc []float32) (sumsq, sigma float64) {
	ms := newMeasurer(m.Cols, probes, out, rng, v, acc)
	ms.rows(m, 0, m.Rows)
	return ms.finish(m, iters)
}

func silu(x float32) float32 { return x / (1 + float32(math.Exp(-float64(x)))) }

// normalizeRows scales each row of m (rows × cols) to unit length in place;
// zero rows stay zero.
func normalizeRows(m checkpoint.Matrix) {
	for i := range m.Rows {
		r := blas32.Vector{N: m.Cols, Inc: 1, Data: m.Row(i)}
		if n := blas32.Nrm2(r); n > 0 {
			blas32.Scal(1/n, r)
		}
	}
}

// gram returns a·bᵀ (a.Rows × b.Rows) for row-normalised a and b: the cosine similarities of their rows.
func gram(a, b checkpoint.Matrix) checkpoint.Matrix {
	out := checkpoint.Matrix{Rows: a.Rows, Cols: b.Rows, Data: make([]float32, a.Rows*b.Rows)}
	if a.Rows == 0 || b.Rows == 0 || a.Cols == 0 || a.Cols != b.Cols {
		return out
	}
	blas32.Gemm(blas.NoTrans, blas.Trans, 1, general(a), general(b), 0, general(out))
	return out
}

// unionFind groups indices into disjoint sets.
type unionFind struct{ parent []int }

func newUnionFind(n int) *unionFind {
	u := &unionFind{parent: make([]int, n)}
	for i := range u.parent {
		u.parent[i] = i
	}
	return u
}

func (u *unionFind) find(i int) int {
	for u.parent[i] != i {
		u.parent[i] = u.parent[u.parent[i]]
		i = u.parent[i]
	}
	return i
}

func (u *unionFind) union(a, b int) {
	ra, rb := u.find(a), u.find(b)
	if ra != rb {
		u.parent[max(ra, rb)] = min(ra, rb)
	}
}

// groups returns the sets of more than one member, each sorted, ordered by first member.
func (u *unionFind) groups() [][]int {
	byRoot := map[int][]int{}
	var roots []int
	for i := range u.parent {
		r := u.find(i)
		if _, ok := byRoot[r]; !ok {
			roots = append(roots, r)
		}
		byRoot[r] = append(byRoot[r], i)
	}
	var out [][]int
	for _, r := range roots {
		if g := byRoot[r]; len(g) > 1 {
			out = append(out, g)
		}
	}
	return out
}
