package experts

import (
	"fmt"
	"math"
)

// activation is an element-wise function with its derivative. The derivative is given the
// pre-activation z and the activation a = f(z), so each function uses whichever is cheaper.
type activation struct {
	name  string
	f     func(z float64) float64
	deriv func(z, a float64) float64
}

func activationByName(name string) (activation, error) {
	switch name {
	case "", "linear":
		return activation{"linear", func(z float64) float64 { return z }, func(z, a float64) float64 { return 1 }}, nil
	case "relu":
		return activation{"relu", relu, func(z, a float64) float64 {
			if z > 0 {
				return 1
			}
			return 0
		}}, nil
	case "gelu":
		return activation{"gelu", gelu, geluDeriv}, nil
	case "tanh":
		return activation{"tanh", math.Tanh, func(z, a float64) float64 { return 1 - a*a }}, nil
	case "sigmoid":
		return activation{"sigmoid", sigmoid, func(z, a float64) float64 { return a * (1 - a) }}, nil
	}
	return activation{}, fmt.Errorf("unknown activation %q (want relu, gelu, tanh, sigmoid or linear)", name)
}

func relu(z float64) float64 {
	if z > 0 {
		return z
	}
	return 0
}

func sigmoid(z float64) float64 { return 1 / (1 + math.Exp(-z)) }

// gelu is the tanh approximation used by GPT-2 and BERT.
const geluC = 0.7978845608028654 // sqrt(2/pi)

func gelu(z float64) float64 {
	return 0.5 * z * (1 + math.Tanh(geluC*(z+0.044715*z*z*z)))
}

func geluDeriv(z, _ float64) float64 {
	u := geluC * (z + 0.044715*z*z*z)
	t := math.Tanh(u)
	du := geluC * (1 + 3*0.044715*z*z)
	return 0.5*(1+t) + 0.5*z*(1-t*t)*du
}

// silu is x·sigmoid(x), the gate of a SwiGLU block.
func silu(z float64) float64 { return z * sigmoid(z) }

func siluDeriv(z float64) float64 {
	s := sigmoid(z)
	return s * (1 + z*(1-s))
}
