package fedavg

import (
	"context"
	"fmt"
	"testing"

	"github.com/meshnode/meshnode/experts"
	"github.com/meshnode/meshnode/experts/dataset"
)

// federate runs rounds of federated training over the parts, with participant 0 optionally
// sending its update sign-flipped and scaled ×10, and returns the test accuracy per round.
func federate(t *testing.T, parts []experts.Samples, test experts.Samples, agg string, attack bool, rounds int) []float64 {
	t.Helper()
	ctx := context.Background()
	global, err := experts.NewNetwork(experts.MLP(784, []int{32}, "relu", 10, experts.OutputSoftmax), 1)
	if err != nil {
		t.Fatal(err)
	}
	var accs []float64
	for r := 0; r < rounds; r++ {
		var ups []Update
		for i, p := range parts {
			u, err := LocalUpdate(ctx, global, p, LocalConfig{Epochs: 1, BatchSize: 32, LearningRate: 1e-3, Seed: uint64(100*r + i)}, fmt.Sprint(i))
			if err != nil {
				t.Fatal(err)
			}
			if attack && i == 0 {
				for j := range u.Delta {
					u.Delta[j] *= -10
				}
			}
			ups = append(ups, u)
		}
		delta, err := Aggregate(ups, Config{Aggregator: agg, Trim: 0.2, MaxShare: 0.5})
		if err != nil {
			t.Fatal(err)
		}
		if global, err = Apply(global, delta); err != nil {
			t.Fatal(err)
		}
		ev, err := experts.Evaluate(global, test, "")
		if err != nil {
			t.Fatal(err)
		}
		accs = append(accs, ev.Accuracy)
	}
	return accs
}

// TestRobustAggregationUnderAttack: ten participants hold mildly non-IID shares (Dirichlet α = 5)
// of Fashion-MNIST; one sends sign-flipped updates scaled ×10. Median and trimmed mean stay
// within 2 points of their clean runs; plain FedAvg visibly degrades.
func TestRobustAggregationUnderAttack(t *testing.T) {
	cat := dataset.DefaultCatalog()
	train, err := dataset.LoadFashionMNIST(cat.FashionMNISTDir, "train", 12000)
	if err != nil {
		t.Fatal(err)
	}
	testSet, err := dataset.LoadFashionMNIST(cat.FashionMNISTDir, "test", 0)
	if err != nil {
		t.Fatal(err)
	}
	shares, err := dataset.DirichletPartition(train.Y, 10, 10, 5, 42)
	if err != nil {
		t.Fatal(err)
	}
	var parts []experts.Samples
	for i, idx := range shares {
		d := train.Subset(fmt.Sprint("part", i), idx)
		parts = append(parts, experts.Samples{X: d.X, Dim: d.Dim, Labels: d.Y})
	}
	test := experts.Samples{X: testSet.X, Dim: testSet.Dim, Labels: testSet.Y}
	const rounds = 6
	final := func(agg string, attack bool) float64 {
		accs := federate(t, parts, test, agg, attack, rounds)
		t.Logf("%-12s attack=%-5v accuracy by round %.3f", agg, attack, accs)
		// The mean of the last three rounds: single rounds of non-IID training wobble by a point
		// or two, which would drown the 2-point margin.
		return (accs[rounds-1] + accs[rounds-2] + accs[rounds-3]) / 3
	}
	cleanAvg := final(FedAvg, false)
	if cleanAvg < 0.7 {
		t.Fatalf("clean FedAvg reaches only %.3f", cleanAvg)
	}
	for _, agg := range []string{Median, TrimmedMean} {
		clean, attacked := final(agg, false), final(agg, true)
		if clean-attacked > 0.02 {
			t.Errorf("%s under attack: %.3f, clean %.3f: more than 2 points lost", agg, attacked, clean)
		}
	}
	if attacked := final(FedAvg, true); cleanAvg-attacked < 0.10 {
		t.Errorf("plain FedAvg under attack: %.3f vs clean %.3f; the attack should visibly degrade it", attacked, cleanAvg)
	}
}
