// Package market owns the expert market. Its parts are pure logic, without libp2p:
//
//   - market/ledger: signed, hash-linked per-key chains of entries (grants, payments,
//     receipts), the Book that judges them and computes balances, double-spend proofs, and the
//     Journal that persists a book in a datastore and re-verifies it on load.
//   - market/listing: sellers' signed listings, buyers' signed reviews, and the messages of
//     the market gossip topic with the checks its validator applies.
//
// The daemon (node/daemon, market*.go) wires them to the mesh: the gossip topic, the purchase
// stream protocol, the bitswap request filter for paid blocks, and the HTTP API.
package market
