// Package ledger is the mesh's money: per-key append-only chains of signed, hash-linked
// entries, from which every balance follows. It is pure logic — entries and keys in, verdicts
// and balances out — so any node can check any other node's claims.
//
// Rules:
//   - Each key (a peer) writes one chain: entry n+1 links to the ID of entry n and carries
//     sequence n+1. The ID of an entry is the CID of its canonical encoding.
//   - Credits enter only as grants signed by an issuer key the mesh trusts (or a genesis grant
//     the mesh's config allows), never by a peer writing itself money.
//   - A payment is an entry of the payer's chain; it is valid only if the payer's balance just
//     before it covers the amount.
//   - A receipt is an entry of the payee's chain naming the payment's ID: the payee's
//     countersignature that it was paid (and owes the goods).
//   - Two different entries with the same author and sequence number are a proof of double
//     spending: whoever holds both can show any peer, and that key is refused.
package ledger
