package dataset

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// DirichletPartition splits the sample indices 0..len(y)-1 among parts to
// simulate non-IID nodes. For each class c in order, the indices of class c
// are shuffled with the seeded generator (NewRand(seed)) and proportions
// p ~ Dirichlet(alpha, ..., alpha) over the parts are drawn; part j then gets
// the shuffled indices [round(n_c*P_{j-1}), round(n_c*P_j)) where P_j is the
// cumulative sum p_0+...+p_j (the last cut is exactly n_c). Every sample is
// assigned exactly once. Small alpha (e.g. 0.1) makes each part dominated
// by a few classes; large alpha (e.g. 1000) gives near-uniform parts.
//
// Gamma variates are drawn with Marsaglia and Tsang's method, boosted by
// U^(1/alpha) for alpha < 1 and normalised in log space so tiny alpha does
// not underflow. The result is deterministic for (y, numClasses, parts,
// alpha, seed). (Across CPU architectures math.Exp/math.Log may round
// differently in the last bit, which could in rare cases move a sample
// across a cut; on one architecture results are bit-identical.) Each part's
// index list is sorted ascending.
//
// It returns an error if parts < 1, numClasses < 1, alpha is not a finite
// positive number, or a label is outside [0, numClasses).
func DirichletPartition(y []int, numClasses, parts int, alpha float64, seed uint64) ([][]int, error) {
	if parts < 1 {
		return nil, fmt.Errorf("dirichlet partition: parts = %d, want ≥ 1", parts)
	}
	if numClasses < 1 {
		return nil, fmt.Errorf("dirichlet partition: numClasses = %d, want ≥ 1", numClasses)
	}
	if !(alpha > 0) || math.IsInf(alpha, 0) {
		return nil, fmt.Errorf("dirichlet partition: alpha = %v, want a finite number > 0", alpha)
	}
	byClass := make([][]int, numClasses)
	for i, c := range y {
		if c < 0 || c >= numClasses {
			return nil, fmt.Errorf("dirichlet partition: sample %d has label %d outside [0,%d)", i, c, numClasses)
		}
		byClass[c] = append(byClass[c], i)
	}
	rng := NewRand(seed)
	out := make([][]int, parts)
	logg := make([]float64, parts)
	for _, idx := range byClass {
		rng.Shuffle(len(idx), func(a, b int) { idx[a], idx[b] = idx[b], idx[a] })
		// log of Gamma(alpha) variates, then p_j = exp(logg_j - logsumexp).
		mx := math.Inf(-1)
		for j := range logg {
			logg[j] = logGamma(rng, alpha)
			mx = max(mx, logg[j])
		}
		var sum float64
		for j := range logg {
			sum += math.Exp(logg[j] - mx)
		}
		n := len(idx)
		var cum float64
		lo := 0
		for j := range parts {
			hi := n
			if j < parts-1 {
				cum += math.Exp(logg[j]-mx) / sum
				hi = min(n, max(lo, int(math.Round(float64(n)*cum))))
			}
			out[j] = append(out[j], idx[lo:hi]...)
			lo = hi
		}
	}
	for j := range out {
		slices.Sort(out[j])
		if out[j] == nil {
			out[j] = []int{}
		}
	}
	return out, nil
}

// logGamma returns the natural log of a Gamma(alpha, 1) variate drawn from
// rng: Marsaglia–Tsang for shape ≥ 1 and, for alpha < 1, the boost
// Gamma(alpha) = Gamma(alpha+1) * U^(1/alpha), applied in log space.
func logGamma(rng *rand.Rand, alpha float64) float64 {
	if alpha < 1 {
		u := 1 - rng.Float64() // (0, 1]
		return math.Log(gammaMT(rng, alpha+1)) + math.Log(u)/alpha
	}
	return math.Log(gammaMT(rng, alpha))
}

// gammaMT draws a Gamma(a, 1) variate for a ≥ 1 with Marsaglia and Tsang's
// method ("A simple method for generating gamma variables", 2000).
func gammaMT(rng *rand.Rand, a float64) float64 {
	d := a - 1.0/3
	c := 1 / math.Sqrt(9*d)
	for {
		var x, v float64
		for {
			x = rng.NormFloat64()
			v = 1 + c*x
			if v > 0 {
				break
			}
		}
		v = v * v * v
		u := 1 - rng.Float64() // (0, 1]
		if u < 1-0.0331*(x*x)*(x*x) {
			return d * v
		}
		if math.Log(u) < 0.5*x*x+d*(1-v+math.Log(v)) {
			return d * v
		}
	}
}
