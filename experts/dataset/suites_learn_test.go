package dataset_test

import (
	"context"
	"testing"

	"github.com/meshnode/meshnode/experts"
	"github.com/meshnode/meshnode/experts/dataset"
)

// TestSuitesLearnable trains a small MLP on each seed-domain suite, exactly
// as `meshnode expert train --dataset NAME` gets the data (Catalog.Load),
// and checks it beats chance clearly on the held-out test part. The
// thresholds sit well under the accuracies measured with these seeds
// (noted per row, on 2 cores) and well over chance.
func TestSuitesLearnable(t *testing.T) {
	if testing.Short() {
		t.Skip("trains six networks")
	}
	cat := dataset.DefaultCatalog()
	tests := []struct {
		suite  string
		hidden int
		epochs int
		min    float64 // measured: see comment
	}{
		{dataset.SuiteCoding, 16, 6, 0.80},      // measured 0.934; chance 0.20
		{dataset.SuiteLanguage, 16, 6, 0.60},    // measured 0.829; chance 0.25
		{dataset.SuiteMathematics, 16, 6, 0.60}, // measured 0.847; chance 0.50
		{dataset.SuiteReasoning, 16, 6, 0.60},   // measured 0.703; chance 0.50
		{dataset.SuiteToolUse, 16, 6, 0.90},     // measured 1.000; chance 1/6
		{dataset.SuiteContext, 32, 20, 0.60},    // measured 0.693; chance 0.50
	}
	for _, tc := range tests {
		t.Run(tc.suite, func(t *testing.T) {
			train, test, err := cat.Load(tc.suite, 0)
			if err != nil {
				t.Skipf("suite unavailable here: %v", err)
			}
			acc := trainAndTest(t, train, test, tc.hidden, tc.epochs)
			t.Logf("%s: test accuracy %.3f on %d samples (chance %.3f)", tc.suite, acc, test.Len(), 1/float64(len(test.Classes)))
			if acc < tc.min {
				t.Errorf("%s: accuracy %.3f < %.2f", tc.suite, acc, tc.min)
			}
		})
	}
}

func trainAndTest(t *testing.T, train, test *dataset.Dataset, hidden, epochs int) float64 {
	t.Helper()
	net, err := experts.NewNetwork(experts.MLP(train.Dim, []int{hidden}, "relu", len(train.Classes), experts.OutputSoftmax), 1)
	if err != nil {
		t.Fatal(err)
	}
	s := experts.Samples{X: train.X, Dim: train.Dim, Labels: train.Y}
	if _, err := experts.Train(context.Background(), net, s, experts.Samples{}, experts.TrainConfig{
		Epochs: epochs, BatchSize: 32, LearningRate: 3e-3, Seed: 1,
	}); err != nil {
		t.Fatal(err)
	}
	ev, err := experts.Evaluate(net, experts.Samples{X: test.X, Dim: test.Dim, Labels: test.Y}, "")
	if err != nil {
		t.Fatal(err)
	}
	return ev.Accuracy
}
