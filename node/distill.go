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
	"github.com/meshnode/meshnode/node/api"
)

// studentOptions are the settings as kd.Options.
func studentOptions(s api.StudentSettings) kd.Options {
	o := kd.Options{Params: s.Params, Epochs: s.Epochs, LearningRate: s.LearningRate, Seed: s.Seed, Baseline: s.Baseline}
	o.Probes.Train, o.Probes.Calibration = s.Probes, s.Calibration
	return o
}

// Distill distils req's teacher into a student, writes it to req.Output and, with req.Install,
// stores it in r (signed by r's identity). r may be nil (no repo: a teacher expert must then be
// a file, the student is unsigned and nothing is installed).
func Distill(ctx context.Context, r *Repo, cat dataset.Catalog, req api.DistillRequest) (*api.DistillResult, error) {
	if err := api.AbsDistillPaths(&req); err != nil {
		return nil, err
	}
	sp, err := kd.ParseSpec(req.Teacher)
	if err != nil {
		return nil, api.ErrBadRequest.Wrap(err)
	}
	o := studentOptions(req.StudentSettings)
	o.Domain, o.Name, o.Temperature, o.SoftWeight, o.Progress = req.Domain, req.Name, req.Temperature, req.SoftWeight, req.Progress
	oo := kd.OpenOptions{APIKey: req.APIKey, RequestTimeout: time.Duration(req.RequestTimeout * float64(time.Second))}
	if r != nil {
		o.Signer = r.Identity
		if sp.Kind == kd.KindExpert && !api.IsWeightsFile(sp.Ref) {
			st, err := r.Store()
			if err != nil {
				return nil, err
			}
			oo.Experts = st
		}
	}
	t, err := kd.Open(ctx, sp, oo)
	if err != nil {
		return nil, api.ErrBadRequest.Wrap(err)
	}
	if err := distillData(cat, t, &o, req); err != nil {
		return nil, api.ErrBadRequest.Wrap(err)
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
	out := &api.DistillResult{Report: res.Report, Files: files}
	if req.Install && r != nil {
		if out.Installed, err = r.ImportExpert(ctx, filepath.Join(req.Output, files[0]), api.ImportOptions{}); err != nil {
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
	return api.ErrBadRequest.Wrap(err)
}

// distillData loads what the teacher learns from: a data set for vector-input experts, a
// prompt set for chat teachers.
func distillData(cat dataset.Catalog, t kd.Teacher, o *kd.Options, req api.DistillRequest) error {
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

// Distill runs a distillation on the repo in this process (Distill).
func (l LocalOps) Distill(ctx context.Context, req api.DistillRequest) (*api.DistillResult, error) {
	return Distill(ctx, l.Repo, l.Catalog, req)
}
