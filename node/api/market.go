package api

import (
	"github.com/meshnode/meshnode/market/ledger"
	"github.com/meshnode/meshnode/market/listing"
)

// Market API paths (see the daemon's market routes).
const (
	PathMarketPublish  = "/api/v1/market/publish"
	PathMarketListings = "/api/v1/market/listings"
	PathMarketBuy      = "/api/v1/market/buy"
	PathMarketBalance  = "/api/v1/market/balance"
	PathMarketHistory  = "/api/v1/market/history"
	PathMarketReview   = "/api/v1/market/review"
	PathMarketImport   = "/api/v1/market/import"
	PathMarketRefused  = "/api/v1/market/refused"
	PathMarketGrant    = "/api/v1/market/grant"
	PathMarketBook     = "/api/v1/market/book"
	PathMarketUnlist   = "/api/v1/market/unlist"
)

// PublishRequest is the body of PathMarketPublish.
type PublishRequest struct {
	Ref       string `json:"ref"` // expert ID or name
	Price     uint64 `json:"price"`
	Licence   string `json:"licence,omitempty"`
	ExpiresMS int64  `json:"expires_ms,omitempty"` // lifetime; 0: market.default_expiry
}

// UnlistRequest is the body of PathMarketUnlist: withdraw one of this node's listings; Free
// lifts the paywall of its expert (otherwise only its buyers fetch it from then on).
type UnlistRequest struct {
	Listing string `json:"listing"`
	Free    bool   `json:"free,omitempty"`
}

// ListingView is a listing as a node sees it: the signed offer, its ID, and the reviews it
// holds for it.
type ListingView struct {
	ID string `json:"id"`
	listing.Listing
	Mine         bool         `json:"mine"`
	Reviews      []ReviewView `json:"reviews"`
	ReviewMean   float64      `json:"review_accuracy_mean,omitempty"` // mean accuracy the reviews measured
	Sales        int          `json:"sales"`                          // receipted payments this node knows of
	ExpiresInSec float64      `json:"expires_in_seconds"`
}

// ReviewView is a review and whether this node holds the reviewer's receipted payment.
type ReviewView struct {
	ID string `json:"id"`
	listing.Review
	Verified bool `json:"verified_purchase"`
}

// BuyRequest is the body of PathMarketBuy: a listing ID from the market table, or a signed
// listing received out of band (Offer, its canonical JSON).
type BuyRequest struct {
	Listing   string `json:"listing,omitempty"`
	Offer     []byte `json:"offer,omitempty"`
	TimeoutMS int    `json:"timeout_ms,omitempty"`
}

// BuyResult answers PathMarketBuy.
type BuyResult struct {
	Listing   string        `json:"listing"`
	Expert    string        `json:"expert"`
	Seller    string        `json:"seller"`
	Price     uint64        `json:"price"`
	Payment   *ledger.Entry `json:"payment,omitempty"` // nil for a free listing
	Receipt   *ledger.Entry `json:"receipt,omitempty"`
	PaymentID string        `json:"payment_id,omitempty"`
	ReceiptID string        `json:"receipt_id,omitempty"`
	Balance   uint64        `json:"balance"` // after the purchase
	Fetch     BlobInfo      `json:"fetch"`
}

// BalanceInfo answers PathMarketBalance.
type BalanceInfo struct {
	PeerID  string `json:"peer_id"`
	Balance uint64 `json:"balance"`
	Genesis uint64 `json:"genesis"`
	Entries int    `json:"entries"` // entries in this node's book (all chains)
	Chain   int    `json:"chain"`   // entries in this node's own chain
	Pending int    `json:"pending"` // own payments without a receipt yet
	Refused bool   `json:"refused"` // this node's key was caught double spending
}

// HistoryItem is one ledger entry involving this node.
type HistoryItem struct {
	ID string `json:"id"`
	ledger.Entry
	Direction string `json:"direction"` // out (paid), in (paid to this node), receipt-out, receipt-in, grant
	// Status is the book's verdict: ok (moves credits), unfunded (a payment its payer could
	// not cover), void (a receipt of no funded payment, a grant by a non-issuer).
	Status string `json:"status"`
}

// ReviewRequest is the body of PathMarketReview: evaluate the bought expert on a data set and
// publish the result.
type ReviewRequest struct {
	Listing string `json:"listing"`
	Dataset string `json:"dataset"`
	Limit   int    `json:"limit,omitempty"`
	Rating  int    `json:"rating,omitempty"`
	Text    string `json:"text,omitempty"`
}

// MaxImportBytes bounds the body of PathMarketImport: a file of entries of up to 64 MiB (what
// 'market import' reads) with room for the request around it.
const MaxImportBytes = 65 << 20

// ImportRequest is the body of PathMarketImport: signed ledger entries, in chain order.
type ImportRequest struct {
	Entries []*ledger.Entry `json:"entries"`
}

// ImportResult answers PathMarketImport.
type ImportResult struct {
	Added int `json:"added"`
	Known int `json:"known"`
}

// RefusedKey is a key caught double spending, with the two entries that prove it.
type RefusedKey struct {
	Author string `json:"author"`
	Seq    uint64 `json:"seq"`
	A      string `json:"a"`
	B      string `json:"b"`
}

// GrantRequest is the body of PathMarketGrant (issuer nodes only).
type GrantRequest struct {
	To     string `json:"to"`
	Amount uint64 `json:"amount"`
}

// BookKey is one key as this node's book sees it.
type BookKey struct {
	Key      string `json:"key"`
	Balance  uint64 `json:"balance"`
	Chain    int    `json:"chain"`              // entries of its chain
	Unfunded int    `json:"unfunded,omitempty"` // its payments the book judged unfunded
	Refused  uint64 `json:"refused,omitempty"`  // the sequence it is refused from (double spending)
}

// BookView answers PathMarketBook: every key with a chain, sorted, and the book's size.
type BookView struct {
	Entries int       `json:"entries"`
	Waiting int       `json:"waiting"` // entries held back for a missing predecessor
	Keys    []BookKey `json:"keys"`
}
