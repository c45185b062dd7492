package dpaccount

import (
	"fmt"
	"math"
)

// EpsilonFromRDP converts RDP values rdp[i] at orders[i] into the smallest ε, over those
// orders, for which the mechanism is (ε, δ)-differentially private, and the order that gave
// it. The conversion is ε = r + log(1 − 1/α) − (log δ + log α)/(α − 1) (Canonne, Kamath and
// Steinke 2020); when δ² ≥ 1 − e^(−r) the order already gives ε = 0.
func EpsilonFromRDP(orders, rdp []float64, delta float64) (eps, order float64, err error) {
	if len(orders) != len(rdp) || len(orders) == 0 {
		return 0, 0, fmt.Errorf("%d orders for %d RDP values", len(orders), len(rdp))
	}
	if math.IsNaN(delta) || delta <= 0 || delta >= 1 {
		return 0, 0, fmt.Errorf("δ %g is not in (0, 1)", delta)
	}
	eps, order = math.Inf(1), math.NaN()
	for i, a := range orders {
		r := rdp[i]
		if math.IsNaN(a) || a <= 1 {
			return 0, 0, fmt.Errorf("the Rényi order %g is not above 1", a)
		}
		if math.IsNaN(r) || r < 0 {
			return 0, 0, fmt.Errorf("RDP %g at order %g is negative", r, a)
		}
		var e float64
		switch {
		case delta*delta+math.Expm1(-r) >= 0:
			e = 0
		case math.IsInf(r, 1):
			e = math.Inf(1)
		default:
			e = r + math.Log1p(-1/a) - (math.Log(delta)+math.Log(a))/(a-1)
		}
		if e < eps {
			eps, order = e, a
		}
	}
	return math.Max(0, eps), order, nil
}
