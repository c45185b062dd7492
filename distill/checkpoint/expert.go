package checkpoint

import (
	"context"
	"fmt"
)

// Expert is one SwiGLU expert, dequantised: out = Down·(silu(Gate·x) ⊙ Up·x).
// Gate and Up are intermediate × hidden, Down is hidden × intermediate.
type Expert struct {
	Layer, Index int // Index is -1 for a layer's shared expert block
	Gate, Up     Matrix
	Down         Matrix
}

// Router is a layer's gate: logits = x·Weightᵀ, one row per routed expert.
type Router struct {
	Layer  int
	Weight Matrix    // experts × hidden
	Bias   []float32 // e_score_correction_bias (selection only); nil when absent
}

func (ck *Checkpoint) moeLayer(l int) (Layer, error) {
	if l < 0 || l >= len(ck.layers) {
		return Layer{}, fmt.Errorf("checkpoint %s: layer %d outside [0, %d)", ck.Dir, l, len(ck.layers))
	}
	if !ck.layers[l].MoE {
		return Layer{}, fmt.Errorf("checkpoint %s: layer %d is dense, not mixture-of-experts", ck.Dir, l)
	}
	return ck.layers[l], nil
}

// ExpertTensors returns the names of routed expert e's gate, up and down projections in layer l.
func (ck *Checkpoint) ExpertTensors(l, e int) [3]string {
	c := ck.Config
	return [3]string{c.ExpertTensor(l, e, Gate), c.ExpertTensor(l, e, Up), c.ExpertTensor(l, e, Down)}
}

// Expert reads routed expert e of layer l as float32.
func (ck *Checkpoint) Expert(ctx context.Context, l, e int) (*Expert, error) {
	layer, err := ck.moeLayer(l)
	if err != nil {
		return nil, err
	}
	if e < 0 || e >= layer.Experts {
		return nil, fmt.Errorf("checkpoint %s: layer %d has no expert %d (it has %d)", ck.Dir, l, e, layer.Experts)
	}
	return ck.readExpert(ctx, l, e, ck.ExpertTensors(l, e))
}

// SharedExpert reads layer l's shared expert block (DeepSeek-V3 fuses its
// n_shared_experts into one block).
func (ck *Checkpoint) SharedExpert(ctx context.Context, l int) (*Expert, error) {
	layer, err := ck.moeLayer(l)
	if err != nil {
		return nil, err
	}
	if layer.Shared == 0 {
		return nil, fmt.Errorf("checkpoint %s: layer %d has no shared expert", ck.Dir, l)
	}
	c := ck.Config
	return ck.readExpert(ctx, l, -1, [3]string{c.SharedTensor(l, Gate), c.SharedTensor(l, Up), c.SharedTensor(l, Down)})
}

func (ck *Checkpoint) readExpert(ctx context.Context, l, e int, names [3]string) (*Expert, error) {
	var ms [3]Matrix
	for p, n := range names {
		m, err := ck.Read(ctx, n)
		if err != nil {
			return nil, err
		}
		ms[p] = m
	}
	return &Expert{Layer: l, Index: e, Gate: ms[Gate], Up: ms[Up], Down: ms[Down]}, nil
}

// Router reads layer l's router weight and, when present, its selection bias.
func (ck *Checkpoint) Router(ctx context.Context, l int) (*Router, error) {
	layer, err := ck.moeLayer(l)
	if err != nil {
		return nil, err
	}
	w, err := ck.Read(ctx, ck.Config.RouterTensor(l))
	if err != nil {
		return nil, err
	}
	r := &Router{Layer: l, Weight: w}
	if layer.RouterBias {
		b, err := ck.Read(ctx, ck.Config.RouterBiasTensor(l))
		if err != nil {
			return nil, err
		}
		r.Bias = b.Data
	}
	return r, nil
}
