package validate

import (
	"fmt"
	"time"
)

// Level says how thoroughly Run measures: how many test samples per suite,
// how many noise strengths, how many single queries are timed and for how
// long batched throughput runs.
type Level string

// The benchmark levels.
const (
	Quick         Level = "quick"
	Standard      Level = "standard"
	Comprehensive Level = "comprehensive"
)

// ParseLevel accepts quick, standard and comprehensive.
func ParseLevel(s string) (Level, error) {
	switch l := Level(s); l {
	case Quick, Standard, Comprehensive:
		return l, nil
	}
	return "", fmt.Errorf("unknown benchmark level %q (want quick, standard or comprehensive)", s)
}

// levelConfig is what a level sets.
type levelConfig struct {
	// samples caps the test samples of a suite: enough at quick for an
	// accuracy within about ±3 points (binomial, 95%), all of a suite's
	// test part at comprehensive.
	samples int
	// noise are the noise strengths robustness averages over (see noise.go).
	noise []float64
	// queries is how many single queries are timed for latency; p99 needs
	// a few hundred to mean something.
	queries int
	// throughput is how long batched inference runs at least.
	throughput time.Duration
	// ood caps the out-of-domain inputs specialization is measured on.
	ood int
}

func (l Level) config() levelConfig {
	switch l {
	case Quick:
		return levelConfig{samples: 300, noise: []float64{0.1}, queries: 300, throughput: 50 * time.Millisecond, ood: 300}
	case Comprehensive:
		return levelConfig{samples: 1 << 30, noise: []float64{0.05, 0.1, 0.2, 0.3, 0.5}, queries: 5000, throughput: time.Second, ood: 5000}
	default:
		return levelConfig{samples: 1000, noise: []float64{0.05, 0.1, 0.2}, queries: 1000, throughput: 200 * time.Millisecond, ood: 1000}
	}
}
