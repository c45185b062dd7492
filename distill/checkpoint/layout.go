package checkpoint

import "fmt"

// Proj names the three projections of a SwiGLU expert: out = down(silu(gate(x)) ⊙ up(x)).
type Proj int

// The projections, in the order experts store them.
const (
	Gate Proj = iota
	Up
	Down
)

func (p Proj) String() string {
	switch p {
	case Gate:
		return "gate"
	case Up:
		return "up"
	case Down:
		return "down"
	}
	return fmt.Sprintf("Proj(%d)", int(p))
}

// ExpertTensor returns the name of projection p of routed expert e in layer l.
func (c *Config) ExpertTensor(l, e int, p Proj) string {
	if c.Family == Mixtral {
		w := [3]string{"w1", "w3", "w2"}[p] // w1 gate, w3 up, w2 down
		return fmt.Sprintf("model.layers.%d.block_sparse_moe.experts.%d.%s.weight", l, e, w)
	}
	return fmt.Sprintf("model.layers.%d.mlp.experts.%d.%s_proj.weight", l, e, p)
}

// SharedTensor returns the name of projection p of layer l's shared expert
// block, or "" when the family has none.
func (c *Config) SharedTensor(l int, p Proj) string {
	switch c.Family {
	case DeepSeekV3:
		return fmt.Sprintf("model.layers.%d.mlp.shared_experts.%s_proj.weight", l, p)
	case QwenMoE:
		return fmt.Sprintf("model.layers.%d.mlp.shared_expert.%s_proj.weight", l, p)
	}
	return ""
}

// DenseTensor returns the name of projection p of dense layer l's MLP.
func (c *Config) DenseTensor(l int, p Proj) string {
	return fmt.Sprintf("model.layers.%d.mlp.%s_proj.weight", l, p)
}

// RouterTensor returns the name of layer l's router weight [experts, hidden].
func (c *Config) RouterTensor(l int) string {
	if c.Family == Mixtral {
		return fmt.Sprintf("model.layers.%d.block_sparse_moe.gate.weight", l)
	}
	return fmt.Sprintf("model.layers.%d.mlp.gate.weight", l)
}

// RouterBiasTensor returns the name of layer l's selection bias
// (e_score_correction_bias), or "" when the family has none.
func (c *Config) RouterBiasTensor(l int) string {
	if c.Family == DeepSeekV3 {
		return fmt.Sprintf("model.layers.%d.mlp.gate.e_score_correction_bias", l)
	}
	return ""
}

// EmbeddingTensor is the token embedding [vocab, hidden].
const EmbeddingTensor = "model.embed_tokens.weight"

// PostAttentionNormTensor returns the RMSNorm weight applied to the router's input in layer l.
func PostAttentionNormTensor(l int) string {
	return fmt.Sprintf("model.layers.%d.post_attention_layernorm.weight", l)
}

// ScaleSuffix is appended to an FP8 weight's name to name its block scales.
const ScaleSuffix = "_scale_inv"

// ExpertShape returns the expected [rows, cols] of projection p of a routed
// expert: gate and up map hidden → intermediate, down maps back.
func (c *Config) ExpertShape(p Proj) [2]int {
	return projShape(p, c.HiddenSize, c.ExpertIntermediate())
}

// SharedShape returns the expected shape of projection p of the shared block.
func (c *Config) SharedShape(p Proj) [2]int {
	return projShape(p, c.HiddenSize, c.SharedIntermediate())
}

func projShape(p Proj, hidden, inter int) [2]int {
	if p == Down {
		return [2]int{hidden, inter}
	}
	return [2]int{inter, hidden}
}
