package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/meshnode/meshnode/distill/kd"
	"github.com/meshnode/meshnode/experts/dataset"
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

// options are the settings as kd.Options.
func (s StudentSettings) options() kd.Options {
	o := kd.Options{Params: s.Params, Epochs: s.Epochs, LearningRate: s.LearningRate, Seed: s.Seed, Baseline: s.Baseline}
	o.Probes.Train, o.Probes.Calibration = s.Probes, s.Calibration
	return o
}

// DistillResult is what distill made: its report, the files it wrote, and the student as
// installed in the repo (nil when not installed).
type DistillResult struct {
	Report    *kd.Report    `json:"report"`
	Files     []string      `json:"files"`
	Installed *ImportReport `json:"installed,omitempty"`
}

// Distill distils req's teacher into a student, writes it to req.Output and, with req.Install,
// stores it in r (signed by r's identity). r may be nil (no repo: a teacher expert must then be
// a file, the student is unsigned and nothing is installed).
func Distill(ctx context.Context, r *Repo, cat dataset.Catalog, req DistillRequest) (*DistillResult, error) {
	if err := absDistillPaths(&req); err != nil {
		return nil, err
	}
	sp, err := kd.ParseSpec(req.Teacher)
	if err != nil {
		return nil, ErrBadRequest.Wrap(err)
	}
	o := req.options()
	o.Domain, o.Name, o.Temperature, o.SoftWeight, o.Progress = req.Domain, req.Name, req.Temperature, req.SoftWeight, req.Progress
	oo := kd.OpenOptions{APIKey: req.APIKey, RequestTimeout: time.Duration(req.RequestTimeout * float64(time.Second))}
	if r != nil {
		o.Signer = r.Identity
		if sp.Kind == kd.KindExpert && !isWeightsFile(sp.Ref) {
			st, err := r.Store()
			if err != nil {
				return nil, err
			}
			oo.Experts = st
		}
	}
	t, err := kd.Open(ctx, sp, oo)
	if err != nil {
		return nil, ErrBadRequest.Wrap(err)
	}
	if err := distillData(cat, t, &o, req); err != nil {
		return nil, ErrBadRequest.Wrap(err)
	}
	if o.Probes.Calibration == "" && sp.Kind == kd.KindMoE {
		o.Probes.Calibration = defaultCalibration(sp.Dir)
	}
	if o.Probes.Calibration != "" {
		o.Probes.Domain = o.Domain
	}
	res, err := kd.Distill(ctx, t, o)
	if err != nil {
		return nil, asRequestError(ctx, err)
	}
	files, err := kd.WriteResult(req.Output, res)
	if err != nil {
		return nil, err
	}
	out := &DistillResult{Report: res.Report, Files: files}
	if req.Install && r != nil {
		if out.Installed, err = r.ImportExpert(ctx, filepath.Join(req.Output, files[0]), ImportOptions{}); err != nil {
			return nil, fmt.Errorf("install %s in the repo: %w", files[0], err)
		}
	}
	return out, nil
}

// asRequestError marks kd's refusals of the request's settings as bad requests; a cancelled
// run stays what it is.
func asRequestError(ctx context.Context, err error) error {
	if ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return ErrBadRequest.Wrap(err)
}

// isWeightsFile says whether an expert: teacher names a file rather than a hosted expert.
func isWeightsFile(ref string) bool {
	if _, err := os.Stat(ref); err == nil {
		return true
	}
	return strings.HasSuffix(ref, ".safetensors")
}

// absDistillPaths makes the request's paths absolute (the daemon's working folder is not the
// command's), the teacher's among them, so both report the same spec.
func absDistillPaths(req *DistillRequest) error {
	if err := absPaths("distill", &req.Output, &req.Calibration, &req.Prompts); err != nil {
		return err
	}
	req.Dataset = absDataset(req.Dataset)
	sp, err := kd.ParseSpec(req.Teacher)
	if err != nil {
		return ErrBadRequest.Wrap(err)
	}
	switch {
	case sp.Kind == kd.KindExpert && isWeightsFile(sp.Ref):
		err = absPaths("distill", &sp.Ref)
	case sp.Kind == kd.KindMoE:
		err = absPaths("distill", &sp.Dir)
	}
	if err != nil {
		return err
	}
	req.Teacher = sp.String()
	return nil
}

// distillData loads what the teacher learns from: a data set for vector-input experts, a
// prompt set for chat teachers.
func distillData(cat dataset.Catalog, t kd.Teacher, o *kd.Options, req DistillRequest) error {
	info := t.Info()
	if info.Kind == kd.KindOpenAI {
		if req.Prompts == "" {
			return fmt.Errorf("a chat teacher needs --prompts FILE")
		}
		p, err := kd.ReadPrompts(req.Prompts)
		if err != nil {
			return err
		}
		o.Prompts, o.Classes = p, req.Classes
		return nil
	}
	ds := req.Dataset
	if ds == "" && info.Kind == kd.KindExpert {
		ds, _, _ = strings.Cut(info.Meta["dataset"], ":") // "fashion-mnist:train" → "fashion-mnist"
	}
	if ds == "" {
		return nil // a checkpoint expert uses probes; Distill explains what else is missing
	}
	train, test, err := cat.Load(ds, req.Limit)
	if err != nil {
		return err
	}
	if req.Labelled < 0 || req.Labelled > train.Len() {
		return fmt.Errorf("--labelled %d: the training part has %d rows", req.Labelled, train.Len())
	}
	if req.Labelled > 0 && req.Labelled < train.Len() {
		idx := make([]int, train.Len())
		for i := range idx {
			idx[i] = i
		}
		o.Unlabelled = train.Subset(train.Name+":teacher-labelled", idx[req.Labelled:])
		train = train.Subset(train.Name+":labelled", idx[:req.Labelled])
	}
	o.Train, o.Test = train, test
	return nil
}

// defaultCalibration is calibration.safetensors in a checkpoint folder, when it is there.
func defaultCalibration(dir string) string {
	p := strings.TrimRight(dir, "/") + "/calibration.safetensors"
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return ""
}

// Distill runs a distillation in the daemon, handing its progress to req.Progress; cancelling
// ctx cancels it.
func (c *Client) Distill(ctx context.Context, req DistillRequest) (*DistillResult, error) {
	if err := absDistillPaths(&req); err != nil {
		return nil, err
	}
	return RunJob[kd.Progress, DistillResult](ctx, c, PathDistill, req, req.Progress)
}

// Distill runs a distillation on the repo in this process (Distill).
func (l LocalOps) Distill(ctx context.Context, req DistillRequest) (*DistillResult, error) {
	return Distill(ctx, l.Repo, l.Catalog, req)
}
