package trainsvc

import (
	"testing"

	"github.com/meshnode/meshnode/distill/federated/dpaccount"
	"github.com/meshnode/meshnode/distill/federated/fedjob"
	"github.com/meshnode/meshnode/experts"
)

// A participant calibrates its DP-SGD noise to its own data: over all the job's rounds its
// records end within the target, and not far below it (the noise is not wastefully large).
// Fewer rows mean a higher sampling rate, so more noise.
func TestRecordNoiseIsCalibratedPerParticipant(t *testing.T) {
	spec := &fedjob.Spec{Rounds: 20, LocalEpochs: 1, BatchSize: 32, RecordClipNorm: 1, RecordTargetEpsilon: 4, DPDelta: 1e-5}
	prev := 0.0
	for _, rows := range []int{20000, 4800, 900} {
		z, err := recordNoise(spec, rows)
		if err != nil {
			t.Fatal(err)
		}
		steps := spec.Rounds * spec.LocalEpochs * experts.StepsPerEpoch(rows, spec.BatchSize)
		eps, _, err := dpaccount.Epsilon(recordRate(spec, rows), z, steps, spec.DPDelta)
		if err != nil {
			t.Fatal(err)
		}
		if eps > spec.RecordTargetEpsilon || eps < 0.97*spec.RecordTargetEpsilon {
			t.Errorf("%d rows: noise %.3f gives ε = %.3f after %d steps, want just within %g", rows, z, eps, steps, spec.RecordTargetEpsilon)
		}
		if z <= prev {
			t.Errorf("%d rows: noise %.3f, not above %.3f for more rows", rows, z, prev)
		}
		prev = z
	}
	spec.RecordNoise = 0.7
	if z, _ := recordNoise(spec, 900); z != 0.7 {
		t.Errorf("an explicit noise multiplier was replaced by %g", z)
	}
}

// The participant's ε counts every training run, and grows with each.
func TestRecordPrivacyCountsEveryRun(t *testing.T) {
	spec := fedjob.Spec{Rounds: 5, LocalEpochs: 2, BatchSize: 50, RecordClipNorm: 1, RecordNoise: 1.1, DPDelta: 1e-5}
	p := &participant{data: experts.Samples{Dim: 1, X: make([]float32, 1000), Labels: make([]int, 1000)}, rec: partRecord{Spec: spec}}
	prev := 0.0
	for run := 1; run <= 3; run++ {
		rp, err := p.recordPrivacy(&spec)
		if err != nil {
			t.Fatal(err)
		}
		if rp.steps != 2*20 || rp.after <= prev {
			t.Fatalf("run %d: %d steps, ε %.3f after %.3f", run, rp.steps, rp.after, prev)
		}
		prev = rp.after
		p.rec.RecordSteps += rp.steps // what spendRecords does, without the store
	}
	want, _, _ := dpaccount.Epsilon(0.05, 1.1, 3*40, 1e-5)
	if prev != want {
		t.Errorf("ε after three runs %.4f, want %.4f", prev, want)
	}
	if _, err := (&participant{rec: partRecord{Spec: spec}}).recordPrivacy(&spec); err == nil {
		t.Error("no rows: no error")
	}
}
