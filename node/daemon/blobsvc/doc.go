// Package blobsvc is the daemon's blob service: it moves blobs between this node and the mesh.
// It owns the bitswap exchange (whose request filter is the exposure's Allow from the first
// request on, so nothing is served before the exposure table says so), put (import, expose,
// announce), fetch (from any provider, each block checked against its CID, with progress
// reported through the context), the fetch and verification of experts (manifest signature,
// weights guessed from adverts), garbage collection of unneeded blocks, the background
// announcer (DHT provider records, failed ones tried again) and the reprovider (every exposed
// root announced again each interval), and the blob metrics.
//
// It depends only on what its Deps hand it: the expert store and the blob keeper, the libp2p
// host and content router (the DHT), the exposure (Exposure: request filter, rebuild, roots to
// announce), the live adverts (Adverts: weights an expert is advertised with), a callback for
// installed experts, a prometheus registerer, a logger and the reprovide interval. It knows
// nothing of the daemon that composes it.
package blobsvc
