package node

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/meshnode/meshnode/distill/kd"
	"github.com/meshnode/meshnode/node/api"
)

// Generate makes one micro-expert per domain from an analysed checkpoint (kd.Generate) and,
// with req.Install, stores them in r signed by r's identity. r may be nil (no repo: the
// students are unsigned and nothing is installed).
func Generate(ctx context.Context, r *Repo, req api.GenerateRequest) (*api.GenerateResult, error) {
	if err := api.AbsPaths("generate", &req.AnalysisDir, &req.ModelPath, &req.Calibration, &req.Output); err != nil {
		return nil, err
	}
	g := kd.GenerateOptions{Domains: req.Domains, Params: req.Params, ModelPath: req.ModelPath,
		Calibration: req.Calibration, Distill: studentOptions(req.StudentSettings)}
	if req.Progress != nil {
		g.Progress = func(domain string, p kd.Progress) { req.Progress(api.GenerateProgress{Domain: domain, Progress: p}) }
	}
	if r != nil {
		g.Distill.Signer = r.Identity
	}
	rep, err := kd.Generate(ctx, req.AnalysisDir, req.Output, g)
	if err != nil {
		return nil, asRequestError(ctx, err)
	}
	out := &api.GenerateResult{Report: rep}
	if !req.Install || r == nil {
		return out, nil
	}
	for _, x := range rep.Experts {
		files, err := filepath.Glob(filepath.Join(x.Dir, "*.safetensors"))
		if err != nil || len(files) != 1 {
			return nil, fmt.Errorf("generate: install the %s student: want one .safetensors file in %s, found %d", x.Domain, x.Dir, len(files))
		}
		ir, err := r.ImportExpert(ctx, files[0], api.ImportOptions{})
		if err != nil {
			return nil, fmt.Errorf("generate: install the %s student: %w", x.Domain, err)
		}
		out.Installed = append(out.Installed, ir)
	}
	return out, nil
}

// Generate runs generate on the repo in this process (Generate).
func (l LocalOps) Generate(ctx context.Context, req api.GenerateRequest) (*api.GenerateResult, error) {
	return Generate(ctx, l.Repo, req)
}
