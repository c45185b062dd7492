// Package listing defines what the market gossips: sellers' signed offers (listings), buyers'
// signed reviews, and the envelope that carries them, ledger entries and double-spend proofs
// on the market topic. It is pure logic — bytes, keys and times in, verdicts out — so every
// rule a topic validator applies is testable without a network.
package listing

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
)

// Version is the schema version this node writes and accepts.
const Version = 1

// Rejection reasons (metric labels and the text of validation errors).
var (
	ErrSize      = errors.New("oversized")
	ErrMalformed = errors.New("malformed")
	ErrForged    = errors.New("forged")
	ErrStale     = errors.New("stale")
	ErrExpired   = errors.New("expired")
)

// Reason maps a validation error to its metric label.
func Reason(err error) string {
	for _, e := range []error{ErrSize, ErrMalformed, ErrForged, ErrStale, ErrExpired} {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	return "other"
}

// Verifier checks that sig is key's signature of msg (node.VerifyPeerSignature).
type Verifier func(key string, msg, sig []byte) error

// Signer signs as a key (node.Identity).
type Signer interface {
	ID() string
	Sign(msg []byte) ([]byte, error)
}

// Eval is one evaluation the seller's manifest carries.
type Eval struct {
	Dataset string  `json:"dataset"`
	Metric  string  `json:"metric"`
	Value   float64 `json:"value"`
	Samples int     `json:"samples"`
}

// Listing is a seller's signed offer of one expert. Its ID is the CID of its canonical
// encoding, so a listing cannot change without changing its ID, and payments name it.
type Listing struct {
	V       int      `json:"v"`
	Expert  string   `json:"expert"` // manifest CID
	Seller  string   `json:"seller"` // peer ID
	Name    string   `json:"name"`
	Domains []string `json:"domains"`
	Params  int      `json:"params"`
	Evals   []Eval   `json:"evals,omitempty"`
	Price   uint64   `json:"price"` // credits; 0: free
	Licence string   `json:"licence,omitempty"`
	Time    int64    `json:"time"`    // publication, Unix ms
	Expires int64    `json:"expires"` // Unix ms
	Sig     []byte   `json:"sig,omitempty"`
}

// MaxListingBytes bounds an encoded listing.
const MaxListingBytes = 8 << 10

// MaxLifetime bounds how long after its publication a listing may expire.
const MaxLifetime = 366 * 24 * time.Hour

// PaymentSkew is how far a payment's own time may lie from the seller's clock when the seller
// takes it: the buyer signs the time, the seller fixes it in its receipt.
const PaymentSkew = 5 * time.Minute

// AcceptsPurchase reports whether the seller takes, at now by its own clock, a payment signed
// at payTime (Unix ms) for this listing. The payment must be fresh (within PaymentSkew of the
// seller's clock either way: a backdated payment cannot buy an expired listing) and signed while
// the listing was live (not after its expiry, not before its publication). So a listing is
// bought at most PaymentSkew after it expired, by a payment signed before that.
func (l *Listing) AcceptsPurchase(payTime int64, now time.Time) error {
	t := time.UnixMilli(payTime)
	switch {
	case t.Before(now.Add(-PaymentSkew)):
		return fmt.Errorf("%w: payment signed %s, %s before the seller's clock (at most %s)", ErrStale,
			t.UTC().Format(time.RFC3339), now.Sub(t).Round(time.Second), PaymentSkew)
	case t.After(now.Add(PaymentSkew)):
		return fmt.Errorf("%w: payment signed %s in the future", ErrStale, t.Sub(now).Round(time.Second))
	case payTime >= l.Expires:
		return fmt.Errorf("%w: payment signed %s, after the listing expired at %s", ErrExpired,
			t.UTC().Format(time.RFC3339), time.UnixMilli(l.Expires).UTC().Format(time.RFC3339))
	case payTime < l.Time-maxClockSkew.Milliseconds():
		return bad("payment signed %s, before the listing was published", t.UTC().Format(time.RFC3339))
	}
	return nil
}

// maxClockSkew is how far in the future a time may be.
const maxClockSkew = 30 * time.Second

func bad(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, a...))
}

func (l *Listing) signingBytes() []byte {
	c := *l
	c.Sig = nil
	b, _ := json.Marshal(c) // plain struct without maps, cannot fail; deterministic
	return b
}

// Encode is the canonical encoding, signature included.
func (l *Listing) Encode() []byte {
	b, _ := json.Marshal(l)
	return b
}

// ID is the CID of the canonical encoding (CIDv1, dag-json, sha2-256).
func (l *Listing) ID() string { return contentID(l.Encode()) }

func contentID(b []byte) string {
	h, _ := multihash.Sum(b, multihash.SHA2_256, -1) // sha2-256 is always available
	return cid.NewCidV1(cid.DagJSON, h).String()
}

// Sign fills the seller and the signature.
func (l *Listing) Sign(s Signer) error {
	l.Seller, l.Sig = s.ID(), nil
	sig, err := s.Sign(l.signingBytes())
	if err != nil {
		return fmt.Errorf("sign listing: %w", err)
	}
	l.Sig = sig
	return nil
}

// check validates the schema.
func (l *Listing) check() error {
	if l.V != Version {
		return bad("listing version %d, want %d", l.V, Version)
	}
	if _, err := cid.Decode(l.Expert); err != nil {
		return bad("expert %q is not a CID", l.Expert)
	}
	if l.Seller == "" || len(l.Seller) > 128 {
		return bad("listing names no seller")
	}
	if l.Name == "" || len(l.Name) > 200 || len(l.Domains) > 16 || len(l.Licence) > 2000 || len(l.Evals) > 16 {
		return bad("name (1 to 200 bytes), domains (≤ 16), evals (≤ 16) or licence (≤ 2000 bytes) out of bounds")
	}
	for _, d := range l.Domains {
		if d == "" || len(d) > 64 {
			return bad("domain tag %q must have 1 to 64 bytes", d)
		}
	}
	for _, e := range l.Evals {
		if len(e.Dataset) > 200 || len(e.Metric) > 32 || e.Samples < 0 || math.IsNaN(e.Value) || math.IsInf(e.Value, 0) {
			return bad("evaluation %q out of bounds", e.Dataset)
		}
	}
	if l.Params < 0 {
		return bad("params %d < 0", l.Params)
	}
	if l.Time <= 0 || l.Expires <= l.Time {
		return bad("a listing needs a publication time and a later expiry")
	}
	if l.Expires-l.Time > MaxLifetime.Milliseconds() {
		return bad("a listing lives at most %s (expires %s after publication)", MaxLifetime, time.Duration(l.Expires-l.Time)*time.Millisecond)
	}
	return nil
}

// VerifySignature checks the schema and the seller's signature only (a stored listing may
// have expired and still be needed: receipts name it).
func (l *Listing) VerifySignature(verify Verifier) error {
	if err := l.check(); err != nil {
		return err
	}
	if err := verify(l.Seller, l.signingBytes(), l.Sig); err != nil {
		return fmt.Errorf("%w: listing signature does not match its seller %s: %v", ErrForged, l.Seller, err)
	}
	return nil
}

// Verify checks a listing's schema, its seller's signature and that it has not expired at now.
func (l *Listing) Verify(verify Verifier, now time.Time) error {
	if err := l.VerifySignature(verify); err != nil {
		return err
	}
	if t := time.UnixMilli(l.Time); t.After(now.Add(maxClockSkew)) {
		return fmt.Errorf("%w: listing published %s in the future", ErrStale, t.Sub(now).Round(time.Second))
	}
	if exp := time.UnixMilli(l.Expires); !now.Before(exp) {
		return fmt.Errorf("%w: listing expired %s ago", ErrExpired, now.Sub(exp).Round(time.Second))
	}
	return nil
}

// Accuracy is the listing's evaluated accuracy (the first accuracy eval) and whether it has one.
func (l *Listing) Accuracy() (float64, bool) {
	for _, e := range l.Evals {
		if e.Metric == "accuracy" {
			return e.Value, true
		}
	}
	return 0, false
}

// DecodeListing parses a listing strictly (canonical encoding only, so one listing has one ID)
// without judging it; call Verify.
func DecodeListing(b []byte) (*Listing, error) {
	var l Listing
	if err := strictDecode(b, MaxListingBytes, &l); err != nil {
		return nil, err
	}
	if !bytes.Equal(l.Encode(), b) {
		return nil, bad("listing not in canonical form")
	}
	return &l, nil
}

func strictDecode(b []byte, limit int, v any) error {
	if len(b) > limit {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrSize, len(b), limit)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if dec.More() {
		return bad("data after the value")
	}
	return nil
}
