package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/meshnode/meshnode/experts"
	"github.com/meshnode/meshnode/experts/dataset"
	"github.com/meshnode/meshnode/node"
)

// centralRun is centralized training's test accuracy after each epoch.
type centralRun struct {
	acc       []float64
	optimizer string
	lr        float64
	lrDecay   float64       // per epoch; 0: constant
	wall      time.Duration // training only, evaluation excluded
}

// best is the epoch (from 1) with the highest test accuracy, and that accuracy.
func (c centralRun) best() (int, float64) {
	e, b := 0, 0.0
	for i, a := range c.acc {
		if a > b {
			e, b = i+1, a
		}
	}
	return e, b
}

// centralized trains the same network from the same initial weights on the union of the
// participants' training parts for as many epochs as a federated job runs in all.
func centralized(ctx context.Context, cat dataset.Catalog, parts *node.PartitionReport, o options, optimizer string, lr, lrDecay float64) (centralRun, error) {
	all := experts.Samples{Dim: 784}
	for _, p := range parts.Parts {
		train, _, err := cat.Load("csv:"+p.File, 0)
		if err != nil {
			return centralRun{}, err
		}
		all.X = append(all.X, train.X...)
		all.Labels = append(all.Labels, train.Y...)
	}
	_, test, err := cat.Load("fashion-mnist", 0)
	if err != nil {
		return centralRun{}, err
	}
	testSet := experts.Samples{X: test.X, Dim: test.Dim, Labels: test.Y}
	net, err := experts.NewNetwork(experts.MLP(784, []int{o.hidden}, "relu", 10, experts.OutputSoftmax), o.baseSeed)
	if err != nil {
		return centralRun{}, err
	}
	c := centralRun{optimizer: optimizer, lr: lr, lrDecay: lrDecay}
	epochs := o.centralEpochs
	if epochs == 0 {
		epochs = o.rounds * o.localEpochs
	}
	var evalTime time.Duration
	t0 := time.Now()
	_, err = experts.Train(ctx, net, all, experts.Samples{}, experts.TrainConfig{Epochs: epochs, BatchSize: o.batch,
		LearningRate: lr, LRDecay: lrDecay, Optimizer: optimizer, Seed: o.seed, Progress: func(s experts.EpochStats) {
			e0 := time.Now()
			ev, err := experts.Evaluate(net, testSet, "")
			if err == nil {
				c.acc = append(c.acc, ev.Accuracy)
			}
			evalTime += time.Since(e0)
			fmt.Fprintf(os.Stderr, "\rcentralized (%s): epoch %d of %d", c.label(), s.Epoch, s.Epochs)
		}})
	fmt.Fprintln(os.Stderr)
	c.wall = time.Since(t0) - evalTime
	return c, err
}
