package ckptgen

import (
	"math"
	"math/rand/v2"
	"slices"

	"github.com/meshnode/meshnode/distill/checkpoint"
)

// Strength of the planted routing structure. Calibration inputs of domain d
// are x = signal·u_d + common·c + noise, with u_1..u_D and c orthonormal and
// the noise (unit variance per coordinate) orthogonal to all of them.
// The specialist of domain d has router row routerGain·(u_d − ū), so its
// logit is routerGain·signal·(1 − 1/D) ≈ 10 on its own domain and
// −routerGain·signal/D = −2 on every other; ordinary experts have unit
// random rows orthogonal to the planted directions (logits ~ N(0, 1)).
const (
	signal     = 4.0
	common     = 3.0
	routerGain = 3.0
	biasShift  = 2.0  // selection bias of the suppressed (−) and boosted (+) experts
	biasJitter = 0.02 // the other experts' selection biases are uniform in ±biasJitter
	dupNoise   = 0.03 // near-duplicates are copies plus noise of this share of the weights' std
)

// world is the planted content of a tiny checkpoint.
type world struct {
	basis  [][]float64 // u_1..u_D, then c
	values map[string][]float32
	truth  *Truth
}

// orthonormal returns k orthonormal vectors of dimension n (Gram-Schmidt on Gaussian draws).
func orthonormal(rng *rand.Rand, k, n int) [][]float64 {
	var out [][]float64
	for len(out) < k {
		v := make([]float64, n)
		for i := range v {
			v[i] = rng.NormFloat64()
		}
		for _, u := range out {
			axpy(-dot(u, v), u, v)
		}
		if nv := math.Sqrt(dot(v, v)); nv > 1e-6 {
			for i := range v {
				v[i] /= nv
			}
			out = append(out, v)
		}
	}
	return out
}

func dot(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

func axpy(a float64, x, y []float64) {
	for i := range x {
		y[i] += a * x[i]
	}
}

// project removes the components of v along every basis vector.
func project(v []float64, basis [][]float64) {
	for _, u := range basis {
		axpy(-dot(u, v), u, v)
	}
}

func toFloat32(v []float64, scale float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x * scale)
	}
	return out
}

// plant builds the planted expert weights, router rows and biases of every
// MoE layer of c, and the truth an analyzer should recover.
func plant(c *checkpoint.Config, o TinyOptions) *world {
	rng := rand.New(rand.NewPCG(o.Seed, 0x706c616e74)) // "plant"
	d, h, e := len(o.Domains), c.HiddenSize, c.Experts()
	w := &world{basis: orthonormal(rng, d+1, h), values: map[string][]float32{},
		truth: newTruth(o.Domains)}
	bias := c.RouterBiasTensor(0) != ""
	prevLayer := -1
	var prevFree []int // experts of the previous MoE layer outside duplicate groups
	for l := range c.NumHiddenLayers {
		if !c.IsMoELayer(l) {
			continue
		}
		i := len(w.truth.MoELayers)
		w.truth.MoELayers = append(w.truth.MoELayers, l)
		weights := make([][3][]float32, e)
		for x := range e {
			std := 0.08 * (0.6 + 0.8*rng.Float64())
			for p := checkpoint.Gate; p <= checkpoint.Down; p++ {
				s := c.ExpertShape(p)
				weights[x][p] = gaussian(rng, s[0]*s[1], std)
			}
		}
		// Near-duplicate groups: 2, 3, then 2+2 experts, cycling over layers.
		sizes := [][]int{{2}, {3}, {2, 2}}[i%3]
		perm := rng.Perm(e)
		var groups [][]int
		for _, n := range sizes {
			g := slices.Clone(perm[:n])
			perm = perm[n:]
			slices.Sort(g)
			groups = append(groups, g)
		}
		free := slices.Clone(perm)
		slices.Sort(free)
		// One cross-layer copy: an expert of the second MoE layer repeats one of the first.
		if i == 1 {
			to := free[rng.IntN(len(free))]
			from := prevFree[rng.IntN(len(prevFree))]
			weights[to] = noisyCopy(rng, w.expertWeights(c, prevLayer, from))
			w.truth.CrossLayer = append(w.truth.CrossLayer, CrossCopy{FromLayer: prevLayer, FromExpert: from, ToLayer: l, ToExpert: to})
		}
		for _, g := range groups {
			for _, m := range g[1:] {
				weights[m] = noisyCopy(rng, weights[g[0]])
			}
		}
		w.truth.Duplicates[l] = groups
		for x := range e {
			for p := checkpoint.Gate; p <= checkpoint.Down; p++ {
				w.values[c.ExpertTensor(l, x, p)] = weights[x][p]
			}
		}
		w.plantRouter(rng, c, l, bias)
		prevLayer, prevFree = l, free
	}
	return w
}

func (w *world) expertWeights(c *checkpoint.Config, l, x int) [3][]float32 {
	var out [3][]float32
	for p := checkpoint.Gate; p <= checkpoint.Down; p++ {
		out[p] = w.values[c.ExpertTensor(l, x, p)]
	}
	return out
}

// noisyCopy returns src plus Gaussian noise of dupNoise times src's std.
func noisyCopy(rng *rand.Rand, src [3][]float32) [3][]float32 {
	var out [3][]float32
	for p, v := range src {
		var ss float64
		for _, x := range v {
			ss += float64(x) * float64(x)
		}
		std := math.Sqrt(ss/float64(len(v))) * dupNoise
		out[p] = make([]float32, len(v))
		for i, x := range v {
			out[p][i] = x + float32(rng.NormFloat64()*std)
		}
	}
	return out
}

// plantRouter writes layer l's router rows (and selection bias): one
// specialist per domain, and with a bias one expert the bias suppresses and
// one it boosts; the rest are ordinary.
func (w *world) plantRouter(rng *rand.Rand, c *checkpoint.Config, l int, withBias bool) {
	d, h, e := len(w.basis)-1, c.HiddenSize, c.Experts()
	perm := rng.Perm(e)
	mean := make([]float64, h)
	for _, u := range w.basis[:d] {
		axpy(1/float64(d), u, mean)
	}
	router := make([]float32, 0, e*h)
	rows := make([][]float32, e)
	spec := map[string]int{}
	for k, x := range perm {
		row := make([]float64, h)
		switch {
		case k < d: // specialist of domain k
			copy(row, w.basis[k])
			axpy(-1, mean, row)
			rows[x] = toFloat32(row, routerGain)
			spec[w.truth.Domains[k]] = x
			continue
		case withBias && k == d: // high score on every token, removed by its bias
			rows[x] = toFloat32(w.basis[d], routerGain)
			w.truth.Suppressed[l] = x
			continue
		case withBias && k == d+1: // near-zero score on every token, selected by its bias
			rows[x] = toFloat32(w.basis[d], -routerGain)
			w.truth.Boosted[l] = x
			continue
		}
		for i := range row {
			row[i] = rng.NormFloat64()
		}
		project(row, w.basis)
		rows[x] = toFloat32(row, 1/math.Sqrt(dot(row, row)))
	}
	for _, r := range rows {
		router = append(router, r...)
	}
	w.values[c.RouterTensor(l)] = router
	w.truth.Specialists[l] = spec
	if withBias {
		b := make([]float32, e)
		for x := range b {
			b[x] = float32((2*rng.Float64() - 1) * biasJitter)
		}
		b[w.truth.Suppressed[l]] = -biasShift
		b[w.truth.Boosted[l]] = biasShift
		w.values[c.RouterBiasTensor(l)] = b
	}
}

// calibration draws tokensPerDomain router inputs for every domain.
func (w *world) calibration(rng *rand.Rand, h, tokensPerDomain int) (x []float32, ids []int32) {
	d := len(w.basis) - 1
	for k := range d {
		for range tokensPerDomain {
			v := make([]float64, h)
			for i := range v {
				v[i] = rng.NormFloat64()
			}
			project(v, w.basis)
			axpy(signal, w.basis[k], v)
			axpy(common, w.basis[d], v)
			x = append(x, toFloat32(v, 1)...)
			ids = append(ids, int32(k))
		}
	}
	return x, ids
}
