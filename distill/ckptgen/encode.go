package ckptgen

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"strings"

	"github.com/meshnode/meshnode/distill/checkpoint"
	"github.com/meshnode/meshnode/experts/safetensors"
)

// quantizeFP8 quantises a rows × cols matrix to E4M3FN in blocks of br × bc
// the way DeepSeek-V3's release was made: each block's scale is its largest
// magnitude / 448 (1 for an all-zero block), values are divided by it and
// rounded to the nearest E4M3 value. It returns the codes and the
// per-block scales (the "_scale_inv" tensor: real ≈ fp8 × scale).
func quantizeFP8(v []float32, rows, cols, br, bc int) ([]byte, []float32) {
	nbr, nbc := (rows+br-1)/br, (cols+bc-1)/bc
	codes := make([]byte, len(v))
	scales := make([]float32, nbr*nbc)
	for bi := range nbr {
		for bj := range nbc {
			var amax float32
			for i := bi * br; i < min((bi+1)*br, rows); i++ {
				for _, x := range v[i*cols+bj*bc : i*cols+min((bj+1)*bc, cols)] {
					amax = max(amax, float32(math.Abs(float64(x))))
				}
			}
			s := amax / checkpoint.MaxE4M3
			if s == 0 {
				s = 1
			}
			scales[bi*nbc+bj] = s
			for i := bi * br; i < min((bi+1)*br, rows); i++ {
				for j := bj * bc; j < min((bj+1)*bc, cols); j++ {
					codes[i*cols+j] = checkpoint.Float32ToE4M3(v[i*cols+j] / s)
				}
			}
		}
	}
	return codes, scales
}

// encodeFloats encodes v little-endian as dtype dt (F32, F16 or BF16, rounding to nearest even).
func encodeFloats(v []float32, dt safetensors.DType) ([]byte, error) {
	switch dt {
	case safetensors.F32:
		b := make([]byte, 4*len(v))
		for i, x := range v {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
		}
		return b, nil
	case safetensors.BF16:
		b := make([]byte, 2*len(v))
		for i, x := range v {
			binary.LittleEndian.PutUint16(b[2*i:], safetensors.Float32ToBFloat16(x))
		}
		return b, nil
	case safetensors.F16:
		b := make([]byte, 2*len(v))
		for i, x := range v {
			binary.LittleEndian.PutUint16(b[2*i:], safetensors.Float32ToFloat16(x))
		}
		return b, nil
	}
	return nil, fmt.Errorf("cannot encode float values as %s", dt)
}

// nameRNG returns a generator seeded by seed and a tensor name, so a
// tensor's random content does not depend on the order tensors are made in.
func nameRNG(seed uint64, name string) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(name))
	return rand.New(rand.NewPCG(seed, h.Sum64()))
}

// gaussian returns n values drawn from N(0, std²).
func gaussian(rng *rand.Rand, n int, std float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64() * std)
	}
	return v
}

// valueSource stores generated float tensors by name and encodes them in
// the dtype the plan asks for; tensors it does not store are filled with
// seeded noise (attention, embeddings and other parts the analysis does not
// plant structure in). FP8 weights are quantised with block scales, which
// are served when the plan asks for the "_scale_inv" tensor.
type valueSource struct {
	seed     uint64
	br, bc   int
	values   map[string][]float32
	plan     map[string]tensorPlan
	noiseStd func(t tensorPlan) float64
	scales   map[string][]float32 // weight name → block scales, kept until served
}

func newValueSource(seed uint64, br, bc int, plan []tensorPlan, noiseStd func(tensorPlan) float64) *valueSource {
	s := &valueSource{seed: seed, br: br, bc: bc, values: map[string][]float32{}, plan: map[string]tensorPlan{},
		noiseStd: noiseStd, scales: map[string][]float32{}}
	for _, t := range plan {
		s.plan[t.Name] = t
	}
	return s
}

func (s *valueSource) floats(t tensorPlan) []float32 {
	if v, ok := s.values[t.Name]; ok {
		return v
	}
	return gaussian(nameRNG(s.seed, t.Name), int(t.elements()), s.noiseStd(t))
}

func (s *valueSource) quantize(t tensorPlan) ([]byte, []float32) {
	return quantizeFP8(s.floats(t), int(t.Shape[0]), int(t.Shape[1]), s.br, s.bc)
}

// content implements contentFunc.
func (s *valueSource) content(t tensorPlan) ([]byte, error) {
	if t.DType == safetensors.F8E4M3 {
		codes, scales := s.quantize(t)
		s.scales[t.Name] = scales
		return codes, nil
	}
	if w, ok := strings.CutSuffix(t.Name, checkpoint.ScaleSuffix); ok {
		if wt, ok := s.plan[w]; ok && wt.DType == safetensors.F8E4M3 {
			scales, ok := s.scales[w]
			if !ok {
				_, scales = s.quantize(wt)
			}
			delete(s.scales, w)
			return encodeFloats(scales, t.DType)
		}
	}
	return encodeFloats(s.floats(t), t.DType)
}
