package analyze

import (
	"fmt"
	"runtime"
)

// Depth is how far an analysis goes.
type Depth int

// The depths, each including the one before.
const (
	// DepthQuick reads headers and config only.
	DepthQuick Depth = iota
	// DepthStandard reads every expert's weights.
	DepthStandard
	// DepthComprehensive also routes calibration inputs (or, labelled as such, token embeddings).
	DepthComprehensive
)

func (d Depth) String() string {
	switch d {
	case DepthQuick:
		return "quick"
	case DepthStandard:
		return "standard"
	case DepthComprehensive:
		return "comprehensive"
	}
	return fmt.Sprintf("Depth(%d)", int(d))
}

// ParseDepth parses quick, standard or comprehensive.
func ParseDepth(s string) (Depth, error) {
	for d := DepthQuick; d <= DepthComprehensive; d++ {
		if d.String() == s {
			return d, nil
		}
	}
	return 0, fmt.Errorf("depth %q is not quick, standard or comprehensive", s)
}

// Progress reports long work: Stage names it, Done of Total units (experts) are finished.
type Progress struct {
	Stage string
	Done  int
	Total int
	Bytes int64 // weight bytes read so far
}

// Options configure an analysis. Zero fields take the defaults noted.
type Options struct {
	Depth Depth
	// NodeMemory is the memory of one node for the placement plan (16 GiB).
	NodeMemory int64
	// UsableShare is the share of it expert weights may fill (0.9).
	UsableShare float64
	// Calibration is a calibration file for comprehensive analysis; without
	// one, token embeddings approximate router inputs (labelled as such).
	Calibration string
	// EmbeddingTokens is how many token embeddings the approximation routes (2048).
	EmbeddingTokens int
	// Workers is the number of experts scanned at once (GOMAXPROCS).
	Workers int
	// Probes is the number of probe inputs each expert is run on (4).
	Probes int
	// PowerIters is the number of power iterations per spectral norm (2):
	// the first rides on the pass that decodes the weights, each further one
	// costs a pass over the decoded matrix.
	PowerIters int
	// ZeroEps is the magnitude below which a weight counts as zero (1e-3).
	ZeroEps float64
	// SampleSize is how many weights per expert enter weight cosine
	// similarity (32768); smaller experts are compared exactly.
	SampleSize int
	// Duplicates are the near-duplicate thresholds (weight and output cosine 0.9).
	Duplicates Thresholds
	// Specialists is the specialist rule (specialization 0.75, domain rate 0.25).
	Specialists SpecialistRule
	// TopPairs is how many co-activated pairs to keep per layer pair (20).
	TopPairs int
	// Seed seeds probes, samples and power iterations (1).
	Seed uint64
	// Progress, if set, is called as work advances (from one goroutine at a time).
	Progress func(Progress)
}

func (o Options) withDefaults() Options {
	if o.NodeMemory == 0 {
		o.NodeMemory = 16 << 30
	}
	if o.UsableShare == 0 {
		o.UsableShare = 0.9
	}
	if o.EmbeddingTokens == 0 {
		o.EmbeddingTokens = 2048
	}
	if o.Workers == 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.Probes == 0 {
		o.Probes = 4
	}
	if o.PowerIters == 0 {
		o.PowerIters = 2
	}
	if o.ZeroEps == 0 {
		o.ZeroEps = 1e-3
	}
	if o.SampleSize == 0 {
		o.SampleSize = 1 << 15
	}
	if o.Duplicates == (Thresholds{}) {
		o.Duplicates = Thresholds{WeightCos: 0.9, OutputCos: 0.9}
	}
	if o.Specialists == (SpecialistRule{}) {
		o.Specialists = SpecialistRule{Share: 0.75, Rate: 0.25}
	}
	if o.TopPairs == 0 {
		o.TopPairs = 20
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	return o
}

func (o Options) check() error {
	switch {
	case o.Depth < DepthQuick || o.Depth > DepthComprehensive:
		return fmt.Errorf("unknown depth %d", o.Depth)
	case o.NodeMemory < 0:
		return fmt.Errorf("node memory %d is negative", o.NodeMemory)
	case o.UsableShare <= 0 || o.UsableShare > 1:
		return fmt.Errorf("usable share %g is outside (0, 1]", o.UsableShare)
	case o.Workers < 1 || o.Probes < 1 || o.Probes > 1024 || o.PowerIters < 1 || o.SampleSize < 1 || o.EmbeddingTokens < 1:
		return fmt.Errorf("workers, probes (≤ 1024), power iterations, sample size and embedding tokens must be positive")
	case o.ZeroEps < 0:
		return fmt.Errorf("zero threshold %g is negative", o.ZeroEps)
	}
	return nil
}
