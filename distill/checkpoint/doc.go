// Package checkpoint reads large mixture-of-experts checkpoints in the
// Hugging Face safetensors layout without loading them into memory.
//
// It owns:
//
//   - config.json parsing and layout detection for the DeepSeek-V3 family
//     (DeepSeek-V2/V3, Kimi-K2), Mixtral and Qwen-MoE ([ParseConfig],
//     [Config]), including which layers are mixture-of-experts, the tensor
//     names of experts, routers and shared experts, and the routing rule;
//   - model.safetensors.index.json parsing ([ParseIndex]), strict about
//     duplicate keys and about shard names, which must be plain file names;
//   - [Open], which reads every shard's header (validated by
//     experts/safetensors), cross-checks the index against the headers and
//     checks that every expert, router and block-scale tensor the config
//     implies exists with the implied shape, reporting the tensor and file
//     at fault;
//   - tensor reads through a read-only memory map of each shard (created on
//     first use; a shard is never copied to the heap), converting F32, F16,
//     BF16, F64 and F8_E4M3 to float32: FP8 weights are dequantised with
//     their `<name>_scale_inv` block scales (block size from
//     quantization_config.weight_block_size, partial last blocks allowed) by
//     [DequantizeFP8]; [Checkpoint.Stream] decodes a matrix in bands of rows
//     and hands each band on while it is in cache, and
//     [Checkpoint.Prefetch] asks the kernel to read tensors ahead of use;
//   - the exact E4M3FN codec ([E4M3ToFloat32], [Float32ToE4M3]);
//   - typed access to layers, routed and shared experts ([Checkpoint.Expert])
//     and routers with their e_score_correction_bias ([Checkpoint.Router]).
//
// Example:
//
//	ck, err := checkpoint.Open(ctx, "/models/Kimi-K2-Instruct")
//	if err != nil {
//		return err // e.g. tensor "model.layers.3.mlp.experts.7.up_proj.weight" in model-2-of-61.safetensors has shape ...
//	}
//	defer ck.Close()
//	for _, l := range ck.MoELayers() {
//		ex, err := ck.Expert(ctx, l, 0) // gate, up, down as float32
//		...
//	}
package checkpoint
