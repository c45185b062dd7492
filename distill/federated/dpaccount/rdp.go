package dpaccount

import (
	"fmt"
	"math"
)

// RDP is the Rényi divergence of order alpha that one step of the sampled Gaussian
// mechanism spends: sampling rate q ∈ [0, 1], noise multiplier z ≥ 0 (noise standard
// deviation over sensitivity), alpha > 1.
func RDP(q, z, alpha float64) (float64, error) {
	switch {
	case math.IsNaN(q) || q < 0 || q > 1:
		return 0, fmt.Errorf("sampling rate %g is not in [0, 1]", q)
	case math.IsNaN(z) || z < 0:
		return 0, fmt.Errorf("noise multiplier %g is negative", z)
	case math.IsNaN(alpha) || alpha <= 1:
		return 0, fmt.Errorf("the Rényi order %g is not above 1", alpha)
	case q == 0:
		return 0, nil
	case z == 0 || math.IsInf(alpha, 1):
		return math.Inf(1), nil
	case q == 1:
		// The Gaussian mechanism of sensitivity 1 and deviation z: α/(2z²).
		return alpha / (2 * z * z), nil
	}
	var logA float64
	if alpha == math.Floor(alpha) && alpha < 1<<20 {
		logA = logAInt(q, z, int(alpha))
	} else {
		logA = logAFrac(q, z, alpha)
	}
	return logA / (alpha - 1), nil
}

// logAInt is log A_α for an integer α: the α-th moment of the likelihood ratio of the
// mixture (1−q)·N(0, z²) + q·N(1, z²) against N(0, z²), by the binomial expansion
//
//	A_α = Σ_k C(α, k) q^k (1−q)^(α−k) exp((k² − k)/(2z²)).
func logAInt(q, z float64, alpha int) float64 {
	logQ, log1mQ := math.Log(q), math.Log1p(-q)
	logA := math.Inf(-1)
	for k := 0; k <= alpha; k++ {
		kf := float64(k)
		term := logBinomial(float64(alpha), k) + kf*logQ + float64(alpha-k)*log1mQ + (kf*kf-kf)/(2*z*z)
		logA = logAdd(logA, term)
	}
	return logA
}

// logAFrac is log A_α for a fractional α, by the series of Mironov, Talwar and Zhang
// (2019, section 3.3): the integral splits at z0 = z²·log(1/q − 1) + ½ and each half expands
// in the generalised binomial series, whose terms alternate in sign once k > α. The series
// stops when both halves' terms fall below e^−30 relative to one.
func logAFrac(q, z, alpha float64) float64 {
	logQ, log1mQ := math.Log(q), math.Log1p(-q)
	z0 := z*z*math.Log(1/q-1) + 0.5
	a0, a1 := math.Inf(-1), math.Inf(-1)
	logCoef, positive := 0.0, true // log|C(α, k)| and its sign, updated as k grows
	for k := 0; k < 100000; k++ {
		kf := float64(k)
		j := alpha - kf
		t0 := logCoef + kf*logQ + j*log1mQ
		t1 := logCoef + j*logQ + kf*log1mQ
		e0 := math.Log(0.5) + logErfc((kf-z0)/(math.Sqrt2*z))
		e1 := math.Log(0.5) + logErfc((z0-j)/(math.Sqrt2*z))
		s0 := t0 + (kf*kf-kf)/(2*z*z) + e0
		s1 := t1 + (j*j-j)/(2*z*z) + e1
		if positive {
			a0, a1 = logAdd(a0, s0), logAdd(a1, s1)
		} else {
			a0, a1 = logSub(a0, s0), logSub(a1, s1)
		}
		if math.Max(s0, s1) < -30 {
			break
		}
		// C(α, k+1) = C(α, k)·(α − k)/(k + 1).
		ratio := (alpha - kf) / (kf + 1)
		if ratio < 0 {
			positive = !positive
		}
		logCoef += math.Log(math.Abs(ratio))
	}
	return logAdd(a0, a1)
}

// logBinomial is log C(n, k) for 0 ≤ k ≤ n.
func logBinomial(n float64, k int) float64 {
	a, _ := math.Lgamma(n + 1)
	b, _ := math.Lgamma(float64(k) + 1)
	c, _ := math.Lgamma(n - float64(k) + 1)
	return a - b - c
}
