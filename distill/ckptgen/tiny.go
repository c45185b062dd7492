package ckptgen

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"github.com/meshnode/meshnode/distill/checkpoint"
	"github.com/meshnode/meshnode/experts/safetensors"
)

// SeedDomains are the six seed domains of the mesh, in the order the
// calibration file numbers them.
func SeedDomains() []string {
	return []string{"reasoning", "coding", "language", "tool_use", "mathematics", "context"}
}

// CalibrationFile is the name Tiny gives the calibration data it writes beside the checkpoint.
const CalibrationFile = "calibration.safetensors"

// PlantedFile is the name Tiny gives the JSON description of the structure it planted (the [Truth]).
const PlantedFile = "planted.json"

// TinyOptions sizes a tiny checkpoint. Zero fields take the defaults noted.
type TinyOptions struct {
	Family          checkpoint.Family // DeepSeekV3 (Kimi-K2 layout, FP8; default), Mixtral or QwenMoE (BF16)
	Hidden          int               // 64
	Inter           int               // 40: expert intermediate size
	Experts         int               // 16 routed experts per MoE layer
	Layers          int               // 4, the first dense
	TopK            int               // 4
	Block           [2]int            // FP8 block size, {32, 32}: 40-row and 40-column matrices end in partial blocks
	Shards          int               // 3
	Domains         []string          // SeedDomains()
	TokensPerDomain int               // 64 calibration tokens per domain
	Seed            uint64            // 1
}

func (o TinyOptions) withDefaults() TinyOptions {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	if o.Family == "" {
		o.Family = checkpoint.DeepSeekV3
	}
	def(&o.Hidden, 64)
	def(&o.Inter, 40)
	def(&o.Experts, 16)
	def(&o.Layers, 4)
	def(&o.TopK, 4)
	def(&o.Block[0], 32)
	def(&o.Block[1], 32)
	def(&o.Shards, 3)
	def(&o.TokensPerDomain, 64)
	if len(o.Domains) == 0 {
		o.Domains = SeedDomains()
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	return o
}

func (o TinyOptions) check() error {
	d := len(o.Domains)
	switch o.Family {
	case checkpoint.DeepSeekV3, checkpoint.Mixtral, checkpoint.QwenMoE:
	default:
		return fmt.Errorf("tiny checkpoint: family %q is not %s, %s or %s", o.Family, checkpoint.DeepSeekV3, checkpoint.Mixtral, checkpoint.QwenMoE)
	}
	switch {
	case o.Experts < d+2+o.TopK:
		return fmt.Errorf("tiny checkpoint: %d experts cannot hold %d specialists, 2 bias-planted experts and top-%d routing", o.Experts, d, o.TopK)
	case o.Hidden < d+9:
		return fmt.Errorf("tiny checkpoint: hidden size %d is too small for %d planted domain directions", o.Hidden, d)
	case o.Layers < 3:
		return fmt.Errorf("tiny checkpoint: need at least 3 layers (one dense, two MoE), got %d", o.Layers)
	case o.Inter < 1 || o.Hidden > 4096 || o.Inter > 4096 || o.Experts > 256 || o.Layers > 64:
		return fmt.Errorf("tiny checkpoint: sizes out of range (hidden %d, inter %d, experts %d, layers %d)", o.Hidden, o.Inter, o.Experts, o.Layers)
	}
	for _, n := range o.Domains {
		if n == "" || strings.ContainsAny(n, ",\n") {
			return fmt.Errorf("tiny checkpoint: domain name %q must be non-empty without commas", n)
		}
	}
	return nil
}

// Truth is the structure planted in a tiny checkpoint, which an analyzer should recover.
type Truth struct {
	Dir             string   `json:"dir"`
	CalibrationFile string   `json:"calibration_file"`
	Domains         []string `json:"domains"`
	MoELayers       []int    `json:"moe_layers"`
	// Duplicates maps a layer to its groups of near-duplicate experts (copies
	// plus 3% noise), each sorted.
	Duplicates map[int][][]int `json:"duplicates"`
	// Specialists maps a layer to the expert that fires for (all and only)
	// each domain's calibration tokens.
	Specialists map[int]map[string]int `json:"specialists"`
	// Suppressed (DeepSeek-V3 only) maps a layer to an expert whose score is
	// high on every token but whose selection bias keeps it out of the top-k.
	Suppressed map[int]int `json:"suppressed,omitempty"`
	// Boosted (DeepSeek-V3 only) maps a layer to an expert whose score is
	// near zero but whose selection bias puts it in every top-k.
	Boosted map[int]int `json:"boosted,omitempty"`
	// CrossLayer lists experts copied (plus noise) from an earlier layer.
	CrossLayer []CrossCopy `json:"cross_layer"`
}

// CrossCopy is an expert that repeats an expert of another layer.
type CrossCopy struct {
	FromLayer  int `json:"from_layer"`
	FromExpert int `json:"from_expert"`
	ToLayer    int `json:"to_layer"`
	ToExpert   int `json:"to_expert"`
}

func newTruth(domains []string) *Truth {
	return &Truth{Domains: domains, Duplicates: map[int][][]int{}, Specialists: map[int]map[string]int{},
		Suppressed: map[int]int{}, Boosted: map[int]int{}}
}

// Tiny writes a small checkpoint in the real layout of o.Family into dir —
// config.json, shards and model.safetensors.index.json — with planted
// near-duplicate experts, domain specialists and (DeepSeek-V3) bias-planted
// experts, plus calibration.safetensors: router inputs for every domain.
// The same options give the same bytes.
func Tiny(ctx context.Context, dir string, o TinyOptions) (*Truth, error) {
	o = o.withDefaults()
	if err := o.check(); err != nil {
		return nil, err
	}
	cfgJSON, err := json.MarshalIndent(tinyConfig(o), "", "  ")
	if err != nil {
		return nil, err
	}
	cfg, err := checkpoint.ParseConfig(cfgJSON)
	if err != nil {
		return nil, fmt.Errorf("tiny checkpoint: %w", err)
	}
	plan, err := planFor(cfg, o.Family == checkpoint.DeepSeekV3)
	if err != nil {
		return nil, err
	}
	w := plant(cfg, o)
	src := newValueSource(o.Seed, o.Block[0], o.Block[1], plan, func(tensorPlan) float64 { return 0.05 })
	src.values = w.values
	for _, t := range plan {
		if len(t.Shape) == 1 && strings.HasSuffix(t.Name, "norm.weight") {
			ones := make([]float32, t.Shape[0])
			for i := range ones {
				ones[i] = 1
			}
			src.values[t.Name] = ones
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, checkpoint.ConfigFile), append(cfgJSON, '\n'), 0o644); err != nil {
		return nil, err
	}
	if _, err := writeCheckpoint(ctx, dir, plan, o.Shards, src.content); err != nil {
		return nil, fmt.Errorf("tiny checkpoint: %w", err)
	}
	calib := filepath.Join(dir, CalibrationFile)
	x, ids := w.calibration(rand.New(rand.NewPCG(o.Seed, 0x63616c6962)), cfg.HiddenSize, o.TokensPerDomain)
	if err := WriteCalibration(ctx, calib, x, ids, o.Domains); err != nil {
		return nil, err
	}
	w.truth.Dir, w.truth.CalibrationFile = dir, calib
	if o.Family != checkpoint.DeepSeekV3 {
		w.truth.Suppressed, w.truth.Boosted = nil, nil
	}
	planted, err := json.MarshalIndent(w.truth, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, PlantedFile), append(planted, '\n'), 0o644); err != nil {
		return nil, err
	}
	return w.truth, nil
}

// tinyConfig returns the config.json of a tiny checkpoint of o's family.
func tinyConfig(o TinyOptions) map[string]any {
	base := map[string]any{
		"hidden_size": o.Hidden, "num_hidden_layers": o.Layers, "vocab_size": 256,
		"num_attention_heads": 2, "num_key_value_heads": 2, "num_experts_per_tok": o.TopK,
		"intermediate_size": 96, "rms_norm_eps": 1e-6, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
	}
	switch o.Family {
	case checkpoint.Mixtral:
		base["architectures"] = []string{"MixtralForCausalLM"}
		base["model_type"] = "mixtral"
		base["num_local_experts"] = o.Experts
		base["intermediate_size"] = o.Inter
	case checkpoint.QwenMoE:
		base["architectures"] = []string{"Qwen2MoeForCausalLM"}
		base["model_type"] = "qwen2_moe"
		base["num_experts"] = o.Experts
		base["moe_intermediate_size"] = o.Inter
		base["shared_expert_intermediate_size"] = 2 * o.Inter
		base["decoder_sparse_step"] = 1
		base["mlp_only_layers"] = []int{0}
		base["norm_topk_prob"] = false
	default:
		base["architectures"] = []string{"DeepseekV3ForCausalLM"}
		base["model_type"] = "kimi_k2"
		base["moe_intermediate_size"] = o.Inter
		base["n_routed_experts"] = o.Experts
		base["n_shared_experts"] = 1
		base["first_k_dense_replace"] = 1
		base["moe_layer_freq"] = 1
		base["n_group"] = 1
		base["topk_group"] = 1
		base["topk_method"] = "noaux_tc"
		base["scoring_func"] = "sigmoid"
		base["norm_topk_prob"] = true
		base["routed_scaling_factor"] = 2.827
		base["q_lora_rank"] = 24
		base["kv_lora_rank"] = 16
		base["qk_nope_head_dim"] = 8
		base["qk_rope_head_dim"] = 4
		base["v_head_dim"] = 8
		base["num_nextn_predict_layers"] = 0
		base["quantization_config"] = map[string]any{
			"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8", "weight_block_size": o.Block[:],
		}
	}
	return base
}

// WriteCalibration writes router inputs x (tokens × hidden, row-major) with
// their domain ids as a calibration file: F32 "hidden_states" [N, hidden]
// used for every MoE layer, I32 "domain_ids" [N], and the domain names in
// the metadata ("domains", comma-separated, in id order).
func WriteCalibration(ctx context.Context, path string, x []float32, ids []int32, domains []string) error {
	n := len(ids)
	if n == 0 || len(x)%n != 0 {
		return fmt.Errorf("calibration %s: %d values for %d tokens", path, len(x), n)
	}
	h := len(x) / n
	plan := []tensorPlan{
		{Name: "domain_ids", DType: safetensors.I32, Shape: []int64{int64(n)}},
		{Name: "hidden_states", DType: safetensors.F32, Shape: []int64{int64(n), int64(h)}},
	}
	md := map[string]string{
		"format":  "meshnode-calibration/1",
		"domains": strings.Join(domains, ","),
		"inputs":  "router inputs (post_attention_layernorm outputs), one set for every MoE layer",
	}
	content := func(t tensorPlan) ([]byte, error) {
		if t.Name == "hidden_states" {
			return encodeFloats(x, safetensors.F32)
		}
		b := make([]byte, 4*n)
		for i, id := range ids {
			b[4*i], b[4*i+1], b[4*i+2], b[4*i+3] = byte(id), byte(id>>8), byte(id>>16), byte(id>>24)
		}
		return b, nil
	}
	if _, err := writeShard(ctx, path, plan, md, content); err != nil {
		return fmt.Errorf("calibration %s: %w", path, err)
	}
	return nil
}
