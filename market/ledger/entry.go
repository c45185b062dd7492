package ledger

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
)

// Entry kinds.
const (
	KindGrant   = "grant"   // an issuer credits To with Amount
	KindPayment = "payment" // Author pays To Amount for Listing
	KindReceipt = "receipt" // Author (the payee) acknowledges payment Ref
)

// Entry is one signed link of a key's chain.
type Entry struct {
	Author  string `json:"author"` // peer ID of the signer
	Seq     uint64 `json:"seq"`    // 1 for the first entry of a chain
	Prev    string `json:"prev"`   // ID of the previous entry ("" for seq 1)
	Kind    string `json:"kind"`
	To      string `json:"to,omitempty"`      // grant, payment: the credited key
	Amount  uint64 `json:"amount,omitempty"`  // grant, payment
	Listing string `json:"listing,omitempty"` // payment, receipt: what was bought
	Ref     string `json:"ref,omitempty"`     // receipt: the payment's ID
	Time    int64  `json:"time"`              // Unix milliseconds, informational
	Sig     []byte `json:"sig,omitempty"`
}

// ErrInvalid marks entries that break the ledger's rules.
var ErrInvalid = errors.New("invalid ledger entry")

// ErrRefused marks an entry of a key refused for double spending (at or after its fork point).
var ErrRefused = fmt.Errorf("%w: key refused for double spending", ErrInvalid)

// ErrFull marks a valid entry a book has no room for (see Limits); it may fit later.
var ErrFull = errors.New("ledger book full")

// Signer signs as a key; Verify checks a key's signature (see node.VerifyPeerSignature).
type Signer interface {
	ID() string
	Sign(msg []byte) ([]byte, error)
}

// Verifier checks that sig is author's signature of msg.
type Verifier func(author string, msg, sig []byte) error

// signingBytes is the canonical encoding without the signature (struct fields in a fixed
// order, no maps: encoding/json is deterministic for it).
func (e *Entry) signingBytes() []byte {
	c := *e
	c.Sig = nil
	b, _ := json.Marshal(c) // plain struct of strings and numbers, cannot fail
	return b
}

// Encode is the entry's canonical encoding, signature included.
func (e *Entry) Encode() []byte {
	b, _ := json.Marshal(e)
	return b
}

// ID is the CID of the canonical encoding (CIDv1, dag-json, sha2-256).
func (e *Entry) ID() string {
	h, _ := multihash.Sum(e.Encode(), multihash.SHA2_256, -1) // sha2-256 is always available
	return cid.NewCidV1(cid.DagJSON, h).String()
}

// Sign fills the author and signature.
func (e *Entry) Sign(s Signer) error {
	e.Author, e.Sig = s.ID(), nil
	sig, err := s.Sign(e.signingBytes())
	if err != nil {
		return fmt.Errorf("sign ledger entry: %w", err)
	}
	e.Sig = sig
	return nil
}

// Decode parses an entry strictly: canonical encoding only, so one entry has one ID.
func Decode(b []byte) (*Entry, error) {
	if len(b) > 8<<10 {
		return nil, fmt.Errorf("%w: %d bytes", ErrInvalid, len(b))
	}
	var e Entry
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if !bytes.Equal(e.Encode(), b) {
		return nil, fmt.Errorf("%w: not in canonical form", ErrInvalid)
	}
	return &e, nil
}

// checkShape validates fields that do not depend on other entries, and the signature.
func (e *Entry) checkShape(verify Verifier) error {
	bad := func(f string, a ...any) error { return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(f, a...)) }
	if e.Author == "" || e.Seq == 0 {
		return bad("entry needs an author and a sequence number ≥ 1")
	}
	if (e.Seq == 1) != (e.Prev == "") {
		return bad("entry %d of %s: only the first entry has no previous link", e.Seq, e.Author)
	}
	switch e.Kind {
	case KindGrant, KindPayment:
		if e.To == "" || e.Amount == 0 || e.To == e.Author {
			return bad("%s of %s: needs a recipient other than its author and an amount > 0", e.Kind, e.Author)
		}
		if e.Amount > MaxAmount {
			return bad("%s of %s: amount %d over the limit %d", e.Kind, e.Author, e.Amount, uint64(MaxAmount))
		}
	case KindReceipt:
		if e.Ref == "" {
			return bad("receipt of %s: names no payment", e.Author)
		}
	default:
		return bad("unknown kind %q", e.Kind)
	}
	if err := verify(e.Author, e.signingBytes(), e.Sig); err != nil {
		return fmt.Errorf("%w: signature of %s entry %d: %v", ErrInvalid, e.Author, e.Seq, err)
	}
	return nil
}
