package listing

import (
	"fmt"

	"github.com/meshnode/meshnode/market/ledger"
)

// Bounds of the ledger sync protocol: one request asks for one page of chain heads or one
// part of one chain, and one answer stays under MaxSyncResponseBytes.
const (
	MaxSyncRequestBytes  = 4 << 10
	MaxSyncResponseBytes = 1 << 20
	MaxSyncHeads         = 1000 // heads per page
	MaxSyncEntries       = 512  // entries per chain part
)

// SyncRequest asks a peer for a page of its chain heads (authors after After, in order) or
// for one chain from a sequence on (and the author's double-spend proof, when it has one).
type SyncRequest struct {
	Heads *HeadsRequest `json:"heads,omitempty"`
	Chain *ledger.Want  `json:"chain,omitempty"`
}

// HeadsRequest pages through a peer's chain heads.
type HeadsRequest struct {
	After string `json:"after"`
	Limit int    `json:"limit"`
}

// SyncResponse answers a SyncRequest: heads, or a chain's entries in sequence order (and the
// two entries of its author's double-spend proof).
type SyncResponse struct {
	Heads   []ledger.Head   `json:"heads,omitempty"`
	Entries []*ledger.Entry `json:"entries,omitempty"`
	Proof   []*ledger.Entry `json:"proof,omitempty"`
}

// DecodeSyncRequest parses a request strictly: bounded size, exactly one question, limits in
// range.
func DecodeSyncRequest(b []byte) (*SyncRequest, error) {
	var r SyncRequest
	if err := strictDecode(b, MaxSyncRequestBytes, &r); err != nil {
		return nil, fmt.Errorf("ledger sync request: %w", err)
	}
	switch {
	case (r.Heads == nil) == (r.Chain == nil):
		return nil, bad("ledger sync request: ask for heads or for a chain, one of them")
	case r.Heads != nil && (r.Heads.Limit < 1 || r.Heads.Limit > MaxSyncHeads || len(r.Heads.After) > 128):
		return nil, bad("ledger sync request: heads limit %d outside [1, %d]", r.Heads.Limit, MaxSyncHeads)
	case r.Chain != nil && (r.Chain.Author == "" || len(r.Chain.Author) > 128 || r.Chain.From < 1):
		return nil, bad("ledger sync request: a chain needs an author and a sequence ≥ 1")
	}
	return &r, nil
}

// DecodeSyncResponse parses an answer to req strictly: bounded size; heads in author order
// after the one asked for, at most the limit; chain entries all of the author asked for, in
// sequence order from the one asked for; a proof of two entries of that author. Signatures
// are the book's to check.
func DecodeSyncResponse(req *SyncRequest, b []byte) (*SyncResponse, error) {
	var r SyncResponse
	if err := strictDecode(b, MaxSyncResponseBytes, &r); err != nil {
		return nil, fmt.Errorf("ledger sync response: %w", err)
	}
	if req.Heads != nil {
		if len(r.Entries) > 0 || len(r.Proof) > 0 || len(r.Heads) > req.Heads.Limit {
			return nil, bad("ledger sync response: %d heads for a page of %d (and no entries)", len(r.Heads), req.Heads.Limit)
		}
		last := req.Heads.After
		for _, h := range r.Heads {
			if h.Author <= last || len(h.Author) > 128 || len(h.ID) > 128 {
				return nil, bad("ledger sync response: heads out of order at %q", h.Author)
			}
			last = h.Author
		}
		return &r, nil
	}
	w := req.Chain
	if len(r.Heads) > 0 || len(r.Entries) > MaxSyncEntries || (len(r.Proof) != 0 && len(r.Proof) != 2) {
		return nil, bad("ledger sync response: %d entries (at most %d) and %d proof entries (0 or 2)", len(r.Entries), MaxSyncEntries, len(r.Proof))
	}
	for i, e := range r.Entries {
		if e == nil || e.Author != w.Author || e.Seq != w.From+uint64(i) {
			return nil, bad("ledger sync response: entry %d is not %s's entry %d", i, w.Author, w.From+uint64(i))
		}
	}
	for _, e := range r.Proof {
		if e == nil || e.Author != w.Author {
			return nil, bad("ledger sync response: a proof of another key than %s", w.Author)
		}
	}
	return &r, nil
}
