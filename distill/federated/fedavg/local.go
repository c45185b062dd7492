package fedavg

import (
	"context"
	"fmt"

	"github.com/meshnode/meshnode/experts"
)

// LocalConfig is how a participant trains in a round.
type LocalConfig struct {
	Epochs       int
	BatchSize    int
	LearningRate float64
	Optimizer    string  // experts.TrainConfig's: adam (default) or sgd
	ProxMu       float64 // FedProx's μ; 0 trains plain FedAvg
	Seed         uint64
	DP           *experts.DPSGD // record-level DP-SGD; nil trains without
}

// LocalUpdate trains a copy of the round's model on the participant's data and returns the
// difference it made. The global model is not modified.
func LocalUpdate(ctx context.Context, global *experts.Network, data experts.Samples, c LocalConfig, who string) (Update, error) {
	local := global.Clone()
	center := global.Params()
	cfg := experts.TrainConfig{Epochs: c.Epochs, BatchSize: c.BatchSize, LearningRate: c.LearningRate, Optimizer: c.Optimizer, Seed: c.Seed, DP: c.DP}
	if c.ProxMu > 0 {
		cfg.ProxMu, cfg.ProxCenter = c.ProxMu, center
	}
	res, err := experts.Train(ctx, local, data, experts.Samples{}, cfg)
	if err != nil {
		return Update{}, fmt.Errorf("local update of %s: %w", who, err)
	}
	p := local.Params()
	for i := range p {
		p[i] -= center[i]
	}
	u := Update{Participant: who, Delta: p, Samples: data.Len()}
	if n := len(res.Epochs); n > 0 {
		u.Loss = res.Epochs[n-1].TrainLoss
	}
	return u, nil
}

// Apply returns the next model: global plus delta.
func Apply(global *experts.Network, delta []float64) (*experts.Network, error) {
	next := global.Clone()
	p := next.Params()
	if len(p) != len(delta) {
		return nil, fmt.Errorf("apply update: %d values for %d parameters", len(delta), len(p))
	}
	for i := range p {
		p[i] += delta[i]
	}
	if err := next.SetParams(p); err != nil {
		return nil, err
	}
	return next, nil
}
