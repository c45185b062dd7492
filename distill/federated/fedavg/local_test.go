package fedavg

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/meshnode/meshnode/experts"
)

// TestFedProxKeepsLocalTrainingNearTheGlobalModel: the proximal term shrinks the update, and
// applying an update reproduces the locally trained parameters.
func TestFedProxKeepsLocalTrainingNearTheGlobalModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	s := experts.Samples{X: make([]float32, 400*8), Dim: 8, Labels: make([]int, 400)}
	for i := range s.X {
		s.X[i] = float32(rng.NormFloat64())
	}
	for i := range s.Labels {
		if s.X[i*8] > 0 {
			s.Labels[i] = 1
		}
	}
	global, _ := experts.NewNetwork(experts.MLP(8, []int{16}, "tanh", 2, experts.OutputSoftmax), 3)
	plain, err := LocalUpdate(context.Background(), global, s, LocalConfig{Epochs: 5, LearningRate: 0.01, Seed: 1}, "p")
	if err != nil {
		t.Fatal(err)
	}
	prox, err := LocalUpdate(context.Background(), global, s, LocalConfig{Epochs: 5, LearningRate: 0.01, ProxMu: 10, Seed: 1}, "p")
	if err != nil {
		t.Fatal(err)
	}
	if norm(prox.Delta) >= 0.7*norm(plain.Delta) {
		t.Fatalf("FedProx update norm %.4f, plain %.4f: the proximal term should shrink it", norm(prox.Delta), norm(plain.Delta))
	}
	next, err := Apply(global, plain.Delta)
	if err != nil {
		t.Fatal(err)
	}
	g, n := global.Params(), next.Params()
	for i := range g {
		if math.Abs(n[i]-g[i]-plain.Delta[i]) > 1e-12 {
			t.Fatalf("parameter %d: applied %v, want %v", i, n[i]-g[i], plain.Delta[i])
		}
	}
	if plain.Samples != 400 {
		t.Fatalf("update reports %d samples", plain.Samples)
	}
}
