// Package node owns a node's repo folder (identity key, config, database, API token), its config
// presets, the operations commands run against a repo (train, eval, import, export, validate,
// distill, generate, blobs: LocalOps), and the local HTTP API's contract: its paths, request and
// response types, error table (apierrors.go), job streams (jobs.go) and client (api.Client). A
// command runs the store's operations through StoreOps: LocalOps when no daemon holds the
// store, the daemon's API (*api.Client) when one does. node/daemon runs the daemon itself.
//
// A repo folder is created once with Init and opened with Open:
//
//	r, err := node.Init(ctx, "~/.meshnode", node.InitOptions{Preset: "development"})
//	r, err := node.Open("~/.meshnode")
//	defer r.Close()
//	st, err := r.Store()           // the badger database, opened on first use
package node
