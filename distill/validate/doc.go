// Package validate benchmarks micro-experts: it loads every expert in a
// folder (the NAME.safetensors + NAME.manifest.cbor pairs that `meshnode
// expert export` writes, or bare weights files), picks the benchmark suite
// that fits each one, measures it and writes report.json, report.csv and
// report.md.
//
// # Usage
//
//	rep, err := validate.Run(ctx, "experts/", validate.Options{
//		Level:   validate.Quick,
//		Catalog: dataset.DefaultCatalog(),
//		Suites:  []string{"my-suite.jsonl"},
//	})
//	if err != nil { ... }
//	files, err := rep.Write("validation/")
//
// # Suites
//
// The candidates are the user's suite files (dataset.ReadUserSuite), then
// the catalog's text suites of the six seed domains (coding, language,
// mathematics, reasoning, tool_use, context: see experts/dataset), then
// Fashion-MNIST and the scikit-learn sets. A suite fits an expert when it
// takes the expert's input (kind and width; a text suite is featurised with
// the expert's own text feature spec) and every class of the suite is one
// of the expert's labels (matched by name, case-insensitively; the expert
// may answer more). A fitting suite named after one of the expert's domains
// or its training data set is preferred. An expert no suite fits is
// skipped with the reason; so is one whose suite's data is missing on this
// machine. Every suite is its catalog test part (held out from training by
// the catalog's fixed split), so the accuracy here equals `meshnode expert
// eval` on the same rows.
//
// # Metrics
//
//   - accuracy: share of the suite's test samples answered right; chance is
//     1/classes.
//   - latency p50/p99: one query at a time, from raw input (text feature
//     extraction included) to the answer, in microseconds.
//   - throughput: queries per second of batched inference (256 rows per
//     batch) over the test inputs, for at least the level's duration.
//   - memory: param_bytes (parameters × 8, the float64 weights in memory),
//     weights_bytes (the safetensors file) and heap_bytes (live heap growth,
//     after GC, from decoding the weights and one forward pass).
//   - specialization: mean top-class probability on the suite's inputs
//     minus that on out-of-domain inputs — the other text suites' texts for
//     a text expert, feature-permuted test inputs (each feature shuffled
//     across rows independently) for vector and image experts. Positive
//     means the expert is surer of itself in its domain than outside it,
//     which is what a router needs to trust its confidence; in [-1, 1].
//   - consistency: share of test samples answered the same in every run:
//     batched, single queries, batched in reverse order, and reformatted
//     input (text in upper case, with doubled spaces, in quotes; vectors
//     printed with 4 significant digits; images quantised to 8 bits).
//   - robustness: mean accuracy under input noise of the level's
//     strengths p (text: each letter or digit replaced by a random letter
//     with probability p; vectors: Gaussian noise of p feature standard
//     deviations; images: Gaussian noise of standard deviation p, clipped),
//     with the accuracy at each strength in noise.
//   - efficiency: accuracy per thousand parameters.
//
// # Levels
//
//	quick          300 test samples per suite, noise 0.1, 300 timed queries, 50 ms throughput
//	standard       1000 samples, noise 0.05 0.1 0.2, 1000 queries, 200 ms
//	comprehensive  every test sample, noise 0.05 0.1 0.2 0.3 0.5, 5000 queries, 1 s
//
// All randomness (noise, permutations) is seeded (Options.Seed), so two
// runs on the same experts give the same accuracies; timings and heap
// growth are measurements and vary.
package validate
