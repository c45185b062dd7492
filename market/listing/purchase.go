package listing

import (
	"encoding/json"
	"fmt"

	"github.com/meshnode/meshnode/market/ledger"
)

// MaxPurchaseBytes bounds a purchase request (the stream protocol's request limit).
const MaxPurchaseBytes = 1 << 20

// PurchaseRequest is what a buyer sends a seller on the purchase stream: the listing and, in
// an order a book can add them, the ledger entries that justify the payment, the payment last.
type PurchaseRequest struct {
	Listing string          `json:"listing"`
	Entries []*ledger.Entry `json:"entries"`
}

// Payment is the request's last entry.
func (r *PurchaseRequest) Payment() *ledger.Entry { return r.Entries[len(r.Entries)-1] }

// PurchaseResponse is the seller's answer: its countersigned receipt.
type PurchaseResponse struct {
	Receipt *ledger.Entry `json:"receipt"`
}

// DecodePurchaseRequest parses a request strictly: bounded size, no unknown fields, a listing,
// and at least one entry with no nulls. It judges no signature (the seller's book does).
func DecodePurchaseRequest(b []byte) (*PurchaseRequest, error) {
	var r PurchaseRequest
	if err := strictDecode(b, MaxPurchaseBytes, &r); err != nil {
		return nil, fmt.Errorf("purchase request: %w", err)
	}
	if r.Listing == "" || len(r.Listing) > 128 || len(r.Entries) == 0 {
		return nil, bad("purchase request needs a listing and its payment")
	}
	for _, e := range r.Entries {
		if e == nil {
			return nil, bad("purchase request: null ledger entry")
		}
	}
	return &r, nil
}

// DecodePurchaseResponse parses a seller's answer: it must hold a receipt.
func DecodePurchaseResponse(b []byte) (*ledger.Entry, error) {
	var r PurchaseResponse
	if err := strictDecode(b, 16<<10, &r); err != nil {
		return nil, fmt.Errorf("purchase response: %w", err)
	}
	if r.Receipt == nil {
		return nil, bad("purchase response holds no receipt")
	}
	return r.Receipt, nil
}

// DecodeEntries parses a JSON array of ledger entries (a file for 'market import'); fields
// beyond an entry's (such as those 'market history --json' adds) are ignored.
func DecodeEntries(b []byte) ([]*ledger.Entry, error) {
	if len(b) > 64<<20 {
		return nil, fmt.Errorf("%w: %d bytes of entries", ErrSize, len(b))
	}
	var out []*ledger.Entry
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("%w: want a JSON array of ledger entries: %v", ErrMalformed, err)
	}
	for i, e := range out {
		if e == nil {
			return nil, bad("entry %d is null", i)
		}
	}
	return out, nil
}
