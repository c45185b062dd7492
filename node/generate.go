package node

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/meshnode/meshnode/distill/kd"
)

// PathGenerate runs `generate` in the daemon as a job: GenerateProgress lines, then a
// GenerateResult.
const PathGenerate = "/api/v1/generate"

// GenerateRequest is the generate command as data (PathGenerate's body); paths are absolute
// for a daemon (Client.Generate makes them so).
type GenerateRequest struct {
	AnalysisDir string   `json:"analysis_dir"`
	Domains     []string `json:"domains"`
	ModelPath   string   `json:"model_path,omitempty"`
	StudentSettings
	Output  string `json:"output"`
	Install bool   `json:"install"` // also store the students in the repo, signed by the node

	Progress func(GenerateProgress) `json:"-"`
}

// GenerateProgress is how far the distillation of one domain's student has come.
type GenerateProgress struct {
	Domain string `json:"domain"`
	kd.Progress
}

// GenerateResult is what generate made, and the students as installed (in domain order; none
// when not installed).
type GenerateResult struct {
	Report    *kd.GenerateReport `json:"report"`
	Installed []*ImportReport    `json:"installed,omitempty"`
}

// Generate makes one micro-expert per domain from an analysed checkpoint (kd.Generate) and,
// with req.Install, stores them in r signed by r's identity. r may be nil (no repo: the
// students are unsigned and nothing is installed).
func Generate(ctx context.Context, r *Repo, req GenerateRequest) (*GenerateResult, error) {
	if err := absPaths("generate", &req.AnalysisDir, &req.ModelPath, &req.Calibration, &req.Output); err != nil {
		return nil, err
	}
	g := kd.GenerateOptions{Domains: req.Domains, Params: req.Params, ModelPath: req.ModelPath,
		Calibration: req.Calibration, Distill: req.options()}
	if req.Progress != nil {
		g.Progress = func(domain string, p kd.Progress) { req.Progress(GenerateProgress{Domain: domain, Progress: p}) }
	}
	if r != nil {
		g.Distill.Signer = r.Identity
	}
	rep, err := kd.Generate(ctx, req.AnalysisDir, req.Output, g)
	if err != nil {
		return nil, asRequestError(ctx, err)
	}
	out := &GenerateResult{Report: rep}
	if !req.Install || r == nil {
		return out, nil
	}
	for _, x := range rep.Experts {
		files, err := filepath.Glob(filepath.Join(x.Dir, "*.safetensors"))
		if err != nil || len(files) != 1 {
			return nil, fmt.Errorf("generate: install the %s student: want one .safetensors file in %s, found %d", x.Domain, x.Dir, len(files))
		}
		ir, err := r.ImportExpert(ctx, files[0], ImportOptions{})
		if err != nil {
			return nil, fmt.Errorf("generate: install the %s student: %w", x.Domain, err)
		}
		out.Installed = append(out.Installed, ir)
	}
	return out, nil
}

// absPaths makes each non-empty path absolute (the daemon's working folder is not the
// command's).
func absPaths(what string, paths ...*string) error {
	for _, p := range paths {
		if *p == "" {
			continue
		}
		a, err := filepath.Abs(*p)
		if err != nil {
			return fmt.Errorf("%s: %s: %w", what, *p, err)
		}
		*p = a
	}
	return nil
}

// Generate runs generate in the daemon, handing its progress to req.Progress; cancelling ctx
// cancels it.
func (c *Client) Generate(ctx context.Context, req GenerateRequest) (*GenerateResult, error) {
	if err := absPaths("generate", &req.AnalysisDir, &req.ModelPath, &req.Calibration, &req.Output); err != nil {
		return nil, err
	}
	return RunJob[GenerateProgress, GenerateResult](ctx, c, PathGenerate, req, req.Progress)
}

// Generate runs generate on the repo in this process (Generate).
func (l LocalOps) Generate(ctx context.Context, req GenerateRequest) (*GenerateResult, error) {
	return Generate(ctx, l.Repo, req)
}
