package dpaccount

import "fmt"

// DefaultOrders are the Rényi orders tried: fine steps near 1, where large ε live, every
// integer up to 63, and a few large orders for tiny ε — the set TensorFlow Privacy and
// Opacus use.
func DefaultOrders() []float64 {
	orders := make([]float64, 0, 99+52+3)
	for x := 1; x < 100; x++ {
		orders = append(orders, 1+float64(x)/10)
	}
	for a := 12; a < 64; a++ {
		orders = append(orders, float64(a))
	}
	return append(orders, 128, 256, 512)
}

// Epsilon is the ε, at δ, spent by steps runs of the sampled Gaussian mechanism with sampling
// rate q and noise multiplier z, over DefaultOrders, and the order that gave it.
func Epsilon(q, z float64, steps int, delta float64) (eps, order float64, err error) {
	if steps < 0 {
		return 0, 0, fmt.Errorf("%d steps", steps)
	}
	if steps == 0 {
		return 0, 0, nil
	}
	orders := DefaultOrders()
	rdp := make([]float64, len(orders))
	for i, a := range orders {
		r, err := RDP(q, z, a)
		if err != nil {
			return 0, 0, err
		}
		rdp[i] = r * float64(steps)
	}
	return EpsilonFromRDP(orders, rdp, delta)
}
