package analyze

import (
	"github.com/meshnode/meshnode/distill/checkpoint"
)

// QuickReport is what headers and config alone tell about a checkpoint.
type QuickReport struct {
	ModelType     string   `json:"model_type"`
	Family        string   `json:"family"`
	Architectures []string `json:"architectures,omitempty"`
	HiddenSize    int      `json:"hidden_size"`

	Layers int `json:"layers"`
	// LayerList describes every decoder layer: MoE or dense, its routed and
	// shared experts, whether its router has a selection bias.
	LayerList     []checkpoint.Layer `json:"layer_list"`
	DenseLayers   []int              `json:"dense_layers"`
	MoELayers     []int              `json:"moe_layers"`
	RoutedExperts int                `json:"routed_experts_per_layer"`
	SharedExperts int                `json:"shared_experts_per_layer"`
	TotalExperts  int                `json:"total_routed_experts"`
	TopK          int                `json:"experts_per_token"`
	Scoring       string             `json:"scoring"`
	RouterBias    bool               `json:"router_bias"`
	ScalingFactor float64            `json:"routed_scaling_factor"`

	ExpertIntermediate int   `json:"expert_intermediate_size"`
	ParamsPerExpert    int64 `json:"params_per_routed_expert"`

	// Params is computed from config.json; StoredParams from the tensor
	// headers. ParamsAgree reports that the two totals are equal.
	Params       Params     `json:"params"`
	StoredParams Params     `json:"stored_params"`
	ParamsAgree  bool       `json:"params_agree"`
	Published    *Published `json:"published,omitempty"`

	Shards       int              `json:"shards"`
	Tensors      int              `json:"tensors"`
	FileBytes    int64            `json:"file_bytes"`
	BytesByDType map[string]int64 `json:"bytes_by_dtype"`
	BytesByRole  map[string]int64 `json:"bytes_by_role"`

	Placement Placement     `json:"placement"`
	Budgets   []Compression `json:"micro_expert_budgets"`
}

// Published holds a vendor's published parameter counts beside the computed ones.
type Published struct {
	Source         string  `json:"source"`
	Total          int64   `json:"total"`
	Activated      int64   `json:"activated"`
	TotalRatio     float64 `json:"computed_total_over_published"`
	ActivatedRatio float64 `json:"computed_activated_over_published"`
}

// QuickOptions sizes the placement plan.
type QuickOptions struct {
	NodeMemory  int64   // bytes per node
	UsableShare float64 // share of it for expert weights
}

// Quick summarises a checkpoint from its config and headers; it reads no tensor data.
func Quick(ck *checkpoint.Checkpoint, o QuickOptions) *QuickReport {
	c := ck.Config
	tensors := ck.Tensors()
	_, sizes := ck.Files()
	r := &QuickReport{
		ModelType: c.ModelType, Family: string(c.Family), Architectures: c.Architectures, HiddenSize: c.HiddenSize,
		Layers: c.NumHiddenLayers, LayerList: ck.Layers(), DenseLayers: []int{}, MoELayers: ck.MoELayers(),
		RoutedExperts: c.Experts(), SharedExperts: c.SharedExperts(), TopK: c.TopK(), Scoring: c.Scoring(),
		ScalingFactor: c.ScalingFactor(), ExpertIntermediate: c.ExpertIntermediate(), ParamsPerExpert: ExpertParams(c),
		Params: ConfigParams(c), StoredParams: HeaderParams(c, tensors),
		Shards: len(sizes), Tensors: len(tensors), BytesByDType: map[string]int64{}, BytesByRole: map[string]int64{},
	}
	for _, l := range ck.Layers() {
		if !l.MoE {
			r.DenseLayers = append(r.DenseLayers, l.Index)
		}
		r.RouterBias = r.RouterBias || l.RouterBias
	}
	r.TotalExperts = len(r.MoELayers) * r.RoutedExperts
	r.ParamsAgree = r.Params.Total == r.StoredParams.Total
	for _, s := range sizes {
		r.FileBytes += s
	}
	var expertBytes, routedBytes int64
	for _, t := range tensors {
		r.BytesByDType[string(t.DType)] += t.Bytes
		role := Role(t.Name)
		if role == "scale" {
			role = Role(t.Name[:len(t.Name)-len(checkpoint.ScaleSuffix)]) + "_scales"
		}
		r.BytesByRole[role] += t.Bytes
	}
	if len(r.MoELayers) > 0 {
		l := r.MoELayers[0]
		for _, n := range ck.ExpertTensors(l, 0) {
			for _, name := range []string{n, n + checkpoint.ScaleSuffix} {
				if t, ok := ck.Info(name); ok {
					expertBytes += t.Bytes
				}
			}
		}
	}
	for role, b := range r.BytesByRole {
		if role == "routed_expert" || role == "routed_expert_scales" {
			routedBytes += b
		}
	}
	var total int64
	for _, b := range r.BytesByDType {
		total += b
	}
	r.Placement = Plan(o.NodeMemory, o.UsableShare, expertBytes, r.MoELayers, r.RoutedExperts, total-routedBytes)
	r.Budgets = Compressions(SeedBudgets(), r.ParamsPerExpert, r.Params.Activated)
	// Moonshot's figures describe this configuration only (not smaller
	// checkpoints in the same layout).
	if c.ModelType == "kimi_k2" && c.HiddenSize == 7168 && c.NumHiddenLayers == 61 && c.Experts() == 384 {
		r.Published = published("Moonshot AI, Kimi-K2 model card: 1T total, 32B activated parameters",
			1_000_000_000_000, 32_000_000_000, r.Params)
	}
	return r
}

func published(source string, total, activated int64, p Params) *Published {
	return &Published{Source: source, Total: total, Activated: activated,
		TotalRatio: float64(p.Total) / float64(total), ActivatedRatio: float64(p.Activated) / float64(activated)}
}
