package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/meshnode/meshnode/distill/kd"
	"github.com/meshnode/meshnode/node"
	"github.com/meshnode/meshnode/node/api"
)

// studentFlags are the flags distill and generate share.
func studentFlags(c *cobra.Command, s *api.StudentSettings) {
	fl := c.Flags()
	fl.IntVar(&s.Params, "params", 0, "parameter budget (default: the domain's preset: reasoning 10K, coding 50K, language 25K, tool_use 15K, mathematics 20K, context 30K)")
	fl.IntVar(&s.Epochs, "epochs", 0, "epochs over the transfer set (default: about 2,000 steps, 10 to 500 epochs, for classes; 40 for vectors)")
	fl.Float64Var(&s.LearningRate, "lr", 0, "learning rate (default: see the package documentation)")
	fl.Uint64Var(&s.Seed, "seed", 1, "seed for the student, probes and splits")
	fl.IntVar(&s.Probes, "probes", 0, "training probes for a checkpoint expert (default 8192)")
	fl.StringVar(&s.Calibration, "calibration", "", "calibration file to draw checkpoint-expert probes from (default: calibration.safetensors in the checkpoint folder, else Gaussian probes)")
	fl.BoolVar(&s.Baseline, "baseline", false, "also measure a same-size baseline (hard labels alone, or the pruned checkpoint expert)")
}

func distillCmd(e *env) *cobra.Command {
	var req api.DistillRequest
	var classes string
	var timeout time.Duration
	c := &cobra.Command{
		Use:   "distill",
		Short: "Distil a teacher (an expert, a checkpoint's expert, or a chat model) into a micro-expert",
		Long: `Distil a teacher into a micro-expert sized to the domain's parameter budget (or --params),
and measure how much of the teacher it keeps on held-out data (retention = student / teacher).
Teachers (--teacher SPEC):

  expert:ID-or-NAME-or-FILE      an expert of this node's repo, or a .safetensors file as 'expert
                                 export' writes it. Class experts label --dataset (default: the
                                 data set their manifest names) with soft targets at --temperature
                                 plus hard labels.
  moe:DIR#layer=L,expert=E       routed expert E of MoE layer L of a checkpoint (FP8 dequantised),
                                 distilled by mean squared error on probes drawn from calibration
                                 activations (--calibration) or a Gaussian matched to its input scale.
  openai:BASE_URL?model=NAME     an OpenAI-compatible chat endpoint that labels --prompts into
                                 --classes; the key is read from $` + kd.APIKeyEnv + `.

--output DIR receives NAME.safetensors and NAME.manifest.cbor (import them with 'meshnode expert
import DIR/NAME.safetensors'; the manifest links the teacher as its parent), report.json and summary.md.`,
		Example: `  meshnode distill --teacher expert:fmnist-big --domain vision --params 23860 --output fm-micro/
  meshnode distill --teacher 'moe:tiny/#layer=3,expert=5' --domain mathematics --output math-micro/
  MESHNODE_TEACHER_API_KEY=sk-... meshnode distill --teacher 'openai:https://llm.example.net/v1?model=kimi-k2-0905-preview' \
      --domain language --prompts words.jsonl --classes english,french --output lang-micro/`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req.APIKey, req.RequestTimeout = os.Getenv(kd.APIKeyEnv), timeout.Seconds()
			if classes != "" {
				req.Classes = strings.Split(classes, ",")
			}
			finish := e.distillProgress(&req.Progress, "")
			res, err := e.distill(cmd.Context(), req)
			finish()
			if err != nil {
				return err
			}
			return e.emit(res.Report, func(w io.Writer) { printDistill(w, res.Report, req.Output) })
		},
	}
	studentFlags(c, &req.StudentSettings)
	fl := c.Flags()
	fl.StringVar(&req.Teacher, "teacher", "", "teacher SPEC: expert:REF, moe:DIR#layer=L,expert=E or openai:BASE_URL?model=NAME (required)")
	fl.StringVar(&req.Domain, "domain", "", "domain of the micro-expert; picks the budget (required)")
	fl.Float64Var(&req.Temperature, "temperature", 0, "temperature of the soft targets (default 2)")
	fl.Float64Var(&req.SoftWeight, "soft-weight", 0, "share of the soft-target loss next to hard labels (default 0.5)")
	fl.StringVar(&req.Dataset, "dataset", "", "data set a vector-input teacher labels: fashion-mnist, iris, wine, breast-cancer, digits or csv:PATH")
	fl.IntVar(&req.Limit, "limit", 0, "use only this many training (and test) rows of --dataset")
	fl.IntVar(&req.Labelled, "labelled", 0, "keep the true labels of only this many training rows; the teacher alone labels the rest (0: all)")
	fl.StringVar(&req.Prompts, "prompts", "", "prompt set for a chat teacher: JSON Lines {\"text\":..., \"label\":...} or one prompt per line")
	fl.StringVar(&classes, "classes", "", "comma-separated classes for a chat teacher (default: the prompts' labels)")
	durationFlag(fl, &timeout, "request-timeout", time.Minute, "timeout of one chat request")
	fl.StringVar(&req.Name, "name", "", "name of the micro-expert (default DOMAIN-micro)")
	fl.StringVar(&req.Output, "output", "", "folder to write the expert, report.json and summary.md (required)")
	fl.BoolVar(&req.Install, "install", true, "also store the student in this node's repo, signed by it (through its daemon when one runs)")
	_ = c.MarkFlagRequired("teacher")
	_ = c.MarkFlagRequired("domain")
	_ = c.MarkFlagRequired("output")
	return c
}

// distill runs a distillation through the repo's daemon when one runs, on the repo itself
// otherwise, and without a repo installs nothing. It says where the student was installed.
func (e *env) distill(ctx context.Context, req api.DistillRequest) (*api.DistillResult, error) {
	res, err := makeExperts(e, req.Install,
		func(ops api.StoreOps) (*api.DistillResult, error) { return ops.Distill(ctx, req) },
		func() (*api.DistillResult, error) { return node.Distill(ctx, nil, e.catalog, req) })
	if err == nil && res.Installed != nil {
		e.installed(res.Installed)
	}
	return res, err
}

// makeExperts runs a command that makes experts (distill, generate): through the store's
// commands (the daemon's or the repo's) when there is a repo, alone when there is none, which
// installs nothing and says so when the user asked for it.
func makeExperts[R any](e *env, install bool, withRepo func(api.StoreOps) (*R, error), alone func() (*R, error)) (*R, error) {
	ops, repo, err := e.storeOps()
	if errors.Is(err, node.ErrNoRepo) {
		res, err := alone()
		if err == nil && install && !e.json {
			fmt.Fprintf(e.err, "not installed (no repo at %s); 'meshnode expert import FILE' stores a student later\n", e.repoPathOrDefault())
		}
		return res, err
	}
	if err != nil {
		return nil, err
	}
	defer repo.Close()
	return withRepo(ops)
}

// installed tells the user (not a script) where a student went.
func (e *env) installed(x *api.ImportReport) {
	if !e.json {
		fmt.Fprintf(e.err, "installed %s in the repo as %s\n", x.Name, x.ID)
	}
}

// distillProgress installs a reporter: a bar on a terminal, plain lines otherwise, nothing with
// --json. prefix names the domain in generate.
func (e *env) distillProgress(dst *func(kd.Progress), prefix string) func() {
	if e.json {
		return func() {}
	}
	if isTerminal(e.err) {
		var bar *progressbar.ProgressBar
		stage := ""
		*dst = func(p kd.Progress) {
			if bar == nil || p.Stage != stage {
				if bar != nil {
					_ = bar.Finish()
				}
				stage = p.Stage
				bar = progressbar.NewOptions(max(p.Total, 1), progressbar.OptionSetWriter(e.err), progressbar.OptionShowCount(),
					progressbar.OptionSetWidth(30), progressbar.OptionClearOnFinish())
			}
			desc := prefix + p.Stage
			if p.Epoch != nil {
				desc = fmt.Sprintf("%s%s loss %.4f", prefix, p.Stage, p.Epoch.TrainLoss)
			}
			bar.Describe(desc)
			_ = bar.Set(p.Done)
		}
		return func() {
			if bar != nil {
				_ = bar.Finish()
			}
		}
	}
	*dst = func(p kd.Progress) {
		switch {
		case p.Epoch != nil:
			fmt.Fprintf(e.err, "%s%s epoch %d/%d  loss %.4f  %.1fs\n", prefix, p.Stage, p.Done, p.Total, p.Epoch.TrainLoss, p.Epoch.Elapsed.Seconds())
		case p.Done == 0 || p.Done == p.Total:
			fmt.Fprintf(e.err, "%s%s %d/%d\n", prefix, p.Stage, p.Done, p.Total)
		}
	}
	return func() {}
}

func printDistill(w io.Writer, r *kd.Report, output string) {
	fmt.Fprintf(w, "distilled %s from %s: %s, %d parameters (budget %d)\n", r.Name, r.Teacher.Spec, r.Arch, r.Params, r.Budget)
	fmt.Fprintf(w, "held-out %s: teacher %.4f, student %.4f, retention %.2f%% (%d rows of %s)\n",
		r.Metric, r.TeacherMetric, r.StudentMetric, 100*r.Retention, r.Data.TestRows, r.Data.Test)
	if v := r.Vectors; v != nil {
		fmt.Fprintf(w, "outputs vs teacher: cosine %.4f, relative error %.4f\n", v.Cosine, v.RelativeError)
	}
	if b := r.Baseline; b != nil {
		fmt.Fprintf(w, "baseline %s: %.4f (%s)\n", b.Name, b.Metric, b.Description)
	}
	fmt.Fprintf(w, "expert ID %s (parent %s); wrote %s to %s\n", r.ExpertID, r.Teacher.ID, strings.Join(r.Files, ", "), output)
}

func generateCmd(e *env) *cobra.Command {
	var req api.GenerateRequest
	var domains string
	c := &cobra.Command{
		Use:   "generate",
		Short: "Make one micro-expert per domain from an analysed mixture-of-experts checkpoint",
		Long: `Read an analysis (the report.json that 'analyze --depth comprehensive --calibration FILE
--output DIR' writes), pick for each domain the most specialised and salient routed expert, and
distil it into a micro-expert within the domain's budget (or --params), on probes drawn from that
domain's calibration activations when the calibration file is available. Each expert goes to
OUTPUT/DOMAIN/ with its manifest (parent: the CID of the checkpoint expert's dequantised tensors),
report.json and summary.md; OUTPUT/report.json and OUTPUT/summary.md list them all.`,
		Example: `  meshnode testdata-checkpoint --tiny --output tiny/
  meshnode analyze --model-path tiny/ --depth comprehensive --calibration tiny/calibration.safetensors --output tiny-analysis/
  meshnode generate --analysis-dir tiny-analysis/ --domains reasoning,coding,mathematics --output micro/`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req.Domains = nil
			for _, d := range strings.Split(domains, ",") {
				if d = strings.TrimSpace(d); d != "" {
					req.Domains = append(req.Domains, d)
				}
			}
			var progress func(kd.Progress)
			finish := e.distillProgress(&progress, "")
			if progress != nil {
				req.Progress = func(p api.GenerateProgress) {
					p.Stage = p.Domain + ": " + p.Stage
					progress(p.Progress)
				}
			}
			res, err := e.generate(cmd.Context(), req)
			finish()
			if err != nil {
				return err
			}
			return e.emit(res.Report, func(w io.Writer) { printGenerate(w, res.Report, req.Output) })
		},
	}
	studentFlags(c, &req.StudentSettings)
	fl := c.Flags()
	fl.StringVar(&req.AnalysisDir, "analysis-dir", "", "folder with the analysis report.json (required)")
	fl.StringVar(&domains, "domains", "", "comma-separated domains, e.g. reasoning,coding (required)")
	fl.StringVar(&req.ModelPath, "model-path", "", "checkpoint folder (default: the one the analysis names)")
	fl.StringVar(&req.Output, "output", "", "folder to write the micro-experts and reports (required)")
	fl.BoolVar(&req.Install, "install", true, "also store the students in this node's repo, signed by it (through its daemon when one runs)")
	_ = c.MarkFlagRequired("analysis-dir")
	_ = c.MarkFlagRequired("domains")
	_ = c.MarkFlagRequired("output")
	return c
}

// generate runs generate through the repo's daemon when one runs, on the repo itself
// otherwise, and without a repo installs nothing. It says where the students were installed.
func (e *env) generate(ctx context.Context, req api.GenerateRequest) (*api.GenerateResult, error) {
	res, err := makeExperts(e, req.Install,
		func(ops api.StoreOps) (*api.GenerateResult, error) { return ops.Generate(ctx, req) },
		func() (*api.GenerateResult, error) { return node.Generate(ctx, nil, req) })
	if err == nil {
		for _, x := range res.Installed {
			e.installed(x)
		}
	}
	return res, err
}

func printGenerate(w io.Writer, rep *kd.GenerateReport, output string) {
	for _, x := range rep.Experts {
		fmt.Fprintf(w, "%s: layer %d expert %d (specialization %.2f, saliency %.3g) → %s, %d/%d parameters, cosine %.4f, relative error %.4f\n",
			x.Domain, x.Teacher.Layer, x.Teacher.Expert, x.Teacher.Specialization, x.Teacher.Saliency, x.ExpertID, x.Params, x.Budget, x.Cosine, x.RelativeError)
	}
	fmt.Fprintf(w, "wrote %d micro-experts, report.json and summary.md to %s in %.1fs\n", len(rep.Experts), output, rep.Seconds)
}
