package experts

import (
	"bytes"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/meshnode/meshnode/experts/safetensors"
)

func TestWeightsRoundTrip(t *testing.T) {
	archs := []Arch{
		MLP(6, []int{5, 4}, "gelu", 3, OutputSoftmax),
		{Input: 6, Normalize: true, Output: OutputLinear, Layers: []LayerSpec{
			{Kind: KindSwiGLU, Units: 4, Hidden: 8}, {Kind: KindDense, Units: 2, Activation: "linear"}}},
	}
	for _, a := range archs {
		t.Run(a.String(), func(t *testing.T) {
			n, err := NewNetwork(a, 3)
			if err != nil {
				t.Fatal(err)
			}
			if a.Normalize {
				for i := range n.Mean {
					n.Mean[i], n.Std[i] = float64(i), float64(i+1)
				}
			}
			n.roundToFloat32()
			b, err := EncodeWeights(n)
			if err != nil {
				t.Fatal(err)
			}
			b2, _ := EncodeWeights(n)
			if !bytes.Equal(b, b2) {
				t.Fatal("encoding is not deterministic")
			}
			m, err := DecodeWeights(b)
			if err != nil {
				t.Fatal(err)
			}
			x := make([]float64, 6*5)
			rng := rand.New(rand.NewPCG(1, 2))
			for i := range x {
				x[i] = rng.NormFloat64()
			}
			y1, _ := n.Forward(x, 5)
			y2, _ := m.Forward(x, 5)
			for i := range y1 {
				if y1[i] != y2[i] {
					t.Fatalf("output %d: %v before encoding, %v after", i, y1[i], y2[i])
				}
			}
		})
	}
}

// TestWeightsUsePyTorchLayout checks the file itself: a dense weight is [out, in] with row j
// holding the weights into output unit j.
func TestWeightsUsePyTorchLayout(t *testing.T) {
	n, _ := NewNetwork(MLP(3, nil, "linear", 2, OutputLinear), 1)
	n.roundToFloat32()
	b, _ := EncodeWeights(n)
	md, ts, err := safetensors.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseArch(md[MetaArch]); err != nil {
		t.Fatalf("metadata does not carry the architecture: %v", err)
	}
	var w safetensors.Tensor
	for _, tt := range ts {
		if tt.Name == "layers.0.weight" {
			w = tt
		}
	}
	if len(w.Shape) != 2 || w.Shape[0] != 2 || w.Shape[1] != 3 {
		t.Fatalf("weight shape %v, want [2 3]", w.Shape)
	}
	l := n.layers[0]
	for j := 0; j < 2; j++ {
		for i := 0; i < 3; i++ {
			if float64(w.Data[j*3+i]) != l.W[i*2+j] {
				t.Fatalf("weight[%d][%d] = %v, want %v", j, i, w.Data[j*3+i], l.W[i*2+j])
			}
		}
	}
}

func TestDecodeWeightsRejectsBadFiles(t *testing.T) {
	n, _ := NewNetwork(MLP(3, []int{4}, "relu", 2, OutputSoftmax), 1)
	good, _ := EncodeWeights(n)
	md, ts, _ := safetensors.Decode(good)
	reencode := func(md map[string]string, ts []safetensors.Tensor) []byte {
		var buf bytes.Buffer
		if err := safetensors.Encode(&buf, md, ts); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	withMeta := func(k, v string) []byte {
		m := map[string]string{}
		for a, b := range md {
			m[a] = b
		}
		m[k] = v
		return reencode(m, ts)
	}
	nan := append([]safetensors.Tensor(nil), ts...)
	nan[0].Data = append([]float32(nil), nan[0].Data...)
	nan[0].Data[0] = float32(math.NaN())
	cases := []struct {
		name, want string
		b          []byte
	}{
		{"truncated", "safetensors", good[:len(good)-3]},
		{"no arch", MetaArch, withMeta(MetaArch, "")},
		{"bad arch", MetaArch, withMeta(MetaArch, `{"input":3,"layers":[],"output":"softmax"}`)},
		{"missing tensor", "tensors", reencode(md, ts[1:])},
		{"wrong shape", "shape", withMeta(MetaArch, MLP(3, []int{5}, "relu", 2, OutputSoftmax).MarshalCanonical())},
		{"nan", "not finite", reencode(md, nan)},
		{"version", MetaVersion, withMeta(MetaVersion, "9")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeWeights(tc.b)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
}
