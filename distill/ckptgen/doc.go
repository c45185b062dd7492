// Package ckptgen owns generating mixture-of-experts checkpoints in the real
// Hugging Face layouts, for tests, benchmarks and demos of the analyzer:
//
//   - [Tiny]: a small checkpoint (DeepSeek-V3/Kimi-K2 layout with FP8
//     weights and block scales whose last blocks are partial, or Mixtral or
//     Qwen-MoE with BF16 weights), sharded with an index, with planted
//     structure — groups of near-duplicate experts, an expert copied across
//     layers, one specialist expert per domain whose router row follows that
//     domain's direction in the calibration inputs, and (DeepSeek-V3) experts
//     whose selection bias keeps them out of or forces them into the top-k —
//     plus calibration.safetensors and planted.json, the [Truth];
//   - [WriteStandIn]: a header-complete stand-in of a full checkpoint (by
//     default Kimi-K2-Instruct's published config, [KimiK2Config]): 61
//     shards with real headers and full declared sizes, written as sparse
//     files that cost almost no disk, and the index;
//   - [Random]: random FP8 weights in the Kimi-K2 layout at a chosen size,
//     for benchmarks.
//
// The same options always give the same bytes.
package ckptgen
