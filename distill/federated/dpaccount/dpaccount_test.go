package dpaccount

import (
	"math"
	"testing"
)

// Values published with TensorFlow Privacy's RDP accountant (rdp_accountant_test.py):
// T·RDP of the sampled Gaussian mechanism at the given orders.
func TestRDPMatchesPublishedValues(t *testing.T) {
	cases := []struct {
		q, z   float64
		steps  int
		orders []float64
		want   []float64
	}{
		{q: 0, z: 10, steps: 1, orders: []float64{20}, want: []float64{0}},
		{q: 1, z: 10, steps: 1, orders: []float64{20}, want: []float64{0.1}},
		{q: 0.1, z: 2, steps: 10, orders: []float64{5}, want: []float64{0.07737}},
		{q: 0.01, z: 2.5, steps: 50,
			orders: []float64{1.5, 2.5, 5, 50, 100, math.Inf(1)},
			want:   []float64{0.00065, 0.001085, 0.00218075, 0.023846, 167.416307, math.Inf(1)}},
	}
	for _, c := range cases {
		for i, a := range c.orders {
			r, err := RDP(c.q, c.z, a)
			if err != nil {
				t.Fatalf("RDP(%g, %g, %g): %v", c.q, c.z, a, err)
			}
			got := r * float64(c.steps)
			if math.IsInf(c.want[i], 1) {
				if !math.IsInf(got, 1) {
					t.Errorf("q=%g z=%g α=%g: RDP %g, want +Inf", c.q, c.z, a, got)
				}
				continue
			}
			if math.Abs(got-c.want[i]) > 1e-5 {
				t.Errorf("q=%g z=%g T=%d α=%g: RDP %.7f, published %.7f", c.q, c.z, c.steps, a, got, c.want[i])
			}
		}
	}
}

// logANumeric is log A_α by direct quadrature of ∫ N(x; 0, z²)·((1−q) + q·e^((2x−1)/(2z²)))^α dx,
// summed in log space over a grid wide enough to hold all the mass.
func logANumeric(q, z, alpha float64) float64 {
	lo, hi := -40*z, 40*z+alpha
	const n = 400000
	h := (hi - lo) / n
	acc := math.Inf(-1)
	for i := 0; i <= n; i++ {
		x := lo + float64(i)*h
		logMu0 := -x*x/(2*z*z) - math.Log(z*math.Sqrt(2*math.Pi))
		ratio := logAdd(math.Log1p(-q), math.Log(q)+(2*x-1)/(2*z*z))
		w := 1.0 // trapezoid weights
		if i == 0 || i == n {
			w = 0.5
		}
		acc = logAdd(acc, logMu0+alpha*ratio+math.Log(w*h))
	}
	return acc
}

// The closed-form series (integer and fractional orders) agree with numerical integration.
func TestLogAMatchesQuadrature(t *testing.T) {
	cases := []struct{ q, z, alpha float64 }{
		{1e-4, 1, 1.5},
		{1e-3, 1, 2},
		{0.01, 10, 20},
		{0.1, 100, 20.5},
		{0.01, 2.5, 2.5},
		{0.3, 1.5, 3.7},
		{0.5, 2, 8},
		{0.05, 0.8, 12.25},
	}
	for _, c := range cases {
		var got float64
		if c.alpha == math.Floor(c.alpha) {
			got = logAInt(c.q, c.z, int(c.alpha))
		} else {
			got = logAFrac(c.q, c.z, c.alpha)
		}
		want := logANumeric(c.q, c.z, c.alpha)
		if math.Abs(got-want) > 1e-4*math.Max(1e-3, math.Abs(want)) {
			t.Errorf("q=%g z=%g α=%g: log A = %.8g, quadrature %.8g", c.q, c.z, c.alpha, got, want)
		}
	}
}

func TestEpsilonFromRDPPublished(t *testing.T) {
	// Constant RDP is pure DP: the largest order wins (TensorFlow Privacy's value).
	var orders, rdp []float64
	for a := 2; a <= 32; a++ {
		orders = append(orders, float64(a))
		rdp = append(rdp, 1.1)
	}
	eps, order, err := EpsilonFromRDP(orders, rdp, 1e-5)
	if err != nil {
		t.Fatal(err)
	}
	if order != 32 || math.Abs(eps-1.32783806176) > 1e-9 {
		t.Errorf("ε = %.11f at order %g, want 1.32783806176 at 32", eps, order)
	}

	// z = 4.530877117 is chosen to give exactly (1, 1e-6)-DP over a fine set of orders.
	orders, rdp = orders[:0], rdp[:0]
	for i := 1000; i < 100000; i++ {
		a := 0.001 * float64(i)
		if a <= 1 {
			continue
		}
		r, err := RDP(1, 4.530877117, a)
		if err != nil {
			t.Fatal(err)
		}
		orders, rdp = append(orders, a), append(rdp, r)
	}
	eps, _, err = EpsilonFromRDP(orders, rdp, 1e-6)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(eps-1) > 1e-6 {
		t.Errorf("ε = %.9f, want 1", eps)
	}
}

// Abadi et al. 2016 (section 5.2): q = 0.01, σ = 4, δ = 1e-5, 10 000 steps give ε ≈ 1.26 with
// the moments accountant; RDP with the improved conversion is at least as tight, and no
// tighter than the same mechanism without subsampling amplification would allow.
func TestEpsilonAbadi(t *testing.T) {
	eps, order, err := Epsilon(0.01, 4, 10000, 1e-5)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("ε = %.4f at order %g", eps, order)
	if eps > 1.26 || eps < 0.9 {
		t.Errorf("ε = %.4f, want within [0.9, 1.26]", eps)
	}
}

// gaussianDelta is the exact δ(ε) of the Gaussian mechanism with sensitivity 1 and deviation
// s (Balle and Wang 2018, Theorem 8).
func gaussianDelta(eps, s float64) float64 {
	phi := func(x float64) float64 { return 0.5 * math.Erfc(-x/math.Sqrt2) }
	return phi(-eps*s+1/(2*s)) - math.Exp(eps)*phi(-eps*s-1/(2*s))
}

// Without subsampling, T Gaussian steps of multiplier z are one Gaussian of multiplier
// z/√T, whose exact privacy curve is known: the accountant's ε must be sound (the exact δ at
// that ε is no more than the δ asked for) and not loose by more than a quarter.
func TestEpsilonGaussianSoundAndTight(t *testing.T) {
	for _, c := range []struct {
		z     float64
		steps int
		delta float64
	}{
		{1, 1, 1e-5}, {3, 4, 1e-5}, {3, 10, 1e-5}, {10, 100, 1e-6}, {0.8, 20, 1e-3}, {20, 3, 1e-5},
	} {
		eps, _, err := Epsilon(1, c.z, c.steps, c.delta)
		if err != nil {
			t.Fatal(err)
		}
		s := c.z / math.Sqrt(float64(c.steps))
		if d := gaussianDelta(eps, s); d > c.delta*(1+1e-9) {
			t.Errorf("z=%g T=%d: ε=%.4f is unsound: exact δ there is %.3g > %g", c.z, c.steps, eps, d, c.delta)
		}
		// The exact ε: bisect gaussianDelta(ε) = δ.
		lo, hi := 0.0, 1000.0
		for range 200 {
			mid := (lo + hi) / 2
			if gaussianDelta(mid, s) > c.delta {
				lo = mid
			} else {
				hi = mid
			}
		}
		if eps > 1.25*hi {
			t.Errorf("z=%g T=%d: ε=%.4f is loose against the exact %.4f", c.z, c.steps, eps, hi)
		}
		t.Logf("z=%g T=%d δ=%g: RDP ε=%.4f exact ε=%.4f", c.z, c.steps, c.delta, eps, hi)
	}
}

// ε grows with steps and falls with noise.
func TestEpsilonMonotone(t *testing.T) {
	prev := 0.0
	for steps := 1; steps <= 64; steps *= 2 {
		eps, _, err := Epsilon(0.1, 1.1, steps, 1e-5)
		if err != nil {
			t.Fatal(err)
		}
		if eps <= prev {
			t.Errorf("ε after %d steps %.4f is not above %.4f", steps, eps, prev)
		}
		prev = eps
	}
	prev = math.Inf(1)
	for _, z := range []float64{0.5, 1, 2, 4, 8} {
		eps, _, err := Epsilon(1, z, 10, 1e-5)
		if err != nil {
			t.Fatal(err)
		}
		if eps >= prev {
			t.Errorf("ε at z=%g %.4f is not below %.4f", z, eps, prev)
		}
		prev = eps
	}
}

func TestBadArguments(t *testing.T) {
	for _, c := range []struct {
		name        string
		q, z, delta float64
		steps       int
	}{
		{"q above 1", 1.5, 1, 1e-5, 1},
		{"q negative", -0.1, 1, 1e-5, 1},
		{"q NaN", math.NaN(), 1, 1e-5, 1},
		{"noise negative", 1, -1, 1e-5, 1},
		{"delta zero", 1, 1, 0, 1},
		{"delta one", 1, 1, 1, 1},
		{"steps negative", 1, 1, 1e-5, -1},
	} {
		if _, _, err := Epsilon(c.q, c.z, c.steps, c.delta); err == nil {
			t.Errorf("%s: no error", c.name)
		}
	}
	if _, err := RDP(0.5, 1, 1); err == nil {
		t.Error("order 1: no error")
	}
	if _, _, err := EpsilonFromRDP([]float64{2}, nil, 1e-5); err == nil {
		t.Error("mismatched lengths: no error")
	}
	// Without noise there is no privacy.
	if eps, _, err := Epsilon(1, 0, 1, 1e-5); err != nil || !math.IsInf(eps, 1) {
		t.Errorf("no noise: ε = %g, %v; want +Inf", eps, err)
	}
}

func BenchmarkEpsilon(b *testing.B) {
	for range b.N {
		if _, _, err := Epsilon(0.01, 1.1, 1000, 1e-5); err != nil {
			b.Fatal(err)
		}
	}
}
