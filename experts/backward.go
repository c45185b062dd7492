package experts

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
)

// backward propagates the gradient of the loss with respect to the logits, which the caller has
// written into the last layer's dz buffer, through every layer, writing parameter gradients into
// grads (a network of the same architecture used as storage). It needs the activations that
// forward left in ws for the same rows.
func (n *Network) backward(ws *workspace, rows int, grads *Network) {
	for i := len(n.layers) - 1; i >= 0; i-- {
		l, la, gl := n.layers[i], &ws.acts[i], grads.layers[i]
		X := general(rows, l.in, la.x)
		dout := la.dz[:rows*l.out]
		var dx []float64
		if i > 0 {
			dx = ws.acts[i-1].dz[:rows*l.in]
		}
		switch l.spec.Kind {
		case KindDense:
			z, a := la.z[:rows*l.out], la.a[:rows*l.out]
			switch l.act.name {
			case "linear":
			case "relu":
				for j, v := range z {
					if v <= 0 {
						dout[j] = 0
					}
				}
			default:
				for j := range dout {
					dout[j] *= l.act.deriv(z[j], a[j])
				}
			}
			dZ := general(rows, l.out, dout)
			blas64.Gemm(blas.Trans, blas.NoTrans, 1, X, dZ, 0, general(l.in, l.out, gl.W))
			clear(gl.B)
			for r := 0; r < rows; r++ {
				row := dout[r*l.out : (r+1)*l.out]
				for j, v := range row {
					gl.B[j] += v
				}
			}
			if dx != nil {
				blas64.Gemm(blas.NoTrans, blas.Trans, 1, dZ, general(l.in, l.out, l.W), 0, general(rows, l.in, dx))
			}
		case KindSwiGLU:
			h := l.spec.Hidden
			g, u, hh := la.g[:rows*h], la.u[:rows*h], la.h[:rows*h]
			dg, du := la.dg[:rows*h], la.du[:rows*h]
			dY := general(rows, l.out, dout)
			// dH = dY·Wdᵀ, kept in dg until it is turned into the gate's gradient.
			blas64.Gemm(blas.NoTrans, blas.Trans, 1, dY, general(h, l.out, l.Wd), 0, general(rows, h, dg))
			blas64.Gemm(blas.Trans, blas.NoTrans, 1, general(rows, h, hh), dY, 0, general(h, l.out, gl.Wd))
			for j, dh := range dg {
				du[j] = dh * silu(g[j])
				dg[j] = dh * u[j] * siluDeriv(g[j])
			}
			dG, dU := general(rows, h, dg), general(rows, h, du)
			blas64.Gemm(blas.Trans, blas.NoTrans, 1, X, dG, 0, general(l.in, h, gl.Wg))
			blas64.Gemm(blas.Trans, blas.NoTrans, 1, X, dU, 0, general(l.in, h, gl.Wu))
			if dx != nil {
				blas64.Gemm(blas.NoTrans, blas.Trans, 1, dG, general(l.in, h, l.Wg), 0, general(rows, l.in, dx))
				blas64.Gemm(blas.NoTrans, blas.Trans, 1, dU, general(l.in, h, l.Wu), 1, general(rows, l.in, dx))
			}
		}
	}
}

// zeroLike returns a network of the same architecture with every parameter zero, used to hold
// gradients and optimiser state.
func (n *Network) zeroLike() *Network {
	z := n.Clone()
	for _, p := range z.params() {
		clear(p.data)
	}
	return z
}
