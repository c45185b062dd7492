// Package blobs owns moving content-addressed blocks between nodes: a bitswap client and server
// on a given libp2p host, serving from and writing to a given blockstore, finding providers
// through a given content router (the mesh's Kademlia DHT) and announcing what the node holds as
// provider records.
//
// boxo's bitswap does the wire work; nothing of it shows in this package's API, so it can be
// replaced (boxo's maintainers stop in September 2026) without touching callers:
//
//	x, err := blobs.New(ctx, host, dht, st.Blockstore(), blobs.TunedConfig())
//	defer x.Close()
//	err = x.Provide(ctx, root)                  // announce a blob this node holds
//	err = x.Fetch(ctx, root, func(p blobs.Progress) { ... })
//	err = x.FetchGuided(ctx, manifest, weightsGuess, linkedWeights, nil) // both in one request
//	x.SetRequestFilter(func(p peer.ID, c cid.Cid) bool { ... }) // who may get which blocks
//
// Fetch walks the blob's DAG (raw leaves and dag-pb nodes, as experts/store imports them) with a
// bounded window of blocks between request and write, takes only blocks whose bytes hash to the
// CID asked for (bitswap derives a received block's CID from its bytes), and writes them in
// batches, so its memory does not grow with the blob. FetchAll asks for several blobs in one
// request, and FetchGuided for a blob and a guess of the one it links to (boxo holds a second
// message to a peer for 20 ms after the first, so a second round trip costs that much); their
// provider searches look for the first root. Without a guess, FetchGuided asks for the linked
// blob through a second bitswap client (Config.FollowClient), which has sent nothing lately. A
// fetch that receives no block for Config.FetchTimeout fails with ErrUnavailable.
//
// Only roots are announced. A fetch finds providers by the root, asks them for the rest of the
// DAG, and when it stalls (its providers went away) searches for providers of the root again.
// A peer that answers a want with bytes that do not hash to the CID it was asked for is
// disconnected and ignored for ten minutes, so a tampering peer cannot hold a fetch up while an
// honest one has the blob.
package blobs
