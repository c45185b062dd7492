package analyze

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/meshnode/meshnode/distill/checkpoint"
)

// Format names the report.json layout.
const Format = "meshnode-moe-analysis/1"

// Report is the result of an analysis.
type Report struct {
	Format    string          `json:"format"`
	ModelPath string          `json:"model_path"`
	Depth     string          `json:"depth"`
	Quick     *QuickReport    `json:"quick"`
	Standard  *StandardReport `json:"standard,omitempty"`
	Routing   *RoutingReport  `json:"routing,omitempty"`
	Seconds   float64         `json:"seconds"`
}

// StandardReport holds what reading the expert weights shows.
type StandardReport struct {
	ProbeSource     string            `json:"probe_source"`
	Probes          int               `json:"probes"`
	PowerIters      int               `json:"power_iterations"`
	ZeroEps         float64           `json:"zero_threshold"`
	SampleSize      int               `json:"similarity_sample"`
	ExactSimilarity bool              `json:"exact_similarity"` // experts compared on all their weights
	Thresholds      Thresholds        `json:"duplicate_thresholds"`
	Experts         []ExpertStats     `json:"experts"`
	Shared          []ExpertStats     `json:"shared_experts"`
	Layers          []LayerSimilarity `json:"layers"`
	CrossLayer      []LayerRelation   `json:"cross_layer"`
	BytesScanned    int64             `json:"bytes_scanned"`
	ScanSeconds     float64           `json:"scan_seconds"`
	ScanRate        float64           `json:"scan_bytes_per_second"`
}

// Clusters returns every layer's near-duplicate clusters.
func (s *StandardReport) Clusters() []Cluster {
	var out []Cluster
	for _, l := range s.Layers {
		out = append(out, l.Clusters...)
	}
	return out
}

// RoutingReport holds how the routers treat the calibration (or approximated) inputs.
type RoutingReport struct {
	Source          string         `json:"source"`
	Approximation   bool           `json:"approximation"`
	Tokens          int            `json:"tokens"`
	Domains         []string       `json:"domains"`
	TokensPerDomain []int          `json:"tokens_per_domain"`
	Rule            Rule           `json:"rule"`
	SpecialistRule  SpecialistRule `json:"specialist_rule"`
	Layers          []LayerRouting `json:"layers"`
	Specialists     []Specialist   `json:"specialists"`
	CoActivation    []CoActivation `json:"co_activation"`
}

// Run analyses the checkpoint in modelPath to the depth o asks for.
func Run(ctx context.Context, modelPath string, o Options) (*Report, error) {
	start := time.Now()
	o = o.withDefaults()
	if err := o.check(); err != nil {
		return nil, fmt.Errorf("analyze: %w", err)
	}
	ck, err := checkpoint.Open(ctx, modelPath)
	if err != nil {
		return nil, err
	}
	defer ck.Close()
	rep := &Report{Format: Format, ModelPath: modelPath, Depth: o.Depth.String(),
		Quick: Quick(ck, QuickOptions{NodeMemory: o.NodeMemory, UsableShare: o.UsableShare})}
	if o.Depth >= DepthStandard {
		if err := deepen(ctx, ck, o, rep); err != nil {
			return nil, err
		}
	}
	rep.Seconds = time.Since(start).Seconds()
	return rep, nil
}

// deepen runs the standard (and comprehensive) analysis layer by layer, so
// only two layers' scans are held in memory at a time.
func deepen(ctx context.Context, ck *checkpoint.Checkpoint, o Options, rep *Report) error {
	c := ck.Config
	h, e := c.HiddenSize, c.Experts()
	var in routingInputs
	if o.Depth == DepthComprehensive {
		var err error
		if o.Calibration != "" {
			in, err = OpenCalibration(o.Calibration, h)
		} else {
			in, err = newEmbeddingInputs(ctx, ck, o.EmbeddingTokens, o.Seed)
		}
		if err != nil {
			return err
		}
		defer in.close()
		rep.Routing = newRoutingReport(in, RuleOf(c), o.Specialists)
	}
	std := &StandardReport{ProbeSource: fmt.Sprintf("%d seeded Gaussian N(0, 1) inputs", o.Probes), Probes: o.Probes,
		PowerIters: o.PowerIters, ZeroEps: o.ZeroEps, SampleSize: o.SampleSize, Thresholds: o.Duplicates,
		Experts: []ExpertStats{}, Shared: []ExpertStats{}, Layers: []LayerSimilarity{}, CrossLayer: []LayerRelation{}}
	if in != nil {
		std.ProbeSource = fmt.Sprintf("%d seeded samples of each layer's routing inputs (%s)", o.Probes, rep.Routing.Source)
	}
	rep.Standard = std
	var sizes [3]int
	for p := checkpoint.Gate; p <= checkpoint.Down; p++ {
		s := c.ExpertShape(p)
		sizes[p] = s[0] * s[1]
	}
	pos, exact := samplePositions(sizes, o.SampleSize, o.Seed)
	std.ExactSimilarity = exact
	settings := scanSettings{workers: o.Workers, powerIters: o.PowerIters, zeroEps: float32(o.ZeroEps),
		sampleSize: o.SampleSize, seed: o.Seed}
	moe := ck.MoELayers()
	perLayer := e + min(c.SharedExperts(), 1)
	var mu sync.Mutex
	done, bytes := 0, int64(0)
	report := func(stage string) func(int64) {
		return func(b int64) {
			mu.Lock()
			defer mu.Unlock()
			done++
			bytes += b
			if o.Progress != nil {
				o.Progress(Progress{Stage: stage, Done: done, Total: len(moe) * perLayer, Bytes: bytes})
			}
		}
	}
	gauss := gaussianProbes(h, o.Probes, o.Seed)
	sameProbes := in == nil || in.sameForAllLayers()
	var prev *layerScan
	var prevRouted *Routed
	scanStart := time.Now()
	for i, l := range moe {
		probes := gauss
		var routed *Routed
		var lr LayerRouting
		if in != nil {
			x, err := in.forLayer(ctx, l)
			if err != nil {
				return err
			}
			r, err := ck.Router(ctx, l)
			if err != nil {
				return err
			}
			if routed, err = Route(x, r, rep.Routing.Rule); err != nil {
				return err
			}
			lr = layerRouting(l, routed, e, in.tokenDomains(), len(in.domains()))
			probes = sampleProbes(x, o.Probes, o.Seed)
		}
		next := -1
		if i+1 < len(moe) {
			next = moe[i+1]
		}
		ls, err := scanLayer(ctx, ck, settings, l, next, probes, &pos, report(fmt.Sprintf("scanning layer %d (%d/%d)", l, i+1, len(moe))))
		if err != nil {
			return err
		}
		std.Experts = append(std.Experts, ls.stats...)
		if ls.shared != nil {
			std.Shared = append(std.Shared, *ls.shared)
		}
		std.BytesScanned += ls.bytes
		std.Layers = append(std.Layers, similarity(ls, o.Duplicates))
		if prev != nil {
			std.CrossLayer = append(std.CrossLayer, crossLayer(prev, ls, o.Duplicates, sameProbes))
		}
		if routed != nil {
			norms := make([]float64, len(ls.stats))
			for k, st := range ls.stats {
				norms[k] = st.OutputNorm
			}
			setSaliency(&lr, norms)
			rep.Routing.Layers = append(rep.Routing.Layers, lr)
			rep.Routing.Specialists = append(rep.Routing.Specialists, specialists(lr, in.domains(), o.Specialists)...)
			if prevRouted != nil {
				rep.Routing.CoActivation = append(rep.Routing.CoActivation, coActivation(prev.layer, l, prevRouted, routed, e, o.TopPairs))
			}
		}
		prev, prevRouted = ls, routed
	}
	std.ScanSeconds = time.Since(scanStart).Seconds()
	if std.ScanSeconds > 0 {
		std.ScanRate = float64(std.BytesScanned) / std.ScanSeconds
	}
	return nil
}

func newRoutingReport(in routingInputs, rule Rule, sr SpecialistRule) *RoutingReport {
	ids := in.tokenDomains()
	per := make([]int, len(in.domains()))
	for _, d := range ids {
		per[d]++
	}
	return &RoutingReport{Source: in.description(), Approximation: in.approximate(), Tokens: len(ids),
		Domains: in.domains(), TokensPerDomain: per, Rule: rule, SpecialistRule: sr,
		Layers: []LayerRouting{}, Specialists: []Specialist{}, CoActivation: []CoActivation{}}
}

// gaussianProbes returns n seeded N(0, 1) probe inputs of size hidden, one per row.
func gaussianProbes(hidden, n int, seed uint64) checkpoint.Matrix {
	rng := rand.New(rand.NewPCG(seed, 0x70726f6265)) // "probe"
	m := checkpoint.Matrix{Rows: n, Cols: hidden, Data: make([]float32, hidden*n)}
	for i := range m.Data {
		m.Data[i] = float32(rng.NormFloat64())
	}
	return m
}

// sampleProbes returns n seeded distinct rows of x (tokens × hidden), fewer
// when x has fewer rows.
func sampleProbes(x checkpoint.Matrix, n int, seed uint64) checkpoint.Matrix {
	rng := rand.New(rand.NewPCG(seed, 0x70726f6265))
	rows := rng.Perm(x.Rows)[:min(n, x.Rows)]
	m := checkpoint.Matrix{Rows: len(rows), Cols: x.Cols, Data: make([]float32, x.Cols*len(rows))}
	for j, r := range rows {
		copy(m.Row(j), x.Row(r))
	}
	return m
}
