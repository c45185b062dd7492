package routing

import (
	"context"
	"errors"
	"math"
	"sync"
)

// Part is one expert's contribution to a mixture.
type Part struct {
	Expert string    `json:"expert"`
	Peer   string    `json:"peer"`
	Gate   float64   `json:"gate"`
	Label  string    `json:"label,omitempty"`
	Output []float32 `json:"output"`
	Error  string    `json:"error,omitempty"`
}

// Mixture is the answer of several experts mixed by gate weights.
type Mixture struct {
	Answer Answer
	Parts  []Part
}

// GateTemperature softens the gate: weights are softmax(score / GateTemperature) over the
// experts that answered.
const GateTemperature = 0.1

// Mix asks the k best distinct experts that share the best one's interface (spec digest), each
// with failover across its own providers, and mixes their outputs by gate weights from their
// scores. Experts that fail are left out of the mixture.
func (r *Router) Mix(ctx context.Context, ranked []Scored, k int, call CallFunc) (Mixture, error) {
	if len(ranked) == 0 {
		return Mixture{}, ErrNoCandidate
	}
	spec := ranked[0].Spec
	var order []string
	byExpert := map[string][]Scored{}
	for _, s := range ranked {
		if s.Spec != spec {
			continue
		}
		if _, ok := byExpert[s.Expert]; !ok {
			if len(order) == k {
				continue
			}
			order = append(order, s.Expert)
		}
		byExpert[s.Expert] = append(byExpert[s.Expert], s)
	}
	parts := make([]Part, len(order))
	scores := make([]float64, len(order))
	answers := make([]Answer, len(order))
	var wg sync.WaitGroup
	for i, id := range order {
		scores[i] = byExpert[id][0].Score
		wg.Add(1)
		go func() {
			defer wg.Done()
			ans, err := r.Dispatch(ctx, byExpert[id], 0, call)
			parts[i] = Part{Expert: id, Peer: ans.Candidate.Peer, Label: ans.Label, Output: ans.Output}
			answers[i] = ans
			if err != nil {
				parts[i].Error = err.Error()
			}
		}()
	}
	wg.Wait()
	var maxScore = math.Inf(-1)
	for i, p := range parts {
		if p.Error == "" {
			maxScore = math.Max(maxScore, scores[i])
		}
	}
	if math.IsInf(maxScore, -1) {
		return Mixture{Parts: parts}, errors.New("query: every expert of the mixture failed")
	}
	var sum float64
	for i, p := range parts {
		if p.Error == "" {
			parts[i].Gate = math.Exp((scores[i] - maxScore) / GateTemperature)
			sum += parts[i].Gate
		}
	}
	var mixed []float32
	var best Answer
	for i := range parts {
		if parts[i].Error != "" {
			continue
		}
		parts[i].Gate /= sum
		if mixed == nil {
			mixed = make([]float32, len(parts[i].Output))
			best = answers[i]
		}
		if len(parts[i].Output) != len(mixed) {
			parts[i].Error, parts[i].Gate = "output width differs from the mixture's", 0
			continue
		}
		for j, v := range parts[i].Output {
			mixed[j] += float32(parts[i].Gate) * v
		}
	}
	best.Output, best.Label = mixed, ""
	return Mixture{Answer: best, Parts: parts}, nil
}
