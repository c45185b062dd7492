package experts

import "math"

// optimizer updates a network's parameters from their gradients.
type optimizer interface {
	step(n, grads *Network)
	scaleLR(f float64) // multiply the learning rate by f
}

func newOptimizer(n *Network, cfg TrainConfig) optimizer {
	if cfg.Optimizer == "sgd" {
		return &sgd{lr: cfg.LearningRate, momentum: cfg.Momentum, decay: cfg.WeightDecay, velocity: n.zeroLike()}
	}
	return &adam{lr: cfg.LearningRate, beta1: 0.9, beta2: 0.999, eps: 1e-8, decay: cfg.WeightDecay,
		m: n.zeroLike(), v: n.zeroLike()}
}

// sgd is stochastic gradient descent with (heavy-ball) momentum and L2 weight decay.
type sgd struct {
	lr, momentum, decay float64
	velocity            *Network
}

func (o *sgd) scaleLR(f float64) { o.lr *= f }

func (o *sgd) step(n, grads *Network) {
	ps, gs, vs := n.params(), grads.params(), o.velocity.params()
	for k, p := range ps {
		g, v := gs[k].data, vs[k].data
		decay := 0.0
		if p.decay {
			decay = o.decay
		}
		for i, w := range p.data {
			v[i] = o.momentum*v[i] + g[i] + decay*w
			p.data[i] = w - o.lr*v[i]
		}
	}
}

// adam is Adam with bias correction and decoupled weight decay (AdamW).
type adam struct {
	lr, beta1, beta2, eps, decay float64
	t                            int
	m, v                         *Network
}

func (o *adam) scaleLR(f float64) { o.lr *= f }

func (o *adam) step(n, grads *Network) {
	o.t++
	c1 := 1 - math.Pow(o.beta1, float64(o.t))
	c2 := 1 - math.Pow(o.beta2, float64(o.t))
	lr := o.lr * math.Sqrt(c2) / c1
	ps, gs, ms, vs := n.params(), grads.params(), o.m.params(), o.v.params()
	for k, p := range ps {
		g, m, v := gs[k].data, ms[k].data, vs[k].data
		decay := 0.0
		if p.decay {
			decay = o.lr * o.decay
		}
		for i, w := range p.data {
			gi := g[i]
			m[i] = o.beta1*m[i] + (1-o.beta1)*gi
			v[i] = o.beta2*v[i] + (1-o.beta2)*gi*gi
			p.data[i] = w - lr*m[i]/(math.Sqrt(v[i])+o.eps) - decay*w
		}
	}
}
