package analyze

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"

	"github.com/meshnode/meshnode/distill/checkpoint"
)

// ExpertStats are the weight statistics of one expert.
type ExpertStats struct {
	Layer  int   `json:"layer"`
	Expert int   `json:"expert"` // -1 for the layer's shared expert block
	Params int64 `json:"params"`
	Bytes  int64 `json:"bytes"` // as stored, with block scales
	// Norm is the Frobenius norm of all three projections together.
	Norm     float64 `json:"frobenius"`
	GateNorm float64 `json:"gate_frobenius"`
	UpNorm   float64 `json:"up_frobenius"`
	DownNorm float64 `json:"down_frobenius"`
	// NearZero is the share of weights with |w| < the zero threshold.
	NearZero float64 `json:"near_zero_share"`
	// Stable ranks ‖W‖_F²/‖W‖₂² of each projection, with ‖W‖₂ estimated by
	// power iteration (so they are upper bounds that tighten with iterations).
	GateRank float64 `json:"gate_stable_rank"`
	UpRank   float64 `json:"up_stable_rank"`
	DownRank float64 `json:"down_stable_rank"`
	// OutputNorm is the mean ‖expert(x)‖ over the probe inputs.
	OutputNorm float64 `json:"output_norm"`
}

// scanSettings are the resolved knobs of a weight scan.
type scanSettings struct {
	workers    int
	powerIters int
	zeroEps    float32
	sampleSize int
	seed       uint64
}

// layerScan is what scanning one MoE layer yields.
type layerScan struct {
	layer   int
	stats   []ExpertStats     // routed experts in order
	shared  *ExpertStats      // nil without a shared block
	samples checkpoint.Matrix // experts × sample: weights at fixed positions, for cosine similarity
	outputs checkpoint.Matrix // experts × (hidden·probes): outputs on the probes
	bytes   int64             // weight bytes read
}

// samplePositions returns, for flattened experts of n weights split into
// projections of the given sizes, the positions whose weights represent an
// expert in similarity computations: all of them when n ≤ size, else a
// stratified seeded sample of size positions (one per stratum of n/size),
// split per projection. The same positions serve every expert and layer.
func samplePositions(sizes [3]int, size int, seed uint64) (pos [3][]int, exact bool) {
	n := sizes[0] + sizes[1] + sizes[2]
	if n <= size {
		for p, s := range sizes {
			pos[p] = make([]int, s)
			for i := range s {
				pos[p][i] = i
			}
		}
		return pos, true
	}
	rng := rand.New(rand.NewPCG(seed, 0x73616d706c65)) // "sample"
	for k := range size {
		lo, hi := k*n/size, (k+1)*n/size
		at := lo + rng.IntN(hi-lo)
		p := 0
		for at >= sizes[p] {
			at -= sizes[p]
			p++
		}
		pos[p] = append(pos[p], at)
	}
	return pos, false
}

// scanWorker holds one worker's reusable buffers.
type scanWorker struct {
	buf, u, v []float32
	gate, up  []float32
	act, out  []float32
}

func newScanWorker(maxMatrix, maxRows, inter, hidden, probes int) *scanWorker {
	return &scanWorker{buf: make([]float32, maxMatrix), u: make([]float32, maxRows), v: make([]float32, maxRows),
		gate: make([]float32, inter*probes), up: make([]float32, inter*probes),
		act: make([]float32, inter*probes), out: make([]float32, hidden*probes)}
}

// expert reads and measures one expert given its three tensor names. It
// writes the sampled weights into sample (if not nil) and the probe
// outputs (hidden × probes) into out.
func (w *scanWorker) expert(ctx context.Context, ck *checkpoint.Checkpoint, s scanSettings, names [3]string,
	st *ExpertStats, probes checkpoint.Matrix, pos *[3][]int, sample, out []float32) error {
	var zero, params int64
	var norms, ranks [3]float64
	var gate, up checkpoint.Matrix
	k := 0
	for p := checkpoint.Gate; p <= checkpoint.Down; p++ {
		rng := rand.New(rand.NewPCG(s.seed, uint64(st.Layer)<<24^uint64(st.Expert+1)<<2^uint64(p)))
		// Gate and up meet the probes; down meets silu(gate) ⊙ up (probes × intermediate).
		var in checkpoint.Matrix
		var prod []float32
		switch p {
		case checkpoint.Gate:
			in, prod = probes, w.gate
		case checkpoint.Up:
			in, prod = probes, w.up
		case checkpoint.Down:
			in, prod = checkpoint.Matrix{Rows: up.Cols, Cols: up.Rows, Data: w.act[:len(up.Data)]}, out
		}
		// Open validated every projection as a matrix of the config's shape.
		shape := ck.Config.ExpertShape(p)
		if st.Expert < 0 {
			shape = ck.Config.SharedShape(p)
		}
		ms := newMeasurer(shape[1], in, prod, rng, w.u, w.v)
		m, nz, err := ck.Stream(ctx, names[p], w.buf, s.zeroEps, func(m checkpoint.Matrix, lo, hi int) { ms.rows(m, lo, hi) })
		if err != nil {
			return err
		}
		ss, sigma := ms.finish(m, s.powerIters)
		zero += nz
		params += int64(len(m.Data))
		switch p {
		case checkpoint.Gate: // intermediate × probes
			gate = checkpoint.Matrix{Rows: m.Rows, Cols: in.Rows, Data: prod[:m.Rows*in.Rows]}
		case checkpoint.Up:
			up = checkpoint.Matrix{Rows: m.Rows, Cols: in.Rows, Data: prod[:m.Rows*in.Rows]}
			// act is probes × intermediate: silu(gate) ⊙ up, transposed for the down projection.
			for i := range up.Rows {
				for j := range up.Cols {
					w.act[j*up.Rows+i] = silu(gate.Data[i*up.Cols+j]) * up.Data[i*up.Cols+j]
				}
			}
		case checkpoint.Down: // hidden × probes
			st.OutputNorm = meanColumnNorm(checkpoint.Matrix{Rows: m.Rows, Cols: in.Rows, Data: prod[:m.Rows*in.Rows]})
		}
		norms[p] = math.Sqrt(ss)
		if sigma > 0 {
			ranks[p] = ss / (sigma * sigma)
		}
		if sample != nil {
			for _, i := range pos[p] {
				sample[k] = m.Data[i]
				k++
			}
		}
	}
	st.Params = params
	st.Bytes = expertBytes(ck, names)
	st.GateNorm, st.UpNorm, st.DownNorm = norms[0], norms[1], norms[2]
	st.Norm = math.Sqrt(norms[0]*norms[0] + norms[1]*norms[1] + norms[2]*norms[2])
	st.GateRank, st.UpRank, st.DownRank = ranks[0], ranks[1], ranks[2]
	if params > 0 {
		st.NearZero = float64(zero) / float64(params)
	}
	return nil
}

// meanColumnNorm returns the mean Euclidean norm of m's columns (one per probe).
func meanColumnNorm(m checkpoint.Matrix) float64 {
	if m.Cols == 0 {
		return 0
	}
	var total float64
	for j := range m.Cols {
		var s float64
		for i := range m.Rows {
			x := float64(m.Data[i*m.Cols+j])
			s += x * x
		}
		total += math.Sqrt(s)
	}
	return total / float64(m.Cols)
}

// prefetchWindow is how many bytes of upcoming experts a scan asks the
// kernel to read ahead of the workers.
const prefetchWindow = 128 << 20

// expertBytes returns the stored size of an expert's tensors and their scales.
func expertBytes(ck *checkpoint.Checkpoint, names [3]string) int64 {
	var n int64
	for _, name := range names {
		for _, t := range []string{name, name + checkpoint.ScaleSuffix} {
			if ti, ok := ck.Info(t); ok {
				n += ti.Bytes
			}
		}
	}
	return n
}

// readAhead keeps the kernel reading the experts the workers take next:
// those of at least workers+1 jobs and prefetchWindow bytes beyond the last
// job a worker started (one receive on started per job). The list may run
// past the layer's jobs into the next layer's first experts.
func readAhead(ctx context.Context, ck *checkpoint.Checkpoint, ahead [][3]string, workers int, started <-chan struct{}) {
	next, taken := 0, 0
	var window int64 // bytes asked for but not yet taken by a worker
	for next < len(ahead) {
		for next < len(ahead) && (next < taken+workers+1 || window < prefetchWindow) {
			ck.Prefetch(ahead[next][:]...)
			window += expertBytes(ck, ahead[next])
			next++
		}
		select {
		case <-started:
			window -= expertBytes(ck, ahead[taken])
			taken++
		case <-ctx.Done():
			return
		}
	}
}

// scanLayer measures every routed expert of MoE layer l (and its shared
// block) with s.workers goroutines, and asks for the first experts of MoE
// layer next (if ≥ 0) to be read ahead; probes is P × hidden. done is called
// after each expert with the bytes it read.
func scanLayer(ctx context.Context, ck *checkpoint.Checkpoint, s scanSettings, l, next int, probes checkpoint.Matrix,
	pos *[3][]int, done func(bytes int64)) (*layerScan, error) {
	c := ck.Config
	experts := c.Experts()
	h, inter := c.HiddenSize, max(c.ExpertIntermediate(), c.SharedIntermediate())
	m := len(pos[0]) + len(pos[1]) + len(pos[2])
	np := probes.Rows
	ls := &layerScan{layer: l, stats: make([]ExpertStats, experts),
		samples: checkpoint.Matrix{Rows: experts, Cols: m, Data: make([]float32, experts*m)},
		outputs: checkpoint.Matrix{Rows: experts, Cols: h * np, Data: make([]float32, experts*h*np)}}
	jobs := []int{}
	for e := range experts {
		jobs = append(jobs, e)
	}
	if c.SharedExperts() > 0 {
		jobs = append(jobs, -1)
		ls.shared = &ExpertStats{Layer: l, Expert: -1}
	}
	names := func(e int) [3]string {
		if e < 0 {
			return [3]string{c.SharedTensor(l, checkpoint.Gate), c.SharedTensor(l, checkpoint.Up), c.SharedTensor(l, checkpoint.Down)}
		}
		return ck.ExpertTensors(l, e)
	}
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Every job is queued up front, so workers never wait for the read-ahead.
	queue := make(chan int, len(jobs))
	for _, e := range jobs {
		queue <- e
	}
	close(queue)
	started := make(chan struct{}, len(jobs))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	workers := max(1, min(s.workers, len(jobs)))
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := newScanWorker(h*inter, max(h, inter), inter, h, np)
			for e := range queue {
				if ctx.Err() != nil {
					continue
				}
				started <- struct{}{}
				st, sample, out := ls.shared, []float32(nil), w.out
				if e >= 0 {
					st = &ls.stats[e]
					sample, out = ls.samples.Row(e), ls.outputs.Row(e)
				}
				st.Layer, st.Expert = l, e
				if err := w.expert(ctx, ck, s, names(e), st, probes, pos, sample, out); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("layer %d expert %d: %w", l, e, err)
					}
					mu.Unlock()
					cancel()
					continue
				}
				if done != nil {
					done(st.Bytes)
				}
			}
		}()
	}
	var ahead [][3]string
	for _, e := range jobs {
		ahead = append(ahead, names(e))
	}
	if next >= 0 {
		for e := range min(experts, workers+1+int(prefetchWindow/max(expertBytes(ck, ck.ExpertTensors(next, 0)), 1))) {
			ahead = append(ahead, ck.ExpertTensors(next, e))
		}
	}
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		readAhead(ctx, ck, ahead, workers, started)
	}()
	wg.Wait()
	cancel() // the read-ahead may still wait for workers that are gone
	<-readDone
	if firstErr != nil {
		return nil, firstErr
	}
	if err := parent.Err(); err != nil {
		return nil, err
	}
	for _, st := range ls.stats {
		ls.bytes += st.Bytes
	}
	if ls.shared != nil {
		ls.bytes += ls.shared.Bytes
	}
	return ls, nil
}
