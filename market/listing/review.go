package listing

import (
	"encoding/json"
	"fmt"
	"math"
	"time"
)

// Review is a buyer's signed report on an expert it bought: its own measured evaluation (data
// set, its digest, samples, accuracy), an optional rating and text. Payment names the
// reviewer's payment for the listing, so a node holding that payment and its receipt can mark
// the review as a verified purchase.
type Review struct {
	V        int     `json:"v"`
	Listing  string  `json:"listing"`
	Expert   string  `json:"expert"`
	Reviewer string  `json:"reviewer"`
	Payment  string  `json:"payment,omitempty"`
	Dataset  string  `json:"dataset"`
	Digest   string  `json:"digest"`
	Samples  int     `json:"samples"`
	Accuracy float64 `json:"accuracy"`
	Rating   int     `json:"rating,omitempty"` // 1 to 5; 0: none
	Text     string  `json:"text,omitempty"`
	Time     int64   `json:"time"`
	Sig      []byte  `json:"sig,omitempty"`
}

func (r *Review) signingBytes() []byte {
	c := *r
	c.Sig = nil
	b, _ := json.Marshal(c) // plain struct, cannot fail
	return b
}

// ID is the CID of the canonical encoding.
func (r *Review) ID() string {
	b, _ := json.Marshal(r)
	return contentID(b)
}

// Sign fills the reviewer and the signature.
func (r *Review) Sign(s Signer) error {
	r.Reviewer, r.Sig = s.ID(), nil
	sig, err := s.Sign(r.signingBytes())
	if err != nil {
		return fmt.Errorf("sign review: %w", err)
	}
	r.Sig = sig
	return nil
}

// Verify checks the schema and the reviewer's signature.
func (r *Review) Verify(verify Verifier, now time.Time) error {
	if r.V != Version || r.Listing == "" || r.Expert == "" || r.Reviewer == "" || len(r.Listing) > 128 || len(r.Expert) > 128 {
		return bad("review needs version %d, a listing, an expert and a reviewer", Version)
	}
	if len(r.Dataset) > 200 || len(r.Digest) > 128 || len(r.Text) > 1000 || len(r.Payment) > 128 {
		return bad("review fields too long")
	}
	if r.Samples < 0 || math.IsNaN(r.Accuracy) || r.Accuracy < 0 || r.Accuracy > 1 || r.Rating < 0 || r.Rating > 5 {
		return bad("review needs samples ≥ 0, accuracy in [0, 1] and a rating of 0 to 5")
	}
	if r.Time <= 0 || time.UnixMilli(r.Time).After(now.Add(maxClockSkew)) {
		return fmt.Errorf("%w: review time %d", ErrStale, r.Time)
	}
	if err := verify(r.Reviewer, r.signingBytes(), r.Sig); err != nil {
		return fmt.Errorf("%w: review signature does not match its reviewer %s: %v", ErrForged, r.Reviewer, err)
	}
	return nil
}
