package experts

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
)

// DPSGD makes Train differentially private for every training row (DP-SGD, Abadi et al.,
// CCS 2016). Each step takes every row with probability BatchSize/rows (Poisson sampling, so
// an epoch is rows/BatchSize steps and batches vary in size), clips each row's gradient to
// ClipNorm, adds Gaussian noise of standard deviation NoiseMultiplier·ClipNorm to their sum,
// and divides by the expected batch size. One epoch is then ⌈rows/BatchSize⌉ runs of the
// sampled Gaussian mechanism with rate BatchSize/rows, which is what an RDP accountant adds
// up. Rand draws the samples and the noise: it must be secret (seeded from crypto/rand), or
// whoever knows it can subtract the noise, so a DP run is not reproducible from TrainConfig.Seed.
type DPSGD struct {
	ClipNorm        float64
	NoiseMultiplier float64
	Rand            *rand.Rand
}

func (d *DPSGD) check() error {
	switch {
	case !(d.ClipNorm > 0 && d.ClipNorm < 1e6):
		return fmt.Errorf("DP-SGD clip norm %g must be in (0, 1e6)", d.ClipNorm)
	case !(d.NoiseMultiplier >= 0 && d.NoiseMultiplier < 1e6):
		return fmt.Errorf("DP-SGD noise multiplier %g must be in [0, 1e6)", d.NoiseMultiplier)
	case d.Rand == nil:
		return fmt.Errorf("DP-SGD needs a secret random source")
	}
	return nil
}

// StepsPerEpoch is how many sampled steps DP-SGD takes in an epoch over rows rows.
func StepsPerEpoch(rows, batchSize int) int { return (rows + batchSize - 1) / batchSize }

// dpEpoch runs one DP-SGD epoch: it returns the summed loss and the correct count over the
// rows it sampled, and how many it sampled.
func (n *Network) dpEpoch(ctx context.Context, ws *workspace, grads, example, sum *Network, opt optimizer, cfg TrainConfig, train Samples, xb []float64) (float64, int, int, error) {
	dp := cfg.DP
	rows := train.Len()
	q := float64(cfg.BatchSize) / float64(rows)
	if q > 1 {
		q = 1
	}
	expected := q * float64(rows)
	in, out := n.Arch.Input, n.OutputDim()
	gs, es, ss := grads.params(), example.params(), sum.params()
	var lossSum float64
	correct, seen := 0, 0
	one := []int{0}
	for range StepsPerEpoch(rows, cfg.BatchSize) {
		if err := ctx.Err(); err != nil {
			return 0, 0, 0, err
		}
		for _, p := range ss {
			clear(p.data)
		}
		for i := range rows {
			if dp.Rand.Float64() >= q {
				continue
			}
			one[0] = i
			gatherRows(xb[:in], train.X, train.Dim, one)
			logits := n.forward(ws, xb[:in], 1)
			l, c := lossGrad(cfg, out, logits, ws.acts[len(ws.acts)-1].dz[:out], train, one)
			lossSum += l
			correct += c
			seen++
			n.backward(ws, 1, example)
			var norm2 float64
			for _, p := range es {
				for _, v := range p.data {
					norm2 += v * v
				}
			}
			scale := 1.0
			if norm := math.Sqrt(norm2); norm > dp.ClipNorm {
				scale = dp.ClipNorm / norm
			}
			for k, p := range es {
				acc := ss[k].data
				for j, v := range p.data {
					acc[j] += scale * v
				}
			}
		}
		std := dp.NoiseMultiplier * dp.ClipNorm
		for k, p := range ss {
			g := gs[k].data
			for j, v := range p.data {
				g[j] = (v + std*dp.Rand.NormFloat64()) / expected
			}
		}
		if cfg.ProxMu > 0 {
			addProximal(n, grads, cfg.ProxMu, cfg.ProxCenter)
		}
		opt.step(n, grads)
	}
	return lossSum, correct, seen, nil
}
