package experts

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"
)

// lossOf computes the mean training loss of the network on all rows of s.
func lossOf(t *testing.T, n *Network, s Samples, cfg TrainConfig) float64 {
	t.Helper()
	_, l := gradAndLoss(n, s, cfg)
	return l
}

func randomSamples(rng *rand.Rand, rows, dim, classes int, targets bool) Samples {
	s := Samples{X: make([]float32, rows*dim), Dim: dim, Labels: make([]int, rows)}
	for i := range s.X {
		s.X[i] = float32(rng.NormFloat64())
	}
	for i := range s.Labels {
		s.Labels[i] = rng.IntN(classes)
	}
	if targets {
		s.TargetDim = classes
		s.Targets = make([]float32, rows*classes)
		for i := range s.Targets {
			s.Targets[i] = float32(rng.Float64())
		}
	}
	return s
}

// TestGradientsMatchFiniteDifferences checks backpropagation against central differences for
// every layer kind, activation and loss.
func TestGradientsMatchFiniteDifferences(t *testing.T) {
	cases := []struct {
		name string
		arch Arch
		cfg  TrainConfig
		soft bool
	}{
		{"relu-ce", MLP(5, []int{7}, "relu", 3, OutputSoftmax), TrainConfig{Loss: LossCrossEntropy}, false},
		{"gelu-ce", MLP(5, []int{6, 4}, "gelu", 3, OutputSoftmax), TrainConfig{Loss: LossCrossEntropy}, false},
		{"tanh-mse", MLP(5, []int{6}, "tanh", 3, OutputLinear), TrainConfig{Loss: LossMSE}, true},
		{"sigmoid-soft", MLP(5, []int{6}, "sigmoid", 3, OutputSoftmax), TrainConfig{Loss: LossCrossEntropy, SoftWeight: 0.7}, true},
		{"swiglu-ce", Arch{Input: 5, Output: OutputSoftmax, Layers: []LayerSpec{
			{Kind: KindSwiGLU, Units: 4, Hidden: 6}, {Kind: KindDense, Units: 3, Activation: "linear"}}},
			TrainConfig{Loss: LossCrossEntropy}, false},
		{"dense-swiglu-mse", Arch{Input: 5, Output: OutputLinear, Layers: []LayerSpec{
			{Kind: KindDense, Units: 4, Activation: "relu"}, {Kind: KindSwiGLU, Units: 3, Hidden: 5}}},
			TrainConfig{Loss: LossMSE}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			n, err := NewNetwork(tc.arch, 7)
			if err != nil {
				t.Fatal(err)
			}
			s := randomSamples(rng, 9, 5, 3, tc.soft)
			rows := s.Len()
			ws := newWorkspace(n, rows)
			ws.ensureGrads(n)
			idx := make([]int, rows)
			for i := range idx {
				idx[i] = i
			}
			xb := make([]float64, rows*5)
			gatherRows(xb, s.X, 5, idx)
			logits := n.forward(ws, xb, rows)
			lossGrad(tc.cfg, 3, logits, ws.acts[len(ws.acts)-1].dz[:rows*3], s, idx)
			grads := n.zeroLike()
			n.backward(ws, rows, grads)
			gp := grads.params()
			checkFiniteDifferences(t, n, s, tc.cfg, gp)
		})
	}
}

// TestTrainingIsDeterministicAndLearns trains on a separable synthetic problem twice with the
// same seed: the weights must match bit for bit and the accuracy must be high.
func TestTrainingIsDeterministicAndLearns(t *testing.T) {
	for _, opt := range []string{"adam", "sgd"} {
		t.Run(opt, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(3, 4))
			s := randomSamples(rng, 600, 4, 2, false)
			for i := range s.Labels {
				row := s.X[i*4 : i*4+4]
				if row[0]*row[1] > 0 { // an XOR-like quadrant rule: not linearly separable
					s.Labels[i] = 1
				} else {
					s.Labels[i] = 0
				}
			}
			train := func() (*Network, float64) {
				n, err := NewNetwork(MLP(4, []int{16}, "tanh", 2, OutputSoftmax), 11)
				if err != nil {
					t.Fatal(err)
				}
				cfg := TrainConfig{Epochs: 60, BatchSize: 32, Optimizer: opt, Seed: 5, LearningRate: 0.01}
				if opt == "sgd" {
					cfg.LearningRate = 0.1
				}
				if _, err := Train(context.Background(), n, s, Samples{}, cfg); err != nil {
					t.Fatal(err)
				}
				ev, err := Evaluate(n, s, "")
				if err != nil {
					t.Fatal(err)
				}
				return n, ev.Accuracy
			}
			a, accA := train()
			b, _ := train()
			pa, pb := a.params(), b.params()
			for k := range pa {
				for i := range pa[k].data {
					if math.Float64bits(pa[k].data[i]) != math.Float64bits(pb[k].data[i]) {
						t.Fatalf("%s[%d] differs between runs with one seed", pa[k].name, i)
					}
				}
			}
			if accA < 0.93 {
				t.Fatalf("accuracy %.3f on the quadrant problem, want ≥ 0.93", accA)
			}
		})
	}
}

func TestEarlyStoppingRestoresBest(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 9))
	train := randomSamples(rng, 40, 6, 3, false) // random labels: validation loss will rise
	val := randomSamples(rng, 40, 6, 3, false)
	n, _ := NewNetwork(MLP(6, []int{64}, "relu", 3, OutputSoftmax), 1)
	res, err := Train(context.Background(), n, train, val, TrainConfig{Epochs: 200, LearningRate: 0.01, Patience: 3, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if !res.StoppedEarly || len(res.Epochs) == 200 {
		t.Fatalf("overfitting random labels did not stop early (%d epochs)", len(res.Epochs))
	}
	ev, _ := Evaluate(n, val, "")
	best := res.Epochs[res.BestEpoch-1].ValLoss
	if math.Abs(ev.Loss-best) > 1e-4 {
		t.Fatalf("restored network has validation loss %.6f, best epoch had %.6f", ev.Loss, best)
	}
}

func TestBadInputsGiveErrors(t *testing.T) {
	n, _ := NewNetwork(MLP(4, []int{3}, "relu", 2, OutputSoftmax), 1)
	if _, err := n.Predict([]float64{1, 2, 3}); err == nil {
		t.Fatal("3 values for a 4-wide expert: want error")
	}
	bad := Samples{X: make([]float32, 8), Dim: 4, Labels: []int{0, 5}}
	if _, err := Train(context.Background(), n, bad, Samples{}, TrainConfig{Epochs: 1}); err == nil {
		t.Fatal("label 5 for 2 classes: want error")
	}
	if _, err := Train(context.Background(), n, Samples{X: make([]float32, 6), Dim: 3, Labels: []int{0, 1}}, Samples{}, TrainConfig{Epochs: 1}); err == nil {
		t.Fatal("wrong input width: want error")
	}
	for _, a := range []Arch{{Input: 0, Output: OutputSoftmax, Layers: []LayerSpec{{Kind: KindDense, Units: 2}}},
		{Input: 3, Output: "sparkle", Layers: []LayerSpec{{Kind: KindDense, Units: 2}}},
		{Input: 3, Output: OutputSoftmax, Layers: []LayerSpec{{Kind: "conv", Units: 2}}},
		{Input: 3, Output: OutputSoftmax, Layers: []LayerSpec{{Kind: KindDense, Units: 2, Activation: "swish"}}},
		{Input: 3, Output: OutputSoftmax}} {
		if _, err := NewNetwork(a, 1); err == nil {
			t.Errorf("architecture %+v: want error", a)
		}
	}
}

func TestParamCount(t *testing.T) {
	if got := MLP(784, []int{100}, "relu", 10, OutputSoftmax).ParamCount(); got != 79510 {
		t.Fatalf("784-100-10 has %d parameters, want 79510", got)
	}
	a := Arch{Input: 8, Output: OutputLinear, Layers: []LayerSpec{{Kind: KindSwiGLU, Hidden: 16, Units: 8}}}
	if got := a.ParamCount(); got != 2*8*16+16*8 {
		t.Fatalf("swiglu 8-16-8 has %d parameters", got)
	}
}

// checkFiniteDifferences compares backprop's gradient gp with central finite differences of
// the loss for every parameter of n.
func checkFiniteDifferences(t *testing.T, n *Network, s Samples, cfg TrainConfig, gp []param) {
	t.Helper()
	for k, p := range n.params() {
		for i := range p.data {
			orig := p.data[i]
			const h = 1e-5
			p.data[i] = orig + h
			lp := lossOf(t, n, s, cfg)
			p.data[i] = orig - h
			lm := lossOf(t, n, s, cfg)
			p.data[i] = orig
			num := (lp - lm) / (2 * h)
			got := gp[k].data[i]
			if math.Abs(num-got) > 1e-6+1e-4*math.Abs(num) {
				t.Fatalf("%s[%d]: backprop %.9g, finite difference %.9g", p.name, i, got, num)
			}
		}
	}
}

// TestLRDecayScalesLaterEpochs: with a decay of 1e-12 every epoch after the first barely moves
// the weights, whatever the optimizer; without it they keep moving.
func TestLRDecayScalesLaterEpochs(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	s := randomSamples(rng, 200, 4, 2, false)
	for _, opt := range []string{"adam", "sgd"} {
		moved := func(decay float64) float64 {
			n, err := NewNetwork(MLP(4, []int{8}, "tanh", 2, OutputSoftmax), 11)
			if err != nil {
				t.Fatal(err)
			}
			var after1 []float64
			cfg := TrainConfig{Epochs: 5, BatchSize: 16, Optimizer: opt, Seed: 5, LRDecay: decay,
				Progress: func(st EpochStats) {
					if st.Epoch == 1 {
						after1 = n.Params()
					}
				}}
			if _, err := Train(context.Background(), n, s, Samples{}, cfg); err != nil {
				t.Fatal(err)
			}
			var d float64
			for i, w := range n.Params() {
				d = math.Max(d, math.Abs(w-after1[i]))
			}
			return d
		}
		if d := moved(1e-12); d > 1e-6 {
			t.Errorf("%s: decay 1e-12 still moved a weight by %g after epoch 1", opt, d)
		}
		if d := moved(0); d < 1e-3 {
			t.Errorf("%s: without decay the weights moved only %g after epoch 1", opt, d)
		}
	}
	n, _ := NewNetwork(MLP(4, []int{8}, "tanh", 2, OutputSoftmax), 11)
	if _, err := Train(context.Background(), n, s, Samples{}, TrainConfig{Epochs: 1, LRDecay: 1.5}); err == nil {
		t.Error("decay 1.5: no error")
	}
}
