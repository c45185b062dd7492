package analyze

import (
	"cmp"
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"

	"github.com/meshnode/meshnode/distill/checkpoint"
)

// Rule is a layer's routing rule, read from the config.
type Rule struct {
	Scoring   string  `json:"scoring"` // sigmoid (DeepSeek-V3, Kimi-K2) or softmax (Mixtral, Qwen-MoE)
	TopK      int     `json:"top_k"`
	Normalize bool    `json:"normalize_top_k"`
	Scale     float64 `json:"routed_scaling_factor"`
	NGroup    int     `json:"n_group"`
	TopKGroup int     `json:"topk_group"`
}

// RuleOf returns the routing rule of config c.
func RuleOf(c *checkpoint.Config) Rule {
	return Rule{Scoring: c.Scoring(), TopK: c.TopK(), Normalize: c.NormalizeTopK(), Scale: c.ScalingFactor(),
		NGroup: c.NGroup, TopKGroup: c.TopKGroup}
}

// Routed is the routing of N tokens: for each token its K chosen experts
// (in selection order) and their mixing weights.
type Routed struct {
	N, K    int
	Experts []int32   // N × K
	Weights []float32 // N × K
}

// Route routes the tokens x (N × hidden) through router r:
// logits = x·Wᵀ; scores = sigmoid(logits) or softmax(logits); the top-k
// experts are chosen on scores + bias (the selection bias only changes which
// experts fire; with n_group > 1, first restricted to the topk_group groups
// whose two best biased scores sum highest, as DeepSeek-V3's noaux_tc does);
// their mixing weights are the unbiased scores, renormalised to sum 1 when
// the rule says so, times the routed scaling factor.
func Route(x checkpoint.Matrix, r *checkpoint.Router, rule Rule) (*Routed, error) {
	e, h := r.Weight.Rows, r.Weight.Cols
	if x.Cols != h {
		return nil, fmt.Errorf("routing layer %d: inputs have %d features, the router expects %d", r.Layer, x.Cols, h)
	}
	if rule.TopK < 1 || rule.TopK > e {
		return nil, fmt.Errorf("routing layer %d: top-%d of %d experts", r.Layer, rule.TopK, e)
	}
	if r.Bias != nil && len(r.Bias) != e {
		return nil, fmt.Errorf("routing layer %d: %d biases for %d experts", r.Layer, len(r.Bias), e)
	}
	logits := checkpoint.Matrix{Rows: x.Rows, Cols: e, Data: make([]float32, x.Rows*e)}
	if x.Rows > 0 {
		blas32.Gemm(blas.NoTrans, blas.Trans, 1, general(x), general(r.Weight), 0, general(logits))
	}
	k := rule.TopK
	out := &Routed{N: x.Rows, K: k, Experts: make([]int32, x.Rows*k), Weights: make([]float32, x.Rows*k)}
	scores := make([]float64, e)
	choice := make([]float64, e)
	order := make([]int, e)
	for t := range x.Rows {
		lg := logits.Row(t)
		switch rule.Scoring {
		case "sigmoid":
			for i, v := range lg {
				scores[i] = 1 / (1 + math.Exp(-float64(v)))
			}
		default:
			m := float64(slices.Max(lg))
			var sum float64
			for i, v := range lg {
				scores[i] = math.Exp(float64(v) - m)
				sum += scores[i]
			}
			for i := range scores {
				scores[i] /= sum
			}
		}
		for i := range choice {
			choice[i] = scores[i]
			if r.Bias != nil {
				choice[i] += float64(r.Bias[i])
			}
		}
		if rule.NGroup > 1 && rule.TopKGroup < rule.NGroup {
			maskGroups(choice, rule.NGroup, rule.TopKGroup)
		}
		for i := range order {
			order[i] = i
		}
		slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(choice[b], choice[a]) })
		var sum float64
		for j, i := range order[:k] {
			out.Experts[t*k+j] = int32(i)
			sum += scores[i]
		}
		for j, i := range order[:k] {
			w := scores[i]
			if rule.Normalize && sum > 0 {
				w /= sum
			}
			out.Weights[t*k+j] = float32(w * rule.Scale)
		}
	}
	return out, nil
}

// maskGroups keeps only the topk groups (of n equal groups of experts)
// whose two highest scores sum highest, setting the others to -Inf.
func maskGroups(choice []float64, n, topk int) {
	size := len(choice) / n
	gs := make([]float64, n)
	for g := range n {
		grp := slices.Clone(choice[g*size : (g+1)*size])
		slices.Sort(grp)
		gs[g] = grp[len(grp)-1]
		if len(grp) > 1 {
			gs[g] += grp[len(grp)-2]
		}
	}
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(gs[b], gs[a]) })
	for _, g := range idx[topk:] {
		for i := g * size; i < (g+1)*size; i++ {
			choice[i] = math.Inf(-1)
		}
	}
}
