// Package dataset owns the data sets that micro-experts train and evaluate
// on: readers for real data installed from Debian packages, a deterministic
// text feature extractor, seeded stratified splits and a Dirichlet label
// partitioner for simulating non-IID nodes.
//
// # Data model
//
// A [Dataset] is a dense row-major float32 matrix X (Len()×Dim) with one
// integer class index per row in Y and the class names in Classes. Every
// loader returns this shape, so models never need to know where the data
// came from. [Dataset.Digest] is a SHA-256 over a canonical encoding of the
// data (not the name), so two nodes can check that they evaluated on exactly
// the same rows.
//
// # Sources
//
//   - Fashion-MNIST, from the Debian package dataset-fashion-mnist
//     (/usr/share/datasets/fashion-mnist/*-ubyte.gz, IDX format), read by
//     [ReadIDX] and [LoadFashionMNIST]. Pixels are scaled to [0,1].
//   - The small scikit-learn sets iris, wine, breast-cancer and digits, whose
//     CSV files ship in Debian's python3-sklearn package
//     (sklearn/datasets/data), read by [ReadSklearnCSV].
//   - A user CSV ("csv:PATH"), read by [ReadCSV].
//
// [Catalog] maps dataset names to files and returns train/test parts;
// [DefaultCatalog] honours MESHNODE_FASHION_MNIST and MESHNODE_SKLEARN_DATA.
// Missing files produce an error that names the path and the Debian package
// to install (see scripts/setup.sh).
//
// # Determinism
//
// All randomness comes from math/rand/v2 PCG generators seeded from the
// caller's uint64 seed as rand.NewPCG(seed, seed^0x9e3779b97f4a7c15); see
// [NewRand]. PCG's output sequence is specified by the algorithm and fixed
// across Go releases and platforms, so [Dataset.Split] (integer operations
// only) gives identical results on every node for the same seed, and
// [DirichletPartition] does on every node of the same CPU architecture. The
// catalog splits the scikit-learn sets and user CSVs with the
// fixed seed [CatalogSplitSeed], so every node gets the same test set.
//
// # Text features
//
// [TextFeatures] turns text into a fixed-size signed-hashed bag of character
// and word n-grams. The extraction rules are a contract between nodes and are
// documented on [TextFeatures]; the canonical [TextFeatures.Spec] string
// (for example "hash-ngrams/v1?dim=1024&char=2-4&word=1-2") names them.
//
// The package has no package-level mutable state and no init function; it
// uses only the standard library.
package dataset
