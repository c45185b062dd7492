package validate

import (
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"unicode"

	"github.com/meshnode/meshnode/experts/dataset"
)

// Noise at strength p, the same p for every kind of input:
//
//   - text: each letter or digit is replaced, with probability p, by a
//     random lowercase letter (typos);
//   - vectors: Gaussian noise of standard deviation p times the feature's
//     standard deviation over the suite's test samples is added to each
//     feature;
//   - images: Gaussian noise of standard deviation p is added to each pixel
//     (pixels are in [0, 1]) and the result clipped to [0, 1].
//
// All noise is drawn from dataset.NewRand with a seed derived from the
// run's seed and the strength, so a run is reproducible.

func noisyText(texts []string, p float64, rng *rand.Rand) []string {
	out := make([]string, len(texts))
	for i, t := range texts {
		var b strings.Builder
		for _, r := range t {
			if (unicode.IsLetter(r) || unicode.IsDigit(r)) && rng.Float64() < p {
				r = rune('a' + rng.IntN(26))
			}
			b.WriteRune(r)
		}
		out[i] = b.String()
	}
	return out
}

func noisyVectors(x []float64, dim int, p float64, image bool, rng *rand.Rand) []float64 {
	std := make([]float64, dim)
	if image {
		for j := range std {
			std[j] = 1
		}
	} else {
		std = featureStd(x, dim)
	}
	out := make([]float64, len(x))
	for i, v := range x {
		v += rng.NormFloat64() * p * std[i%dim]
		if image {
			v = min(1, max(0, v))
		}
		out[i] = v
	}
	return out
}

func featureStd(x []float64, dim int) []float64 {
	rows := len(x) / dim
	mean, std := make([]float64, dim), make([]float64, dim)
	for i, v := range x {
		mean[i%dim] += v / float64(rows)
	}
	for i, v := range x {
		d := v - mean[i%dim]
		std[i%dim] += d * d / float64(rows)
	}
	for j := range std {
		std[j] = math.Sqrt(std[j])
	}
	return std
}

// Formatting variants, the perturbations consistency checks. They change
// how an input is written, not what it says:
//
//   - text: UPPER CASE; every space doubled and line breaks turned into
//     " \n\t"; the text wrapped in double quotes;
//   - vectors: each value printed with 4 significant digits and parsed back
//     (what a CSV export would carry);
//   - images: pixels quantised to 8 bits (what a PNG carries).
func textVariants(texts []string) [][]string {
	upper, spaced, quoted := make([]string, len(texts)), make([]string, len(texts)), make([]string, len(texts))
	for i, t := range texts {
		upper[i] = strings.ToUpper(t)
		spaced[i] = strings.NewReplacer(" ", "  ", "\n", " \n\t").Replace(t)
		quoted[i] = `"` + t + `"`
	}
	return [][]string{upper, spaced, quoted}
}

func vectorVariant(x []float64, image bool) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		if image {
			out[i] = math.Round(min(1, max(0, v))*255) / 255
			continue
		}
		out[i], _ = strconv.ParseFloat(strconv.FormatFloat(v, 'g', 4, 64), 64)
	}
	return out
}

// permuteFeatures returns x with each feature's column shuffled across rows
// independently: every feature keeps its distribution but rows no longer
// look like any real sample (the out-of-domain inputs of specialization for
// vector and image experts).
func permuteFeatures(x []float64, dim int, rng *rand.Rand) []float64 {
	rows := len(x) / dim
	out := make([]float64, len(x))
	for j := 0; j < dim; j++ {
		perm := rng.Perm(rows)
		for i, src := range perm {
			out[i*dim+j] = x[src*dim+j]
		}
	}
	return out
}

// noiseRand returns the generator for one noise strength.
func noiseRand(seed uint64, p float64) *rand.Rand {
	return dataset.NewRand(seed ^ math.Float64bits(p))
}
