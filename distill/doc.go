// Package distill owns making micro-experts from large models. Its
// sub-packages do the work:
//
//   - distill/checkpoint reads mixture-of-experts checkpoints in the Hugging
//     Face safetensors layout (sharded with model.safetensors.index.json,
//     memory-mapped, F32/F16/BF16 and block-scaled F8_E4M3), detects the
//     DeepSeek-V3/Kimi-K2, Mixtral and Qwen-MoE layouts from config.json,
//     and returns layers, experts and routers as float32;
//   - distill/analyze analyses such a checkpoint at three depths (quick:
//     headers and config; standard: every expert's weights; comprehensive:
//     routing of calibration inputs) and writes report.json, CSV tables,
//     summary.md and PNG charts — the `analyze` command;
//   - distill/ckptgen generates checkpoints in the real layouts for tests and
//     demos: tiny ones with planted structure and a calibration file, and a
//     header-complete sparse stand-in of the full Kimi-K2 release;
//   - distill/federated/fedavg holds the arithmetic of federated training rounds, and
//     distill/federated/fedjob their messages and rules (signed job specs, round
//     announcements, signed updates, when a round closes);
//   - distill/kd distils a teacher (a local expert, one expert of a checkpoint,
//     or an OpenAI-compatible chat endpoint) into a student sized to a budget —
//     the `distill` and `generate` commands;
//   - distill/validate benchmarks experts on per-domain suites — the
//     `validate` command.
package distill
