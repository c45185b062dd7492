package node

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/meshnode/meshnode/experts"
	"github.com/meshnode/meshnode/experts/dataset"
	"github.com/meshnode/meshnode/node/api"
)

// inputSpecFor says how a catalog data set's rows are fed to an expert: images, texts through
// the feature extractor the text suites use, or plain vectors.
func inputSpecFor(cat dataset.Catalog, name string, dim int) experts.InputSpec {
	if name == "fashion-mnist" {
		return experts.InputSpec{Kind: experts.InputImage, Dim: dim, Preprocess: experts.ImagePreprocess(28, 28)}
	}
	if tf, ok := cat.TextFeaturesOf(name); ok && tf.Dim == dim {
		return experts.InputSpec{Kind: experts.InputText, Dim: dim, Preprocess: tf.Spec()}
	}
	return experts.InputSpec{Kind: experts.InputVector, Dim: dim}
}

// samplesOf views a data set as training samples (no copy).
func samplesOf(d *dataset.Dataset) experts.Samples {
	return experts.Samples{X: d.X, Dim: d.Dim, Labels: d.Y}
}

// TrainExpert trains a classifier on a catalog data set, evaluates it on the data set's test
// part, and stores it signed by this node.
func (r *Repo) TrainExpert(ctx context.Context, cat dataset.Catalog, req api.TrainRequest) (*api.TrainReport, error) {
	if req.Epochs < 0 {
		return nil, fmt.Errorf("train: epochs %d must not be negative", req.Epochs)
	}
	train, test, err := cat.Load(req.Dataset, req.Limit)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	if req.ValSplit == 0 {
		req.ValSplit = 0.1
	}
	if req.ValSplit < 0 || req.ValSplit >= 1 {
		return nil, fmt.Errorf("train: validation split %g must be in [0, 1)", req.ValSplit)
	}
	fit, val := train, &dataset.Dataset{Dim: train.Dim, Classes: train.Classes}
	if req.Epochs > 0 && req.ValSplit > 0 {
		if fit, val, err = train.Split(req.ValSplit, req.Seed); err != nil {
			return nil, fmt.Errorf("train: split: %w", err)
		}
	}
	if req.Activation == "" {
		req.Activation = "relu"
	}
	spec := inputSpecFor(cat, req.Dataset, train.Dim)
	arch := experts.MLP(train.Dim, req.Hidden, req.Activation, len(train.Classes), experts.OutputSoftmax)
	arch.Normalize = spec.Kind == experts.InputVector
	net, err := experts.NewNetwork(arch, req.Seed)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	if arch.Normalize {
		net.Mean, net.Std = featureStats(fit)
	}
	if req.BatchSize == 0 {
		req.BatchSize = r.Config.Training.BatchSize
	}
	if req.Patience < 0 {
		req.Patience = r.Config.Training.Patience
	}
	res, err := experts.Train(ctx, net, samplesOf(fit), samplesOf(val), experts.TrainConfig{
		Epochs: req.Epochs, BatchSize: req.BatchSize, LearningRate: req.LR, Optimizer: req.Optimizer,
		WeightDecay: req.WeightDecay, Patience: req.Patience, Seed: req.Seed, Progress: req.Progress,
	})
	if err != nil {
		return nil, err
	}
	ev, err := experts.Evaluate(net, samplesOf(test), "")
	if err != nil {
		return nil, err
	}
	// A CSV data set is named after its file: csv:/data/parts/part-00.csv is "part-00".
	short := req.Dataset
	if path, ok := strings.CutPrefix(req.Dataset, "csv:"); ok {
		short = strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
		if len(short) > 64 {
			short = short[:64]
		}
	}
	name := req.Name
	if name == "" {
		name = short
	}
	domains := req.Domains
	if len(domains) == 0 {
		domains = []string{short}
	}
	m := &experts.Manifest{
		Name:    name,
		Domains: domains,
		Input:   spec,
		Output:  experts.OutputSpec{Kind: experts.OutputClasses, Labels: train.Classes},
		Evals: []experts.EvalResult{{Dataset: test.Name, Digest: test.Digest(), Samples: ev.Samples,
			Metric: "accuracy", Value: ev.Accuracy}},
		Meta: map[string]string{
			"dataset":      train.Name,
			"train_digest": fit.Digest(),
			"epochs":       strconv.Itoa(len(res.Epochs)),
			"best_epoch":   strconv.Itoa(res.BestEpoch),
			"seed":         strconv.FormatUint(req.Seed, 10),
			"optimizer":    orString(req.Optimizer, "adam"),
			"batch_size":   strconv.Itoa(req.BatchSize),
		},
	}
	st, err := r.Store()
	if err != nil {
		return nil, err
	}
	id, err := st.AddNetwork(ctx, m, net, r.Identity)
	if err != nil {
		return nil, fmt.Errorf("train: store expert: %w", err)
	}
	rep := &api.TrainReport{ID: id.String(), Manifest: m, Epochs: res.Epochs, BestEpoch: res.BestEpoch, Test: ev,
		Seconds: res.Duration.Seconds()}
	if res.Duration > 0 {
		rep.SamplesPS = float64(res.Samples) / res.Duration.Seconds()
	}
	return rep, nil
}

func orString(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// featureStats returns per-feature mean and standard deviation (1 where a feature is constant).
func featureStats(d *dataset.Dataset) (mean, std []float64) {
	mean, std = make([]float64, d.Dim), make([]float64, d.Dim)
	n := float64(d.Len())
	for i := 0; i < d.Len(); i++ {
		for j, v := range d.Row(i) {
			mean[j] += float64(v)
		}
	}
	for j := range mean {
		mean[j] /= n
	}
	for i := 0; i < d.Len(); i++ {
		for j, v := range d.Row(i) {
			dv := float64(v) - mean[j]
			std[j] += dv * dv
		}
	}
	for j := range std {
		std[j] = math.Sqrt(std[j] / n)
		if std[j] < 1e-8 {
			std[j] = 1
		}
	}
	return mean, std
}

// EvalExpert evaluates a stored expert on a catalog data set's test part.
func (r *Repo) EvalExpert(ctx context.Context, cat dataset.Catalog, ref, ds string, limit int) (*api.EvalReport, error) {
	st, id, m, err := r.Expert(ctx, ref)
	if err != nil {
		return nil, err
	}
	_, test, err := cat.Load(ds, limit)
	if err != nil {
		return nil, fmt.Errorf("eval: %w", err)
	}
	if test.Dim != m.Input.Dim {
		return nil, fmt.Errorf("eval: data set %s has %d features, expert %q takes %d", ds, test.Dim, m.Name, m.Input.Dim)
	}
	if m.Output.Kind != experts.OutputClasses {
		return nil, fmt.Errorf("eval: expert %q does not answer with classes", m.Name)
	}
	if err := test.AlignClasses(m.Output.Labels); err != nil {
		return nil, fmt.Errorf("eval: expert %q: %w", m.Name, err)
	}
	net, err := st.LoadNetwork(ctx, m)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	ev, err := experts.Evaluate(net, samplesOf(test), "")
	if err != nil {
		return nil, err
	}
	return &api.EvalReport{ID: id.String(), Name: m.Name, Dataset: test.Name, Digest: test.Digest(), Evaluation: ev,
		Labels: m.Output.Labels, Seconds: time.Since(t0).Seconds()}, nil
}
