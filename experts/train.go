package experts

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// Losses.
const (
	LossCrossEntropy = "cross-entropy" // softmax head; hard labels or soft target distributions
	LossMSE          = "mse"           // linear head; target vectors
)

// Samples is a training or evaluation set: rows of Dim features, with class labels (for
// cross-entropy and accuracy) and/or target rows of TargetDim values (soft labels for
// distillation, or regression targets for MSE). X is float32 so a dataset's memory is shared,
// not copied.
type Samples struct {
	X         []float32
	Dim       int
	Labels    []int
	Targets   []float32
	TargetDim int
}

// Len is the number of rows.
func (s Samples) Len() int {
	if s.Dim == 0 {
		return 0
	}
	return len(s.X) / s.Dim
}

func (s Samples) check(n *Network) error {
	if s.Dim != n.Arch.Input {
		return fmt.Errorf("samples have %d features, the network takes %d", s.Dim, n.Arch.Input)
	}
	rows := s.Len()
	if rows*s.Dim != len(s.X) {
		return fmt.Errorf("samples: %d values is not a whole number of %d-wide rows", len(s.X), s.Dim)
	}
	if s.Labels != nil {
		if len(s.Labels) != rows {
			return fmt.Errorf("samples: %d labels for %d rows", len(s.Labels), rows)
		}
		for i, y := range s.Labels {
			if y < 0 || y >= n.OutputDim() {
				return fmt.Errorf("samples: row %d has label %d outside [0, %d)", i, y, n.OutputDim())
			}
		}
	}
	if s.Targets != nil && (s.TargetDim != n.OutputDim() || len(s.Targets) != rows*s.TargetDim) {
		return fmt.Errorf("samples: targets are %d values of width %d, want %d rows of width %d", len(s.Targets), s.TargetDim, rows, n.OutputDim())
	}
	return nil
}

// TrainConfig sets how Train fits a network.
type TrainConfig struct {
	Epochs       int     // passes over the training rows; 0 leaves the network untouched
	BatchSize    int     // rows per gradient step (default 64)
	LearningRate float64 // default 1e-3 for adam, 0.05 for sgd
	LRDecay      float64 // multiplies the learning rate after every epoch; 0 (or 1) keeps it constant
	Optimizer    string  // "adam" (default) or "sgd" (with Momentum)
	Momentum     float64 // sgd momentum (default 0.9)
	WeightDecay  float64 // L2 on weights (decoupled for adam); biases are not decayed
	Loss         string  // default cross-entropy for a softmax head, mse for a linear one
	// SoftWeight mixes soft targets and hard labels under cross-entropy when both are given:
	// loss = SoftWeight·CE(soft) + (1-SoftWeight)·CE(hard). Zero means soft targets only when
	// targets are present.
	SoftWeight float64
	// Temperature T > 0 turns the soft term into knowledge distillation (Hinton et al., 2015).
	// Contract: Samples.Targets must then hold the teacher's probabilities at that same
	// temperature, softmax(teacher_logits/T), each row summing to 1; the soft term compares them
	// with the student's softmax(student_logits/T) and is multiplied by T², so its gradient keeps
	// the magnitude of a T = 1 loss: loss = SoftWeight·T²·CE(soft, softmax(z/T)) +
	// (1-SoftWeight)·CE(hard, softmax(z)). Hard labels, accuracy and the validation loss always use
	// T = 1, as does the network at inference. Zero (the default) leaves the soft term as it is
	// without a temperature; T = 1 computes the same loss. Ignored without soft targets.
	Temperature float64
	// Patience stops training after this many epochs without a better validation loss, and
	// restores the best weights. Zero trains every epoch (and still restores the best weights
	// when a validation set is given).
	Patience int
	// ProxMu adds FedProx's proximal term μ/2·‖w − ProxCenter‖² to the loss, keeping a
	// participant's local training near the round's global model. Zero: off.
	ProxMu     float64
	ProxCenter []float64 // parameters as Params returns them; required when ProxMu > 0
	// DP, when set, trains with DP-SGD: every row's gradient clipped and noised (see DPSGD).
	DP       *DPSGD
	Seed     uint64           // shuffling order
	Progress func(EpochStats) // called after each epoch
}

// EpochStats reports one epoch.
type EpochStats struct {
	Epoch     int           `json:"epoch"`
	Epochs    int           `json:"epochs"`
	TrainLoss float64       `json:"train_loss"`
	TrainAcc  float64       `json:"train_accuracy,omitempty"`
	ValLoss   float64       `json:"val_loss,omitempty"`
	ValAcc    float64       `json:"val_accuracy,omitempty"`
	Elapsed   time.Duration `json:"elapsed_ns"`
	Best      bool          `json:"best"`
}

// TrainResult summarises a Train run.
type TrainResult struct {
	Epochs       []EpochStats
	BestEpoch    int
	StoppedEarly bool
	Samples      int // rows processed in total (for throughput)
	Duration     time.Duration
}

func (c *TrainConfig) defaults(n *Network) error {
	if c.BatchSize <= 0 {
		c.BatchSize = 64
	}
	if c.Optimizer == "" {
		c.Optimizer = "adam"
	}
	if c.Optimizer != "adam" && c.Optimizer != "sgd" {
		return fmt.Errorf("unknown optimizer %q (want adam or sgd)", c.Optimizer)
	}
	if c.LearningRate <= 0 {
		c.LearningRate = 1e-3
		if c.Optimizer == "sgd" {
			c.LearningRate = 0.05
		}
	}
	if c.Optimizer == "sgd" && c.Momentum == 0 {
		c.Momentum = 0.9
	}
	if c.Loss == "" {
		c.Loss = LossCrossEntropy
		if n.Arch.Output == OutputLinear {
			c.Loss = LossMSE
		}
	}
	switch {
	case c.Loss == LossCrossEntropy && n.Arch.Output != OutputSoftmax:
		return fmt.Errorf("cross-entropy needs a softmax head")
	case c.Loss != LossCrossEntropy && c.Loss != LossMSE:
		return fmt.Errorf("unknown loss %q (want cross-entropy or mse)", c.Loss)
	}
	if c.Epochs < 0 || c.WeightDecay < 0 || c.Patience < 0 || c.SoftWeight < 0 || c.SoftWeight > 1 {
		return fmt.Errorf("epochs, weight decay and patience must not be negative, soft weight must be in [0,1]")
	}
	if !(c.LRDecay >= 0 && c.LRDecay <= 1) {
		return fmt.Errorf("learning-rate decay %g must be in [0, 1]", c.LRDecay)
	}
	if c.DP != nil {
		if err := c.DP.check(); err != nil {
			return err
		}
		if c.Temperature > 0 || c.Loss != LossCrossEntropy {
			return fmt.Errorf("DP-SGD trains with plain cross-entropy only")
		}
	}
	if c.Temperature < 0 || math.IsNaN(c.Temperature) || math.IsInf(c.Temperature, 0) {
		return fmt.Errorf("temperature %g must be a finite number ≥ 0", c.Temperature)
	}
	return nil
}

// Train fits the network to train, evaluating on val (which may be empty) after each epoch. The
// result is deterministic for a seed: the same data, config and initial weights give the same
// weights bit for bit. On return the weights are rounded to float32, the precision they are
// stored in, so an evaluation of the returned network is what any loader of it will see.
func Train(ctx context.Context, n *Network, train, val Samples, cfg TrainConfig) (*TrainResult, error) {
	if err := cfg.defaults(n); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	if err := train.check(n); err != nil {
		return nil, fmt.Errorf("train: training %w", err)
	}
	if val.Len() > 0 {
		if err := val.check(n); err != nil {
			return nil, fmt.Errorf("train: validation %w", err)
		}
	}
	if cfg.Loss == LossCrossEntropy && train.Labels == nil && train.Targets == nil {
		return nil, fmt.Errorf("train: cross-entropy needs labels or soft targets")
	}
	if cfg.Loss == LossMSE && train.Targets == nil {
		return nil, fmt.Errorf("train: mse needs target vectors")
	}
	rows := train.Len()
	if rows == 0 && cfg.Epochs > 0 {
		return nil, fmt.Errorf("train: no training rows")
	}
	start := time.Now()
	res := &TrainResult{}
	if cfg.Epochs == 0 {
		n.roundToFloat32()
		return res, nil
	}
	bs := min(cfg.BatchSize, rows)
	ws := newWorkspace(n, bs)
	ws.ensureGrads(n)
	grads := n.zeroLike()
	opt := newOptimizer(n, cfg)
	rng := rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x5851f42d4c957f2d))
	perm := make([]int, rows)
	for i := range perm {
		perm[i] = i
	}
	xb := make([]float64, bs*n.Arch.Input)
	var example, sum *Network // DP-SGD: one row's gradient and the step's clipped sum
	var best *Network
	bestLoss := math.Inf(1)
	sinceBest := 0
	for epoch := 1; epoch <= cfg.Epochs; epoch++ {
		t0 := time.Now()
		var lossSum float64
		var correct int
		if cfg.DP != nil {
			if example == nil {
				example, sum = n.zeroLike(), n.zeroLike()
			}
			l, c, seen, err := n.dpEpoch(ctx, ws, grads, example, sum, opt, cfg, train, xb)
			if err != nil {
				return nil, fmt.Errorf("train: epoch %d: %w", epoch, err)
			}
			lossSum, correct = l, c
			res.Samples += seen
		}
		if cfg.DP == nil {
			rng.Shuffle(rows, func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
		}
		for off := 0; off < rows && cfg.DP == nil; off += bs {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("train: epoch %d: %w", epoch, err)
			}
			idx := perm[off:min(off+bs, rows)]
			b := len(idx)
			gatherRows(xb, train.X, train.Dim, idx)
			logits := n.forward(ws, xb[:b*n.Arch.Input], b)
			dlogits := ws.acts[len(ws.acts)-1].dz[:b*n.OutputDim()]
			l, c := lossGrad(cfg, n.OutputDim(), logits, dlogits, train, idx)
			lossSum += l * float64(b)
			correct += c
			n.backward(ws, b, grads)
			if cfg.ProxMu > 0 {
				addProximal(n, grads, cfg.ProxMu, cfg.ProxCenter)
			}
			opt.step(n, grads)
			res.Samples += b
		}
		st := EpochStats{Epoch: epoch, Epochs: cfg.Epochs, TrainLoss: lossSum / float64(rows)}
		if train.Labels != nil {
			st.TrainAcc = float64(correct) / float64(rows)
		}
		improved := true
		if val.Len() > 0 {
			ev, err := Evaluate(n, val, cfg.Loss)
			if err != nil {
				return nil, fmt.Errorf("train: epoch %d: %w", epoch, err)
			}
			st.ValLoss, st.ValAcc = ev.Loss, ev.Accuracy
			improved = ev.Loss < bestLoss
			if improved {
				bestLoss, best, res.BestEpoch, sinceBest = ev.Loss, n.Clone(), epoch, 0
			} else {
				sinceBest++
			}
		} else {
			res.BestEpoch = epoch
		}
		st.Best = improved
		st.Elapsed = time.Since(t0)
		res.Epochs = append(res.Epochs, st)
		if cfg.Progress != nil {
			cfg.Progress(st)
		}
		if cfg.LRDecay > 0 {
			opt.scaleLR(cfg.LRDecay)
		}
		if cfg.Patience > 0 && sinceBest >= cfg.Patience {
			res.StoppedEarly = true
			break
		}
	}
	if best != nil {
		n.copyParamsFrom(best)
	}
	n.roundToFloat32()
	res.Duration = time.Since(start)
	return res, nil
}

// addProximal adds the gradient of μ/2·‖w − center‖², μ(w − center), to grads.
func addProximal(n, grads *Network, mu float64, center []float64) {
	off := 0
	gs := grads.params()
	for k, p := range n.params() {
		g := gs[k].data
		for i, w := range p.data {
			g[i] += mu * (w - center[off+i])
		}
		off += len(p.data)
	}
}

func gatherRows(dst []float64, x []float32, dim int, idx []int) {
	for r, i := range idx {
		src := x[i*dim : (i+1)*dim]
		d := dst[r*dim : (r+1)*dim]
		for j, v := range src {
			d[j] = float64(v)
		}
	}
}

// lossGrad computes the mean loss over the batch rows idx and writes its gradient with respect to
// the logits into dlogits. It returns the loss and the number of correctly classified rows.
func lossGrad(cfg TrainConfig, outDim int, logits, dlogits []float64, s Samples, idx []int) (float64, int) {
	b := len(idx)
	inv := 1 / float64(b)
	var loss float64
	correct := 0
	if cfg.Loss == LossMSE {
		for r, i := range idx {
			t := s.Targets[i*outDim : (i+1)*outDim]
			for j := 0; j < outDim; j++ {
				d := logits[r*outDim+j] - float64(t[j])
				loss += d * d / float64(outDim)
				dlogits[r*outDim+j] = 2 * d * inv / float64(outDim)
			}
		}
		return loss * inv, 0
	}
	hardW, softW := 1.0, 0.0
	if s.Targets != nil {
		hardW, softW = 0, 1
		if s.Labels != nil && cfg.SoftWeight > 0 {
			hardW, softW = 1-cfg.SoftWeight, cfg.SoftWeight
		}
	}
	if cfg.Temperature > 0 && softW > 0 {
		return temperedLossGrad(cfg.Temperature, hardW, softW, outDim, logits, dlogits, s, idx)
	}
	copy(dlogits, logits[:b*outDim])
	softmaxRows(dlogits, b, outDim)
	tbuf := make([]float64, outDim)
	for r, i := range idx {
		p := dlogits[r*outDim : (r+1)*outDim]
		if s.Labels != nil && argmax(p) == s.Labels[i] {
			correct++
		}
		// The gradient of -Σ t·log p with respect to the logits is p·Σt - t, where the target t
		// mixes soft and hard labels (Σt = 1 when the soft targets are a distribution).
		var tsum float64
		t := tbuf[:outDim]
		for j := range t {
			t[j] = 0
			if softW > 0 {
				t[j] += softW * float64(s.Targets[i*outDim+j])
			}
			if hardW > 0 && j == s.Labels[i] {
				t[j] += hardW
			}
			tsum += t[j]
			if t[j] > 0 {
				loss -= t[j] * math.Log(max(p[j], 1e-12))
			}
		}
		for j := range p {
			p[j] = (p[j]*tsum - t[j]) * inv
		}
	}
	return loss * inv, correct
}

// temperedLossGrad is lossGrad's cross-entropy with a distillation temperature T: per row,
// softW·T²·CE(t, softmax(z/T)) + hardW·CE(y, softmax(z)). Its gradient with respect to the
// logits z is softW·T·(q_T·Σt − t) + hardW·(p − onehot(y)), with q_T = softmax(z/T) and
// p = softmax(z).
func temperedLossGrad(temp, hardW, softW float64, outDim int, logits, dlogits []float64, s Samples, idx []int) (float64, int) {
	inv := 1 / float64(len(idx))
	var loss float64
	correct := 0
	q := make([]float64, outDim)
	for r, i := range idx {
		z := logits[r*outDim : (r+1)*outDim]
		p := dlogits[r*outDim : (r+1)*outDim]
		copy(p, z)
		softmaxRows(p, 1, outDim)
		for j, v := range z {
			q[j] = v / temp
		}
		softmaxRows(q, 1, outDim)
		if s.Labels != nil && argmax(p) == s.Labels[i] {
			correct++
		}
		t := s.Targets[i*outDim : (i+1)*outDim]
		var tsum float64
		for j := range t {
			tj := float64(t[j])
			tsum += tj
			if tj > 0 {
				loss -= softW * temp * temp * tj * math.Log(max(q[j], 1e-12))
			}
		}
		if hardW > 0 {
			loss -= hardW * math.Log(max(p[s.Labels[i]], 1e-12))
		}
		for j := range p {
			g := softW * temp * (q[j]*tsum - float64(t[j]))
			if hardW > 0 {
				g += hardW * p[j]
				if j == s.Labels[i] {
					g -= hardW
				}
			}
			p[j] = g * inv
		}
	}
	return loss * inv, correct
}

func argmax(v []float64) int {
	best := 0
	for j, x := range v {
		if x > v[best] {
			best = j
		}
	}
	return best
}

func (n *Network) copyParamsFrom(src *Network) {
	dst, sp := n.params(), src.params()
	for i := range dst {
		copy(dst[i].data, sp[i].data)
	}
}
