package checkpoint

import (
	"encoding/json"
	"path/filepath"
	"testing"
)

// The committed corpus under testdata/fuzz adds valid and broken indexes and configs.

func FuzzParseIndex(f *testing.F) {
	f.Add([]byte(`{"metadata":{"total_size":10},"weight_map":{"a":"model-1-of-1.safetensors"}}`))
	f.Add([]byte(`{"weight_map":{"a":"x","a":"y"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ix, err := ParseIndex(data)
		if err != nil {
			return
		}
		if len(ix.WeightMap) == 0 || ix.TotalSize < 0 {
			t.Fatalf("accepted an index with %d tensors and total %d", len(ix.WeightMap), ix.TotalSize)
		}
		for name, file := range ix.WeightMap {
			if name == "" || file != filepath.Base(file) || file == ".." || file == "." {
				t.Fatalf("accepted tensor %q in shard %q", name, file)
			}
		}
		// What was accepted survives a round trip.
		b, err := json.Marshal(map[string]any{"weight_map": ix.WeightMap, "metadata": map[string]int64{"total_size": ix.TotalSize}})
		if err != nil {
			t.Fatal(err)
		}
		ix2, err := ParseIndex(b)
		if err != nil || len(ix2.WeightMap) != len(ix.WeightMap) || ix2.TotalSize != ix.TotalSize {
			t.Fatalf("round trip: %v", err)
		}
	})
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(`{"model_type":"kimi_k2","hidden_size":8,"moe_intermediate_size":4,"num_hidden_layers":2,"n_routed_experts":4,"num_experts_per_tok":2,"first_k_dense_replace":1}`))
	f.Add([]byte(`{"model_type":"mixtral","hidden_size":8,"intermediate_size":16,"num_hidden_layers":2,"num_local_experts":4}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data)
		if err != nil {
			return
		}
		if c.Experts() < 1 || c.TopK() < 1 || c.TopK() > c.Experts() || c.HiddenSize < 1 || c.ExpertIntermediate() < 1 {
			t.Fatalf("accepted an unusable config: %+v", c)
		}
		for l := range c.NumHiddenLayers {
			_ = c.IsMoELayer(l)
		}
		for p := Gate; p <= Down; p++ {
			if s := c.ExpertShape(p); s[0] < 1 || s[1] < 1 {
				t.Fatalf("expert shape %v", s)
			}
		}
		if br, bc := c.BlockSize(); br < 1 || bc < 1 {
			t.Fatalf("block size %d×%d", br, bc)
		}
	})
}
