package trainsvc

import (
	"context"
	"fmt"

	"github.com/meshnode/meshnode/distill/federated/dpaccount"
	"github.com/meshnode/meshnode/distill/federated/fedjob"
	"github.com/meshnode/meshnode/experts"
)

// recordPrivacy is one training run of record-level DP-SGD on this node's data: its noise
// multiplier, its steps, and the ε of this node's records once it has run.
type recordPrivacy struct {
	noise float64
	steps int
	after float64
}

// recordRate is DP-SGD's sampling rate on rows rows: the batch size over the rows.
func recordRate(spec *fedjob.Spec, rows int) float64 {
	return min(1, float64(spec.BatchSize)/float64(rows))
}

// recordNoise is the DP-SGD noise multiplier of a job on rows rows of this node: the spec's,
// or the smallest that keeps every round of the job within its record target.
func recordNoise(spec *fedjob.Spec, rows int) (float64, error) {
	if spec.RecordNoise > 0 {
		return spec.RecordNoise, nil
	}
	steps := spec.Rounds * spec.LocalEpochs * experts.StepsPerEpoch(rows, spec.BatchSize)
	z, err := calibrateNoise(recordRate(spec, rows), steps, spec.DPDelta, spec.RecordTargetEpsilon)
	if err != nil {
		return 0, fmt.Errorf("record-level privacy on %d rows: %w", rows, err)
	}
	return z, nil
}

// recordPrivacy says how the next training run protects this node's records, and what ε they
// will have spent after it.
func (p *participant) recordPrivacy(spec *fedjob.Spec) (recordPrivacy, error) {
	rows := p.data.Len()
	if rows == 0 {
		return recordPrivacy{}, fmt.Errorf("record-level privacy: no local rows")
	}
	z, err := recordNoise(spec, rows)
	if err != nil {
		return recordPrivacy{}, err
	}
	steps := spec.LocalEpochs * experts.StepsPerEpoch(rows, spec.BatchSize)
	p.mu.Lock()
	spent := p.rec.RecordSteps
	p.mu.Unlock()
	eps, _, err := dpaccount.Epsilon(recordRate(spec, rows), z, spent+steps, spec.DPDelta)
	if err != nil {
		return recordPrivacy{}, fmt.Errorf("record-level privacy accounting: %w", err)
	}
	return recordPrivacy{noise: z, steps: steps, after: eps}, nil
}

// spendRecords records a finished training run's privacy cost, before its update leaves.
func (p *participant) spendRecords(ctx context.Context, rp recordPrivacy) error {
	p.mu.Lock()
	p.rec.RecordSteps += rp.steps
	p.rec.RecordEpsilon = rp.after
	p.mu.Unlock()
	p.s.metrics.recordEpsilon.WithLabelValues(p.rec.Spec.ID()).Set(rp.after)
	return p.save(ctx)
}
