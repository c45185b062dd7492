package ckptgen

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/meshnode/meshnode/distill/checkpoint"
)

// RandomOptions sizes a checkpoint of random weights in the Kimi-K2 layout
// (FP8 with 128×128 block scales), for benchmarks that need realistic
// volumes rather than planted structure.
type RandomOptions struct {
	Hidden, Inter, Experts, Layers, Shards int
	Seed                                   uint64
}

// Random writes a DeepSeek-V3/Kimi-K2-layout checkpoint of random weights
// into dir, generating one tensor at a time so memory stays small. It
// returns the total size of the shards.
func Random(ctx context.Context, dir string, o RandomOptions) (int64, error) {
	if o.Hidden < 1 || o.Inter < 1 || o.Experts < 2 || o.Layers < 2 || o.Shards < 1 {
		return 0, fmt.Errorf("random checkpoint: sizes must be positive with ≥ 2 experts and layers, got %+v", o)
	}
	cfgJSON, err := json.MarshalIndent(randomConfig(o), "", "  ")
	if err != nil {
		return 0, err
	}
	cfg, err := checkpoint.ParseConfig(cfgJSON)
	if err != nil {
		return 0, fmt.Errorf("random checkpoint: %w", err)
	}
	plan, err := planFor(cfg, true)
	if err != nil {
		return 0, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	if err := os.WriteFile(filepath.Join(dir, checkpoint.ConfigFile), append(cfgJSON, '\n'), 0o644); err != nil {
		return 0, err
	}
	br, bc := cfg.BlockSize()
	src := newValueSource(o.Seed, br, bc, plan, func(tensorPlan) float64 { return 0.02 })
	return writeCheckpoint(ctx, dir, plan, o.Shards, src.content)
}

func randomConfig(o RandomOptions) map[string]any {
	t := tinyConfig(TinyOptions{Family: checkpoint.DeepSeekV3, Hidden: o.Hidden, Inter: o.Inter, Experts: o.Experts,
		Layers: o.Layers, TopK: min(8, o.Experts), Block: [2]int{128, 128}})
	t["intermediate_size"] = 2 * o.Inter
	return t
}
