// Package distill will own making micro-experts: reading large mixture-of-experts checkpoints
// (safetensors shards, Kimi-K2/DeepSeek-V3, Mixtral and Qwen-MoE layouts), analysing them,
// distilling teachers into small students, and federated averaging rounds.
package distill
