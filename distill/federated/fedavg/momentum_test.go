package fedavg

import (
	"math"
	"testing"
)

func TestMomentum(t *testing.T) {
	m := &Momentum{Beta: 0.5}
	var got []float64
	for _, d := range [][]float64{{1, 0}, {1, 2}, {0, 0}} {
		var err error
		if got, err = m.Step(d); err != nil {
			t.Fatal(err)
		}
	}
	// v1 = (1, 0); v2 = (1.5, 2); v3 = (0.75, 1).
	if math.Abs(got[0]-0.75) > 1e-15 || math.Abs(got[1]-1) > 1e-15 {
		t.Errorf("velocity %v, want [0.75 1]", got)
	}
	got[0] = 99 // the caller's copy
	if next, _ := m.Step([]float64{0, 0}); next[0] != 0.375 {
		t.Errorf("the returned step aliases the velocity: %v", next)
	}
	if _, err := m.Step([]float64{1}); err == nil {
		t.Error("aggregate of another length: no error")
	}
	if _, err := (&Momentum{Beta: 1}).Step([]float64{1}); err == nil {
		t.Error("β = 1: no error")
	}
	plain := &Momentum{}
	if s, _ := plain.Step([]float64{3}); s[0] != 3 {
		t.Errorf("β = 0 is not plain FedAvg: %v", s)
	}
}
