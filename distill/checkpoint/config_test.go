package checkpoint

import (
	"os"
	"strings"
	"testing"
)

func TestParseConfigKimiK2(t *testing.T) {
	data, err := os.ReadFile("../ckptgen/kimi_k2_config.json")
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseConfig(data)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"family", c.Family, DeepSeekV3},
		{"experts", c.Experts(), 384},
		{"expert intermediate", c.ExpertIntermediate(), 2048},
		{"shared", c.SharedExperts(), 1},
		{"shared intermediate", c.SharedIntermediate(), 2048},
		{"top-k", c.TopK(), 8},
		{"scoring", c.Scoring(), "sigmoid"},
		{"normalise", c.NormalizeTopK(), true},
		{"scale", c.ScalingFactor(), 2.827},
		{"layer 0 dense", c.IsMoELayer(0), false},
		{"layer 1 MoE", c.IsMoELayer(1), true},
		{"layer 60 MoE", c.IsMoELayer(60), true},
		{"layer 61 absent", c.IsMoELayer(61), false},
		{"gate shape", c.ExpertShape(Gate), [2]int{2048, 7168}},
		{"down shape", c.ExpertShape(Down), [2]int{7168, 2048}},
		{"expert tensor", c.ExpertTensor(5, 17, Up), "model.layers.5.mlp.experts.17.up_proj.weight"},
		{"router", c.RouterTensor(5), "model.layers.5.mlp.gate.weight"},
		{"bias", c.RouterBiasTensor(5), "model.layers.5.mlp.gate.e_score_correction_bias"},
		{"shared tensor", c.SharedTensor(5, Down), "model.layers.5.mlp.shared_experts.down_proj.weight"},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("%s: got %v, want %v", ck.name, ck.got, ck.want)
		}
	}
	if br, bc := c.BlockSize(); br != 128 || bc != 128 {
		t.Errorf("block size %d×%d, want 128×128", br, bc)
	}
}

func TestParseConfigFamilies(t *testing.T) {
	tests := []struct {
		name      string
		json      string
		family    Family
		experts   int
		moeLayers []bool
		expert    string
		router    string
		shared    string
		scoring   string
		normalize bool
	}{
		{"mixtral", `{"model_type":"mixtral","hidden_size":8,"intermediate_size":16,"num_hidden_layers":2,"num_local_experts":4,"num_experts_per_tok":2}`,
			Mixtral, 4, []bool{true, true}, "model.layers.1.block_sparse_moe.experts.3.w3.weight",
			"model.layers.1.block_sparse_moe.gate.weight", "", "softmax", true},
		{"qwen2-moe", `{"model_type":"qwen2_moe","hidden_size":8,"moe_intermediate_size":4,"shared_expert_intermediate_size":8,
			"num_hidden_layers":4,"num_experts":6,"num_experts_per_tok":2,"decoder_sparse_step":2,"mlp_only_layers":[3]}`,
			QwenMoE, 6, []bool{false, true, false, false}, "model.layers.1.mlp.experts.3.up_proj.weight",
			"model.layers.1.mlp.gate.weight", "model.layers.1.mlp.shared_expert.up_proj.weight", "softmax", false},
		{"deepseek by architecture", `{"architectures":["DeepseekV3ForCausalLM"],"hidden_size":8,"moe_intermediate_size":4,
			"num_hidden_layers":3,"n_routed_experts":4,"num_experts_per_tok":2,"first_k_dense_replace":1,"moe_layer_freq":2}`,
			DeepSeekV3, 4, []bool{false, false, true}, "model.layers.1.mlp.experts.3.up_proj.weight",
			"model.layers.1.mlp.gate.weight", "model.layers.1.mlp.shared_experts.up_proj.weight", "sigmoid", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConfig([]byte(tc.json))
			if err != nil {
				t.Fatal(err)
			}
			if c.Family != tc.family || c.Experts() != tc.experts || c.Scoring() != tc.scoring || c.NormalizeTopK() != tc.normalize {
				t.Errorf("family %s experts %d scoring %s normalize %v", c.Family, c.Experts(), c.Scoring(), c.NormalizeTopK())
			}
			for l, want := range tc.moeLayers {
				if got := c.IsMoELayer(l); got != want {
					t.Errorf("IsMoELayer(%d) = %v, want %v", l, got, want)
				}
			}
			if got := c.ExpertTensor(1, 3, Up); got != tc.expert {
				t.Errorf("expert tensor %q, want %q", got, tc.expert)
			}
			if got := c.RouterTensor(1); got != tc.router {
				t.Errorf("router %q, want %q", got, tc.router)
			}
			if got := c.SharedTensor(1, Up); got != tc.shared {
				t.Errorf("shared %q, want %q", got, tc.shared)
			}
		})
	}
}

func TestParseConfigErrors(t *testing.T) {
	ok := `"model_type":"kimi_k2","hidden_size":8,"moe_intermediate_size":4,"num_hidden_layers":2,"n_routed_experts":4`
	tests := []struct {
		name, json, want string
	}{
		{"not an object", `[1]`, "not a JSON object"},
		{"malformed", `{"hidden_size":`, "config"},
		{"unknown model", `{"model_type":"llama","hidden_size":8,"num_hidden_layers":1}`, `"llama"`},
		{"no experts", `{"model_type":"kimi_k2","hidden_size":8,"moe_intermediate_size":4,"num_hidden_layers":2,"num_experts_per_tok":1}`, "n_routed_experts"},
		{"negative hidden", `{` + strings.Replace(ok, `"hidden_size":8`, `"hidden_size":-8`, 1) + `,"num_experts_per_tok":1}`, "hidden_size = -8"},
		{"top-k above experts", `{` + ok + `,"num_experts_per_tok":5}`, "num_experts_per_tok = 5"},
		{"top-k zero", `{` + ok + `}`, "num_experts_per_tok = 0"},
		{"groups do not divide", `{` + ok + `,"num_experts_per_tok":2,"n_group":3,"topk_group":1}`, "n_group = 3"},
		{"bad block size", `{` + ok + `,"num_experts_per_tok":2,"quantization_config":{"weight_block_size":[0,128]}}`, "weight_block_size"},
		{"huge hidden", `{` + strings.Replace(ok, `"hidden_size":8`, `"hidden_size":99999999999`, 1) + `,"num_experts_per_tok":1}`, "hidden_size"},
		{"wrong type", `{` + ok + `,"num_experts_per_tok":"eight"}`, "config"},
		{"bad scoring", `{` + ok + `,"num_experts_per_tok":2,"scoring_func":"relu"}`, "scoring_func"},
		{"mlp-only layer out of range", `{"model_type":"qwen2_moe","hidden_size":8,"moe_intermediate_size":4,"num_hidden_layers":2,"num_experts":4,"num_experts_per_tok":2,"mlp_only_layers":[7]}`, "mlp_only_layers"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tc.json))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
