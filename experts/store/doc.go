// Package store owns a node's on-disk state: one badger v4 database under the repo folder that
// holds content-addressed blocks (served later by bitswap through the same boxo blockstore),
// blobs chunked into UnixFS DAGs, and the index of the experts this node hosts.
//
// Every write is synced before it is acknowledged, so a node killed at any moment restarts with
// every acknowledged write intact. Blocks are written before the index entry that names them, so
// a crash between the two leaves, at worst, unreferenced blocks for gc, never a dangling entry.
//
//	s, err := store.Open(dir, store.Options{})
//	defer s.Close()
//	id, err := s.PutExpert(ctx, manifest, weights)   // checks weights against the manifest
//	m, err := s.GetExpert(ctx, id)                    // checks the manifest against its CID
//	net, err := s.LoadNetwork(ctx, m)
package store
