package experts

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"
)

func quadrantSamples(seed uint64, rows int) Samples {
	rng := rand.New(rand.NewPCG(seed, seed+1))
	s := randomSamples(rng, rows, 4, 2, false)
	for i := range s.Labels {
		row := s.X[i*4 : i*4+4]
		s.Labels[i] = 0
		if row[0]*row[1] > 0 {
			s.Labels[i] = 1
		}
	}
	return s
}

// oneStep trains one DP-SGD step over every row (batch = rows, so the sampling rate is 1)
// with plain SGD at learning rate 1, and returns how far each parameter moved.
func oneStep(t *testing.T, s Samples, dp *DPSGD) []float64 {
	t.Helper()
	n, err := NewNetwork(MLP(4, []int{8}, "tanh", 2, OutputSoftmax), 11)
	if err != nil {
		t.Fatal(err)
	}
	before := n.Params()
	cfg := TrainConfig{Epochs: 1, BatchSize: s.Len(), Optimizer: "sgd", LearningRate: 1, Momentum: 1e-300, DP: dp}
	if _, err := Train(context.Background(), n, s, Samples{}, cfg); err != nil {
		t.Fatal(err)
	}
	after := n.Params()
	for i := range after {
		after[i] -= before[i]
	}
	return after
}

// With no noise, one step moves the weights by the mean of clipped gradients: its norm is at
// most ClipNorm, however large the gradients are.
func TestDPSGDClipsEveryRow(t *testing.T) {
	s := quadrantSamples(1, 50)
	for i := range s.X {
		s.X[i] *= 1000 // huge inputs, huge gradients
	}
	const clip = 0.01
	step := oneStep(t, s, &DPSGD{ClipNorm: clip, Rand: rand.New(rand.NewPCG(1, 2))})
	var norm float64
	for _, v := range step {
		norm += v * v
	}
	norm = math.Sqrt(norm)
	// float32 rounding of the returned weights adds up to ~1e-7 per parameter.
	if norm > clip*(1+1e-3)+1e-5 || norm < clip/10 {
		t.Errorf("one step moved the weights by %g, want at most the clip norm %g (and not nothing)", norm, clip)
	}
}

// The noise has the stated deviation: NoiseMultiplier·ClipNorm on the sum, over the rows.
func TestDPSGDNoiseIsCalibrated(t *testing.T) {
	s := quadrantSamples(2, 40)
	const clip, z = 1e-6, 2e4 // the gradients' share is negligible next to the noise
	step := oneStep(t, s, &DPSGD{ClipNorm: clip, NoiseMultiplier: z, Rand: rand.New(rand.NewPCG(3, 4))})
	var ss float64
	for _, v := range step {
		ss += v * v
	}
	got := math.Sqrt(ss / float64(len(step)))
	want := z * clip / float64(s.Len())
	if math.Abs(got-want) > 0.15*want {
		t.Errorf("noise deviation per parameter %g, want %g", got, want)
	}
	again := oneStep(t, s, &DPSGD{ClipNorm: clip, NoiseMultiplier: z, Rand: rand.New(rand.NewPCG(5, 6))})
	if again[0] == step[0] {
		t.Error("two random sources gave the same noise")
	}
}

// DP-SGD still learns the quadrant problem at a moderate noise multiplier.
func TestDPSGDLearns(t *testing.T) {
	s := quadrantSamples(3, 2000)
	for _, seed := range []uint64{1, 2, 3} {
		n, err := NewNetwork(MLP(4, []int{16}, "tanh", 2, OutputSoftmax), seed)
		if err != nil {
			t.Fatal(err)
		}
		cfg := TrainConfig{Epochs: 30, BatchSize: 64, LearningRate: 0.01,
			DP: &DPSGD{ClipNorm: 1, NoiseMultiplier: 1, Rand: rand.New(rand.NewPCG(seed, 9))}}
		if _, err := Train(context.Background(), n, s, Samples{}, cfg); err != nil {
			t.Fatal(err)
		}
		ev, err := Evaluate(n, s, "")
		if err != nil {
			t.Fatal(err)
		}
		if ev.Accuracy < 0.85 {
			t.Errorf("seed %d: accuracy %.3f under DP-SGD (z = 1), want ≥ 0.85", seed, ev.Accuracy)
		}
	}
}

func TestDPSGDBadConfig(t *testing.T) {
	s := quadrantSamples(4, 20)
	r := rand.New(rand.NewPCG(1, 1))
	for _, c := range []struct {
		name string
		cfg  TrainConfig
	}{
		{"no clip", TrainConfig{Epochs: 1, DP: &DPSGD{NoiseMultiplier: 1, Rand: r}}},
		{"negative noise", TrainConfig{Epochs: 1, DP: &DPSGD{ClipNorm: 1, NoiseMultiplier: -1, Rand: r}}},
		{"no random source", TrainConfig{Epochs: 1, DP: &DPSGD{ClipNorm: 1, NoiseMultiplier: 1}}},
		{"with a temperature", TrainConfig{Epochs: 1, Temperature: 2, DP: &DPSGD{ClipNorm: 1, Rand: r}}},
	} {
		n, _ := NewNetwork(MLP(4, []int{8}, "tanh", 2, OutputSoftmax), 1)
		if _, err := Train(context.Background(), n, s, Samples{}, c.cfg); err == nil {
			t.Errorf("%s: no error", c.name)
		}
	}
}

func BenchmarkDPSGDEpoch(b *testing.B) {
	s := quadrantSamples(5, 4800)
	s2 := Samples{Dim: 784, Labels: s.Labels, X: make([]float32, 4800*784)}
	for i := range s2.X {
		s2.X[i] = float32(i%7) / 7
	}
	for _, dp := range []bool{false, true} {
		name := "batched"
		if dp {
			name = "dpsgd"
		}
		b.Run(name, func(b *testing.B) {
			n, _ := NewNetwork(MLP(784, []int{100}, "relu", 2, OutputSoftmax), 1)
			cfg := TrainConfig{Epochs: 1, BatchSize: 32}
			if dp {
				cfg.DP = &DPSGD{ClipNorm: 1, NoiseMultiplier: 1, Rand: rand.New(rand.NewPCG(1, 2))}
			}
			for range b.N {
				if _, err := Train(context.Background(), n, s2, Samples{}, cfg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
