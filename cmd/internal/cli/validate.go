package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/meshnode/meshnode/distill/validate"
	"github.com/meshnode/meshnode/node"
	"github.com/meshnode/meshnode/node/api"
)

func validateCmd(e *env) *cobra.Command {
	var dir, level, output string
	var suites []string
	var seed uint64
	c := &cobra.Command{
		Use:   "validate",
		Short: "Benchmark micro-experts: accuracy, latency, memory, throughput, specialization, consistency, robustness",
		Long: `Validate every expert in a folder: the NAME.safetensors + NAME.manifest.cbor pairs that
'meshnode expert export' writes (bare weights files too), or the experts hosted in a meshnode repo
folder. Each expert is scored on the benchmark suite that fits its input and classes: the six seed
domains' suites (coding, language, mathematics, reasoning, tool_use, context), Fashion-MNIST, the
scikit-learn sets, or the user's --suite files, which are tried first. Experts no suite fits are
listed as skipped with the reason.

A suite file is JSONL, one {"text": "...", "label": "..."} or {"input": [numbers], "label": ...}
per line, or CSV with a header naming a "label" column and either a "text" column or numeric
feature columns. A suite named after an expert's domain (its file name without extension) wins.

Levels:
  quick          300 test samples per suite, one noise strength, 300 timed queries
  standard       1000 samples, three noise strengths, 1000 queries
  comprehensive  every test sample, five noise strengths, 5000 queries

With --output DIR it writes report.json, report.csv and report.md there.`,
		Example: `  meshnode expert train --dataset coding --hidden 16 --epochs 6 --name coding
  meshnode expert export coding --output experts/coding.safetensors
  meshnode validate --experts-dir experts/ --benchmark quick --output validation/
  meshnode validate --experts-dir experts/ --suite my-tickets.jsonl --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			lv, err := validate.ParseLevel(level)
			if err != nil {
				return fmt.Errorf("--benchmark: %w", err)
			}
			rep, err := e.validate(cmd.Context(), dir, validate.Options{Level: lv, Catalog: e.catalog, Suites: suites, Seed: seed})
			if err != nil {
				return err
			}
			var files []string
			if output != "" {
				if files, err = rep.Write(output); err != nil {
					return err
				}
			}
			return e.emit(rep, func(w io.Writer) { printValidation(w, rep, files) })
		},
	}
	f := c.Flags()
	f.StringVar(&dir, "experts-dir", "", "folder of exported experts, or a meshnode repo folder (required)")
	f.StringVar(&level, "benchmark", "standard", "quick, standard or comprehensive")
	f.StringArrayVar(&suites, "suite", nil, "user suite file, .jsonl or .csv (repeatable)")
	f.StringVar(&output, "output", "", "folder for report.json, report.csv and report.md")
	f.Uint64Var(&seed, "seed", validate.DefaultSeed, "seed of the noise and permutations")
	_ = c.MarkFlagRequired("experts-dir")
	return c
}

// validate benchmarks the experts of dir: a meshnode repo's through its daemon when one runs
// (or on the repo itself), a folder of exported experts here.
func (e *env) validate(ctx context.Context, dir string, o validate.Options) (*validate.Report, error) {
	finish := e.validateProgress(&o)
	defer finish()
	r, err := node.Open(dir)
	if errors.Is(err, node.ErrNoRepo) {
		return validate.Run(ctx, dir, o)
	}
	if err != nil {
		return nil, err
	}
	defer r.Close()
	req := api.ValidateRequest{Level: o.Level, Suites: o.Suites, Seed: o.Seed}
	if o.Progress != nil {
		req.Progress = func(p api.ValidateProgress) { o.Progress(p.Done, p.Total, p.Expert) }
	}
	return e.opsOf(r).ValidateExperts(ctx, req)
}

func (e *env) validateProgress(o *validate.Options) func() {
	if e.json {
		return func() {}
	}
	if isTerminal(e.err) {
		var bar *progressbar.ProgressBar
		o.Progress = func(done, total int, name string) {
			if bar == nil {
				bar = progressbar.NewOptions(total, progressbar.OptionSetWriter(e.err), progressbar.OptionShowCount(),
					progressbar.OptionSetWidth(30), progressbar.OptionClearOnFinish())
			}
			bar.Describe(name)
			_ = bar.Set(done)
		}
		return func() {
			if bar != nil {
				_ = bar.Finish()
			}
		}
	}
	o.Progress = func(done, total int, name string) {
		fmt.Fprintf(e.err, "validate: %d/%d %s\n", done+1, total, name)
	}
	return func() {}
}

func printValidation(w io.Writer, rep *validate.Report, files []string) {
	fmt.Fprintf(w, "%d evaluated, %d skipped, %d failed (%s, %.1fs)\n", rep.Evaluated, rep.Skipped, rep.Failed, rep.Level, rep.Seconds)
	for _, r := range rep.Results {
		if r.Status != validate.StatusOK {
			fmt.Fprintf(w, "%-20s %s: %s\n", r.Expert, r.Status, r.Reason)
			continue
		}
		fmt.Fprintf(w, "%-20s %-14s acc %.3f (chance %.3f)  p50 %.1fµs p99 %.1fµs  %.0f q/s  heap %.1f KiB  spec %+.3f  cons %.3f  robust %.3f  %.4f acc/Kparam\n",
			r.Expert, r.Suite, r.Accuracy, r.Chance, r.LatencyP50us, r.LatencyP99us, r.ThroughputQPS,
			float64(r.HeapBytes)/1024, r.Specialization, r.Consistency, r.Robustness, r.Efficiency)
	}
	for _, f := range files {
		fmt.Fprintln(w, "wrote", f)
	}
}
