package kd

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"path/filepath"
	"sort"
	"strconv"

	"github.com/ipfs/go-cid"

	"github.com/meshnode/meshnode/distill/checkpoint"
	"github.com/meshnode/meshnode/experts"
	"github.com/meshnode/meshnode/experts/safetensors"
	"github.com/meshnode/meshnode/experts/store"
)

// MoETeacher is one routed expert of a mixture-of-experts checkpoint, dequantised to float32
// and held as a SwiGLU network: out = Down·(silu(Gate·x) ⊙ Up·x).
type MoETeacher struct {
	Dir           string
	Layer, Expert int
	// NormGain is the layer's post_attention_layernorm weight (the scale of the expert's
	// inputs), nil when the checkpoint has none.
	NormGain []float32
	net      *experts.Network
	gate, up checkpoint.Matrix // inter × hidden
	down     checkpoint.Matrix // hidden × inter
	info     TeacherInfo
}

var _ VectorTeacher = (*MoETeacher)(nil)

// OpenMoE reads routed expert e of layer l of the checkpoint in dir.
func OpenMoE(ctx context.Context, dir string, l, e int) (*MoETeacher, error) {
	ck, err := checkpoint.Open(ctx, dir)
	if err != nil {
		return nil, fmt.Errorf("teacher moe:%s: %w", dir, err)
	}
	defer ck.Close()
	ex, err := ck.Expert(ctx, l, e)
	if err != nil {
		return nil, fmt.Errorf("teacher moe:%s: %w", dir, err)
	}
	t := &MoETeacher{Dir: dir, Layer: l, Expert: e, gate: ex.Gate, up: ex.Up, down: ex.Down}
	if _, ok := ck.Info(checkpoint.PostAttentionNormTensor(l)); ok {
		g, err := ck.Read(ctx, checkpoint.PostAttentionNormTensor(l))
		if err != nil {
			return nil, fmt.Errorf("teacher moe:%s: %w", dir, err)
		}
		if len(g.Data) == ck.Config.HiddenSize {
			t.NormGain = g.Data
		}
	}
	hidden, inter := ex.Gate.Cols, ex.Gate.Rows
	t.net, err = swigluNetwork(hidden, inter, ex.Gate, ex.Up, ex.Down, nil)
	if err != nil {
		return nil, fmt.Errorf("teacher moe:%s: layer %d expert %d: %w", dir, l, e, err)
	}
	id, err := t.TensorsCID(ctx)
	if err != nil {
		return nil, fmt.Errorf("teacher moe:%s: %w", dir, err)
	}
	spec := Spec{Kind: KindMoE, Dir: dir, Layer: l, Expert: e}
	t.info = TeacherInfo{
		Kind: KindMoE, Spec: spec.String(), Name: fmt.Sprintf("%s layer %d expert %d", filepath.Base(filepath.Clean(dir)), l, e),
		ID: id, IDKind: "dequantised-tensors", Params: t.net.ParamCount(),
		Input:  experts.InputSpec{Kind: experts.InputVector, Dim: hidden},
		Output: experts.OutputSpec{Kind: experts.OutputVector, Dim: hidden},
		Meta: map[string]string{
			"kind": string(KindMoE), "checkpoint": dir, "layer": strconv.Itoa(l), "expert": strconv.Itoa(e),
			"model_type": ck.Config.ModelType, "family": string(ck.Config.Family),
			"intermediate": strconv.Itoa(inter), "tensors_cid": id.String(),
		},
	}
	return t, nil
}

// swigluNetwork builds a one-layer SwiGLU network from checkpoint-layout projections (gate and
// up inter × hidden, down hidden × inter), keeping only the hidden units in keep (all when nil).
func swigluNetwork(hidden, inter int, gate, up, down checkpoint.Matrix, keep []int) (*experts.Network, error) {
	if keep == nil {
		keep = make([]int, inter)
		for k := range keep {
			keep[k] = k
		}
	}
	h := len(keep)
	arch := experts.Arch{Input: hidden, Output: experts.OutputLinear,
		Layers: []experts.LayerSpec{{Kind: experts.KindSwiGLU, Units: down.Rows, Hidden: h}}}
	net, err := experts.NewNetwork(arch, 0)
	if err != nil {
		return nil, err
	}
	out := down.Rows
	p := make([]float64, 0, arch.ParamCount())
	for _, m := range []checkpoint.Matrix{gate, up} { // memory layout in × h
		for i := 0; i < hidden; i++ {
			for _, k := range keep {
				p = append(p, float64(m.Data[k*hidden+i]))
			}
		}
	}
	for _, k := range keep { // h × out
		for o := 0; o < out; o++ {
			p = append(p, float64(down.Data[o*inter+k]))
		}
	}
	if err := net.SetParams(p); err != nil {
		return nil, err
	}
	return net, nil
}

// Info describes the teacher.
func (t *MoETeacher) Info() TeacherInfo { return t.info }

// Network is the expert as a SwiGLU network.
func (t *MoETeacher) Network() *experts.Network { return t.net }

// Outputs runs the expert in batches.
func (t *MoETeacher) Outputs(ctx context.Context, x []float64, rows int) ([]float64, error) {
	return batchForward(ctx, t.net.Forward, x, rows, t.net.InputDim(), t.net.OutputDim())
}

// TensorsCID is the content ID of the expert's dequantised weights: the CID `meshnode blob put`
// gives a safetensors file (metadata {"format": "pt"}) of F32 tensors gate_proj.weight and
// up_proj.weight [intermediate, hidden] and down_proj.weight [hidden, intermediate]. A
// checkpoint expert has no manifest, so this is what a student's parent link names.
func (t *MoETeacher) TensorsCID(ctx context.Context) (cid.Cid, error) {
	ts := []safetensors.Tensor{
		{Name: "gate_proj.weight", Shape: []int{t.gate.Rows, t.gate.Cols}, Data: t.gate.Data},
		{Name: "up_proj.weight", Shape: []int{t.up.Rows, t.up.Cols}, Data: t.up.Data},
		{Name: "down_proj.weight", Shape: []int{t.down.Rows, t.down.Cols}, Data: t.down.Data},
	}
	var buf bytes.Buffer
	if err := safetensors.Encode(&buf, map[string]string{"format": "pt"}, ts); err != nil {
		return cid.Undef, fmt.Errorf("encode expert tensors: %w", err)
	}
	c, _, err := store.BlobCID(ctx, &buf)
	return c, err
}

// Pruned returns the baseline student of the same size as a SwiGLU of h hidden units: the
// teacher keeping its h hidden units of largest contribution E[(silu(g_k·x)·(u_k·x))²]·‖d_k‖²
// on the probe inputs x (rows × hidden), the others cut. h ≥ the teacher's width returns a copy.
func (t *MoETeacher) Pruned(ctx context.Context, h int, x []float64, rows int) (*experts.Network, error) {
	hidden, inter := t.gate.Cols, t.gate.Rows
	if h >= inter {
		return t.net.Clone(), nil
	}
	if h < 1 {
		return nil, fmt.Errorf("prune to %d hidden units: need at least 1", h)
	}
	score := make([]float64, inter)
	for r := 0; r < rows; r++ {
		if r%256 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		xr := x[r*hidden : (r+1)*hidden]
		for k := 0; k < inter; k++ {
			var g, u float64
			gr, ur := t.gate.Row(k), t.up.Row(k)
			for i, v := range xr {
				g += float64(gr[i]) * v
				u += float64(ur[i]) * v
			}
			a := g / (1 + math.Exp(-g)) * u
			score[k] += a * a
		}
	}
	for k := range score {
		var d float64
		for o := 0; o < t.down.Rows; o++ {
			v := float64(t.down.Data[o*inter+k])
			d += v * v
		}
		score[k] *= d
	}
	order := make([]int, inter)
	for k := range order {
		order[k] = k
	}
	sort.SliceStable(order, func(a, b int) bool { return score[order[a]] > score[order[b]] })
	keep := append([]int(nil), order[:h]...)
	sort.Ints(keep)
	return swigluNetwork(hidden, inter, t.gate, t.up, t.down, keep)
}
