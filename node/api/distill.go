package api

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/meshnode/meshnode/distill/kd"
)

// PathDistill runs `distill` in the daemon as a job: kd.Progress lines, then a DistillResult.
const PathDistill = "/api/v1/distill"

// DistillRequest is the distill command as data (PathDistill's body): the teacher, the
// student's settings (kd.Options; zero values take kd's defaults), the data, and where the
// result goes. Paths are absolute for a daemon (Client.Distill makes them so).
type DistillRequest struct {
	Teacher     string  `json:"teacher"` // a kd.ParseSpec SPEC
	Domain      string  `json:"domain"`
	Name        string  `json:"name,omitempty"`
	Temperature float64 `json:"temperature,omitempty"`
	SoftWeight  float64 `json:"soft_weight,omitempty"`
	StudentSettings

	Dataset  string   `json:"dataset,omitempty"`
	Limit    int      `json:"limit,omitempty"`
	Labelled int      `json:"labelled,omitempty"`
	Prompts  string   `json:"prompts,omitempty"`
	Classes  []string `json:"classes,omitempty"`
	// APIKey and RequestTimeout are a chat teacher's; the key crosses only the loopback API,
	// which the repo's token guards, and is never stored.
	APIKey         string  `json:"api_key,omitempty"`
	RequestTimeout float64 `json:"request_timeout_seconds,omitempty"`

	Output  string `json:"output"`  // folder for the student, report.json and summary.md
	Install bool   `json:"install"` // also store the student in the repo, signed by the node

	Progress func(kd.Progress) `json:"-"`
}

// StudentSettings are what distill and generate share about the student and its training
// (kd.Options; zero values take kd's defaults).
type StudentSettings struct {
	Params       int     `json:"params,omitempty"`
	Epochs       int     `json:"epochs,omitempty"`
	LearningRate float64 `json:"lr,omitempty"`
	Seed         uint64  `json:"seed,omitempty"`
	Probes       int     `json:"probes,omitempty"`
	Calibration  string  `json:"calibration,omitempty"`
	Baseline     bool    `json:"baseline,omitempty"`
}

// DistillResult is what distill made: its report, the files it wrote, and the student as
// installed in the repo (nil when not installed).
type DistillResult struct {
	Report    *kd.Report    `json:"report"`
	Files     []string      `json:"files"`
	Installed *ImportReport `json:"installed,omitempty"`
}

// IsWeightsFile says whether an expert: teacher names a file rather than a hosted expert.
func IsWeightsFile(ref string) bool {
	if _, err := os.Stat(ref); err == nil {
		return true
	}
	return strings.HasSuffix(ref, ".safetensors")
}

// AbsDistillPaths makes the request's paths absolute (the daemon's working folder is not the
// command's), the teacher's among them, so both report the same spec.
func AbsDistillPaths(req *DistillRequest) error {
	if err := AbsPaths("distill", &req.Output, &req.Calibration, &req.Prompts); err != nil {
		return err
	}
	req.Dataset = AbsDataset(req.Dataset)
	sp, err := kd.ParseSpec(req.Teacher)
	if err != nil {
		return ErrBadRequest.Wrap(err)
	}
	switch {
	case sp.Kind == kd.KindExpert && IsWeightsFile(sp.Ref):
		err = AbsPaths("distill", &sp.Ref)
	case sp.Kind == kd.KindMoE:
		err = AbsPaths("distill", &sp.Dir)
	}
	if err != nil {
		return err
	}
	req.Teacher = sp.String()
	return nil
}

// Distill runs a distillation in the daemon, handing its progress to req.Progress; cancelling
// ctx cancels it.
func (c *Client) Distill(ctx context.Context, req DistillRequest) (*DistillResult, error) {
	if err := AbsDistillPaths(&req); err != nil {
		return nil, err
	}
	return RunJob[kd.Progress, DistillResult](ctx, c, PathDistill, req, req.Progress)
}

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

// AbsPaths makes each non-empty path absolute (the daemon's working folder is not the
// command's).
func AbsPaths(what string, paths ...*string) error {
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
	if err := AbsPaths("generate", &req.AnalysisDir, &req.ModelPath, &req.Calibration, &req.Output); err != nil {
		return nil, err
	}
	return RunJob[GenerateProgress, GenerateResult](ctx, c, PathGenerate, req, req.Progress)
}
