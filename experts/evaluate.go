package experts

import (
	"fmt"
	"math"
)

// Evaluation is a network's measured quality on a set of samples.
type Evaluation struct {
	Samples   int     `json:"samples"`
	Loss      float64 `json:"loss"`
	Accuracy  float64 `json:"accuracy,omitempty"`  // classes only
	Confusion [][]int `json:"confusion,omitempty"` // [true][predicted], classes only
}

// Evaluate runs the network over s in batches and returns its loss (cross-entropy against the
// labels, or against soft targets when only those are given; mse against targets) and, when s
// has labels, accuracy and the confusion matrix.
func Evaluate(n *Network, s Samples, loss string) (Evaluation, error) {
	if err := s.check(n); err != nil {
		return Evaluation{}, fmt.Errorf("evaluate: %w", err)
	}
	if loss == "" {
		loss = LossCrossEntropy
		if n.Arch.Output == OutputLinear {
			loss = LossMSE
		}
	}
	rows, out := s.Len(), n.OutputDim()
	ev := Evaluation{Samples: rows}
	if s.Labels != nil {
		ev.Confusion = make([][]int, out)
		for i := range ev.Confusion {
			ev.Confusion[i] = make([]int, out)
		}
	}
	if rows == 0 {
		return ev, nil
	}
	const batch = 512
	xb := make([]float64, min(batch, rows)*s.Dim)
	idx := make([]int, 0, batch)
	correct := 0
	for off := 0; off < rows; off += batch {
		idx = idx[:0]
		for i := off; i < min(off+batch, rows); i++ {
			idx = append(idx, i)
		}
		b := len(idx)
		gatherRows(xb, s.X, s.Dim, idx)
		y, err := n.Forward(xb[:b*s.Dim], b)
		if err != nil {
			return Evaluation{}, fmt.Errorf("evaluate: %w", err)
		}
		for r, i := range idx {
			row := y[r*out : (r+1)*out]
			if s.Labels != nil {
				p := argmax(row)
				ev.Confusion[s.Labels[i]][p]++
				if p == s.Labels[i] {
					correct++
				}
			}
			ev.Loss += rowLoss(loss, row, s, i, out)
		}
	}
	ev.Loss /= float64(rows)
	if s.Labels != nil {
		ev.Accuracy = float64(correct) / float64(rows)
	}
	return ev, nil
}

// rowLoss is one row's loss given the head's output (probabilities or values).
func rowLoss(loss string, y []float64, s Samples, i, out int) float64 {
	if loss == LossMSE {
		if s.Targets == nil {
			return 0
		}
		var l float64
		for j, v := range y {
			d := v - float64(s.Targets[i*out+j])
			l += d * d
		}
		return l / float64(out)
	}
	if s.Labels != nil {
		return -math.Log(max(y[s.Labels[i]], 1e-12))
	}
	var l float64
	for j, v := range y {
		if t := float64(s.Targets[i*out+j]); t > 0 {
			l -= t * math.Log(max(v, 1e-12))
		}
	}
	return l
}
