package analyze

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strings"

	"github.com/meshnode/meshnode/distill/checkpoint"
	"github.com/meshnode/meshnode/experts/safetensors"
)

// routingInputs supplies the router inputs of each MoE layer with the domain of every token.
type routingInputs interface {
	description() string
	approximate() bool
	domains() []string
	tokenDomains() []int
	// sameForAllLayers reports whether every layer sees the same inputs.
	sameForAllLayers() bool
	forLayer(ctx context.Context, l int) (checkpoint.Matrix, error)
	close() error
}

// Calibration is a file of captured router inputs:
//
//	hidden_states            F32/F16/BF16 [N, hidden]  inputs used for every MoE layer, and/or
//	layers.{L}.hidden_states F32/F16/BF16 [N, hidden]  inputs of layer L (preferred when present)
//	domain_ids               I32/I64/I16/I8/U8 [N]     optional domain of each token
//	__metadata__.domains     "name0,name1,..."          domain names in id order
//
// The inputs are what the router sees: the post_attention_layernorm outputs.
type Calibration struct {
	path   string
	f      *os.File
	header *safetensors.Header
	n      int
	names  []string
	ids    []int
}

// OpenCalibration opens and validates a calibration file for a model of the given hidden size.
func OpenCalibration(path string, hidden int) (c *Calibration, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("calibration: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("calibration: %w", err)
	}
	h, err := safetensors.ReadHeader(f, st.Size())
	if err != nil {
		return nil, fmt.Errorf("calibration %s: %w", path, err)
	}
	c = &Calibration{path: path, f: f, header: h, n: -1}
	for _, t := range h.Tensors {
		if t.Name != "hidden_states" && !(strings.HasPrefix(t.Name, "layers.") && strings.HasSuffix(t.Name, ".hidden_states")) {
			continue
		}
		if len(t.Shape) != 2 || t.Shape[1] != int64(hidden) || !t.DType.IsFloat() {
			return nil, fmt.Errorf("calibration %s: tensor %q is %s %v; want a float [tokens, %d] matrix (hidden_size)",
				path, t.Name, t.DType, t.Shape, hidden)
		}
		if c.n >= 0 && int64(c.n) != t.Shape[0] {
			return nil, fmt.Errorf("calibration %s: tensor %q has %d tokens, another input tensor %d", path, t.Name, t.Shape[0], c.n)
		}
		c.n = int(t.Shape[0])
	}
	if c.n < 0 {
		return nil, fmt.Errorf(`calibration %s: no "hidden_states" or "layers.{L}.hidden_states" tensor`, path)
	}
	if c.n == 0 {
		return nil, fmt.Errorf("calibration %s: the input tensors hold no tokens", path)
	}
	if md := h.Metadata["domains"]; md != "" {
		c.names = strings.Split(md, ",")
	}
	if err := c.readIDs(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Calibration) readIDs() error {
	t, ok := c.header.Tensor("domain_ids")
	if !ok {
		c.ids = make([]int, c.n)
		if len(c.names) == 0 {
			c.names = []string{"all"}
		}
		if len(c.names) != 1 {
			return fmt.Errorf("calibration %s: %d domain names but no domain_ids tensor", c.path, len(c.names))
		}
		return nil
	}
	size, _ := t.DType.Size()
	if len(t.Shape) != 1 || t.Shape[0] != int64(c.n) {
		return fmt.Errorf("calibration %s: tensor \"domain_ids\" has shape %v; want [%d]", c.path, t.Shape, c.n)
	}
	raw := make([]byte, t.End-t.Begin)
	if _, err := c.f.ReadAt(raw, c.header.DataOffset+t.Begin); err != nil {
		return fmt.Errorf("calibration %s: reading tensor \"domain_ids\": %w", c.path, err)
	}
	c.ids = make([]int, c.n)
	maxID := 0
	for i := range c.ids {
		var v int64
		switch t.DType {
		case safetensors.I32:
			v = int64(int32(binary.LittleEndian.Uint32(raw[i*size:])))
		case safetensors.I64:
			v = int64(binary.LittleEndian.Uint64(raw[i*size:]))
		case safetensors.I16:
			v = int64(int16(binary.LittleEndian.Uint16(raw[i*size:])))
		case safetensors.I8:
			v = int64(int8(raw[i]))
		case safetensors.U8:
			v = int64(raw[i])
		default:
			return fmt.Errorf("calibration %s: tensor \"domain_ids\" has dtype %s; want an integer type", c.path, t.DType)
		}
		if v < 0 || v >= 1<<16 {
			return fmt.Errorf("calibration %s: tensor \"domain_ids\" holds id %d at token %d", c.path, v, i)
		}
		c.ids[i] = int(v)
		maxID = max(maxID, int(v))
	}
	if len(c.names) == 0 {
		for d := 0; d <= maxID; d++ {
			c.names = append(c.names, fmt.Sprintf("domain_%d", d))
		}
	}
	if maxID >= len(c.names) {
		return fmt.Errorf("calibration %s: tensor \"domain_ids\" holds id %d but the metadata names %d domains", c.path, maxID, len(c.names))
	}
	return nil
}

func (c *Calibration) description() string {
	return fmt.Sprintf("calibration file %s: %d captured router inputs", c.path, c.n)
}
func (c *Calibration) approximate() bool   { return false }
func (c *Calibration) domains() []string   { return c.names }
func (c *Calibration) tokenDomains() []int { return c.ids }
func (c *Calibration) close() error        { return c.f.Close() }

func (c *Calibration) sameForAllLayers() bool {
	for _, t := range c.header.Tensors {
		if strings.HasPrefix(t.Name, "layers.") {
			return false
		}
	}
	return true
}

func (c *Calibration) forLayer(ctx context.Context, l int) (checkpoint.Matrix, error) {
	if err := ctx.Err(); err != nil {
		return checkpoint.Matrix{}, err
	}
	name := fmt.Sprintf("layers.%d.hidden_states", l)
	if _, ok := c.header.Tensor(name); !ok {
		name = "hidden_states"
		if _, ok := c.header.Tensor(name); !ok {
			return checkpoint.Matrix{}, fmt.Errorf("calibration %s: no inputs for layer %d (neither layers.%d.hidden_states nor hidden_states)", c.path, l, l)
		}
	}
	t, err := c.header.ReadTensor(c.f, name)
	if err != nil {
		return checkpoint.Matrix{}, fmt.Errorf("calibration %s: %w", c.path, err)
	}
	return checkpoint.Matrix{Rows: t.Shape[0], Cols: t.Shape[1], Data: t.Data}, nil
}

// embeddingInputs approximates router inputs by token embeddings when no
// calibration data was captured.
type embeddingInputs struct {
	ck     *checkpoint.Checkpoint
	tokens []int
	rows   checkpoint.Matrix
}

func newEmbeddingInputs(ctx context.Context, ck *checkpoint.Checkpoint, n int, seed uint64) (*embeddingInputs, error) {
	info, ok := ck.Info(checkpoint.EmbeddingTensor)
	if !ok || len(info.Shape) != 2 {
		return nil, fmt.Errorf("no calibration file and no %s to approximate router inputs with", checkpoint.EmbeddingTensor)
	}
	vocab := int(info.Shape[0])
	if vocab < 1 || info.Shape[1] < 1 {
		return nil, fmt.Errorf("tensor %q in %s has shape %v: no token embeddings to approximate router inputs with", checkpoint.EmbeddingTensor, info.File, info.Shape)
	}
	n = min(n, vocab)
	rng := rand.New(rand.NewPCG(seed, 0x656d626564)) // "embed"
	// Floyd's algorithm: n distinct token ids without a vocab-sized permutation.
	chosen := map[int]bool{}
	var tokens []int
	for j := vocab - n; j < vocab; j++ {
		t := rng.IntN(j + 1)
		if chosen[t] {
			t = j
		}
		chosen[t] = true
		tokens = append(tokens, t)
	}
	rows, err := ck.ReadRows(ctx, checkpoint.EmbeddingTensor, tokens)
	if err != nil {
		return nil, err
	}
	return &embeddingInputs{ck: ck, tokens: tokens, rows: rows}, nil
}

func (e *embeddingInputs) description() string {
	return fmt.Sprintf("APPROXIMATION — no calibration file: the embeddings of %d seeded random token ids, "+
		"RMS-normalised with each layer's post_attention_layernorm, stand in for router inputs. Real router inputs "+
		"carry context mixed in by the attention layers, so these frequencies only indicate how the routers "+
		"treat raw tokens; there are no domains", len(e.tokens))
}
func (e *embeddingInputs) approximate() bool      { return true }
func (e *embeddingInputs) domains() []string      { return []string{"all"} }
func (e *embeddingInputs) tokenDomains() []int    { return make([]int, len(e.tokens)) }
func (e *embeddingInputs) sameForAllLayers() bool { return false }
func (e *embeddingInputs) close() error           { return nil }

func (e *embeddingInputs) forLayer(ctx context.Context, l int) (checkpoint.Matrix, error) {
	x := checkpoint.Matrix{Rows: e.rows.Rows, Cols: e.rows.Cols, Data: append([]float32(nil), e.rows.Data...)}
	var gain []float32
	if _, ok := e.ck.Info(checkpoint.PostAttentionNormTensor(l)); ok {
		g, err := e.ck.Read(ctx, checkpoint.PostAttentionNormTensor(l))
		if err != nil {
			return checkpoint.Matrix{}, err
		}
		if len(g.Data) == x.Cols {
			gain = g.Data
		}
	}
	eps := e.ck.Config.RMSNormEps
	if eps <= 0 {
		eps = 1e-6
	}
	for i := range x.Rows {
		row := x.Row(i)
		var ss float64
		for _, v := range row {
			ss += float64(v) * float64(v)
		}
		inv := float32(1 / math.Sqrt(ss/float64(len(row))+eps))
		for j := range row {
			row[j] *= inv
			if gain != nil {
				row[j] *= gain[j]
			}
		}
	}
	return x, nil
}
