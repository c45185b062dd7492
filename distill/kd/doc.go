// Package kd distils teachers into micro-experts: the `distill` and
// `generate` commands.
//
// # Teachers
//
// A teacher is named by a SPEC string ([ParseSpec]):
//
//   - expert:REF — a micro-expert, by ID or name from a node's store
//     ([ExpertSource], which *store.Store satisfies), or a weights file as
//     `meshnode expert export` writes it (model.safetensors, with
//     model.manifest.cbor beside it when there is one). Its parent link is
//     its manifest CID; a bare weights file is linked by the CID of its
//     bytes.
//   - moe:DIR#layer=L,expert=E — routed expert E of MoE layer L of a
//     checkpoint read by distill/checkpoint: a SwiGLU whose FP8 weights are
//     dequantised with their block scales. A checkpoint expert has no
//     manifest, so its parent link is the CID of its dequantised tensors
//     encoded as a safetensors blob ([MoETeacher.TensorsCID]); the layer,
//     expert and checkpoint are recorded in the student manifest's Meta.
//   - openai:BASE_URL?model=NAME — an OpenAI-compatible chat endpoint
//     (POST BASE_URL/chat/completions) that labels a prompt set into the
//     student's classes ([OpenAITeacher]); the key comes from the
//     environment variable [APIKeyEnv]. Answers are parsed by [ParseAnswer].
//
// [Open] turns a [Spec] into a [Teacher]. Teachers that take vectors
// implement [VectorTeacher]; the chat teacher implements [TextTeacher].
//
// # Students
//
// [SizeStudent] chooses the widest student that fits a parameter budget
// (the domain's preset from [DomainBudget] unless overridden): a dense ReLU
// MLP with one hidden layer under a softmax head for class teachers, one
// SwiGLU layer with a linear head for vector teachers. A budget that cannot
// hold even one hidden unit for the input dimension is an error.
//
// # Distillation
//
// [Distill] trains the student. Class teachers give soft targets at a
// temperature T (teacher probabilities p turned into p^(1/T)/Σ, which is
// softmax(logits/T)), mixed with hard labels through experts.TrainConfig's
// Temperature and SoftWeight (Hinton et al.: the soft term is scaled by
// T²). Vector teachers are matched by mean squared error; cosine similarity
// and relative error are reported. A checkpoint expert's student starts from
// the teacher pruned to the student's width ([MoETeacher.Pruned]), which is
// also the same-size baseline it is measured against. The result is an expert whose manifest
// links its teacher as a parent (relation distilled-from) and a [Report]
// with retention = student metric / teacher metric on held-out data,
// written by [WriteResult] as report.json and summary.md beside the
// expert's weights and manifest (the files `meshnode expert import` reads).
//
// [Generate] reads an analysis report (distill/analyze's report.json),
// picks for each requested domain the most specialised and salient expert
// ([PickExpert]) and distils one micro-expert per domain within its budget,
// each linked to the checkpoint expert it came from.
//
// Nothing here keeps package-level state; every blocking call takes a
// context.Context.
package kd
