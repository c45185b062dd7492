// Package marketsvc is the daemon's side of the expert market: it buys and sells experts for
// credits of the mesh's ledger. It owns the ledger book (every entry journaled before it
// counts, double-spend proofs kept and spread), the listings, reviews and withdrawals heard on
// Topic (validated, bounded per seller and in all, persisted, republished), the purchase
// protocol (a buyer's payment out and the seller's countersigned receipt back over Protocol,
// then the expert fetched), the ledger's anti-entropy sync (LedgerSyncProtocol), the paid
// experts it hands to the exposure table (Restrictions: their blocks go only to receipt
// holders), the market API's handlers and the market metrics. The rules themselves (chains,
// balances and proofs; listings, reviews and purchase messages) are packages ledger's and
// listing's.
//
// It depends only on what its Deps hand it: the expert store (Store: resolve and read
// experts), an evaluator of experts for reviews (Evaluator), a datastore of its records and
// one of the ledger's journal, this node's identity (Signer), the libp2p host, gossip (PubSub),
// peer router (the DHT) and gossip scores (Penaliser), the exposure (Exposure: rebuilt when
// who may fetch a paid expert changes), the blob service (Blobs: announce listed experts,
// fetch bought ones), the repo's market settings, a prometheus registerer and a logger. It
// knows nothing of the daemon that composes it.
package marketsvc
