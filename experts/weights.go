package experts

import (
	"bytes"
	"fmt"
	"strconv"

	"github.com/meshnode/meshnode/experts/safetensors"
)

// Metadata keys of a weights file.
const (
	MetaArch    = "meshnode.arch"    // the architecture as canonical JSON
	MetaVersion = "meshnode.weights" // weights layout version
	weightsV1   = "1"
)

// EncodeWeights writes the network as a safetensors file: F32 tensors named and shaped as
// PyTorch would (a dense layer's weight is [out, in]), with the architecture repeated in the
// metadata so the file loads without its manifest. The encoding is deterministic.
func EncodeWeights(n *Network) ([]byte, error) {
	var ts []safetensors.Tensor
	for _, p := range n.params() {
		t := safetensors.Tensor{Name: p.name, Data: make([]float32, len(p.data))}
		if p.transposed {
			t.Shape = []int{p.cols, p.rows}
			for r := 0; r < p.rows; r++ {
				for c := 0; c < p.cols; c++ {
					t.Data[c*p.rows+r] = float32(p.data[r*p.cols+c])
				}
			}
		} else {
			t.Shape = []int{p.cols}
			for i, v := range p.data {
				t.Data[i] = float32(v)
			}
		}
		ts = append(ts, t)
	}
	if n.Arch.Normalize {
		ts = append(ts, floatTensor("input_norm.mean", n.Mean), floatTensor("input_norm.std", n.Std))
	}
	md := map[string]string{"format": "pt", MetaArch: n.Arch.MarshalCanonical(), MetaVersion: weightsV1}
	var buf bytes.Buffer
	if err := safetensors.Encode(&buf, md, ts); err != nil {
		return nil, fmt.Errorf("encode weights: %w", err)
	}
	return buf.Bytes(), nil
}

func floatTensor(name string, v []float64) safetensors.Tensor {
	t := safetensors.Tensor{Name: name, Shape: []int{len(v)}, Data: make([]float32, len(v))}
	for i, x := range v {
		t.Data[i] = float32(x)
	}
	return t
}

// DecodeWeights rebuilds a network from a weights file. Tensors may be F32, F16 or BF16; every
// tensor the architecture needs must be present with its exact shape, and no other.
func DecodeWeights(b []byte) (*Network, error) {
	md, ts, err := safetensors.Decode(b)
	if err != nil {
		return nil, fmt.Errorf("decode weights: %w", err)
	}
	if v := md[MetaVersion]; v != weightsV1 {
		return nil, fmt.Errorf("decode weights: metadata %q is %s, want %s", MetaVersion, strconv.Quote(v), weightsV1)
	}
	a, err := ParseArch(md[MetaArch])
	if err != nil {
		return nil, fmt.Errorf("decode weights: metadata %q: %w", MetaArch, err)
	}
	n, err := NewNetwork(a, 0)
	if err != nil {
		return nil, fmt.Errorf("decode weights: %w", err)
	}
	byName := make(map[string]safetensors.Tensor, len(ts))
	for _, t := range ts {
		byName[t.Name] = t
	}
	want := n.params()
	if a.Normalize {
		want = append(want,
			param{name: "input_norm.mean", data: n.Mean, rows: 1, cols: a.Input},
			param{name: "input_norm.std", data: n.Std, rows: 1, cols: a.Input})
	}
	if len(byName) != len(want) {
		return nil, fmt.Errorf("decode weights: file has %d tensors, architecture %s needs %d", len(byName), a, len(want))
	}
	for _, p := range want {
		t, ok := byName[p.name]
		if !ok {
			return nil, fmt.Errorf("decode weights: missing tensor %q", p.name)
		}
		wantShape := []int{p.cols}
		if p.transposed {
			wantShape = []int{p.cols, p.rows}
		}
		if !equalInts(t.Shape, wantShape) {
			return nil, fmt.Errorf("decode weights: tensor %q has shape %v, want %v", p.name, t.Shape, wantShape)
		}
		for i, v := range t.Data {
			if v != v || v > 3.4e38 || v < -3.4e38 {
				return nil, fmt.Errorf("decode weights: tensor %q element %d is not finite", p.name, i)
			}
		}
		if p.transposed {
			for r := 0; r < p.rows; r++ {
				for c := 0; c < p.cols; c++ {
					p.data[r*p.cols+c] = float64(t.Data[c*p.rows+r])
				}
			}
		} else {
			for i, v := range t.Data {
				p.data[i] = float64(v)
			}
		}
	}
	for i, s := range n.Std {
		if s <= 0 {
			return nil, fmt.Errorf("decode weights: input_norm.std[%d] = %g must be positive", i, s)
		}
	}
	return n, nil
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
