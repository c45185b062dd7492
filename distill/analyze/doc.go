// Package analyze owns the analysis of mixture-of-experts checkpoints: what
// `meshnode analyze` and `kimi-analyzer analyze` report.
//
// [Run] opens a checkpoint with distill/checkpoint and works to a [Depth]:
//
//   - quick ([Quick]): from config.json and the tensor headers alone —
//     layers (dense and MoE), routed and shared experts, parameters by role
//     computed from the config ([ConfigParams]) and counted in the headers
//     ([HeaderParams]), total and activated, beside a vendor's published
//     figures; bytes by dtype; a placement plan of the routed experts on
//     nodes of a given memory ([Plan]); and the compression ratio of each
//     seed domain's micro-expert budget ([SeedBudgets]).
//   - standard: every expert is read once, layer by layer, by parallel
//     workers reusing their buffers, with the next experts read ahead
//     (madvise WILLNEED). Each projection is dequantised in bands of rows
//     that are measured while in cache — Frobenius norm, products with the
//     probe inputs (for the expert's output), first power-iteration step —
//     and counted for near-zero weights; each further power step is one pass
//     over the decoded matrix. This yields the share of near-zero weights,
//     stable ranks ‖W‖_F²/‖W‖₂² (‖W‖₂ by power iteration, a lower bound, so
//     the ranks are upper bounds), and outputs on seeded probe inputs. Per layer, cosine
//     similarity of the flattened weights (exact for small experts, on a
//     fixed stratified sample of positions for large ones) and of the probe
//     outputs; near-duplicates are the pairs above both thresholds, grouped
//     by union-find. Consecutive MoE layers are related by best-match
//     similarity.
//   - comprehensive: calibration router inputs (a [Calibration] file) are
//     routed through every router exactly as the model does ([Route]:
//     sigmoid or softmax scores, top-k on scores plus the selection bias,
//     mixing weights from the unbiased scores): activation rate by domain,
//     routing entropy, specialization of each expert for each domain and the
//     specialists it implies, co-activation of consecutive layers, and
//     saliency (mean mixing weight × output norm). Without calibration
//     data, token embeddings approximate the router inputs and the report
//     labels the result an approximation.
//
// The statistics are pure functions of tensors; reading happens in [Run]
// and writing in [WriteOutputs] (report.json, CSV tables, summary.md and
// PNG heat maps and histograms drawn with gonum/plot).
package analyze
