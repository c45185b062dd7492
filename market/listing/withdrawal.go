package listing

import (
	"encoding/json"
	"fmt"
	"time"
)

// Withdrawal is a seller's signed word that a listing is off sale from Time on. Existing
// receipts stay valid. Free says what happens to the expert's blocks: free to anyone from now on
// (the paywall lifts), or, unset, only to those who already bought it.
type Withdrawal struct {
	V       int    `json:"v"`
	Listing string `json:"listing"`
	Seller  string `json:"seller"`
	Free    bool   `json:"free,omitempty"`
	Time    int64  `json:"time"`
	Sig     []byte `json:"sig,omitempty"`
}

func (w *Withdrawal) signingBytes() []byte {
	c := *w
	c.Sig = nil
	b, _ := json.Marshal(c) // plain struct, cannot fail
	return b
}

// Encode is the canonical encoding, signature included.
func (w *Withdrawal) Encode() []byte {
	b, _ := json.Marshal(w)
	return b
}

// Sign fills the seller and the signature.
func (w *Withdrawal) Sign(s Signer) error {
	w.Seller, w.Sig = s.ID(), nil
	sig, err := s.Sign(w.signingBytes())
	if err != nil {
		return fmt.Errorf("sign withdrawal: %w", err)
	}
	w.Sig = sig
	return nil
}

// Verify checks the schema and the seller's signature. Whether the seller is the listing's
// is for the holder of the listing to check (Withdraws).
func (w *Withdrawal) Verify(verify Verifier, now time.Time) error {
	if w.V != Version || w.Listing == "" || len(w.Listing) > 128 || w.Seller == "" || len(w.Seller) > 128 {
		return bad("withdrawal needs version %d, a listing and a seller", Version)
	}
	if w.Time <= 0 || time.UnixMilli(w.Time).After(now.Add(maxClockSkew)) {
		return fmt.Errorf("%w: withdrawal time %d", ErrStale, w.Time)
	}
	if err := verify(w.Seller, w.signingBytes(), w.Sig); err != nil {
		return fmt.Errorf("%w: withdrawal signature does not match its seller %s: %v", ErrForged, w.Seller, err)
	}
	return nil
}

// Withdraws reports whether w withdraws l: it names l and is signed by l's seller.
func (w *Withdrawal) Withdraws(l *Listing) bool {
	return l != nil && w.Listing == l.ID() && w.Seller == l.Seller
}

// DecodeWithdrawal parses a stored withdrawal strictly (canonical encoding only).
func DecodeWithdrawal(b []byte) (*Withdrawal, error) {
	var w Withdrawal
	if err := strictDecode(b, 4<<10, &w); err != nil {
		return nil, err
	}
	if string(w.Encode()) != string(b) {
		return nil, bad("withdrawal not in canonical form")
	}
	return &w, nil
}
