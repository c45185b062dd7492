package trainsvc

import (
	"fmt"

	"github.com/meshnode/meshnode/distill/federated/dpaccount"
	"github.com/meshnode/meshnode/distill/federated/fedjob"
)

// Every participant of a job takes part in every round (no sampling), so the accountant's
// sampling rate is 1: each round is one Gaussian mechanism on the sum of the clipped updates,
// of sensitivity ClipNorm and noise NoiseStd·ClipNorm.
const samplingRate = 1

// epsilonAfter is the ε spent after rounds rounds of the spec's noise, at its δ.
func epsilonAfter(spec *fedjob.Spec, rounds int) (float64, error) {
	eps, _, err := dpaccount.Epsilon(samplingRate, spec.NoiseStd, rounds, spec.DPDelta)
	return eps, err
}

// calibrateNoise is the smallest noise multiplier (within 0.1%) whose ε after steps runs of
// the Gaussian mechanism sampled at rate q stays within target at delta.
func calibrateNoise(q float64, steps int, delta, target float64) (float64, error) {
	lo, hi := 0.01, 1e4
	if eps, _, err := dpaccount.Epsilon(q, hi, steps, delta); err != nil || eps > target {
		return 0, fmt.Errorf("no noise multiplier up to %g keeps ε within %g over %d steps (%v)", hi, target, steps, err)
	}
	for range 100 {
		if hi/lo < 1.001 {
			break
		}
		mid := (lo + hi) / 2
		eps, _, err := dpaccount.Epsilon(q, mid, steps, delta)
		if err != nil {
			return 0, err
		}
		if eps > target {
			lo = mid
		} else {
			hi = mid
		}
	}
	return hi, nil
}

// overBudget says why the next round may not run: its ε would pass the job's target.
func (c *coordinator) overBudget() string {
	spec := &c.st.Spec
	if spec.TargetEpsilon == 0 || spec.NoiseStd == 0 {
		return ""
	}
	eps, err := epsilonAfter(spec, c.st.Round)
	if err != nil {
		return fmt.Sprintf("privacy accounting failed: %v", err)
	}
	if eps > spec.TargetEpsilon {
		return fmt.Sprintf("privacy budget: round %d would bring ε to %.3f, past the target %g (δ = %g)",
			c.st.Round, eps, spec.TargetEpsilon, spec.DPDelta)
	}
	return ""
}

func orDefault(v, d float64) float64 {
	if v > 0 {
		return v
	}
	return d
}
