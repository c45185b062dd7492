package listing

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/meshnode/meshnode/market/ledger"
)

// Message kinds on the market topic.
const (
	KindListing = "listing" // a seller (the message's author) offers an expert
	KindReview  = "review"  // a buyer (the message's author) reviews one
	KindEntries = "entries" // ledger entries anyone may relay: each is signed by its author
	KindProof   = "proof"   // two entries proving a double spend
	KindUnlist  = "unlist"  // a seller (the message's author) withdraws one of its listings
)

// MaxMessageBytes bounds a message on the market topic (gossipsub's own cap is higher).
const MaxMessageBytes = 48 << 10

// MaxEntries bounds the entries one message carries.
const MaxEntries = 64

// MaxAge is how old a message may be when it arrives: republished listings carry a fresh time,
// so an old message is a replay.
const MaxAge = 2 * time.Minute

// Message is what travels on the market topic. Sent is when its author sent it (freshness).
type Message struct {
	Kind    string          `json:"kind"`
	Sent    int64           `json:"sent"`
	Listing *Listing        `json:"listing,omitempty"`
	Review  *Review         `json:"review,omitempty"`
	Entries []*ledger.Entry `json:"entries,omitempty"`
	Unlist  *Withdrawal     `json:"unlist,omitempty"`
}

// Encode renders the message.
func (m *Message) Encode() []byte {
	b, _ := json.Marshal(m) // structs of strings, numbers and byte slices: cannot fail
	return b
}

// DecodeMessage parses and validates a message received from the peer from (the gossip
// message's signed author) at time now: size, schema, freshness, and the signatures inside.
// Listings and reviews must be the author's own; entries and proofs may come from anyone.
// Every failure wraps one of the Err* reasons.
func DecodeMessage(data []byte, from string, now time.Time, verify Verifier) (*Message, error) {
	var m Message
	if err := strictDecode(data, MaxMessageBytes, &m); err != nil {
		return nil, err
	}
	sent := time.UnixMilli(m.Sent)
	if sent.After(now.Add(maxClockSkew)) || now.Sub(sent) > MaxAge {
		return nil, fmt.Errorf("%w: sent at %s, now %s", ErrStale, sent.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	one := func(ok bool) error {
		if !ok {
			return bad("a %s message carries exactly its %s", m.Kind, m.Kind)
		}
		return nil
	}
	switch m.Kind {
	case KindUnlist:
		if err := one(m.Unlist != nil && m.Listing == nil && m.Review == nil && len(m.Entries) == 0); err != nil {
			return nil, err
		}
		if m.Unlist.Seller != from {
			return nil, fmt.Errorf("%w: withdrawal by %s sent by %s", ErrForged, m.Unlist.Seller, from)
		}
		if err := m.Unlist.Verify(verify, now); err != nil {
			return nil, err
		}
	case KindListing:
		if err := one(m.Listing != nil && m.Review == nil && len(m.Entries) == 0 && m.Unlist == nil); err != nil {
			return nil, err
		}
		if m.Listing.Seller != from {
			return nil, fmt.Errorf("%w: listing of seller %s sent by %s", ErrForged, m.Listing.Seller, from)
		}
		if err := m.Listing.Verify(verify, now); err != nil {
			return nil, err
		}
	case KindReview:
		if err := one(m.Review != nil && m.Listing == nil && len(m.Entries) == 0 && m.Unlist == nil); err != nil {
			return nil, err
		}
		if m.Review.Reviewer != from {
			return nil, fmt.Errorf("%w: review by %s sent by %s", ErrForged, m.Review.Reviewer, from)
		}
		if err := m.Review.Verify(verify, now); err != nil {
			return nil, err
		}
	case KindEntries, KindProof:
		if m.Listing != nil || m.Review != nil || m.Unlist != nil || len(m.Entries) == 0 || len(m.Entries) > MaxEntries {
			return nil, bad("an %s message carries 1 to %d ledger entries and nothing else", m.Kind, MaxEntries)
		}
		if m.Kind == KindProof && len(m.Entries) != 2 {
			return nil, bad("a proof carries two entries")
		}
		for _, e := range m.Entries {
			if e == nil {
				return nil, bad("null ledger entry")
			}
			if err := e.Check(ledger.Verifier(verify)); err != nil {
				return nil, fmt.Errorf("%w: %v", ErrForged, err)
			}
		}
		if m.Kind == KindProof {
			a, b := m.Entries[0], m.Entries[1]
			if a.Author != b.Author || a.Seq != b.Seq || a.ID() == b.ID() {
				return nil, bad("a proof's entries must differ and share author and sequence number")
			}
		}
	default:
		return nil, bad("unknown kind %q", m.Kind)
	}
	return &m, nil
}
