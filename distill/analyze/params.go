package analyze

import (
	"strings"

	"github.com/meshnode/meshnode/distill/checkpoint"
)

// Params breaks a model's parameters down by role.
type Params struct {
	Embedding     int64 `json:"embedding"`
	LMHead        int64 `json:"lm_head"`
	Attention     int64 `json:"attention"` // including the attention's own layernorms
	Norms         int64 `json:"norms"`     // input/post-attention layernorms and the final norm
	DenseMLP      int64 `json:"dense_mlp"`
	Routers       int64 `json:"routers"` // router weights and selection biases
	RoutedExperts int64 `json:"routed_experts"`
	SharedExperts int64 `json:"shared_experts"`
	Other         int64 `json:"other"` // tensors of no known role (e.g. multi-token-prediction layers)
	Total         int64 `json:"total"`
	// Activated counts what one token uses: every parameter except the
	// routed experts it is not routed to.
	Activated int64 `json:"activated"`
	// ActivatedNoEmbedding leaves out the input embedding (a row lookup).
	ActivatedNoEmbedding int64 `json:"activated_no_embedding"`
}

func (p *Params) finish(moeLayers, experts, topK int, perExpert int64) {
	p.Total = p.Embedding + p.LMHead + p.Attention + p.Norms + p.DenseMLP + p.Routers + p.RoutedExperts + p.SharedExperts + p.Other
	p.Activated = p.Total - int64(moeLayers)*int64(experts-topK)*perExpert
	p.ActivatedNoEmbedding = p.Activated - p.Embedding
}

// ConfigParams counts parameters from the config alone, with the formulas
// of each family's modelling code.
func ConfigParams(c *checkpoint.Config) Params {
	h, l := int64(c.HiddenSize), int64(c.NumHiddenLayers)
	var p Params
	p.Embedding = int64(c.VocabSize) * h
	if !c.TieWordEmbeddings {
		p.LMHead = p.Embedding
	}
	p.Norms = 2*h*l + h
	p.Attention = l * attentionParams(c)
	moe := 0
	for i := range c.NumHiddenLayers {
		if !c.IsMoELayer(i) {
			p.DenseMLP += 3 * h * int64(c.IntermediateSize)
			continue
		}
		moe++
		e := int64(c.Experts())
		p.Routers += e * h
		if routerHasBias(c) {
			p.Routers += e
		}
		p.RoutedExperts += e * ExpertParams(c)
		p.SharedExperts += 3 * h * int64(c.SharedIntermediate())
		if c.Family == checkpoint.QwenMoE && c.SharedIntermediate() > 0 {
			p.SharedExperts += h // shared_expert_gate
		}
	}
	p.finish(moe, c.Experts(), c.TopK(), ExpertParams(c))
	return p
}

// ExpertParams returns the parameters of one routed expert: 3·hidden·intermediate.
func ExpertParams(c *checkpoint.Config) int64 {
	return 3 * int64(c.HiddenSize) * int64(c.ExpertIntermediate())
}

// routerHasBias reports whether the config's routing uses a selection bias
// (DeepSeek-V3's auxiliary-loss-free "noaux_tc" balancing, which Kimi-K2 keeps).
func routerHasBias(c *checkpoint.Config) bool {
	return c.Family == checkpoint.DeepSeekV3 && (c.TopKMethod == "noaux_tc" || (c.TopKMethod == "" && c.ModelType != "deepseek_v2"))
}

func attentionParams(c *checkpoint.Config) int64 {
	h, heads := int64(c.HiddenSize), int64(c.NumAttentionHeads)
	if c.Family == checkpoint.DeepSeekV3 {
		qk := int64(c.QKNopeHeadDim + c.QKRopeHeadDim)
		kv := int64(c.KVLoraRank)
		var q int64
		if c.QLoraRank != nil && *c.QLoraRank > 0 {
			r := int64(*c.QLoraRank)
			q = h*r + r + r*heads*qk // q_a_proj, q_a_layernorm, q_b_proj
		} else {
			q = heads * qk * h
		}
		return q + (kv+int64(c.QKRopeHeadDim))*h + kv + kv*heads*int64(c.QKNopeHeadDim+c.VHeadDim) + h*heads*int64(c.VHeadDim)
	}
	kvh := int64(max(c.NumKeyValueHeads, 1))
	hd := int64(c.HeadDim)
	if hd == 0 && heads > 0 {
		hd = h / heads
	}
	a := 2*h*heads*hd + 2*h*kvh*hd
	switch c.ModelType {
	case "qwen2_moe":
		a += heads*hd + 2*kvh*hd // q, k, v biases
	case "qwen3_moe":
		a += 2 * hd // q_norm, k_norm
	}
	return a
}

// Role classifies a tensor name for parameter accounting.
func Role(name string) string {
	switch {
	case strings.HasSuffix(name, checkpoint.ScaleSuffix):
		return "scale"
	case name == checkpoint.EmbeddingTensor:
		return "embedding"
	case name == "lm_head.weight":
		return "lm_head"
	case strings.Contains(name, ".self_attn."):
		return "attention"
	case strings.HasSuffix(name, "layernorm.weight") || name == "model.norm.weight":
		return "norm"
	case strings.Contains(name, ".mlp.experts.") || strings.Contains(name, ".block_sparse_moe.experts."):
		return "routed_expert"
	case strings.Contains(name, ".mlp.shared_expert"):
		return "shared_expert"
	case strings.Contains(name, ".mlp.gate.") || strings.Contains(name, ".block_sparse_moe.gate."):
		return "router"
	case strings.Contains(name, ".mlp.gate_proj.") || strings.Contains(name, ".mlp.up_proj.") || strings.Contains(name, ".mlp.down_proj."):
		return "dense_mlp"
	}
	return "other"
}

// HeaderParams counts the parameters the stored tensors actually hold,
// classified by name (block scales are not parameters). Tensors of layers
// beyond the config's num_hidden_layers (multi-token prediction) count as other.
func HeaderParams(c *checkpoint.Config, tensors []checkpoint.TensorInfo) Params {
	var p Params
	for _, t := range tensors {
		n := int64(1)
		for _, d := range t.Shape {
			n *= d
		}
		role := Role(t.Name)
		if l, ok := layerOf(t.Name); ok && l >= c.NumHiddenLayers {
			role = "other"
		}
		switch role {
		case "embedding":
			p.Embedding += n
		case "lm_head":
			p.LMHead += n
		case "attention":
			p.Attention += n
		case "norm":
			p.Norms += n
		case "routed_expert":
			p.RoutedExperts += n
		case "shared_expert":
			p.SharedExperts += n
		case "router":
			p.Routers += n
		case "dense_mlp":
			p.DenseMLP += n
		case "other":
			p.Other += n
		}
	}
	moe := 0
	for i := range c.NumHiddenLayers {
		if c.IsMoELayer(i) {
			moe++
		}
	}
	p.finish(moe, c.Experts(), c.TopK(), ExpertParams(c))
	return p
}

// layerOf parses the layer index of a "model.layers.{L}." tensor name.
func layerOf(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, "model.layers.")
	if !ok {
		return 0, false
	}
	l := 0
	i := 0
	for ; i < len(rest) && rest[i] >= '0' && rest[i] <= '9' && i < 7; i++ {
		l = l*10 + int(rest[i]-'0')
	}
	return l, i > 0
}
