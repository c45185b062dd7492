// Package market will own the expert market: signed listings, purchases on a signed,
// hash-linked ledger, receipts and reputation.
package market
