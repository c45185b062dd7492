package kd

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/meshnode/meshnode/experts"
	"github.com/meshnode/meshnode/experts/dataset"
)

// Options configure Distill. Zero fields take the defaults noted.
type Options struct {
	// Domain tags the student and picks its budget.
	Domain string
	// Params overrides the domain's preset budget.
	Params int
	// Temperature of the soft targets (classes; default 2: on Fashion-MNIST with a 30-unit
	// student it beat T=4, and low temperatures suit students much smaller than the teacher,
	// which cannot follow all of its dark knowledge — Hinton et al.).
	Temperature float64
	// SoftWeight is the share of the soft term in the loss when hard labels exist (default
	// 0.5: the teacher's soft targets and the true labels count alike; measured better than 0.7
	// and 0.9 on Fashion-MNIST).
	SoftWeight float64
	// Epochs over the transfer set. Default for classes: enough for about 2,000 gradient steps,
	// at least 10 and at most 500 epochs (10 on Fashion-MNIST, 500 on iris); for vectors 40.
	Epochs int
	// BatchSize (default 64) and LearningRate (adam; default 1e-3 for classes, 3e-3 for vector
	// students from scratch, 3e-4 for students that start from a pruned checkpoint expert, which
	// larger steps knock out of the pruned solution — measured on planted experts).
	BatchSize    int
	LearningRate float64
	// Seed fixes the student's initial weights, shuffling, probes and splits.
	Seed uint64
	// Name of the student (default "<domain>-micro").
	Name string
	// Meta is added to the student manifest's Meta (how it was made).
	Meta map[string]string
	// Signer, when set, signs the student's manifest as its publisher (a node's identity), so
	// the mesh accepts it; without one the manifest is unsigned and no node installs it from
	// the mesh.
	Signer experts.Signer

	// Train and Test are the data of a vector-input teacher (a class expert needs them; a
	// checkpoint expert uses Probes instead). Test is the held-out set retention is measured on.
	Train, Test *dataset.Dataset
	// Unlabelled are extra inputs for a class teacher that only the teacher labels (their hard
	// labels are its answers): a transfer set larger than the labelled data. May be nil.
	Unlabelled *dataset.Dataset
	// Input overrides the student's input spec (default: the teacher's, or a vector).
	Input *experts.InputSpec
	// Probes configure a checkpoint expert's probe inputs.
	Probes ProbeOptions

	// Prompts are the texts a chat teacher labels; Classes its classes (default: the sorted
	// distinct prompt labels). TextFeatures turns text into the student's input (default
	// dataset.DefaultTextFeatures). TestShare is the share of prompts held out (default 0.2).
	Prompts      []Prompt
	Classes      []string
	TextFeatures dataset.TextFeatures
	TestShare    float64

	// Baseline also builds a baseline of the student's size: the same architecture, seed and
	// epochs trained on hard labels alone (classes), or the teacher pruned to the student's
	// width (checkpoint experts).
	Baseline bool
	// Progress is told what is happening (may be nil).
	Progress func(Progress)
}

// Prompt is one text for a chat teacher, with its true label when known.
type Prompt struct {
	Text  string `json:"text"`
	Label string `json:"label,omitempty"`
}

// Progress reports a stage of a distillation.
type Progress struct {
	Stage string              `json:"stage"` // "teacher", "train", "baseline"
	Done  int                 `json:"done"`
	Total int                 `json:"total"`
	Epoch *experts.EpochStats `json:"epoch,omitempty"`
}

// Result is a distilled student: its network, manifest, encoded weights, ID and report.
type Result struct {
	Student  *experts.Network
	Manifest *experts.Manifest
	Weights  []byte
	ID       cid.Cid
	Report   *Report
}

func (o *Options) defaults(vectors bool) error {
	if o.Domain == "" {
		return fmt.Errorf("distill: a domain is required")
	}
	if o.Temperature == 0 {
		o.Temperature = 2
	}
	if o.SoftWeight == 0 {
		o.SoftWeight = 0.5
	}
	if o.Epochs == 0 && vectors {
		o.Epochs = 40 // class students get theirs from the size of the transfer set (runClasses)
	}
	if o.Name == "" {
		o.Name = o.Domain + "-micro"
	}
	switch {
	case o.Temperature < 0 || math.IsNaN(o.Temperature) || math.IsInf(o.Temperature, 0):
		return fmt.Errorf("distill: temperature %g must be a positive number", o.Temperature)
	case o.SoftWeight < 0 || o.SoftWeight > 1:
		return fmt.Errorf("distill: soft weight %g must be in [0, 1]", o.SoftWeight)
	case o.Epochs < 0:
		return fmt.Errorf("distill: epochs %d must not be negative", o.Epochs)
	}
	return nil
}

func (o *Options) report(stage string, done, total int, ep *experts.EpochStats) {
	if o.Progress != nil {
		o.Progress(Progress{Stage: stage, Done: done, Total: total, Epoch: ep})
	}
}

func (o *Options) trainConfig(stage string) experts.TrainConfig {
	return experts.TrainConfig{Epochs: o.Epochs, BatchSize: o.BatchSize, LearningRate: o.LearningRate, Seed: o.Seed,
		Progress: func(s experts.EpochStats) { o.report(stage, s.Epoch, s.Epochs, &s) }}
}

// Distill trains a student of the teacher within the domain's budget and returns it with its
// manifest (linking the teacher as its parent) and a report of retention on held-out data.
func Distill(ctx context.Context, t Teacher, o Options) (*Result, error) {
	start := time.Now()
	info := t.Info()
	var res *Result
	var err error
	switch tt := t.(type) {
	case TextTeacher:
		if err = o.defaults(false); err != nil {
			return nil, err
		}
		res, err = distillText(ctx, tt, o)
	case VectorTeacher:
		vectors := info.Output.Kind != experts.OutputClasses
		if err = o.defaults(vectors); err != nil {
			return nil, err
		}
		if vectors {
			res, err = distillVectors(ctx, tt, o)
		} else {
			res, err = distillClasses(ctx, tt, o)
		}
	default:
		return nil, fmt.Errorf("distill: teacher %s can neither run vectors nor label text", info.Spec)
	}
	if err != nil {
		return nil, err
	}
	res.Report.Seconds = time.Since(start).Seconds()
	return res, nil
}

// budgetFor returns the student budget: the domain's (or the override), and never more than a
// teacher of known size.
func budgetFor(o Options, teacherParams int) (budget int, err error) {
	budget, err = DomainBudget(o.Domain, o.Params)
	if err != nil {
		return 0, fmt.Errorf("distill: %w", err)
	}
	if teacherParams > 0 && o.Params == 0 {
		budget = min(budget, teacherParams)
	}
	return budget, nil
}

// newStudent builds the student network, with input normalisation fitted to x for plain
// vector inputs.
func newStudent(arch experts.Arch, in experts.InputSpec, x []float32, seed uint64) (*experts.Network, error) {
	arch.Normalize = in.Kind == experts.InputVector && arch.Output == experts.OutputSoftmax
	net, err := experts.NewNetwork(arch, seed)
	if err != nil {
		return nil, fmt.Errorf("distill: student: %w", err)
	}
	if arch.Normalize {
		net.Mean, net.Std = featureStats(x, arch.Input)
	}
	return net, nil
}

// featureStats returns per-feature mean and standard deviation (1 for constant features).
func featureStats(x []float32, dim int) (mean, std []float64) {
	rows := len(x) / dim
	mean, std = make([]float64, dim), make([]float64, dim)
	for r := 0; r < rows; r++ {
		for j, v := range x[r*dim : (r+1)*dim] {
			mean[j] += float64(v)
		}
	}
	for j := range mean {
		mean[j] /= float64(max(rows, 1))
	}
	for r := 0; r < rows; r++ {
		for j, v := range x[r*dim : (r+1)*dim] {
			d := float64(v) - mean[j]
			std[j] += d * d
		}
	}
	for j := range std {
		std[j] = math.Sqrt(std[j] / float64(max(rows, 1)))
		if std[j] < 1e-6 {
			std[j] = 1
		}
	}
	return mean, std
}

func toFloat64(x []float32) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v)
	}
	return out
}

// tempered turns rows of probabilities p into softmax(log p / T): the distribution the same
// logits give at temperature T. Zero probabilities stay zero.
func tempered(p []float64, classes int, temp float64) []float32 {
	out := make([]float32, len(p))
	row := make([]float64, classes)
	for r := 0; r < len(p)/classes; r++ {
		m := math.Inf(-1)
		for j := range row {
			if v := p[r*classes+j]; v > 0 {
				row[j] = math.Log(v) / temp
				m = max(m, row[j])
			} else {
				row[j] = math.Inf(-1)
			}
		}
		var s float64
		for j := range row {
			row[j] = math.Exp(row[j] - m)
			s += row[j]
		}
		for j := range row {
			out[r*classes+j] = float32(row[j] / s)
		}
	}
	return out
}

func argmaxRow(v []float64) int {
	best := 0
	for j, x := range v {
		if x > v[best] {
			best = j
		}
	}
	return best
}
