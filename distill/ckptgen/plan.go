package ckptgen

import (
	"fmt"

	"github.com/meshnode/meshnode/distill/checkpoint"
	"github.com/meshnode/meshnode/experts/safetensors"
)

// planner accumulates the tensors of a checkpoint in file order.
type planner struct {
	plan   []tensorPlan
	fp8    bool
	br, bc int
}

func (p *planner) add(name string, dt safetensors.DType, shape ...int64) {
	p.plan = append(p.plan, tensorPlan{Name: name, DType: dt, Shape: shape})
}

// linear adds a weight matrix: FP8 with its block scales, or BF16.
func (p *planner) linear(name string, rows, cols int64) {
	if !p.fp8 {
		p.add(name, safetensors.BF16, rows, cols)
		return
	}
	p.add(name, safetensors.F8E4M3, rows, cols)
	p.add(name+checkpoint.ScaleSuffix, safetensors.F32, (rows+int64(p.br)-1)/int64(p.br), (cols+int64(p.bc)-1)/int64(p.bc))
}

// planFor lists every tensor of a checkpoint of config c in the real layout
// of its family. fp8 selects FP8 linear weights with block scales (the
// DeepSeek-V3/Kimi-K2 release format); otherwise linear weights are BF16.
func planFor(c *checkpoint.Config, fp8 bool) ([]tensorPlan, error) {
	br, bc := c.BlockSize()
	p := &planner{fp8: fp8, br: br, bc: bc}
	h := int64(c.HiddenSize)
	if c.VocabSize < 1 || c.NumAttentionHeads < 1 {
		return nil, fmt.Errorf("config needs vocab_size and num_attention_heads to lay out a checkpoint")
	}
	p.add(checkpoint.EmbeddingTensor, safetensors.BF16, int64(c.VocabSize), h)
	for l := range c.NumHiddenLayers {
		pre := fmt.Sprintf("model.layers.%d.", l)
		p.add(pre+"input_layernorm.weight", safetensors.BF16, h)
		switch c.Family {
		case checkpoint.DeepSeekV3:
			p.mlaAttention(c, pre)
		default:
			p.gqaAttention(c, pre)
		}
		p.add(checkpoint.PostAttentionNormTensor(l), safetensors.BF16, h)
		if !c.IsMoELayer(l) {
			for pr := checkpoint.Gate; pr <= checkpoint.Down; pr++ {
				rows, cols := int64(c.IntermediateSize), h
				if pr == checkpoint.Down {
					rows, cols = cols, rows
				}
				p.linear(c.DenseTensor(l, pr), rows, cols)
			}
			continue
		}
		e := int64(c.Experts())
		p.add(c.RouterTensor(l), safetensors.BF16, e, h)
		if b := c.RouterBiasTensor(l); b != "" {
			p.add(b, safetensors.F32, e)
		}
		for x := range c.Experts() {
			for pr := checkpoint.Gate; pr <= checkpoint.Down; pr++ {
				s := c.ExpertShape(pr)
				p.linear(c.ExpertTensor(l, x, pr), int64(s[0]), int64(s[1]))
			}
		}
		if c.SharedExperts() > 0 {
			for pr := checkpoint.Gate; pr <= checkpoint.Down; pr++ {
				s := c.SharedShape(pr)
				p.linear(c.SharedTensor(l, pr), int64(s[0]), int64(s[1]))
			}
			if c.Family == checkpoint.QwenMoE {
				p.add(pre+"mlp.shared_expert_gate.weight", safetensors.BF16, 1, h)
			}
		}
	}
	p.add("model.norm.weight", safetensors.BF16, h)
	if !c.TieWordEmbeddings {
		p.add("lm_head.weight", safetensors.BF16, int64(c.VocabSize), h)
	}
	return p.plan, nil
}

// mlaAttention adds DeepSeek-V3's multi-head latent attention.
func (p *planner) mlaAttention(c *checkpoint.Config, pre string) {
	h, heads := int64(c.HiddenSize), int64(c.NumAttentionHeads)
	qk := int64(c.QKNopeHeadDim + c.QKRopeHeadDim)
	if c.QLoraRank != nil && *c.QLoraRank > 0 {
		q := int64(*c.QLoraRank)
		p.linear(pre+"self_attn.q_a_proj.weight", q, h)
		p.add(pre+"self_attn.q_a_layernorm.weight", safetensors.BF16, q)
		p.linear(pre+"self_attn.q_b_proj.weight", heads*qk, q)
	} else {
		p.linear(pre+"self_attn.q_proj.weight", heads*qk, h)
	}
	kv := int64(c.KVLoraRank)
	p.linear(pre+"self_attn.kv_a_proj_with_mqa.weight", kv+int64(c.QKRopeHeadDim), h)
	p.add(pre+"self_attn.kv_a_layernorm.weight", safetensors.BF16, kv)
	p.linear(pre+"self_attn.kv_b_proj.weight", heads*int64(c.QKNopeHeadDim+c.VHeadDim), kv)
	p.linear(pre+"self_attn.o_proj.weight", h, heads*int64(c.VHeadDim))
}

// gqaAttention adds grouped-query attention (Mixtral, Qwen-MoE); Qwen2 has q/k/v biases.
func (p *planner) gqaAttention(c *checkpoint.Config, pre string) {
	h, heads := int64(c.HiddenSize), int64(c.NumAttentionHeads)
	kvHeads := int64(max(c.NumKeyValueHeads, 1))
	hd := int64(c.HeadDim)
	if hd == 0 {
		hd = h / heads
	}
	p.linear(pre+"self_attn.q_proj.weight", heads*hd, h)
	p.linear(pre+"self_attn.k_proj.weight", kvHeads*hd, h)
	p.linear(pre+"self_attn.v_proj.weight", kvHeads*hd, h)
	if c.ModelType == "qwen2_moe" {
		p.add(pre+"self_attn.q_proj.bias", safetensors.BF16, heads*hd)
		p.add(pre+"self_attn.k_proj.bias", safetensors.BF16, kvHeads*hd)
		p.add(pre+"self_attn.v_proj.bias", safetensors.BF16, kvHeads*hd)
	}
	if c.ModelType == "qwen3_moe" {
		p.add(pre+"self_attn.q_norm.weight", safetensors.BF16, hd)
		p.add(pre+"self_attn.k_norm.weight", safetensors.BF16, hd)
	}
	p.linear(pre+"self_attn.o_proj.weight", h, heads*hd)
}
