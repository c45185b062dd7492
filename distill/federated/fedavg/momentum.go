package fedavg

import "fmt"

// Momentum is the coordinator's heavy-ball momentum over rounds (FedAvgM, Hsu et al. 2019):
// the step applied to the global model is v ← β·v + Δ, where Δ is the round's aggregate. On
// skewed shares the rounds' aggregates point in changing directions; the running sum keeps
// what they share. It acts on the aggregate only, so it is the same under secure aggregation
// and, as post-processing, costs no privacy.
type Momentum struct {
	Beta     float64
	velocity []float64
}

// Step folds a round's aggregate into the velocity and returns the step to apply (a copy the
// caller may keep).
func (m *Momentum) Step(delta []float64) ([]float64, error) {
	if !(m.Beta >= 0 && m.Beta < 1) {
		return nil, fmt.Errorf("server momentum %g must be in [0, 1)", m.Beta)
	}
	if m.velocity == nil {
		m.velocity = make([]float64, len(delta))
	}
	if len(m.velocity) != len(delta) {
		return nil, fmt.Errorf("server momentum: aggregate of %d values after %d", len(delta), len(m.velocity))
	}
	for i, d := range delta {
		m.velocity[i] = m.Beta*m.velocity[i] + d
	}
	return append([]float64(nil), m.velocity...), nil
}
