package dpaccount

import "math"

// logAdd is log(exp(a) + exp(b)) without overflow.
func logAdd(a, b float64) float64 {
	lo, hi := math.Min(a, b), math.Max(a, b)
	if math.IsInf(lo, -1) {
		return hi
	}
	return hi + math.Log1p(math.Exp(lo-hi))
}

// logSub is log(exp(a) − exp(b)) for a ≥ b; −∞ when they are equal.
func logSub(a, b float64) float64 {
	if math.IsInf(b, -1) {
		return a
	}
	if a <= b {
		return math.Inf(-1)
	}
	return a + math.Log1p(-math.Exp(b-a))
}

// logErfc is log(erfc(x)), accurate where erfc itself underflows (x ≳ 26).
func logErfc(x float64) float64 {
	if x < 25 {
		return math.Log(math.Erfc(x))
	}
	// Asymptotic series: erfc(x) = exp(−x²)/(x√π) · (1 − 1/(2x²) + 3/(4x⁴) − 15/(8x⁶) + …).
	x2 := x * x
	series := 1 - 1/(2*x2) + 3/(4*x2*x2) - 15/(8*x2*x2*x2)
	return -x2 - math.Log(x) - 0.5*math.Log(math.Pi) + math.Log(series)
}
