package experts

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Layer kinds an architecture may use.
const (
	KindDense  = "dense"
	KindSwiGLU = "swiglu"
)

// Output heads.
const (
	// OutputSoftmax turns the last layer's logits into class probabilities.
	OutputSoftmax = "softmax"
	// OutputLinear returns the last layer's values as a vector (regression, embeddings).
	OutputLinear = "linear"
)

// LayerSpec describes one layer of a feed-forward network.
type LayerSpec struct {
	Kind       string `json:"kind"`                 // dense | swiglu
	Units      int    `json:"units"`                // output width
	Hidden     int    `json:"hidden,omitempty"`     // swiglu: width of the gated hidden layer
	Activation string `json:"activation,omitempty"` // dense: relu|gelu|tanh|sigmoid|linear
}

// Arch is the architecture of a micro-expert: an input width, a stack of layers and an output
// head. It is stored in the manifest and repeated in the weights file's metadata, so either one
// is enough to rebuild the network.
type Arch struct {
	Input     int         `json:"input"`
	Normalize bool        `json:"normalize,omitempty"` // a fixed per-feature (x-mean)/std layer first
	Layers    []LayerSpec `json:"layers"`
	Output    string      `json:"output"` // softmax | linear
}

// MLP returns the architecture of a plain multi-layer perceptron: dense hidden layers with one
// activation, then a linear layer of out units under the given head.
func MLP(in int, hidden []int, activation string, out int, head string) Arch {
	a := Arch{Input: in, Output: head}
	for _, h := range hidden {
		a.Layers = append(a.Layers, LayerSpec{Kind: KindDense, Units: h, Activation: activation})
	}
	a.Layers = append(a.Layers, LayerSpec{Kind: KindDense, Units: out, Activation: "linear"})
	return a
}

// Validate checks that every field of the architecture is usable.
func (a Arch) Validate() error {
	if a.Input <= 0 {
		return fmt.Errorf("architecture: input width %d must be positive", a.Input)
	}
	if len(a.Layers) == 0 {
		return fmt.Errorf("architecture: no layers")
	}
	if a.Output != OutputSoftmax && a.Output != OutputLinear {
		return fmt.Errorf("architecture: unknown output head %q (want softmax or linear)", a.Output)
	}
	const maxWidth = 1 << 20
	for i, l := range a.Layers {
		if l.Units <= 0 || l.Units > maxWidth {
			return fmt.Errorf("architecture: layer %d: units %d out of range [1, %d]", i, l.Units, maxWidth)
		}
		switch l.Kind {
		case KindDense:
			if _, err := activationByName(l.Activation); err != nil {
				return fmt.Errorf("architecture: layer %d: %w", i, err)
			}
		case KindSwiGLU:
			if l.Hidden <= 0 || l.Hidden > maxWidth {
				return fmt.Errorf("architecture: layer %d: swiglu hidden width %d out of range [1, %d]", i, l.Hidden, maxWidth)
			}
		default:
			return fmt.Errorf("architecture: layer %d: unknown kind %q (want dense or swiglu)", i, l.Kind)
		}
	}
	if a.ParamCount() > 1<<28 {
		return fmt.Errorf("architecture: %d parameters is more than a micro-expert may have", a.ParamCount())
	}
	return nil
}

// OutputDim is the width of the network's output.
func (a Arch) OutputDim() int { return a.Layers[len(a.Layers)-1].Units }

// ParamCount is the number of trainable parameters (weights and biases; the fixed input
// normalisation is not counted).
func (a Arch) ParamCount() int {
	n, in := 0, a.Input
	for _, l := range a.Layers {
		switch l.Kind {
		case KindDense:
			n += in*l.Units + l.Units
		case KindSwiGLU:
			n += 2*in*l.Hidden + l.Hidden*l.Units
		}
		in = l.Units
	}
	return n
}

// String renders the architecture compactly, e.g. "784-100(relu)-10 softmax".
func (a Arch) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d", a.Input)
	for _, l := range a.Layers {
		switch l.Kind {
		case KindSwiGLU:
			fmt.Fprintf(&b, "-swiglu(%d)-%d", l.Hidden, l.Units)
		default:
			if l.Activation == "linear" || l.Activation == "" {
				fmt.Fprintf(&b, "-%d", l.Units)
			} else {
				fmt.Fprintf(&b, "-%d(%s)", l.Units, l.Activation)
			}
		}
	}
	b.WriteString(" " + a.Output)
	return b.String()
}

// MarshalCanonical renders the architecture as compact JSON with a fixed field order; it is the
// form stored in weights metadata.
func (a Arch) MarshalCanonical() string {
	b, _ := json.Marshal(a) // a struct of strings, ints and bools cannot fail to marshal
	return string(b)
}

// ParseArch decodes and validates the JSON form of an architecture.
func ParseArch(s string) (Arch, error) {
	var a Arch
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		return Arch{}, fmt.Errorf("architecture: %w", err)
	}
	return a, a.Validate()
}
