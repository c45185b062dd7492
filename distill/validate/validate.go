package validate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/meshnode/meshnode/experts/dataset"
)

// DefaultSeed seeds noise and permutations when Options.Seed is zero.
const DefaultSeed = 20260909

// Options configure Run.
type Options struct {
	// Level sets suite sizes, noise strengths and timing lengths; "" means
	// Standard.
	Level Level
	// Catalog finds the built-in suites (dataset.DefaultCatalog()).
	Catalog dataset.Catalog
	// Suites are user suite files (CSV or JSONL, see
	// dataset.ReadUserSuite), tried before the built-in ones.
	Suites []string
	// Experts are validated in addition to those found in the folder (for
	// example the experts of a meshnode repo, which a caller loads).
	Experts []Expert
	// Seed seeds noise and permutations (DefaultSeed when zero).
	Seed uint64
	// Progress, if set, is called before each expert is measured.
	Progress func(done, total int, name string)
}

// ErrNoExperts is returned when there is nothing to validate.
var ErrNoExperts = errors.New("no experts to validate")

// Run validates every expert in dir (see LoadDir; dir may be "" when
// o.Experts is given) and those in o.Experts, one at a time, and returns
// the report. Experts no suite fits are reported as skipped with the
// reason; experts that fail to load or run are reported as failed. Bad
// options (an unknown level, a malformed user suite) and a folder without
// experts are errors.
func Run(ctx context.Context, dir string, o Options) (*Report, error) {
	if o.Level == "" {
		o.Level = Standard
	}
	level, err := ParseLevel(string(o.Level))
	if err != nil {
		return nil, err
	}
	if o.Seed == 0 {
		o.Seed = DefaultSeed
	}
	cfg := level.config()
	rep := &Report{Level: level, Dir: dir, Seed: o.Seed, Started: time.Now().UTC()}
	all := slices.Clone(o.Experts)
	if dir != "" {
		loaded, failed, err := LoadDir(ctx, dir)
		if err != nil {
			return nil, err
		}
		all = append(all, loaded...)
		rep.Results = append(rep.Results, failed...)
	}
	if len(all) == 0 && len(rep.Results) == 0 {
		if dir != "" {
			return nil, fmt.Errorf("%w: %s has no *.safetensors files (write them with 'meshnode expert export')", ErrNoExperts, dir)
		}
		return nil, ErrNoExperts
	}
	ss, err := newSuites(ctx, o.Catalog, cfg.samples, o.Suites)
	if err != nil {
		return nil, err
	}
	used := map[string]bool{}
	for i, e := range all {
		if o.Progress != nil {
			o.Progress(i, len(all), e.Name())
		}
		res := Result{Expert: e.Name(), ID: e.ID, Source: e.Source, Domains: e.Manifest.Domains, Params: e.Manifest.Params}
		st, why := ss.match(ctx, e)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		switch {
		case st == nil:
			res.Status, res.Reason = StatusSkipped, why
		default:
			if err := measure(ctx, e, st, ss, cfg, o.Seed, &res); err != nil {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				res.Status, res.Reason = StatusFailed, err.Error()
			}
			if !used[st.name] {
				used[st.name] = true
				rep.Suites = append(rep.Suites, SuiteInfo{Name: st.name, Kind: st.kind, Samples: st.len(), Classes: st.classes, User: st.user})
			}
		}
		rep.Results = append(rep.Results, res)
	}
	for _, r := range rep.Results {
		switch r.Status {
		case StatusOK:
			rep.Evaluated++
		case StatusSkipped:
			rep.Skipped++
		default:
			rep.Failed++
		}
	}
	rep.Seconds = time.Since(rep.Started).Seconds()
	return rep, nil
}

// measure fills res with every metric of e on st.
func measure(ctx context.Context, e Expert, st *suite, ss *suites, cfg levelConfig, seed uint64, res *Result) error {
	res.Suite, res.Samples, res.Classes = st.name, st.len(), len(st.classes)
	res.Chance = 1 / float64(len(st.classes))
	x, y, err := inputs(st, e)
	if err != nil {
		return err
	}
	pred, conf, err := predict(ctx, e.Net, x)
	if err != nil {
		return err
	}
	res.Accuracy = accuracy(pred, y)
	res.OwnConfidence = mean(conf)
	if res.LatencyP50us, res.LatencyP99us, err = latency(ctx, e, st, x, cfg.queries); err != nil {
		return err
	}
	if res.ThroughputQPS, err = throughput(ctx, e.Net, x, cfg.throughput); err != nil {
		return err
	}
	res.ParamBytes = int64(e.Manifest.Params) * 8
	res.WeightsBytes = int64(len(e.Weights))
	if res.HeapBytes, err = heapGrowth(e); err != nil {
		return err
	}
	if res.Consistency, err = consistency(ctx, e, st, x, pred); err != nil {
		return err
	}
	if err := robustness(ctx, e, st, x, y, cfg.noise, seed, res); err != nil {
		return err
	}
	if err := specialization(ctx, e, st, ss, x, cfg.ood, seed, res); err != nil {
		return err
	}
	res.Efficiency = res.Accuracy / (float64(e.Manifest.Params) / 1000)
	res.Status = StatusOK
	return nil
}

// consistency is the share of samples whose answer is the same in every
// run: batched (pred), one query at a time, batched in reverse order, and
// each formatting variant (see textVariants and vectorVariant).
func consistency(ctx context.Context, e Expert, st *suite, x []float64, pred []int) (float64, error) {
	dim := e.Net.InputDim()
	rows := len(pred)
	same := make([]bool, rows)
	for i := range same {
		same[i] = true
	}
	for i := 0; i < rows; i++ {
		p, err := e.Net.Predict(x[i*dim : (i+1)*dim])
		if err != nil {
			return 0, err
		}
		same[i] = same[i] && argmax(p) == pred[i]
	}
	rev := make([]float64, 0, len(x))
	for i := rows - 1; i >= 0; i-- {
		rev = append(rev, x[i*dim:(i+1)*dim]...)
	}
	rp, _, err := predict(ctx, e.Net, rev)
	if err != nil {
		return 0, err
	}
	for i := range rp {
		same[rows-1-i] = same[rows-1-i] && rp[i] == pred[rows-1-i]
	}
	var variants [][]float64
	if st.text != nil {
		for _, texts := range textVariants(st.text.Texts) {
			v, err := featurize(texts, e)
			if err != nil {
				return 0, err
			}
			variants = append(variants, v)
		}
	} else {
		variants = append(variants, vectorVariant(x, st.kind == kindImage))
	}
	for _, v := range variants {
		vp, _, err := predict(ctx, e.Net, v)
		if err != nil {
			return 0, err
		}
		for i := range vp {
			same[i] = same[i] && vp[i] == pred[i]
		}
	}
	n := 0
	for _, s := range same {
		if s {
			n++
		}
	}
	return float64(n) / float64(rows), nil
}

// robustness measures accuracy at each noise strength (see noise.go) and
// sets res.Noise and their mean res.Robustness.
func robustness(ctx context.Context, e Expert, st *suite, x []float64, y []int, strengths []float64, seed uint64, res *Result) error {
	var accs []float64
	for _, p := range strengths {
		rng := noiseRand(seed, p)
		var nx []float64
		var err error
		if st.text != nil {
			if nx, err = featurize(noisyText(st.text.Texts, p, rng), e); err != nil {
				return err
			}
		} else {
			nx = noisyVectors(x, e.Net.InputDim(), p, st.kind == kindImage, rng)
		}
		pred, _, err := predict(ctx, e.Net, nx)
		if err != nil {
			return err
		}
		a := accuracy(pred, y)
		accs = append(accs, a)
		res.Noise = append(res.Noise, NoisePoint{Strength: p, Accuracy: a})
	}
	res.Robustness = mean(accs)
	return nil
}

// specialization compares the expert's mean top-class confidence on its
// suite (res.OwnConfidence) with that on out-of-domain inputs: the other
// text suites' texts for a text suite, feature-permuted copies of the
// suite's inputs otherwise (or when no other text suite is available).
func specialization(ctx context.Context, e Expert, st *suite, ss *suites, x []float64, n int, seed uint64, res *Result) error {
	var ood []float64
	if st.text != nil {
		if texts := ss.otherTexts(ctx, st.name, n); len(texts) > 0 {
			var err error
			if ood, err = featurize(texts, e); err != nil {
				return err
			}
			res.OODInputs = fmt.Sprintf("%d texts of the other text suites", len(texts))
		}
	}
	if ood == nil {
		dim := e.Net.InputDim()
		rows := min(n, len(x)/dim)
		ood = permuteFeatures(x[:rows*dim], dim, dataset.NewRand(seed))
		res.OODInputs = fmt.Sprintf("%d feature-permuted test inputs", rows)
	}
	_, conf, err := predict(ctx, e.Net, ood)
	if err != nil {
		return err
	}
	res.OODConfidence = mean(conf)
	res.Specialization = res.OwnConfidence - res.OODConfidence
	return nil
}
