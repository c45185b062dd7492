package experts

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"
)

// temperedTargets replaces s.Targets by softmax(teacherLogits/T) rows, as the Temperature
// contract asks: teacher probabilities at the training temperature.
func temperedTargets(rng *rand.Rand, s *Samples, classes int, temp float64) {
	s.TargetDim = classes
	s.Targets = make([]float32, s.Len()*classes)
	row := make([]float64, classes)
	for i := 0; i < s.Len(); i++ {
		for j := range row {
			row[j] = 3 * rng.NormFloat64() / temp
		}
		softmaxRows(row, 1, classes)
		for j, v := range row {
			s.Targets[i*classes+j] = float32(v)
		}
	}
}

// gradAndLoss returns the backpropagated gradient of the loss over all rows of s.
func gradAndLoss(n *Network, s Samples, cfg TrainConfig) ([]param, float64) {
	rows := s.Len()
	ws := newWorkspace(n, rows)
	ws.ensureGrads(n)
	idx := make([]int, rows)
	for i := range idx {
		idx[i] = i
	}
	xb := make([]float64, rows*s.Dim)
	gatherRows(xb, s.X, s.Dim, idx)
	logits := n.forward(ws, xb, rows)
	l, _ := lossGrad(cfg, n.OutputDim(), logits, ws.acts[len(ws.acts)-1].dz[:rows*n.OutputDim()], s, idx)
	grads := n.zeroLike()
	n.backward(ws, rows, grads)
	return grads.params(), l
}

// TestTemperatureGradientsMatchFiniteDifferences checks the distillation loss softW·T²·CE(soft,
// softmax(z/T)) + (1-softW)·CE(hard, softmax(z)) against central differences.
func TestTemperatureGradientsMatchFiniteDifferences(t *testing.T) {
	cases := []struct {
		name   string
		temp   float64
		soft   float64
		labels bool
	}{
		{"T2-mixed", 2, 0.7, true},
		{"T4-soft-only", 4, 0, false},
		{"T0.5-mixed", 0.5, 0.3, true},
		{"T1-soft-with-labels", 1, 1, true},
		{"T8-mostly-hard", 8, 0.1, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(21, 22))
			n, err := NewNetwork(MLP(5, []int{6}, "tanh", 4, OutputSoftmax), 3)
			if err != nil {
				t.Fatal(err)
			}
			s := randomSamples(rng, 11, 5, 4, false)
			temperedTargets(rng, &s, 4, tc.temp)
			if !tc.labels {
				s.Labels = nil
			}
			cfg := TrainConfig{Loss: LossCrossEntropy, SoftWeight: tc.soft, Temperature: tc.temp}
			gp, _ := gradAndLoss(n, s, cfg)
			checkFiniteDifferences(t, n, s, cfg, gp)
		})
	}
}

// TestTemperatureOneEqualsNoTemperature: at T = 1 the tempered loss is the plain soft/hard mix,
// so its loss and gradient must equal those of Temperature 0 (the unchanged path).
func TestTemperatureOneEqualsNoTemperature(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	n, _ := NewNetwork(MLP(5, []int{7}, "relu", 3, OutputSoftmax), 9)
	s := randomSamples(rng, 13, 5, 3, false)
	temperedTargets(rng, &s, 3, 1)
	for _, sw := range []float64{0, 0.4, 1} {
		g0, l0 := gradAndLoss(n, s, TrainConfig{Loss: LossCrossEntropy, SoftWeight: sw})
		g1, l1 := gradAndLoss(n, s, TrainConfig{Loss: LossCrossEntropy, SoftWeight: sw, Temperature: 1})
		if math.Abs(l0-l1) > 1e-12*math.Max(1, math.Abs(l0)) {
			t.Fatalf("soft weight %g: loss %.15g without temperature, %.15g at T=1", sw, l0, l1)
		}
		for k := range g0 {
			for i := range g0[k].data {
				if d := math.Abs(g0[k].data[i] - g1[k].data[i]); d > 1e-12 {
					t.Fatalf("soft weight %g: %s[%d] gradient differs by %g at T=1", sw, g0[k].name, i, d)
				}
			}
		}
	}
}

// TestTemperatureScalesSoftGradient checks the T² factor: as T grows, the soft term's gradient
// with respect to the logits tends to the centred logit difference (z_s − z_t)/(N·classes),
// independent of T, instead of vanishing as 1/T². Concretely the gradient norm at T=8 must stay within a factor 3 of the norm at T=4 (without
// the T² factor it would shrink about 4-fold).
func TestTemperatureScalesSoftGradient(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	n, _ := NewNetwork(MLP(5, []int{7}, "tanh", 4, OutputSoftmax), 2)
	s := randomSamples(rng, 20, 5, 4, false)
	s.Labels = nil
	teacherLogits := make([]float64, s.Len()*4)
	for i := range teacherLogits {
		teacherLogits[i] = 2 * rng.NormFloat64()
	}
	norm := func(temp float64) float64 {
		s.TargetDim, s.Targets = 4, make([]float32, len(teacherLogits))
		row := make([]float64, 4)
		for i := 0; i < s.Len(); i++ {
			for j := range row {
				row[j] = teacherLogits[i*4+j] / temp
			}
			softmaxRows(row, 1, 4)
			for j, v := range row {
				s.Targets[i*4+j] = float32(v)
			}
		}
		g, _ := gradAndLoss(n, s, TrainConfig{Loss: LossCrossEntropy, Temperature: temp})
		var ss float64
		for _, p := range g {
			for _, v := range p.data {
				ss += v * v
			}
		}
		return math.Sqrt(ss)
	}
	n4, n8 := norm(4), norm(8)
	if r := n4 / n8; r > 3 || r < 1.0/3 {
		t.Fatalf("gradient norm %.4g at T=4 and %.4g at T=8 (ratio %.2f): the T² scaling is off", n4, n8, r)
	}
}

func TestTemperatureValidation(t *testing.T) {
	n, _ := NewNetwork(MLP(4, []int{3}, "relu", 2, OutputSoftmax), 1)
	s := Samples{X: make([]float32, 8), Dim: 4, Labels: []int{0, 1}}
	for _, temp := range []float64{-1, math.NaN(), math.Inf(1)} {
		if _, err := Train(context.Background(), n, s, Samples{}, TrainConfig{Epochs: 1, Temperature: temp}); err == nil {
			t.Errorf("temperature %g: want error", temp)
		}
	}
}

// TestTemperatureDistillationLearnsTeacher distils a random teacher network into a student of
// the same shape at T=3 from soft targets alone and checks the student agrees with the teacher's
// argmax on held-out inputs far above chance (4 classes: chance is 0.25).
func TestTemperatureDistillationLearnsTeacher(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	teacher, _ := NewNetwork(MLP(6, []int{16}, "tanh", 4, OutputSoftmax), 4)
	const temp = 3.0
	label := func(rows int) Samples {
		s := randomSamples(rng, rows, 6, 4, false)
		xb := make([]float64, len(s.X))
		for i, v := range s.X {
			xb[i] = float64(v)
		}
		ws := newWorkspace(teacher, rows)
		logits := teacher.forward(ws, xb, rows)
		s.TargetDim, s.Targets = 4, make([]float32, rows*4)
		row := make([]float64, 4)
		for i := 0; i < rows; i++ {
			for j := range row {
				row[j] = logits[i*4+j] / temp
			}
			s.Labels[i] = argmax(row)
			softmaxRows(row, 1, 4)
			for j, v := range row {
				s.Targets[i*4+j] = float32(v)
			}
		}
		return s
	}
	train, test := label(1500), label(500)
	train.Labels = nil
	student, _ := NewNetwork(MLP(6, []int{16}, "tanh", 4, OutputSoftmax), 99)
	if _, err := Train(context.Background(), student, train, Samples{}, TrainConfig{Epochs: 30, Temperature: temp, Seed: 1, LearningRate: 0.01}); err != nil {
		t.Fatal(err)
	}
	test.Targets, test.TargetDim = nil, 0
	ev, err := Evaluate(student, test, "")
	if err != nil {
		t.Fatal(err)
	}
	if ev.Accuracy < 0.85 {
		t.Fatalf("student agrees with the teacher on %.3f of held-out inputs, want ≥ 0.85", ev.Accuracy)
	}
	t.Logf("agreement with the teacher: %.4f", ev.Accuracy)
}
