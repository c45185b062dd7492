// Package node is the composition root of a meshnode: the repo folder (identity key, config,
// database, API token), config presets, and the operations the commands run against a repo.
// Later it grows the daemon lifecycle, the local HTTP API and metrics.
//
// A repo folder is created once with Init and opened with Open:
//
//	r, err := node.Init(ctx, "~/.meshnode", node.InitOptions{Preset: "development"})
//	r, err := node.Open("~/.meshnode")
//	defer r.Close()
//	st, err := r.Store()           // the badger database, opened on first use
package node
