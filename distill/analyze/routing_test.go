package analyze

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/meshnode/meshnode/distill/checkpoint"
)

func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

func TestRoute(t *testing.T) {
	// Router rows are unit vectors, so logit_e(x) = x_e.
	eye := func(n int) checkpoint.Matrix {
		m := checkpoint.Matrix{Rows: n, Cols: n, Data: make([]float32, n*n)}
		for i := range n {
			m.Data[i*n+i] = 1
		}
		return m
	}
	x := checkpoint.Matrix{Rows: 1, Cols: 4, Data: []float32{2, 1, 0, -1}}
	tests := []struct {
		name    string
		bias    []float32
		rule    Rule
		experts []int32
		weights []float64
	}{
		{"sigmoid, no bias", nil, Rule{Scoring: "sigmoid", TopK: 2, Normalize: true, Scale: 2.5},
			[]int32{0, 1}, []float64{2.5 * sigmoid(2) / (sigmoid(2) + sigmoid(1)), 2.5 * sigmoid(1) / (sigmoid(2) + sigmoid(1))}},
		{"bias changes the choice but not the weights", []float32{0, 0, 0, 1}, Rule{Scoring: "sigmoid", TopK: 2, Normalize: true, Scale: 1},
			[]int32{3, 0}, []float64{sigmoid(-1) / (sigmoid(-1) + sigmoid(2)), sigmoid(2) / (sigmoid(-1) + sigmoid(2))}},
		{"unnormalised", nil, Rule{Scoring: "sigmoid", TopK: 1, Scale: 1}, []int32{0}, []float64{sigmoid(2)}},
		{"softmax renormalised (Mixtral)", nil, Rule{Scoring: "softmax", TopK: 2, Normalize: true, Scale: 1},
			[]int32{0, 1}, []float64{math.E / (math.E + 1), 1 / (math.E + 1)}},
		{"softmax, weights of all experts (Qwen2-MoE)", nil, Rule{Scoring: "softmax", TopK: 1, Scale: 1},
			[]int32{0}, []float64{math.Exp(2) / (math.Exp(2) + math.Exp(1) + 1 + math.Exp(-1))}},
		// Groups {0,1} and {2,3}: the second group's two best biased scores sum higher.
		{"group-limited", []float32{0, 0, 1, 1}, Rule{Scoring: "sigmoid", TopK: 1, Scale: 1, NGroup: 2, TopKGroup: 1},
			[]int32{2}, []float64{sigmoid(0)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Route(x, &checkpoint.Router{Weight: eye(4), Bias: tc.bias}, tc.rule)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(r.Experts, tc.experts) {
				t.Fatalf("experts %v, want %v", r.Experts, tc.experts)
			}
			for i, w := range tc.weights {
				if math.Abs(float64(r.Weights[i])-w) > 1e-6 {
					t.Errorf("weight %d = %v, want %v", i, r.Weights[i], w)
				}
			}
		})
	}
}

func TestRouteErrors(t *testing.T) {
	w := checkpoint.Matrix{Rows: 4, Cols: 3, Data: make([]float32, 12)}
	tests := []struct {
		name string
		x    checkpoint.Matrix
		bias []float32
		k    int
		want string
	}{
		{"width", checkpoint.Matrix{Rows: 1, Cols: 2, Data: make([]float32, 2)}, nil, 1, "features"},
		{"top-k", checkpoint.Matrix{Rows: 1, Cols: 3, Data: make([]float32, 3)}, nil, 5, "top-5"},
		{"bias", checkpoint.Matrix{Rows: 1, Cols: 3, Data: make([]float32, 3)}, []float32{1}, 1, "biases"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Route(tc.x, &checkpoint.Router{Weight: w, Bias: tc.bias}, Rule{Scoring: "sigmoid", TopK: tc.k, Scale: 1})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestLayerRoutingAndCoActivation(t *testing.T) {
	// 4 tokens, top-2 of 3 experts; tokens 0-1 are domain 0, 2-3 domain 1.
	a := &Routed{N: 4, K: 2, Experts: []int32{0, 1, 0, 1, 2, 1, 2, 1}, Weights: []float32{0.75, 0.25, 0.75, 0.25, 0.5, 0.5, 0.5, 0.5}}
	ids := []int{0, 0, 1, 1}
	lr := layerRouting(7, a, 3, ids, 2)
	e0, e1, e2 := lr.Experts[0], lr.Experts[1], lr.Experts[2]
	if e0.Count != 2 || e1.Count != 4 || e2.Count != 2 {
		t.Fatalf("counts %d %d %d", e0.Count, e1.Count, e2.Count)
	}
	if !slices.Equal(e0.RateByDomain, []float64{1, 0}) || !slices.Equal(e0.Specialization, []float64{1, 0}) {
		t.Errorf("expert 0: rates %v specialization %v", e0.RateByDomain, e0.Specialization)
	}
	if !slices.Equal(e1.Specialization, []float64{0.5, 0.5}) || e1.MeanWeight != (0.25+0.25+0.5+0.5)/4 {
		t.Errorf("expert 1: %+v", e1)
	}
	// Load shares 2/8, 4/8, 2/8: entropy 1.5 bits.
	if math.Abs(lr.LoadEntropy-1.5) > 1e-12 || math.Abs(lr.NormalizedLoadEntropy-1.5/math.Log2(3)) > 1e-12 {
		t.Errorf("load entropy %v (normalised %v)", lr.LoadEntropy, lr.NormalizedLoadEntropy)
	}
	// Token entropies: H(0.75, 0.25) twice and 1 bit twice.
	h := -(0.75*math.Log2(0.75) + 0.25*math.Log2(0.25))
	if math.Abs(lr.TokenEntropy-(2*h+2)/4) > 1e-6 {
		t.Errorf("token entropy %v", lr.TokenEntropy)
	}
	sp := specialists(lr, []string{"x", "y"}, SpecialistRule{Share: 0.75, Rate: 0.5})
	if len(sp) != 2 || sp[0].Expert != 0 || sp[0].Domain != "x" || sp[1].Expert != 2 || sp[1].Domain != "y" {
		t.Errorf("specialists %+v", sp)
	}
	setSaliency(&lr, []float64{1, 1, 10})
	if lr.Experts[2].SaliencyRank != 1 || lr.Experts[2].Saliency != 0.25*10 {
		t.Errorf("saliency %+v", lr.Experts[2])
	}
	// The next layer routes the same tokens to 2 then 0: expert 0 → 2 share tokens 0-1 exactly.
	b := &Routed{N: 4, K: 1, Experts: []int32{2, 2, 0, 0}, Weights: []float32{1, 1, 1, 1}}
	ca := coActivation(7, 8, a, b, 3, 3)
	if len(ca.Pairs) != 3 {
		t.Fatalf("pairs %+v", ca.Pairs)
	}
	top := ca.Pairs[0]
	if top.Jaccard != 1 || top.Count != 2 || math.Abs(top.Lift-2) > 1e-12 {
		t.Errorf("top pair %+v", top)
	}
}
