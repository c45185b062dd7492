package kd

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strings"

	"github.com/meshnode/meshnode/experts/safetensors"
)

// ProbeOptions say where a vector teacher's probe inputs come from.
type ProbeOptions struct {
	// Calibration is a calibration file in distill/analyze's format (hidden_states or
	// layers.{L}.hidden_states [N, hidden], optional domain_ids and metadata "domains").
	// Empty: Gaussian probes matched to the checkpoint's input scale.
	Calibration string
	// Domain restricts calibration rows to that domain's tokens when the file names it.
	Domain string
	// Train is the number of training probes (default 8192); Test the number of held-out
	// Gaussian probes (default 1024; calibration probes hold out a quarter of the real rows).
	Train, Test int
	Seed        uint64
}

// Probes are the inputs a vector teacher is distilled and measured on.
type Probes struct {
	Dim         int
	Train, Test []float32 // rows × Dim
	// Source says where they came from, for the report.
	Source string
}

// TrainRows and TestRows count the probes.
func (p *Probes) TrainRows() int { return len(p.Train) / p.Dim }
func (p *Probes) TestRows() int  { return len(p.Test) / p.Dim }

// minCalibrationRows is the fewest calibration rows that can be split into fit and held-out.
const minCalibrationRows = 8

// Probes draws the inputs to distil the expert on.
//
// With a calibration file: the rows of the layer (of o.Domain when the file names it) are
// shuffled; a quarter are held out as the test probes — real activations never used for
// fitting — and the training probes are the other rows plus draws from a distribution matched
// to them: their mean and covariance, shrunk towards its diagonal (see matchedRows).
//
// Without one: x_i = g_i·z_i with z ~ N(0,1), g the layer's post_attention_layernorm weight
// (ones when absent) — the scale of an RMS-normalised router and expert input — for both
// sets, drawn independently.
func (t *MoETeacher) Probes(ctx context.Context, o ProbeOptions) (*Probes, error) {
	if o.Train <= 0 {
		o.Train = 8192
	}
	if o.Test <= 0 {
		o.Test = 1024
	}
	dim := t.net.InputDim()
	rng := rand.New(rand.NewPCG(o.Seed, 0x70726f6265)) // "probe"
	if o.Calibration == "" {
		gain := make([]float64, dim)
		for i := range gain {
			gain[i] = 1
			if t.NormGain != nil {
				gain[i] = float64(t.NormGain[i])
			}
		}
		p := &Probes{Dim: dim, Train: gaussianRows(rng, o.Train, gain), Test: gaussianRows(rng, o.Test, gain)}
		p.Source = fmt.Sprintf("Gaussian probes matched to the checkpoint's input scale: x_i = g_i·N(0,1) with g the "+
			"post_attention_layernorm weight of layer %d%s (no calibration file); %d training and %d independent held-out probes",
			t.Layer, map[bool]string{true: "", false: " (absent: g = 1)"}[t.NormGain != nil], o.Train, o.Test)
		return p, ctx.Err()
	}
	rows, desc, err := readCalibration(o.Calibration, t.Layer, dim, o.Domain)
	if err != nil {
		return nil, err
	}
	n := len(rows) / dim
	if n < minCalibrationRows {
		return nil, fmt.Errorf("calibration %s: %d rows%s; need at least %d to hold some out", o.Calibration, n, desc, minCalibrationRows)
	}
	perm := rng.Perm(n)
	nt := n / 4
	p := &Probes{Dim: dim}
	for _, i := range perm[:nt] {
		p.Test = append(p.Test, rows[i*dim:(i+1)*dim]...)
	}
	fit := make([]float32, 0, (n-nt)*dim)
	for _, i := range perm[nt:] {
		fit = append(fit, rows[i*dim:(i+1)*dim]...)
	}
	p.Train = append(p.Train, fit...)
	p.Train = append(p.Train, matchedRows(rng, fit, dim, max(0, o.Train-(n-nt)))...)
	p.Source = fmt.Sprintf("calibration activations from %s%s: %d real rows held out as test probes; training on the "+
		"other %d rows plus %d draws matched to their mean and (shrunk) covariance", o.Calibration, desc, nt, n-nt, p.TrainRows()-(n-nt))
	return p, ctx.Err()
}

func gaussianRows(rng *rand.Rand, n int, gain []float64) []float32 {
	out := make([]float32, n*len(gain))
	for i := range out {
		out[i] = float32(rng.NormFloat64() * gain[i%len(gain)])
	}
	return out
}

// matchedRows draws n rows with the mean of the rows of fit and a shrunk version of their
// covariance, (1−λ)·C + λ·diag(C) with λ = dim/(dim+rows): a few rows span only a subspace, and
// a student that never saw inputs outside it would generalise badly to real ones. A draw is
// μ + √(1−λ)·Σₖ εₖ(x_{jₖ} − μ)/2 over four random rows, plus √λ·σ ⊙ z, with ε, z ~ N(0,1).
func matchedRows(rng *rand.Rand, fit []float32, dim, n int) []float32 {
	rows := len(fit) / dim
	mu, sd := make([]float64, dim), make([]float64, dim)
	for r := 0; r < rows; r++ {
		for i, v := range fit[r*dim : (r+1)*dim] {
			mu[i] += float64(v) / float64(rows)
		}
	}
	for r := 0; r < rows; r++ {
		for i, v := range fit[r*dim : (r+1)*dim] {
			d := float64(v) - mu[i]
			sd[i] += d * d / float64(rows)
		}
	}
	lambda := float64(dim) / float64(dim+rows)
	for i := range sd {
		sd[i] = math.Sqrt(sd[i] * lambda)
	}
	const k = 4
	keep := math.Sqrt((1 - lambda) / k)
	out := make([]float32, n*dim)
	acc := make([]float64, dim)
	for r := 0; r < n; r++ {
		copy(acc, mu)
		for range k {
			j := rng.IntN(rows)
			e := rng.NormFloat64() * keep
			for i, v := range fit[j*dim : (j+1)*dim] {
				acc[i] += e * (float64(v) - mu[i])
			}
		}
		for i, v := range acc {
			out[r*dim+i] = float32(v + sd[i]*rng.NormFloat64())
		}
	}
	return out
}

// readCalibration reads the router inputs of layer l (layers.{l}.hidden_states, else
// hidden_states) from a calibration file, keeping only domain's rows when the file names that
// domain. desc describes the selection for messages.
func readCalibration(path string, l, dim int, domain string) (rows []float32, desc string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, "", fmt.Errorf("calibration: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, "", fmt.Errorf("calibration: %w", err)
	}
	h, err := safetensors.ReadHeader(f, st.Size())
	if err != nil {
		return nil, "", fmt.Errorf("calibration %s: %w", path, err)
	}
	name := fmt.Sprintf("layers.%d.hidden_states", l)
	if _, ok := h.Tensor(name); !ok {
		name = "hidden_states"
	}
	t, err := h.ReadTensor(f, name)
	if err != nil {
		return nil, "", fmt.Errorf("calibration %s: %w", path, err)
	}
	if len(t.Shape) != 2 || t.Shape[1] != dim {
		return nil, "", fmt.Errorf("calibration %s: tensor %q has shape %v; the expert takes [tokens, %d]", path, name, t.Shape, dim)
	}
	names := strings.Split(h.Metadata["domains"], ",")
	want := -1
	for i, n := range names {
		if domain != "" && n == domain {
			want = i
		}
	}
	if want < 0 {
		return t.Data, "", nil
	}
	ids, err := readIDs(f, h, t.Shape[0])
	if err != nil {
		return nil, "", fmt.Errorf("calibration %s: %w", path, err)
	}
	for i, id := range ids {
		if id == want {
			rows = append(rows, t.Data[i*dim:(i+1)*dim]...)
		}
	}
	return rows, fmt.Sprintf(" (domain %s)", domain), nil
}

// readIDs reads the integer tensor domain_ids [n].
func readIDs(f *os.File, h *safetensors.Header, n int) ([]int, error) {
	ti, ok := h.Tensor("domain_ids")
	if !ok {
		return nil, fmt.Errorf(`the metadata names domains but there is no "domain_ids" tensor`)
	}
	size := map[safetensors.DType]int{safetensors.I32: 4, safetensors.I64: 8, safetensors.U8: 1}[ti.DType]
	if size == 0 || len(ti.Shape) != 1 || ti.Shape[0] != int64(n) || ti.End-ti.Begin != int64(n*size) {
		return nil, fmt.Errorf(`tensor "domain_ids" is %s %v; want I32, I64 or U8 [%d]`, ti.DType, ti.Shape, n)
	}
	raw := make([]byte, n*size)
	if _, err := f.ReadAt(raw, h.DataOffset+ti.Begin); err != nil {
		return nil, fmt.Errorf(`reading "domain_ids": %w`, err)
	}
	ids := make([]int, n)
	for i := range ids {
		switch size {
		case 4:
			ids[i] = int(int32(binary.LittleEndian.Uint32(raw[4*i:])))
		case 8:
			ids[i] = int(int64(binary.LittleEndian.Uint64(raw[8*i:])))
		default:
			ids[i] = int(raw[i])
		}
	}
	return ids, nil
}
