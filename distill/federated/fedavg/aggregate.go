package fedavg

import (
	crand "crypto/rand"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
)

// Update is one participant's contribution to a round: the change it made to the round's
// parameters, and how many samples it trained on.
type Update struct {
	Participant string
	Delta       []float64
	Samples     int
	Loss        float64 // the participant's training loss in its last local epoch (informational)
}

// Aggregator names.
const (
	FedAvg      = "fedavg"       // weighted mean (FedProx uses it too; its difference is local)
	Median      = "median"       // coordinate-wise median
	TrimmedMean = "trimmed-mean" // coordinate-wise mean without the Trim largest and smallest
	MultiKrum   = "multi-krum"   // mean of the updates closest to their neighbours
)

// Aggregators lists the aggregator names.
func Aggregators() []string { return []string{FedAvg, Median, TrimmedMean, MultiKrum} }

// Config sets how updates are combined.
type Config struct {
	Aggregator string
	// MaxShare caps any one participant's weight in FedAvg (default 0.5): a participant with
	// most of the data cannot dictate the model alone. Weights above it are cut and the rest
	// renormalised.
	MaxShare float64
	// Trim is the share of values dropped at each end by the trimmed mean (default 0.2).
	Trim float64
	// Byzantine is the number of bad participants Multi-Krum tolerates (default ⌊(n−3)/2⌋).
	Byzantine int
	// ClipNorm clips every update to this L2 norm before aggregation (0: no clipping).
	ClipNorm float64
	// NoiseStd is the noise multiplier z of DP-FedAvg's Gaussian mechanism (needs ClipNorm
	// and FedAvg): the n clipped updates weigh equally, and Gaussian noise of z·ClipNorm/n is
	// added to each coordinate of their mean. 0: no noise.
	NoiseStd float64
	// Noise draws the noise; it must be secret to everyone but the aggregator (seeded from a
	// CSPRNG), or the noise can be regenerated and subtracted.
	Noise NoiseSource
}

// NoiseSource draws standard normal values (a *rand.Rand over a secretly seeded ChaCha8 is
// one).
type NoiseSource interface{ NormFloat64() float64 }

// ErrNoUpdates is returned when there is nothing to aggregate.
var ErrNoUpdates = errors.New("no updates to aggregate")

// Aggregate combines the updates into one delta.
func Aggregate(updates []Update, c Config) ([]float64, error) {
	if len(updates) == 0 {
		return nil, ErrNoUpdates
	}
	dim := len(updates[0].Delta)
	for _, u := range updates {
		if len(u.Delta) != dim {
			return nil, fmt.Errorf("aggregate: %s sent %d values, others %d", u.Participant, len(u.Delta), dim)
		}
		for _, v := range u.Delta {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("aggregate: %s sent a value that is not finite", u.Participant)
			}
		}
	}
	if c.ClipNorm > 0 {
		updates = clip(updates, c.ClipNorm)
	}
	if c.NoiseStd > 0 {
		if c.ClipNorm <= 0 || c.Noise == nil || c.Aggregator != FedAvg && c.Aggregator != "" {
			return nil, errors.New("aggregate: differential-privacy noise needs fedavg, a clipping norm and a secret noise source")
		}
		equal := make([]Update, len(updates)) // the sensitivity ClipNorm/n holds for equal weights only
		for i, u := range updates {
			equal[i] = u
			equal[i].Samples = 1
		}
		updates = equal
		c.MaxShare = 1
	}
	var out []float64
	var err error
	switch c.Aggregator {
	case "", FedAvg:
		out, err = weightedMean(updates, orDefault(c.MaxShare, 0.5))
	case Median:
		out = coordinatewise(updates, median)
	case TrimmedMean:
		trim := orDefault(c.Trim, 0.2)
		out = coordinatewise(updates, func(v []float64) float64 { return trimmedMean(v, trim) })
	case MultiKrum:
		out, err = multiKrum(updates, c.Byzantine)
	default:
		return nil, fmt.Errorf("unknown aggregator %q (want one of %v)", c.Aggregator, Aggregators())
	}
	if err != nil {
		return nil, err
	}
	if c.NoiseStd > 0 {
		AddNoise(out, c.NoiseStd*c.ClipNorm/float64(len(updates)), c.Noise)
	}
	return out, nil
}

// AddNoise adds Gaussian noise of standard deviation sigma to every value.
func AddNoise(v []float64, sigma float64, noise NoiseSource) {
	for i := range v {
		v[i] += noise.NormFloat64() * sigma
	}
}

// SecretNoise is a noise source seeded from crypto/rand: nobody else can regenerate it.
func SecretNoise() NoiseSource { return SecretRand() }

// SecretRand is a ChaCha8 generator seeded from crypto/rand: what DP noise and DP-SGD's
// sampling draw from, known to nobody else.
func SecretRand() *rand.Rand {
	var seed [32]byte
	_, _ = crand.Read(seed[:]) // crypto/rand.Read never fails (it crashes the program instead)
	return rand.New(rand.NewChaCha8(seed))
}

func orDefault(v, d float64) float64 {
	if v > 0 {
		return v
	}
	return d
}

func norm(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x * x
	}
	return math.Sqrt(s)
}

// clip scales every update whose L2 norm exceeds c down to norm c.
func clip(updates []Update, c float64) []Update {
	out := make([]Update, len(updates))
	for i, u := range updates {
		out[i] = u
		if n := norm(u.Delta); n > c {
			d := make([]float64, len(u.Delta))
			for j, v := range u.Delta {
				d[j] = v * c / n
			}
			out[i].Delta = d
		}
	}
	return out
}

// shares are the FedAvg weights: sample counts, each capped at maxShare of the total and the
// rest redistributed, so the cap holds after renormalising.
func shares(updates []Update, maxShare float64) ([]float64, error) {
	total := 0.0
	w := make([]float64, len(updates))
	for i, u := range updates {
		if u.Samples < 0 {
			return nil, fmt.Errorf("aggregate: %s reports %d samples", u.Participant, u.Samples)
		}
		w[i] = float64(max(u.Samples, 0))
		total += w[i]
	}
	if total == 0 {
		for i := range w {
			w[i] = 1 / float64(len(w))
		}
		return w, nil
	}
	for i := range w {
		w[i] /= total
	}
	if maxShare*float64(len(w)) < 1 { // the cap cannot hold: equal shares are the closest
		maxShare = 1 / float64(len(w))
	}
	for iter := 0; iter < len(w); iter++ {
		excess, free := 0.0, 0.0
		for _, x := range w {
			if x > maxShare {
				excess += x - maxShare
			} else {
				free += x
			}
		}
		if excess < 1e-15 {
			break
		}
		for i, x := range w {
			if x > maxShare {
				w[i] = maxShare
			} else if free > 0 {
				w[i] = x + excess*x/free
			}
		}
	}
	return w, nil
}

func weightedMean(updates []Update, maxShare float64) ([]float64, error) {
	w, err := shares(updates, maxShare)
	if err != nil {
		return nil, err
	}
	out := make([]float64, len(updates[0].Delta))
	for i, u := range updates {
		for j, v := range u.Delta {
			out[j] += w[i] * v
		}
	}
	return out, nil
}

func coordinatewise(updates []Update, f func([]float64) float64) []float64 {
	dim := len(updates[0].Delta)
	out := make([]float64, dim)
	col := make([]float64, len(updates))
	for j := 0; j < dim; j++ {
		for i, u := range updates {
			col[i] = u.Delta[j]
		}
		out[j] = f(col)
	}
	return out
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func trimmedMean(v []float64, trim float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	k := int(math.Floor(trim * float64(len(s))))
	if 2*k >= len(s) {
		k = (len(s) - 1) / 2
	}
	s = s[k : len(s)-k]
	sum := 0.0
	for _, x := range s {
		sum += x
	}
	return sum / float64(len(s))
}

// multiKrum scores each update by the summed squared distances to its n−f−2 nearest others and
// averages the m = n−f lowest-scoring (Blanchard et al., 2017).
func multiKrum(updates []Update, f int) ([]float64, error) {
	n := len(updates)
	if f <= 0 {
		f = max(0, (n-3)/2)
	}
	if n < 2*f+3 {
		return nil, fmt.Errorf("multi-krum needs at least 2f+3 = %d updates to tolerate %d bad ones, got %d", 2*f+3, f, n)
	}
	dist := make([][]float64, n)
	for i := range dist {
		dist[i] = make([]float64, n)
	}
	for i := 0; i < n; i++ {
		for j := i + 1; j < n; j++ {
			d := 0.0
			for k, v := range updates[i].Delta {
				x := v - updates[j].Delta[k]
				d += x * x
			}
			dist[i][j], dist[j][i] = d, d
		}
	}
	type scored struct {
		i     int
		score float64
	}
	scores := make([]scored, n)
	for i := range updates {
		ds := make([]float64, 0, n-1)
		for j := range updates {
			if j != i {
				ds = append(ds, dist[i][j])
			}
		}
		sort.Float64s(ds)
		s := 0.0
		for _, d := range ds[:n-f-2] {
			s += d
		}
		scores[i] = scored{i, s}
	}
	sort.SliceStable(scores, func(a, b int) bool { return scores[a].score < scores[b].score })
	m := n - f
	out := make([]float64, len(updates[0].Delta))
	for _, s := range scores[:m] {
		for j, v := range updates[s.i].Delta {
			out[j] += v / float64(m)
		}
	}
	return out, nil
}
