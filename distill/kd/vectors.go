package kd

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"

	"github.com/meshnode/meshnode/experts"
)

// distillVectors distils a vector teacher: a checkpoint expert on its probes, or a vector
// expert on a data set's inputs. The student minimises the mean squared error to the
// teacher's outputs, which are scaled to unit RMS for training (the scale is folded back into
// the student's last layer, exactly); cosine similarity and relative error are reported. A
// checkpoint expert's student starts from the teacher pruned to its width, which is also the
// baseline it is compared with.
func distillVectors(ctx context.Context, t VectorTeacher, o Options) (*Result, error) {
	info := t.Info()
	budget, err := budgetFor(o, info.Params)
	if err != nil {
		return nil, err
	}
	in, out := info.Input.Dim, info.Output.Dim
	arch, err := SizeStudent(in, out, experts.OutputLinear, budget)
	if err != nil {
		return nil, fmt.Errorf("distill: %w", err)
	}
	var trainX, testX []float32
	var data DataReport
	moe, isMoE := t.(*MoETeacher)
	switch {
	case o.Train != nil && o.Test != nil:
		if o.Train.Dim != in || o.Test.Dim != in {
			return nil, fmt.Errorf("distill: data set has %d features; teacher %s takes %d", o.Train.Dim, info.Spec, in)
		}
		trainX, testX = o.Train.X, o.Test.X
		data = DataReport{Source: "inputs of data set " + o.Train.Name, Train: o.Train.Name, TrainRows: o.Train.Len(),
			Test: o.Test.Name, TestRows: o.Test.Len()}
	case isMoE:
		p, err := moe.Probes(ctx, withSeed(o.Probes, o.Seed))
		if err != nil {
			return nil, fmt.Errorf("distill: probes: %w", err)
		}
		trainX, testX = p.Train, p.Test
		data = DataReport{Source: p.Source, Train: "probes:train", TrainRows: p.TrainRows(), Test: "probes:held-out", TestRows: p.TestRows()}
	default:
		return nil, fmt.Errorf("distill: vector teacher %s needs a data set of inputs (--dataset)", info.Spec)
	}
	data.TestDigest = floatDigest(testX)
	o.report("teacher", 0, 2, nil)
	trainXf := toFloat64(trainX)
	trainY, err := t.Outputs(ctx, trainXf, len(trainX)/in)
	if err != nil {
		return nil, fmt.Errorf("distill: %w", err)
	}
	testY, err := t.Outputs(ctx, toFloat64(testX), len(testX)/in)
	if err != nil {
		return nil, fmt.Errorf("distill: %w", err)
	}
	o.report("teacher", 2, 2, nil)
	scale := rms(trainY)
	if scale == 0 || math.IsNaN(scale) || math.IsInf(scale, 0) {
		return nil, fmt.Errorf("distill: teacher %s outputs have RMS %g on the probes; nothing to learn", info.Spec, scale)
	}
	targets := make([]float32, len(trainY))
	for i, v := range trainY {
		targets[i] = float32(v / scale)
	}
	student, err := newStudent(arch, info.Input, trainX, o.Seed)
	if err != nil {
		return nil, err
	}
	var pruned *experts.Network
	if isMoE {
		// Start from the teacher pruned to the student's width (the baseline below), scaled
		// like the targets: distillation then only has to improve on pruning.
		if pruned, err = moe.Pruned(ctx, arch.Layers[0].Hidden, trainXf, len(trainX)/in); err != nil {
			return nil, fmt.Errorf("distill: prune: %w", err)
		}
		if err := student.SetParams(pruned.Params()); err != nil {
			return nil, fmt.Errorf("distill: warm start: %w", err)
		}
		if err := scaleLastLayer(student, 1/scale); err != nil {
			return nil, err
		}
	}
	if o.LearningRate == 0 {
		o.LearningRate = 3e-3
		if pruned != nil {
			o.LearningRate = 3e-4
		}
	}
	train := experts.Samples{X: trainX, Dim: in, Targets: targets, TargetDim: out}
	if _, err := experts.Train(ctx, student, train, experts.Samples{}, o.trainConfig("train")); err != nil {
		return nil, fmt.Errorf("distill: %w", err)
	}
	if err := scaleLastLayer(student, scale); err != nil {
		return nil, err
	}
	rep := newReport(info, o, budget, student, "vectors")
	rep.Data = data
	vm, err := vectorMetrics(student, testX, testY)
	if err != nil {
		return nil, err
	}
	rep.Vectors = vm
	rep.Metric, rep.TeacherMetric, rep.StudentMetric = "cosine similarity to the teacher", 1, vm.Cosine
	rep.Retention = vm.Cosine
	if o.Baseline && pruned != nil {
		h := arch.Layers[0].Hidden
		bm, err := vectorMetrics(pruned, testX, testY)
		if err != nil {
			return nil, err
		}
		rep.Baseline = &BaselineReport{Name: "pruned-teacher", Params: pruned.ParamCount(), Metric: bm.Cosine, Retention: bm.Cosine,
			Vectors: bm, Description: fmt.Sprintf("the teacher cut to its %d hidden units of largest output contribution on the training probes (same architecture and size as the student)", h)}
	}
	evals := []experts.EvalResult{
		{Dataset: data.Test, Digest: data.TestDigest, Samples: data.TestRows, Metric: "teacher-cosine", Value: vm.Cosine},
		{Dataset: data.Test, Digest: data.TestDigest, Samples: data.TestRows, Metric: "teacher-relative-error", Value: vm.RelativeError},
	}
	return finish(ctx, info, o, student, experts.InputSpec{Kind: experts.InputVector, Dim: in},
		experts.OutputSpec{Kind: experts.OutputVector, Dim: out}, evals, rep)
}

func withSeed(p ProbeOptions, seed uint64) ProbeOptions {
	if p.Seed == 0 {
		p.Seed = seed
	}
	return p
}

func rms(v []float64) float64 {
	var ss float64
	for _, x := range v {
		ss += x * x
	}
	return math.Sqrt(ss / float64(max(len(v), 1)))
}

// scaleLastLayer scales a linear head's output by s: it multiplies the last layer's output
// projection — a dense layer's weight and bias, a SwiGLU's down projection — which are the last
// parameters of the network.
func scaleLastLayer(n *experts.Network, s float64) error {
	a := n.Arch
	last := a.Layers[len(a.Layers)-1]
	tail := last.Hidden * last.Units // swiglu down_proj
	if last.Kind == experts.KindDense {
		in := a.Input
		if len(a.Layers) > 1 {
			in = a.Layers[len(a.Layers)-2].Units
		}
		tail = in*last.Units + last.Units
	}
	p := n.Params()
	for i := len(p) - tail; i < len(p); i++ {
		p[i] *= s
	}
	return n.SetParams(p)
}

// vectorMetrics compares a network's outputs with the teacher's on the held-out inputs.
func vectorMetrics(n *experts.Network, x []float32, teacher []float64) (*VectorMetrics, error) {
	rows, out := len(x)/n.InputDim(), n.OutputDim()
	y, err := n.Forward(toFloat64(x), rows)
	if err != nil {
		return nil, fmt.Errorf("distill: evaluate: %w", err)
	}
	var cos, diff, norm float64
	for r := 0; r < rows; r++ {
		s, t := y[r*out:(r+1)*out], teacher[r*out:(r+1)*out]
		var st, ss, tt float64
		for j := range s {
			st += s[j] * t[j]
			ss += s[j] * s[j]
			tt += t[j] * t[j]
			d := s[j] - t[j]
			diff += d * d
		}
		norm += tt
		if ss > 0 && tt > 0 {
			cos += st / math.Sqrt(ss*tt)
		}
	}
	return &VectorMetrics{Cosine: cos / float64(max(rows, 1)), RelativeError: math.Sqrt(diff / norm),
		MSE: diff / float64(max(rows*out, 1)), TeacherRMS: math.Sqrt(norm / float64(max(rows*out, 1)))}, nil
}

// floatDigest is the sha256 of rows of float32 values (little-endian), hex.
func floatDigest(x []float32) string {
	h := sha256.New()
	var b [4]byte
	for _, v := range x {
		binary.LittleEndian.PutUint32(b[:], math.Float32bits(v))
		h.Write(b[:])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// textDigest is the sha256 of texts, each preceded by its length.
func textDigest(texts []string) string {
	h := sha256.New()
	var b [8]byte
	for _, t := range texts {
		binary.LittleEndian.PutUint64(b[:], uint64(len(t)))
		h.Write(b[:])
		h.Write([]byte(t))
	}
	return hex.EncodeToString(h.Sum(nil))
}
