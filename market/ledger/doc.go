// Package ledger is the mesh's money: per-key append-only chains of signed, hash-linked
// entries, from which every balance follows. It is pure logic — entries and keys in, verdicts
// and balances out — so any node can check any other node's claims, and two books that hold
// the same entries agree, whatever order the entries came in.
//
// Chains:
//   - Each key (a peer) writes one chain: entry n+1 links to the ID of entry n and carries
//     sequence n+1. The ID of an entry is the CID of its canonical encoding.
//   - An entry whose predecessor is missing waits (bounded: Limits) until it arrives; a sync
//     (Heads, Wants, ChainFrom: "chain K from sequence N") brings what gossip missed. A
//     duplicate changes nothing.
//   - Two different entries with one author and sequence number are a proof of double
//     spending. The author is refused from that sequence on (the lowest such sequence a book
//     has seen): its entries from there are dropped and new ones refused. Its entries before
//     the fork point stand.
//
// Verdicts (Status), which depend only on the set of entries held:
//   - A grant creates credits when its author is an issuer under the rules the entry was added
//     with (Rules; a journal records them); otherwise it is void.
//   - A payment is funded when its author's balance just before it covers it, and unfunded
//     otherwise. "Just before" counts, for the payer: the genesis allowance of the rules its
//     first entry was added under; every grant to it; the payments its own receipts earlier in
//     its chain acknowledge; minus its funded payments earlier in its chain. An unfunded
//     payment moves nothing, and the chain goes on after it.
//   - A receipt is an entry of the payee's chain naming the payment's ID: the payee's
//     acknowledgement that it was paid (and owes the goods). It credits the payee with the
//     payment, from its own position on, when the payment is funded, is to the receipt's
//     author for the same listing, and the receipt is the first in that chain to name it.
//     Otherwise it is void.
//
// So a double spend costs its victims what the double spender paid them (those payments are
// refused and their receipts credit nothing), a payment a victim made from those credits is
// unfunded on every book alike, and no other chain is touched. Credits never come from
// nothing: a payment counts only credits its payer acknowledged before it, and entries can
// only name entries that existed before them (IDs are hashes), so the verdicts have no cycles.
package ledger
