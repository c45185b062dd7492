package checkpoint

import (
	"fmt"

	"github.com/meshnode/meshnode/experts/safetensors"
)

// buildLayers derives the layer list from the config and checks that every
// tensor the analyzer relies on is present, of a usable dtype, with the
// shape the config implies; FP8 weights must come with block scales of the
// matching shape.
func (ck *Checkpoint) buildLayers() error {
	c := ck.Config
	h := int64(c.HiddenSize)
	if c.VocabSize > 0 {
		if err := ck.checkShape(EmbeddingTensor, false, "vocab_size × hidden_size", int64(c.VocabSize), h); err != nil {
			return err
		}
	}
	for l := range c.NumHiddenLayers {
		layer := Layer{Index: l, MoE: c.IsMoELayer(l)}
		if !layer.MoE && c.IntermediateSize > 0 {
			inter := int64(c.IntermediateSize)
			for p := Gate; p <= Down; p++ {
				rows, cols := inter, h
				if p == Down {
					rows, cols = h, inter
				}
				if err := ck.checkShape(c.DenseTensor(l, p), false, "intermediate_size × hidden_size", rows, cols); err != nil {
					return err
				}
			}
			ck.layers = append(ck.layers, layer)
			continue
		}
		if !layer.MoE {
			ck.layers = append(ck.layers, layer)
			continue
		}
		layer.Experts = c.Experts()
		layer.Shared = c.SharedExperts()
		what := fmt.Sprintf("layer %d router, %s × hidden_size", l, c.expertsField())
		if err := ck.checkShape(c.RouterTensor(l), true, what, int64(layer.Experts), h); err != nil {
			return err
		}
		if b := c.RouterBiasTensor(l); b != "" {
			if _, ok := ck.tensors[b]; ok {
				layer.RouterBias = true
				if err := ck.checkShape(b, true, c.expertsField(), int64(layer.Experts)); err != nil {
					return err
				}
			}
		}
		for e := range layer.Experts {
			for p := Gate; p <= Down; p++ {
				s := c.ExpertShape(p)
				what := fmt.Sprintf("layer %d expert %d %s projection, %s", l, e, p, shapeFields(c, p))
				if err := ck.checkShape(c.ExpertTensor(l, e, p), true, what, int64(s[0]), int64(s[1])); err != nil {
					return err
				}
			}
		}
		if layer.Shared > 0 {
			for p := Gate; p <= Down; p++ {
				s := c.SharedShape(p)
				what := fmt.Sprintf("layer %d shared expert %s projection", l, p)
				if err := ck.checkShape(c.SharedTensor(l, p), true, what, int64(s[0]), int64(s[1])); err != nil {
					return err
				}
			}
		}
		ck.layers = append(ck.layers, layer)
	}
	return ck.checkScales()
}

func shapeFields(c *Config, p Proj) string {
	inter := "moe_intermediate_size"
	if c.Family == Mixtral {
		inter = "intermediate_size"
	}
	if p == Down {
		return "hidden_size × " + inter
	}
	return inter + " × hidden_size"
}

// checkShape verifies tensor name's shape; a missing tensor is an error only when required.
func (ck *Checkpoint) checkShape(name string, required bool, what string, want ...int64) error {
	ref, ok := ck.tensors[name]
	if !ok {
		if !required {
			return nil
		}
		where := "no shard holds it"
		if ck.Index != nil {
			where = "it is not in " + IndexFile
		}
		return fmt.Errorf("tensor %q (%s) is missing: %s", name, what, where)
	}
	got := ref.info.Shape
	if !sameShape(got, want) {
		return fmt.Errorf("tensor %q in %s has shape %v, but config.json implies %v (%s)",
			name, ck.shards[ref.shard].name, got, want, what)
	}
	dt := ref.info.DType
	if !dt.IsFloat() && dt != safetensors.F8E4M3 {
		return fmt.Errorf("tensor %q in %s has dtype %s; the reader handles F32, F16, BF16, F64 and F8_E4M3",
			name, ck.shards[ref.shard].name, dt)
	}
	return nil
}

func sameShape(got, want []int64) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i] != want[i] {
			return false
		}
	}
	return true
}

// checkScales verifies that every FP8 tensor is a matrix with an F32 block
// scale tensor of shape ⌈rows/br⌉ × ⌈cols/bc⌉.
func (ck *Checkpoint) checkScales() error {
	br, bc := ck.Config.BlockSize()
	for name, ref := range ck.tensors {
		if ref.info.DType != safetensors.F8E4M3 {
			continue
		}
		file := ck.shards[ref.shard].name
		if len(ref.info.Shape) != 2 {
			return fmt.Errorf("tensor %q in %s: F8_E4M3 tensor has shape %v; block scales need a matrix", name, file, ref.info.Shape)
		}
		sref, ok := ck.tensors[name+ScaleSuffix]
		if !ok {
			return fmt.Errorf("tensor %q in %s: F8_E4M3 weight without its block scales %q", name, file, name+ScaleSuffix)
		}
		want := []int64{int64(blocks(int(ref.info.Shape[0]), br)), int64(blocks(int(ref.info.Shape[1]), bc))}
		if !sameShape(sref.info.Shape, want) {
			return fmt.Errorf("tensor %q in %s has shape %v, but a %v weight in %d×%d blocks (quantization_config.weight_block_size) needs %v",
				name+ScaleSuffix, ck.shards[sref.shard].name, sref.info.Shape, ref.info.Shape, br, bc, want)
		}
		if !sref.info.DType.IsFloat() {
			return fmt.Errorf("tensor %q in %s: block scales have dtype %s, want F32", name+ScaleSuffix, ck.shards[sref.shard].name, sref.info.DType)
		}
	}
	return nil
}
