package cli

import (
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/meshnode/meshnode/distill/analyze"
	"github.com/meshnode/meshnode/distill/checkpoint"
	"github.com/meshnode/meshnode/distill/ckptgen"
)

func analyzeCmd(e *env) *cobra.Command {
	var o analyze.Options
	var modelPath, depth, output, nodeMemory string
	c := &cobra.Command{
		Use:   "analyze",
		Short: "Analyse a mixture-of-experts checkpoint (Kimi-K2, DeepSeek-V3, Mixtral, Qwen-MoE)",
		Long: `Analyse a Hugging Face mixture-of-experts checkpoint in place (shards are memory-mapped, never
loaded whole). Depths:

  quick          config and tensor headers only: layers, experts, parameter counts (total and
                 activated, against published figures), bytes by dtype, a placement plan for nodes
                 of --node-memory, and each seed domain's micro-expert compression ratio
  standard       reads every expert (FP8 dequantised with its block scales): norms, near-zero share,
                 stable rank, weight and output similarity, near-duplicate clusters, cross-layer matches
  comprehensive  also routes --calibration inputs through every router (biased top-k as the model
                 does): activation by domain, routing entropy, specialists, co-activation, saliency.
                 Without --calibration, token embeddings stand in for router inputs; the report says so.

With --output DIR it writes report.json, summary.md, CSV tables and PNG charts there.`,
		Example: `  meshnode analyze --model-path ~/models/Kimi-K2-Instruct --depth quick --node-memory 24GiB
  meshnode testdata-checkpoint --tiny --output tiny/
  meshnode analyze --model-path tiny/ --depth comprehensive \
      --calibration tiny/calibration.safetensors --output tiny-analysis/`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if o.Depth, err = analyze.ParseDepth(depth); err != nil {
				return err
			}
			if o.NodeMemory, err = parseSize(nodeMemory); err != nil {
				return fmt.Errorf("--node-memory: %w", err)
			}
			if o.Calibration != "" && o.Depth != analyze.DepthComprehensive {
				return fmt.Errorf("--calibration needs --depth comprehensive")
			}
			finish := e.analyzeProgress(&o)
			rep, err := analyze.Run(cmd.Context(), modelPath, o)
			finish()
			if err != nil {
				return err
			}
			var files []string
			if output != "" {
				if files, err = analyze.WriteOutputs(cmd.Context(), output, rep); err != nil {
					return err
				}
			}
			return e.emit(rep, func(w io.Writer) { printAnalysis(w, rep, output, len(files)) })
		},
	}
	f := c.Flags()
	f.StringVar(&modelPath, "model-path", "", "checkpoint folder: config.json and model.safetensors.index.json with its shards (required)")
	f.StringVar(&depth, "depth", "quick", "quick, standard or comprehensive")
	f.StringVar(&o.Calibration, "calibration", "", "safetensors file of router inputs (hidden_states [N, hidden], domain_ids [N], metadata domains)")
	f.StringVar(&output, "output", "", "folder for report.json, summary.md, CSV and PNG files")
	f.StringVar(&nodeMemory, "node-memory", "16GiB", "memory of one node for the placement plan (e.g. 16GiB, 64GB)")
	f.IntVar(&o.Workers, "workers", 0, "experts scanned at once (default: all cores)")
	f.IntVar(&o.Probes, "probes", 0, "probe inputs per expert for output similarity and saliency (default 4)")
	f.IntVar(&o.PowerIters, "power-iters", 0, "power iterations per spectral norm; more tighten the stable rank, each costs a pass (default 2)")
	f.Float64Var(&o.ZeroEps, "zero-eps", 0, "weights below this magnitude count as zero (default 1e-3)")
	f.Float64Var(&o.Duplicates.WeightCos, "dup-weight-cos", 0.9, "weight cosine at or above which experts are near-duplicates")
	f.Float64Var(&o.Duplicates.OutputCos, "dup-output-cos", 0.9, "output cosine at or above which experts are near-duplicates")
	f.Uint64Var(&o.Seed, "seed", 1, "seed for probes, samples and power iterations")
	_ = c.MarkFlagRequired("model-path")
	return c
}

// analyzeProgress installs a progress reporter: a bar on a terminal, one
// plain line per layer otherwise, nothing with --json.
func (e *env) analyzeProgress(o *analyze.Options) func() {
	if e.json {
		return func() {}
	}
	start := time.Now()
	if isTerminal(e.err) {
		var bar *progressbar.ProgressBar
		o.Progress = func(p analyze.Progress) {
			if bar == nil {
				bar = progressbar.NewOptions(p.Total, progressbar.OptionSetWriter(e.err), progressbar.OptionShowCount(),
					progressbar.OptionSetWidth(30), progressbar.OptionClearOnFinish())
			}
			bar.Describe(p.Stage)
			_ = bar.Set(p.Done)
		}
		return func() {
			if bar != nil {
				_ = bar.Finish()
			}
		}
	}
	last := ""
	o.Progress = func(p analyze.Progress) {
		if p.Stage == last && p.Done != p.Total {
			return
		}
		last = p.Stage
		fmt.Fprintf(e.err, "%s: %d/%d experts, %.1f MiB read, %.1fs\n", p.Stage, p.Done, p.Total,
			float64(p.Bytes)/(1<<20), time.Since(start).Seconds())
	}
	return func() {}
}

func printAnalysis(w io.Writer, rep *analyze.Report, output string, files int) {
	q := rep.Quick
	fmt.Fprintf(w, "%s: %s (%s layout), %d layers (%d dense, %d MoE), %d routed + %d shared experts per MoE layer, top-%d\n",
		rep.ModelPath, q.ModelType, q.Family, q.Layers, len(q.DenseLayers), len(q.MoELayers), q.RoutedExperts, q.SharedExperts, q.TopK)
	fmt.Fprintf(w, "parameters: %d total, %d activated per token, %d per routed expert\n",
		q.Params.Total, q.Params.Activated, q.ParamsPerExpert)
	if p := q.Published; p != nil {
		fmt.Fprintf(w, "published: %d total (computed ×%.3f), %d activated (computed ×%.3f)\n", p.Total, p.TotalRatio, p.Activated, p.ActivatedRatio)
	}
	if !q.ParamsAgree {
		fmt.Fprintf(w, "warning: tensor headers hold %d parameters, config.json implies %d\n", q.StoredParams.Total, q.Params.Total)
	}
	pl := q.Placement
	fmt.Fprintf(w, "placement: %d experts per %.0f GiB node, %d nodes for all %d routed experts, %d for the rest\n",
		pl.ExpertsPerNode, float64(pl.NodeMemory)/(1<<30), pl.Nodes, pl.Experts, pl.BackboneNodes)
	var budgets []string
	for _, b := range q.Budgets {
		budgets = append(budgets, fmt.Sprintf("%s %.4g×", b.Domain, b.VsRoutedExpert))
	}
	fmt.Fprintf(w, "micro-expert compression vs one routed expert: %s\n", strings.Join(budgets, ", "))
	if s := rep.Standard; s != nil {
		redundant := 0
		for _, l := range s.Layers {
			redundant += l.Redundant
		}
		fmt.Fprintf(w, "weights: %.1f MiB scanned at %.1f MiB/s; %d near-duplicate clusters (%d redundant experts)\n",
			float64(s.BytesScanned)/(1<<20), s.ScanRate/(1<<20), len(s.Clusters()), redundant)
		for _, c := range s.Clusters() {
			fmt.Fprintf(w, "  layer %d: experts %v (weight cos ≥ %.3f)\n", c.Layer, c.Experts, c.MinWeightCos)
		}
	}
	if r := rep.Routing; r != nil {
		if r.Approximation {
			fmt.Fprintln(w, "routing: APPROXIMATION from token embeddings (no --calibration); see summary")
		}
		fmt.Fprintf(w, "routing: %d tokens, %d domains, %d specialists\n", r.Tokens, len(r.Domains), len(r.Specialists))
		for _, s := range r.Specialists {
			fmt.Fprintf(w, "  layer %d expert %d: %s (specialization %.2f, fires on %.0f%% of its tokens)\n",
				s.Layer, s.Expert, s.Domain, s.Share, 100*s.Rate)
		}
	}
	if output != "" {
		fmt.Fprintf(w, "wrote %d files to %s (summary.md, report.json)\n", files, output)
	}
}

// parseSize parses a byte size: a number with an optional unit — B, KB,
// MB, GB, TB (powers of 1000) or K, M, G, T, KiB, MiB, GiB, TiB (powers of 1024).
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := t, ""
	if i >= 0 {
		num, unit = t[:i], strings.TrimSpace(t[i:])
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("size %q is not a non-negative number with a unit like GiB", s)
	}
	mult := map[string]float64{"": 1, "B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
		"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40,
		"KIB": 1 << 10, "MIB": 1 << 20, "GIB": 1 << 30, "TIB": 1 << 40}[strings.ToUpper(unit)]
	if mult == 0 {
		return 0, fmt.Errorf("size %q has unknown unit %q", s, unit)
	}
	if v*mult > math.MaxInt64/2 {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return int64(v * mult), nil
}

func testdataCheckpointCmd(e *env) *cobra.Command {
	var tiny, standin bool
	var output, family, configFile string
	var seed uint64
	c := &cobra.Command{
		Use:   "testdata-checkpoint",
		Short: "Write a test checkpoint in a real MoE layout: tiny with planted structure, or a Kimi-K2 stand-in",
		Long: `Write a checkpoint to try the analyzer on:

  --tiny             a small checkpoint (hidden 64, 16 experts, 4 layers) in the Kimi-K2 layout (FP8
                     with block scales; or --family mixtral / qwen_moe, BF16) with planted near-duplicate
                     experts and domain specialists, calibration.safetensors and planted.json (the truth)
  --kimi-k2-standin  every tensor header of Kimi-K2-Instruct in 61 shards of full declared size that
                     hold no data (sparse files: about 1 TB apparent, about 30 MB on disk) — for quick analysis`,
		Example: `  meshnode testdata-checkpoint --tiny --output tiny/
  meshnode testdata-checkpoint --kimi-k2-standin --output kimi-standin/
  meshnode analyze --model-path kimi-standin/ --depth quick`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if tiny == standin {
				return fmt.Errorf("choose one of --tiny and --kimi-k2-standin")
			}
			if output == "" {
				return fmt.Errorf("--output is required")
			}
			if tiny {
				tr, err := ckptgen.Tiny(cmd.Context(), output, ckptgen.TinyOptions{Family: checkpoint.Family(family), Seed: seed})
				if err != nil {
					return err
				}
				return e.emit(tr, func(w io.Writer) {
					fmt.Fprintf(w, "wrote a tiny %s checkpoint to %s with calibration data %s\n", family, output, tr.CalibrationFile)
					fmt.Fprintf(w, "planted structure in %s: duplicates %v, specialists %v\n", ckptgen.PlantedFile, tr.Duplicates, tr.Specialists)
				})
			}
			cfg := ckptgen.KimiK2Config()
			if configFile != "" {
				var err error
				if cfg, err = os.ReadFile(configFile); err != nil {
					return err
				}
			}
			si, err := ckptgen.WriteStandIn(cmd.Context(), output, cfg, ckptgen.KimiK2Shards)
			if err != nil {
				return err
			}
			return e.emit(si, func(w io.Writer) {
				fmt.Fprintf(w, "wrote a header-complete stand-in to %s: %d shards, %d tensors, %.1f GiB declared (sparse)\n",
					si.Dir, si.Shards, si.Tensors, float64(si.DeclaredBytes)/(1<<30))
			})
		},
	}
	f := c.Flags()
	f.BoolVar(&tiny, "tiny", false, "write a tiny checkpoint with planted structure")
	f.BoolVar(&standin, "kimi-k2-standin", false, "write a header-complete sparse stand-in of Kimi-K2")
	f.StringVar(&output, "output", "", "folder to write (required)")
	f.StringVar(&family, "family", string(checkpoint.DeepSeekV3), "tiny layout: deepseek_v3 (Kimi-K2), mixtral or qwen_moe")
	f.StringVar(&configFile, "config", "", "stand-in config.json (default: Kimi-K2-Instruct's published config)")
	f.Uint64Var(&seed, "seed", 1, "seed of the tiny checkpoint")
	return c
}
