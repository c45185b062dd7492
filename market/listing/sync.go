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
	MaxSyncChains        = 64   // chains asked for in one request
	MaxSyncEntries       = 512  // entries per chain part
)

// SyncRequest asks a peer for a page of its chain heads (authors after After, in order) or
// for parts of up to MaxSyncChains chains, each from a sequence on (and the author's
// double-spend proof, when it has one).
type SyncRequest struct {
	Heads  *HeadsRequest `json:"heads,omitempty"`
	Chains []ledger.Want `json:"chains,omitempty"`
}

// HeadsRequest pages through a peer's chain heads.
type HeadsRequest struct {
	After string `json:"after"`
	Limit int    `json:"limit"`
}

// SyncResponse answers a SyncRequest: heads, or the chains' entries (chain by chain in the
// order asked, each in sequence order from where it was asked; a part may be cut short by the
// answer's size) and, in pairs, the double-spend proofs of their authors.
type SyncResponse struct {
	Heads   []ledger.Head   `json:"heads,omitempty"`
	Entries []*ledger.Entry `json:"entries,omitempty"`
	Proofs  []*ledger.Entry `json:"proofs,omitempty"`
}

// DecodeSyncRequest parses a request strictly: bounded size, exactly one question, limits in
// range.
func DecodeSyncRequest(b []byte) (*SyncRequest, error) {
	var r SyncRequest
	if err := strictDecode(b, MaxSyncRequestBytes, &r); err != nil {
		return nil, fmt.Errorf("ledger sync request: %w", err)
	}
	switch {
	case (r.Heads == nil) == (len(r.Chains) == 0):
		return nil, bad("ledger sync request: ask for heads or for chains, one of them")
	case r.Heads != nil && (r.Heads.Limit < 1 || r.Heads.Limit > MaxSyncHeads || len(r.Heads.After) > 128):
		return nil, bad("ledger sync request: heads limit %d outside [1, %d]", r.Heads.Limit, MaxSyncHeads)
	case len(r.Chains) > MaxSyncChains:
		return nil, bad("ledger sync request: %d chains, at most %d", len(r.Chains), MaxSyncChains)
	}
	seen := map[string]bool{}
	for _, w := range r.Chains {
		if w.Author == "" || len(w.Author) > 128 || w.From < 1 || seen[w.Author] {
			return nil, bad("ledger sync request: each chain needs an author (once) and a sequence ≥ 1")
		}
		seen[w.Author] = true
	}
	return &r, nil
}

// DecodeSyncResponse parses an answer to req strictly: bounded size; heads in author order
// after the one asked for, at most the limit; chain entries only of the chains asked for, in
// the order asked, each chain's in sequence order from where it was asked, at most
// MaxSyncEntries of one; proofs as pairs of entries of one key asked for. Signatures are the
// book's to check.
func DecodeSyncResponse(req *SyncRequest, b []byte) (*SyncResponse, error) {
	var r SyncResponse
	if err := strictDecode(b, MaxSyncResponseBytes, &r); err != nil {
		return nil, fmt.Errorf("ledger sync response: %w", err)
	}
	if req.Heads != nil {
		if len(r.Entries) > 0 || len(r.Proofs) > 0 || len(r.Heads) > req.Heads.Limit {
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
	if len(r.Heads) > 0 || len(r.Proofs)%2 != 0 || len(r.Proofs) > 2*len(req.Chains) {
		return nil, bad("ledger sync response: heads for chains, or proofs not in pairs (%d entries)", len(r.Proofs))
	}
	from := make(map[string]uint64, len(req.Chains))
	order := make(map[string]int, len(req.Chains))
	for i, w := range req.Chains {
		from[w.Author], order[w.Author] = w.From, i
	}
	last, count := -1, 0
	for i, e := range r.Entries {
		if e == nil {
			return nil, bad("ledger sync response: entry %d is null", i)
		}
		k, asked := order[e.Author]
		switch {
		case !asked || k < last:
			return nil, bad("ledger sync response: entry %d (of %s) belongs to no chain asked for, in order", i, e.Author)
		case k > last:
			last, count = k, 0
		}
		if e.Seq != from[e.Author]+uint64(count) || count >= MaxSyncEntries {
			return nil, bad("ledger sync response: entry %d is not %s's entry %d", i, e.Author, from[e.Author]+uint64(count))
		}
		count++
	}
	for i := 0; i < len(r.Proofs); i += 2 {
		a, b := r.Proofs[i], r.Proofs[i+1]
		if a == nil || b == nil || a.Author != b.Author {
			return nil, bad("ledger sync response: proof %d is not two entries of one key", i/2)
		}
		if _, asked := order[a.Author]; !asked {
			return nil, bad("ledger sync response: a proof of %s, a key not asked for", a.Author)
		}
	}
	return &r, nil
}
