package analyze

import (
	"math"
	"testing"

	"github.com/meshnode/meshnode/distill/checkpoint"
	"github.com/meshnode/meshnode/distill/ckptgen"
)

func TestConfigParamsKimiK2(t *testing.T) {
	c, err := checkpoint.ParseConfig(ckptgen.KimiK2Config())
	if err != nil {
		t.Fatal(err)
	}
	p := ConfigParams(c)
	// Independent arithmetic from the published config.
	const (
		h, v, layers, moeLayers = 7168, 163840, 61, 60
		experts, topK, inter    = 384, 8, 2048
		perExpert               = 3 * 7168 * 2048 // 44,040,192
		attention               = 7168*1536 + 1536 + 1536*64*192 + 7168*576 + 512 + 512*64*256 + 64*128*7168
	)
	want := Params{
		Embedding:     v * h,
		LMHead:        v * h,
		Attention:     layers * attention,
		Norms:         2*h*layers + h,
		DenseMLP:      3 * h * 18432,
		Routers:       moeLayers * (experts*h + experts),
		RoutedExperts: moeLayers * experts * perExpert,
		SharedExperts: moeLayers * perExpert,
	}
	want.Total = want.Embedding + want.LMHead + want.Attention + want.Norms + want.DenseMLP + want.Routers + want.RoutedExperts + want.SharedExperts
	want.Activated = want.Total - moeLayers*(experts-topK)*perExpert
	want.ActivatedNoEmbedding = want.Activated - want.Embedding
	if p != want {
		t.Fatalf("ConfigParams:\n got %+v\nwant %+v", p, want)
	}
	if ExpertParams(c) != 44_040_192 {
		t.Errorf("params per expert %d", ExpertParams(c))
	}
	// Against Moonshot's published 1T total and 32B activated.
	if r := float64(p.Total) / 1e12; r < 1 || r > 1.05 {
		t.Errorf("total %d is not about 1T", p.Total)
	}
	if r := float64(p.Activated) / 32e9; r < 0.98 || r > 1.05 {
		t.Errorf("activated %d is not about 32B", p.Activated)
	}
}

func TestConfigParamsPublishedModels(t *testing.T) {
	tests := []struct {
		name             string
		config           string
		total, activated float64 // published
	}{
		{"Mixtral-8x7B", `{"model_type":"mixtral","hidden_size":4096,"intermediate_size":14336,"num_hidden_layers":32,
			"num_local_experts":8,"num_experts_per_tok":2,"num_attention_heads":32,"num_key_value_heads":8,"vocab_size":32000}`, 46.7e9, 12.9e9},
		{"Qwen1.5-MoE-A2.7B", `{"model_type":"qwen2_moe","hidden_size":2048,"intermediate_size":5632,"moe_intermediate_size":1408,
			"shared_expert_intermediate_size":5632,"num_hidden_layers":24,"num_experts":60,"num_experts_per_tok":4,
			"num_attention_heads":16,"num_key_value_heads":16,"vocab_size":151936,"decoder_sparse_step":1}`, 14.3e9, 2.7e9},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := checkpoint.ParseConfig([]byte(tc.config))
			if err != nil {
				t.Fatal(err)
			}
			p := ConfigParams(c)
			if d := math.Abs(float64(p.Total)/tc.total - 1); d > 0.01 {
				t.Errorf("total %d, published %.3g", p.Total, tc.total)
			}
			if d := math.Abs(float64(p.Activated)/tc.activated - 1); d > 0.03 {
				t.Errorf("activated %d, published %.3g", p.Activated, tc.activated)
			}
		})
	}
}

func TestRole(t *testing.T) {
	tests := map[string]string{
		"model.embed_tokens.weight":                             "embedding",
		"lm_head.weight":                                        "lm_head",
		"model.layers.3.self_attn.q_a_layernorm.weight":         "attention",
		"model.layers.3.post_attention_layernorm.weight":        "norm",
		"model.norm.weight":                                     "norm",
		"model.layers.3.mlp.experts.9.up_proj.weight":           "routed_expert",
		"model.layers.3.block_sparse_moe.experts.1.w2.weight":   "routed_expert",
		"model.layers.3.mlp.shared_experts.down_proj.weight":    "shared_expert",
		"model.layers.3.mlp.shared_expert_gate.weight":          "shared_expert",
		"model.layers.3.mlp.gate.e_score_correction_bias":       "router",
		"model.layers.3.block_sparse_moe.gate.weight":           "router",
		"model.layers.0.mlp.gate_proj.weight":                   "dense_mlp",
		"model.layers.3.mlp.experts.9.up_proj.weight_scale_inv": "scale",
		"model.layers.0.self_attn.rotary_emb.inv_freq":          "attention",
		"something.else":                                        "other",
	}
	for name, want := range tests {
		if got := Role(name); got != want {
			t.Errorf("Role(%q) = %q, want %q", name, got, want)
		}
	}
}
