package ckptgen

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/meshnode/meshnode/distill/checkpoint"
	"github.com/meshnode/meshnode/experts/safetensors"
)

func TestEmbeddedConfigIsThePublishedOne(t *testing.T) {
	shared, err := os.ReadFile("../../../shared/data/kimi-k2/config.json")
	if err != nil {
		t.Skipf("published config not available: %v", err)
	}
	var a, b any
	if err := json.Unmarshal(shared, &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(KimiK2Config(), &b); err != nil {
		t.Fatal(err)
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if !bytes.Equal(ja, jb) {
		t.Fatal("kimi_k2_config.json differs from ../shared/data/kimi-k2/config.json")
	}
}

func TestKimiK2StandIn(t *testing.T) {
	dir := t.TempDir()
	si, err := WriteStandIn(context.Background(), dir, KimiK2Config(), KimiK2Shards)
	if err != nil {
		t.Fatal(err)
	}
	if si.Shards != 61 {
		t.Fatalf("%d shards, want 61", si.Shards)
	}
	// 61 layers × 9 attention tensors and 5 of their scales (plus 3 norms),
	// 60 MoE layers × (384+1) experts × 3 projections × 2 (weight and scales) + router and bias,
	// the dense layer's 3 projections × 2, embeddings, final norm and lm_head.
	wantTensors := 61*(7+5+2) + 60*(385*6+2) + 6 + 3
	if si.Tensors != wantTensors {
		t.Errorf("%d tensors, want %d", si.Tensors, wantTensors)
	}
	ixData, err := os.ReadFile(filepath.Join(dir, checkpoint.IndexFile))
	if err != nil {
		t.Fatal(err)
	}
	ix, err := checkpoint.ParseIndex(ixData)
	if err != nil {
		t.Fatal(err)
	}
	if len(ix.WeightMap) != wantTensors || len(ix.Shards()) != 61 || ix.Shards()[0] != "model-1-of-61.safetensors" {
		t.Fatalf("index: %d tensors in %d shards", len(ix.WeightMap), len(ix.Shards()))
	}
	var apparent, onDisk, headerTensors int64
	for _, name := range ix.Shards() {
		path := filepath.Join(dir, name)
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		st, _ := f.Stat()
		h, err := safetensors.ReadHeader(f, st.Size())
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		headerTensors += int64(len(h.Tensors))
		apparent += st.Size()
		if sys, ok := st.Sys().(*syscall.Stat_t); ok {
			onDisk += sys.Blocks * 512
		}
	}
	if headerTensors != int64(wantTensors) || apparent != si.DeclaredBytes {
		t.Errorf("headers hold %d tensors in %d bytes; stand-in says %d bytes", headerTensors, apparent, si.DeclaredBytes)
	}
	// FP8 weights (1 byte each) dominate: about a terabyte of declared data.
	if apparent < 1_000_000_000_000 || apparent > 1_100_000_000_000 {
		t.Errorf("declared %d bytes, want about 1.03e12", apparent)
	}
	if ix.TotalSize <= 0 || ix.TotalSize > apparent {
		t.Errorf("index total_size %d of %d file bytes", ix.TotalSize, apparent)
	}
	t.Logf("stand-in: %d shards, %.1f GiB declared, %.1f MiB on disk", si.Shards, float64(apparent)/(1<<30), float64(onDisk)/(1<<20))
	if onDisk > 64<<20 {
		t.Errorf("stand-in uses %d bytes of disk; sparse files should use a few MB", onDisk)
	}
}

func TestWriteStandInErrors(t *testing.T) {
	tests := []struct{ name, config string }{
		{"not JSON", `nope`},
		{"no vocabulary", `{"model_type":"kimi_k2","hidden_size":8,"moe_intermediate_size":4,"num_hidden_layers":2,"n_routed_experts":4,"num_experts_per_tok":2}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := WriteStandIn(context.Background(), t.TempDir(), []byte(tc.config), 2); err == nil {
				t.Fatal("WriteStandIn succeeded")
			}
		})
	}
}
