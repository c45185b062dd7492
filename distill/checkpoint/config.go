package checkpoint

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Family is a mixture-of-experts tensor layout.
type Family string

// The layouts the reader knows.
const (
	// DeepSeekV3 covers DeepSeek-V2/V3 and Kimi-K2: mlp.experts.{E}.{gate,up,down}_proj,
	// router mlp.gate with e_score_correction_bias, mlp.shared_experts, FP8 block scales.
	DeepSeekV3 Family = "deepseek_v3"
	// Mixtral names experts block_sparse_moe.experts.{E}.w1/w2/w3, router block_sparse_moe.gate.
	Mixtral Family = "mixtral"
	// QwenMoE covers Qwen2-MoE and Qwen3-MoE: mlp.experts.{E}.{gate,up,down}_proj,
	// router mlp.gate, optional mlp.shared_expert.
	QwenMoE Family = "qwen_moe"
)

// Config is the part of a Hugging Face config.json that describes a
// mixture-of-experts model. Fields a family does not use stay zero.
type Config struct {
	ModelType     string   `json:"model_type"`
	Architectures []string `json:"architectures"`

	HiddenSize        int     `json:"hidden_size"`
	IntermediateSize  int     `json:"intermediate_size"` // dense MLP (Mixtral: each expert)
	NumHiddenLayers   int     `json:"num_hidden_layers"`
	VocabSize         int     `json:"vocab_size"`
	NumAttentionHeads int     `json:"num_attention_heads"`
	NumKeyValueHeads  int     `json:"num_key_value_heads"`
	HeadDim           int     `json:"head_dim"`
	TieWordEmbeddings bool    `json:"tie_word_embeddings"`
	RMSNormEps        float64 `json:"rms_norm_eps"`

	// DeepSeek-V3 / Kimi-K2.
	MoEIntermediateSize   int     `json:"moe_intermediate_size"`
	NRoutedExperts        int     `json:"n_routed_experts"`
	NSharedExperts        int     `json:"n_shared_experts"`
	NumExpertsPerTok      int     `json:"num_experts_per_tok"`
	FirstKDenseReplace    int     `json:"first_k_dense_replace"`
	MoELayerFreq          int     `json:"moe_layer_freq"`
	NGroup                int     `json:"n_group"`
	TopKGroup             int     `json:"topk_group"`
	RoutedScalingFactor   float64 `json:"routed_scaling_factor"`
	ScoringFunc           string  `json:"scoring_func"`
	NormTopKProb          *bool   `json:"norm_topk_prob"`
	TopKMethod            string  `json:"topk_method"`
	QLoraRank             *int    `json:"q_lora_rank"`
	KVLoraRank            int     `json:"kv_lora_rank"`
	QKNopeHeadDim         int     `json:"qk_nope_head_dim"`
	QKRopeHeadDim         int     `json:"qk_rope_head_dim"`
	VHeadDim              int     `json:"v_head_dim"`
	NumNextNPredictLayers int     `json:"num_nextn_predict_layers"`

	// Mixtral.
	NumLocalExperts int `json:"num_local_experts"`

	// Qwen2-MoE / Qwen3-MoE.
	NumExperts                   int   `json:"num_experts"`
	SharedExpertIntermediateSize int   `json:"shared_expert_intermediate_size"`
	DecoderSparseStep            int   `json:"decoder_sparse_step"`
	MLPOnlyLayers                []int `json:"mlp_only_layers"`

	QuantizationConfig *QuantizationConfig `json:"quantization_config"`

	// Family is derived from ModelType and Architectures by ParseConfig.
	Family Family `json:"-"`
}

// QuantizationConfig is the FP8 block quantisation of DeepSeek-V3-style checkpoints.
type QuantizationConfig struct {
	QuantMethod     string `json:"quant_method"`
	Fmt             string `json:"fmt"`
	WeightBlockSize []int  `json:"weight_block_size"`
}

// Limits that keep every derived size well inside int64 and reject absurd configs.
const (
	maxDim     = 1 << 20
	maxLayers  = 1 << 12
	maxExperts = 1 << 16
	maxVocab   = 1 << 24
)

// ParseConfig parses and validates a config.json.
func ParseConfig(data []byte) (*Config, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || data[0] != '{' {
		return nil, errors.New("config is not a JSON object")
	}
	var c Config
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	fam, err := detectFamily(c.ModelType, c.Architectures)
	if err != nil {
		return nil, err
	}
	c.Family = fam
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("config (model_type %q): %w", c.ModelType, err)
	}
	return &c, nil
}

func detectFamily(modelType string, archs []string) (Family, error) {
	switch modelType {
	case "deepseek_v3", "deepseek_v2", "kimi_k2":
		return DeepSeekV3, nil
	case "mixtral":
		return Mixtral, nil
	case "qwen2_moe", "qwen3_moe":
		return QwenMoE, nil
	}
	for _, a := range archs {
		switch {
		case strings.HasPrefix(a, "Deepseek"):
			return DeepSeekV3, nil
		case strings.HasPrefix(a, "Mixtral"):
			return Mixtral, nil
		case strings.HasPrefix(a, "Qwen2Moe"), strings.HasPrefix(a, "Qwen3Moe"):
			return QwenMoE, nil
		}
	}
	return "", fmt.Errorf("config: model_type %q (architectures %q) is not a mixture-of-experts layout this reader knows "+
		"(deepseek_v3, kimi_k2, deepseek_v2, mixtral, qwen2_moe, qwen3_moe)", modelType, archs)
}

// field is one integer field checked by validate.
type field struct {
	name     string
	v        int
	min, max int
}

func (c *Config) validate() error {
	fields := []field{
		{"hidden_size", c.HiddenSize, 1, maxDim},
		{"num_hidden_layers", c.NumHiddenLayers, 1, maxLayers},
		{"vocab_size", c.VocabSize, 0, maxVocab},
		{"intermediate_size", c.IntermediateSize, 0, maxDim},
		{"num_attention_heads", c.NumAttentionHeads, 0, maxDim},
		{"num_key_value_heads", c.NumKeyValueHeads, 0, maxDim},
		{"head_dim", c.HeadDim, 0, maxDim},
		{"moe_intermediate_size", c.MoEIntermediateSize, 0, maxDim},
		{"n_routed_experts", c.NRoutedExperts, 0, maxExperts},
		{"n_shared_experts", c.NSharedExperts, 0, 64},
		{"num_experts_per_tok", c.NumExpertsPerTok, 0, maxExperts},
		{"first_k_dense_replace", c.FirstKDenseReplace, 0, maxLayers},
		{"moe_layer_freq", c.MoELayerFreq, 0, maxLayers},
		{"n_group", c.NGroup, 0, maxExperts},
		{"topk_group", c.TopKGroup, 0, maxExperts},
		{"kv_lora_rank", c.KVLoraRank, 0, maxDim},
		{"qk_nope_head_dim", c.QKNopeHeadDim, 0, maxDim},
		{"qk_rope_head_dim", c.QKRopeHeadDim, 0, maxDim},
		{"v_head_dim", c.VHeadDim, 0, maxDim},
		{"num_nextn_predict_layers", c.NumNextNPredictLayers, 0, 64},
		{"num_local_experts", c.NumLocalExperts, 0, maxExperts},
		{"num_experts", c.NumExperts, 0, maxExperts},
		{"shared_expert_intermediate_size", c.SharedExpertIntermediateSize, 0, maxDim},
		{"decoder_sparse_step", c.DecoderSparseStep, 0, maxLayers},
	}
	if c.QLoraRank != nil {
		fields = append(fields, field{"q_lora_rank", *c.QLoraRank, 0, maxDim})
	}
	for _, f := range fields {
		if f.v < f.min || f.v > f.max {
			return fmt.Errorf("%s = %d is outside [%d, %d]", f.name, f.v, f.min, f.max)
		}
	}
	if c.Experts() < 1 {
		return fmt.Errorf("no routed experts: %s must be ≥ 1", c.expertsField())
	}
	if c.ExpertIntermediate() < 1 {
		return fmt.Errorf("expert intermediate size must be ≥ 1 (moe_intermediate_size or intermediate_size)")
	}
	if k := c.TopK(); k < 1 || k > c.Experts() {
		return fmt.Errorf("num_experts_per_tok = %d must be in [1, %d]", k, c.Experts())
	}
	if c.NGroup > 1 {
		if c.Experts()%c.NGroup != 0 || c.TopKGroup < 1 || c.TopKGroup > c.NGroup {
			return fmt.Errorf("n_group = %d, topk_group = %d do not divide %d experts", c.NGroup, c.TopKGroup, c.Experts())
		}
	}
	switch c.Scoring() {
	case "sigmoid", "softmax":
	default:
		return fmt.Errorf("scoring_func %q is neither sigmoid nor softmax", c.ScoringFunc)
	}
	if q := c.QuantizationConfig; q != nil && len(q.WeightBlockSize) > 0 {
		if len(q.WeightBlockSize) != 2 || q.WeightBlockSize[0] < 1 || q.WeightBlockSize[1] < 1 ||
			q.WeightBlockSize[0] > maxDim || q.WeightBlockSize[1] > maxDim {
			return fmt.Errorf("quantization_config.weight_block_size %v must be two positive sizes", q.WeightBlockSize)
		}
	}
	if slices.ContainsFunc(c.MLPOnlyLayers, func(l int) bool { return l < 0 || l >= c.NumHiddenLayers }) {
		return fmt.Errorf("mlp_only_layers %v names a layer outside [0, %d)", c.MLPOnlyLayers, c.NumHiddenLayers)
	}
	return nil
}

func (c *Config) expertsField() string {
	switch c.Family {
	case Mixtral:
		return "num_local_experts"
	case QwenMoE:
		return "num_experts"
	}
	return "n_routed_experts"
}

// Experts returns the number of routed experts in each MoE layer.
func (c *Config) Experts() int {
	switch c.Family {
	case Mixtral:
		return c.NumLocalExperts
	case QwenMoE:
		return c.NumExperts
	}
	return c.NRoutedExperts
}

// ExpertIntermediate returns the hidden width of one routed expert.
func (c *Config) ExpertIntermediate() int {
	if c.Family == Mixtral {
		return c.IntermediateSize
	}
	return c.MoEIntermediateSize
}

// SharedIntermediate returns the hidden width of a layer's shared expert
// block (0 when there is none). DeepSeek-V3 fuses its n_shared_experts into
// one block n_shared_experts times as wide.
func (c *Config) SharedIntermediate() int {
	switch c.Family {
	case DeepSeekV3:
		return c.NSharedExperts * c.MoEIntermediateSize
	case QwenMoE:
		return c.SharedExpertIntermediateSize
	}
	return 0
}

// SharedExperts returns the number of shared (always active) experts per MoE layer.
func (c *Config) SharedExperts() int {
	switch c.Family {
	case DeepSeekV3:
		return c.NSharedExperts
	case QwenMoE:
		if c.SharedExpertIntermediateSize > 0 {
			return 1
		}
	}
	return 0
}

// TopK returns how many routed experts each token uses.
func (c *Config) TopK() int {
	if c.NumExpertsPerTok == 0 && c.Family == Mixtral {
		return 2
	}
	return c.NumExpertsPerTok
}

// Scoring returns the router's score function: sigmoid or softmax.
func (c *Config) Scoring() string {
	if c.ScoringFunc != "" {
		return c.ScoringFunc
	}
	if c.Family == DeepSeekV3 && c.ModelType != "deepseek_v2" {
		return "sigmoid"
	}
	return "softmax"
}

// NormalizeTopK reports whether the chosen experts' weights are renormalised to sum 1.
func (c *Config) NormalizeTopK() bool {
	if c.NormTopKProb != nil {
		return *c.NormTopKProb
	}
	return c.Family == Mixtral // Mixtral always renormalises; Qwen2-MoE defaults to false
}

// ScalingFactor returns the factor applied to the routed mixing weights.
func (c *Config) ScalingFactor() float64 {
	if c.RoutedScalingFactor > 0 {
		return c.RoutedScalingFactor
	}
	return 1
}

// IsMoELayer reports whether decoder layer l has routed experts.
func (c *Config) IsMoELayer(l int) bool {
	if l < 0 || l >= c.NumHiddenLayers {
		return false
	}
	switch c.Family {
	case DeepSeekV3:
		freq := max(c.MoELayerFreq, 1)
		return l >= c.FirstKDenseReplace && l%freq == 0
	case QwenMoE:
		step := max(c.DecoderSparseStep, 1)
		return !slices.Contains(c.MLPOnlyLayers, l) && (l+1)%step == 0
	}
	return true
}

// BlockSize returns the FP8 weight block size (rows, columns); 128×128 when
// the config does not say.
func (c *Config) BlockSize() (int, int) {
	if q := c.QuantizationConfig; q != nil && len(q.WeightBlockSize) == 2 {
		return q.WeightBlockSize[0], q.WeightBlockSize[1]
	}
	return 128, 128
}
