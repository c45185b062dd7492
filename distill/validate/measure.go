package validate

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"time"

	"github.com/meshnode/meshnode/experts"
)

// batchRows is the batch size of batched inference (throughput, accuracy).
const batchRows = 256

// predict runs x (rows×dim) in batches and returns each row's argmax and
// top probability.
func predict(ctx context.Context, net *experts.Network, x []float64) (pred []int, conf []float64, err error) {
	dim, out := net.InputDim(), net.OutputDim()
	rows := len(x) / dim
	for off := 0; off < rows; off += batchRows {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		b := min(batchRows, rows-off)
		y, err := net.Forward(x[off*dim:(off+b)*dim], b)
		if err != nil {
			return nil, nil, err
		}
		for r := 0; r < b; r++ {
			row := y[r*out : (r+1)*out]
			k := argmax(row)
			pred, conf = append(pred, k), append(conf, row[k])
		}
	}
	return pred, conf, nil
}

func argmax(v []float64) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

func accuracy(pred, y []int) float64 {
	if len(y) == 0 {
		return 0
	}
	ok := 0
	for i, p := range pred {
		if p == y[i] {
			ok++
		}
	}
	return float64(ok) / float64(len(y))
}

func mean(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	var s float64
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

// latency times queries single queries from raw input to answer: feature
// extraction for text, then one forward pass. It returns p50 and p99 in
// microseconds.
func latency(ctx context.Context, e Expert, st *suite, x []float64, queries int) (p50, p99 float64, err error) {
	dim := e.Net.InputDim()
	rows := len(x) / dim
	ds := make([]time.Duration, 0, queries)
	for q := 0; q < queries; q++ {
		if q%64 == 0 {
			if err := ctx.Err(); err != nil {
				return 0, 0, err
			}
		}
		i := q % rows
		t0 := time.Now()
		in := x[i*dim : (i+1)*dim]
		if st.text != nil {
			if in, err = featurize(st.text.Texts[i:i+1], e); err != nil {
				return 0, 0, err
			}
		}
		if _, err := e.Net.Predict(in); err != nil {
			return 0, 0, err
		}
		ds = append(ds, time.Since(t0))
	}
	slices.Sort(ds)
	return micros(quantile(ds, 0.5)), micros(quantile(ds, 0.99)), nil
}

func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}

func micros(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }

// throughput runs batched inference over x for at least d (and at least one
// pass) and returns rows per second.
func throughput(ctx context.Context, net *experts.Network, x []float64, d time.Duration) (float64, error) {
	rows, n := len(x)/net.InputDim(), 0
	t0 := time.Now()
	for time.Since(t0) < d || n < rows {
		if _, _, err := predict(ctx, net, x); err != nil {
			return 0, err
		}
		n += rows
	}
	return float64(n) / time.Since(t0).Seconds(), nil
}

// heapGrowth measures the live heap that decoding the weights and one
// forward pass add: HeapAlloc after settle, before and after, with the new
// network kept alive. It is a measurement of this process, so concurrent
// allocation elsewhere in it would blur it; Run measures experts one at a
// time.
func heapGrowth(e Expert) (int64, error) {
	var m0, m1 runtime.MemStats
	settle()
	runtime.ReadMemStats(&m0)
	net, err := experts.DecodeWeights(e.Weights)
	if err != nil {
		return 0, fmt.Errorf("memory: %w", err)
	}
	if _, err := net.Predict(make([]float64, net.InputDim())); err != nil {
		return 0, fmt.Errorf("memory: %w", err)
	}
	settle()
	runtime.ReadMemStats(&m1)
	runtime.KeepAlive(net)
	return max(0, int64(m1.HeapAlloc)-int64(m0.HeapAlloc)), nil
}

// settle collects twice: sync.Pool keeps cached objects (the networks'
// inference workspaces) for one extra collection, and they must not be
// freed between the two readings of heapGrowth.
func settle() {
	runtime.GC()
	runtime.GC()
}
