package experts

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
)

// Network is a feed-forward micro-expert: an optional fixed input normalisation, dense and
// SwiGLU layers, and a softmax or linear head. Weights are float64 in memory and float32 on disk.
//
// A Network is safe for concurrent inference (Forward, Predict). Training mutates it and must not
// run concurrently with anything else.
type Network struct {
	Arch Arch
	// Mean and Std are the fixed input normalisation (x-Mean)/Std, present when Arch.Normalize.
	Mean, Std []float64
	layers    []*layer

	pool sync.Pool // *workspace for inference
}

// layer holds one layer's parameters. Dense weights are stored in×out row-major so a batch
// forward pass is one X·W product.
type layer struct {
	spec    LayerSpec
	in, out int
	act     activation
	// dense
	W, B []float64
	// swiglu: gate and up projections in×hidden, down projection hidden×out
	Wg, Wu, Wd []float64
}

// param is a named trainable tensor with its gradient slot index. Shape is the on-disk
// (PyTorch) shape; transposed says the memory layout is the transpose of it.
type param struct {
	name       string
	data       []float64
	rows, cols int // memory layout
	transposed bool
	decay      bool // weight decay applies (weights yes, biases no)
}

// NewNetwork builds a network of the given architecture with weights drawn from a seeded
// generator: He initialisation before relu and gelu, Glorot otherwise, zero biases.
func NewNetwork(a Arch, seed uint64) (*Network, error) {
	if err := a.Validate(); err != nil {
		return nil, err
	}
	n := &Network{Arch: a}
	if a.Normalize {
		n.Mean = make([]float64, a.Input)
		n.Std = make([]float64, a.Input)
		for i := range n.Std {
			n.Std[i] = 1
		}
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	in := a.Input
	for _, s := range a.Layers {
		l := &layer{spec: s, in: in, out: s.Units}
		switch s.Kind {
		case KindDense:
			l.act, _ = activationByName(s.Activation) // validated above
			std := math.Sqrt(1 / float64(in))
			if s.Activation == "relu" || s.Activation == "gelu" {
				std = math.Sqrt(2 / float64(in))
			}
			l.W = randNormal(rng, in*s.Units, std)
			l.B = make([]float64, s.Units)
		case KindSwiGLU:
			l.Wg = randNormal(rng, in*s.Hidden, math.Sqrt(1/float64(in)))
			l.Wu = randNormal(rng, in*s.Hidden, math.Sqrt(1/float64(in)))
			l.Wd = randNormal(rng, s.Hidden*s.Units, math.Sqrt(1/float64(s.Hidden)))
		}
		n.layers = append(n.layers, l)
		in = s.Units
	}
	return n, nil
}

func randNormal(rng *rand.Rand, n int, std float64) []float64 {
	w := make([]float64, n)
	for i := range w {
		w[i] = rng.NormFloat64() * std
	}
	return w
}

// params lists the trainable tensors in a fixed order (the order of the weights file).
func (n *Network) params() []param {
	var ps []param
	for i, l := range n.layers {
		p := fmt.Sprintf("layers.%d.", i)
		switch l.spec.Kind {
		case KindDense:
			ps = append(ps,
				param{name: p + "weight", data: l.W, rows: l.in, cols: l.out, transposed: true, decay: true},
				param{name: p + "bias", data: l.B, rows: 1, cols: l.out})
		case KindSwiGLU:
			h := l.spec.Hidden
			ps = append(ps,
				param{name: p + "gate_proj.weight", data: l.Wg, rows: l.in, cols: h, transposed: true, decay: true},
				param{name: p + "up_proj.weight", data: l.Wu, rows: l.in, cols: h, transposed: true, decay: true},
				param{name: p + "down_proj.weight", data: l.Wd, rows: h, cols: l.out, transposed: true, decay: true})
		}
	}
	return ps
}

// ParamCount is the number of trainable parameters.
func (n *Network) ParamCount() int { return n.Arch.ParamCount() }

// InputDim and OutputDim are the widths of one input and one output.
func (n *Network) InputDim() int  { return n.Arch.Input }
func (n *Network) OutputDim() int { return n.Arch.OutputDim() }

// roundToFloat32 rounds every weight to float32 precision, so the network in memory computes
// exactly what one loaded from its weights file computes.
func (n *Network) roundToFloat32() {
	for _, p := range n.params() {
		for i, v := range p.data {
			p.data[i] = float64(float32(v))
		}
	}
	for i := range n.Mean {
		n.Mean[i] = float64(float32(n.Mean[i]))
		n.Std[i] = float64(float32(n.Std[i]))
	}
}

// Clone returns a deep copy of the network.
func (n *Network) Clone() *Network {
	c := &Network{Arch: n.Arch, Mean: append([]float64(nil), n.Mean...), Std: append([]float64(nil), n.Std...)}
	for _, l := range n.layers {
		cl := *l
		cl.W = append([]float64(nil), l.W...)
		cl.B = append([]float64(nil), l.B...)
		cl.Wg = append([]float64(nil), l.Wg...)
		cl.Wu = append([]float64(nil), l.Wu...)
		cl.Wd = append([]float64(nil), l.Wd...)
		c.layers = append(c.layers, &cl)
	}
	return c
}

// Forward runs a batch of rows inputs (row-major, rows×InputDim) and returns rows×OutputDim
// outputs after the head: class probabilities for softmax, raw values for linear. The result is
// freshly allocated; the network is not modified.
func (n *Network) Forward(x []float64, rows int) ([]float64, error) {
	if rows <= 0 || len(x) != rows*n.Arch.Input {
		return nil, fmt.Errorf("forward: got %d values for %d rows of input width %d", len(x), rows, n.Arch.Input)
	}
	ws, _ := n.pool.Get().(*workspace)
	if ws == nil || ws.cap < rows {
		ws = newWorkspace(n, rows)
	}
	logits := n.forward(ws, x, rows)
	out := make([]float64, len(logits))
	copy(out, logits)
	if n.Arch.Output == OutputSoftmax {
		softmaxRows(out, rows, n.OutputDim())
	}
	n.pool.Put(ws)
	return out, nil
}

// Predict runs one input and returns one output (see Forward).
func (n *Network) Predict(x []float64) ([]float64, error) {
	if len(x) != n.Arch.Input {
		return nil, fmt.Errorf("input has dimension %d, the expert expects %d", len(x), n.Arch.Input)
	}
	return n.Forward(x, 1)
}

// workspace holds the activations and gradients of one batch so training and inference do not
// allocate per batch.
type workspace struct {
	cap   int
	input []float64 // normalised input
	acts  []layerActs
}

type layerActs struct {
	x       []float64 // input to the layer (aliases the previous layer's output)
	z, a    []float64 // dense: pre-activation and activation (a aliases z when linear)
	g, u, h []float64 // swiglu: gate, up, silu(gate)⊙up
	// dz is the gradient w.r.t. the layer's output; a dense layer turns it into the gradient
	// w.r.t. z in place. The next layer's backward pass writes its input gradient here.
	dz     []float64
	dg, du []float64 // swiglu gradients
}

func newWorkspace(n *Network, rows int) *workspace {
	ws := &workspace{cap: rows, input: make([]float64, rows*n.Arch.Input)}
	for _, l := range n.layers {
		var la layerActs
		la.z = make([]float64, rows*l.out)
		la.a = la.z
		if l.spec.Kind == KindDense && l.act.name != "linear" {
			la.a = make([]float64, rows*l.out)
		}
		if l.spec.Kind == KindSwiGLU {
			h := l.spec.Hidden
			la.g, la.u, la.h = make([]float64, rows*h), make([]float64, rows*h), make([]float64, rows*h)
		}
		ws.acts = append(ws.acts, la)
	}
	return ws
}

// ensureGrads allocates the backward buffers (training only).
func (ws *workspace) ensureGrads(n *Network) {
	if ws.acts[0].dz != nil {
		return
	}
	rows := ws.cap
	for i, l := range n.layers {
		la := &ws.acts[i]
		la.dz = make([]float64, rows*l.out)
		if l.spec.Kind == KindSwiGLU {
			la.dg, la.du = make([]float64, rows*l.spec.Hidden), make([]float64, rows*l.spec.Hidden)
		}
	}
}

func general(rows, cols int, data []float64) blas64.General {
	return blas64.General{Rows: rows, Cols: cols, Stride: cols, Data: data[:rows*cols]}
}

// forward computes the logits of rows inputs into the workspace and returns them.
func (n *Network) forward(ws *workspace, x []float64, rows int) []float64 {
	in := ws.input[:rows*n.Arch.Input]
	copy(in, x)
	if n.Arch.Normalize {
		d := n.Arch.Input
		for r := 0; r < rows; r++ {
			row := in[r*d : (r+1)*d]
			for j := range row {
				row[j] = (row[j] - n.Mean[j]) / n.Std[j]
			}
		}
	}
	cur := in
	for i, l := range n.layers {
		la := &ws.acts[i]
		la.x = cur
		X := general(rows, l.in, cur)
		switch l.spec.Kind {
		case KindDense:
			z := la.z[:rows*l.out]
			blas64.Gemm(blas.NoTrans, blas.NoTrans, 1, X, general(l.in, l.out, l.W), 0, general(rows, l.out, z))
			for r := 0; r < rows; r++ {
				row := z[r*l.out : (r+1)*l.out]
				for j, b := range l.B {
					row[j] += b
				}
			}
			a := la.a[:rows*l.out]
			switch l.act.name {
			case "linear":
			case "relu":
				for j, v := range z {
					a[j] = max(v, 0)
				}
			default:
				for j, v := range z {
					a[j] = l.act.f(v)
				}
			}
			cur = a
		case KindSwiGLU:
			h := l.spec.Hidden
			g, u, hh := la.g[:rows*h], la.u[:rows*h], la.h[:rows*h]
			blas64.Gemm(blas.NoTrans, blas.NoTrans, 1, X, general(l.in, h, l.Wg), 0, general(rows, h, g))
			blas64.Gemm(blas.NoTrans, blas.NoTrans, 1, X, general(l.in, h, l.Wu), 0, general(rows, h, u))
			for j := range hh {
				hh[j] = silu(g[j]) * u[j]
			}
			z := la.z[:rows*l.out]
			blas64.Gemm(blas.NoTrans, blas.NoTrans, 1, general(rows, h, hh), general(h, l.out, l.Wd), 0, general(rows, l.out, z))
			cur = z
		}
	}
	return cur
}

// softmaxRows replaces each row of logits by its softmax, stably.
func softmaxRows(v []float64, rows, cols int) {
	for r := 0; r < rows; r++ {
		row := v[r*cols : (r+1)*cols]
		m := math.Inf(-1)
		for _, x := range row {
			m = max(m, x)
		}
		var s float64
		for j, x := range row {
			e := math.Exp(x - m)
			row[j] = e
			s += e
		}
		for j := range row {
			row[j] /= s
		}
	}
}

// Params returns a copy of every trainable parameter, flattened in the weights file's order:
// the vector federated averaging adds and subtracts.
func (n *Network) Params() []float64 {
	var out []float64
	for _, p := range n.params() {
		out = append(out, p.data...)
	}
	return out
}

// SetParams overwrites every trainable parameter from a vector made by Params.
func (n *Network) SetParams(v []float64) error {
	if len(v) != n.ParamCount() {
		return fmt.Errorf("set parameters: got %d values, the network has %d", len(v), n.ParamCount())
	}
	off := 0
	for _, p := range n.params() {
		off += copy(p.data, v[off:off+len(p.data)])
	}
	return nil
}
