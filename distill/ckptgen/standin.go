package ckptgen

import (
	"context"
	_ "embed"
	"fmt"
	"os"
	"path/filepath"

	"github.com/meshnode/meshnode/distill/checkpoint"
)

// KimiK2Shards is the number of shards of the Kimi-K2-Instruct release.
const KimiK2Shards = 61

// StandIn describes a generated header-complete checkpoint.
type StandIn struct {
	Dir           string `json:"dir"`
	Shards        int    `json:"shards"`
	Tensors       int    `json:"tensors"`
	DeclaredBytes int64  `json:"declared_bytes"` // the shards' apparent sizes
}

// WriteStandIn writes a header-complete stand-in of the checkpoint that
// configJSON (a Hugging Face config.json, e.g. Kimi-K2's) describes: every
// tensor of the real layout, FP8 weights with block scales when the config
// has a quantization_config, in shards whose headers are real and whose
// files have their full declared size but hold no data — sparse files that
// cost almost no disk — plus the index and the config itself. Reading
// tensor data from it yields zeros; it exists to exercise header-only work
// (quick analysis, layout checks) at full scale.
func WriteStandIn(ctx context.Context, dir string, configJSON []byte, shards int) (*StandIn, error) {
	cfg, err := checkpoint.ParseConfig(configJSON)
	if err != nil {
		return nil, fmt.Errorf("stand-in: %w", err)
	}
	fp8 := cfg.QuantizationConfig != nil && cfg.QuantizationConfig.QuantMethod == "fp8"
	plan, err := planFor(cfg, fp8)
	if err != nil {
		return nil, fmt.Errorf("stand-in: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("stand-in: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, checkpoint.ConfigFile), configJSON, 0o644); err != nil {
		return nil, fmt.Errorf("stand-in: %w", err)
	}
	size, err := writeCheckpoint(ctx, dir, plan, shards, nil)
	if err != nil {
		return nil, fmt.Errorf("stand-in: %w", err)
	}
	return &StandIn{Dir: dir, Shards: len(splitShards(plan, shards)), Tensors: len(plan), DeclaredBytes: size}, nil
}

// kimiK2Config is the published config.json of Kimi-K2-Instruct (July 2025).
//
//go:embed kimi_k2_config.json
var kimiK2Config string

// KimiK2Config returns the published config.json of Kimi-K2-Instruct, for
// building its stand-in without a copy of the release.
func KimiK2Config() []byte { return []byte(kimiK2Config) }
