package daemon

import (
	"context"
	"fmt"

	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshnode/meshnode/market/listing"
)

// accessTable is what the bitswap request filter reads: which blocks belong to a paid expert
// held here, and which peers hold a receipt for each such expert. It is replaced whole (an
// atomic pointer), never changed in place, so the filter reads it without locks.
type accessTable struct {
	blocks  map[string]string          // block multihash -> paid expert ID
	allowed map[string]map[string]bool // expert ID -> peer IDs holding a receipt for it
}

// allow is the bitswap request filter: a block of a paid expert goes only to a peer holding a
// receipt for a listing of that expert; every other block goes to anyone. A denied peer gets
// DONT_HAVE and its fetch fails when no one else serves it.
func (m *market) allow(p peer.ID, c cid.Cid) bool {
	a := m.access.Load()
	exp, paid := a.blocks[string(c.Hash())]
	if !paid {
		return true
	}
	if a.allowed[exp][p.String()] {
		return true
	}
	m.metrics.denied.Inc()
	return false
}

// refreshAccess rebuilds the access table: the blocks of every paid expert this node holds
// (manifest and weights, walked through their DAGs) and who may fetch each. Only listings by
// an expert's publisher (the manifest's signer) count, for paying and for access alike
// (listing.ComputeAccess): a listing by anyone else neither locks nor opens an expert.
func (m *market) refreshAccess(ctx context.Context) error {
	m.refreshMu.Lock() // one rebuild at a time, so an older table never replaces a newer one
	defer m.refreshMu.Unlock()
	m.mu.Lock()
	priced := map[string]bool{}
	for _, l := range m.listings {
		if l.Price > 0 {
			priced[l.Expert] = true
		}
	}
	m.mu.Unlock()
	st, err := m.d.Repo.Store()
	if err != nil {
		return err
	}
	type held struct {
		publisher string
		man       cid.Cid
		weights   cid.Cid
	}
	local := map[string]held{}
	for id := range priced {
		root, err := cid.Decode(id)
		if err != nil {
			continue
		}
		man, err := st.GetExpert(ctx, root)
		if err != nil {
			continue // not held here: nothing to serve, and no publisher to check listings against
		}
		local[id] = held{man.Publisher, root, man.Weights}
	}
	m.mu.Lock()
	a := listing.ComputeAccess(m.book, m.listings, func(expert string) (string, bool) {
		h, ok := local[expert]
		return h.publisher, ok
	})
	m.mu.Unlock()
	blocks := map[string]string{}
	for id := range a.Paid {
		h, ok := local[id]
		if !ok {
			continue
		}
		for _, r := range []cid.Cid{h.man, h.weights} {
			if err := m.blocksOf(ctx, r, func(c cid.Cid) { blocks[string(c.Hash())] = id }); err != nil {
				return fmt.Errorf("list the blocks of paid expert %s: %w", id, err)
			}
		}
	}
	m.access.Store(&accessTable{blocks: blocks, allowed: a.Allowed})
	return nil
}

// blocksOf calls f for root and, for a UnixFS DAG, every block under it.
func (m *market) blocksOf(ctx context.Context, root cid.Cid, f func(cid.Cid)) error {
	f(root)
	if root.Type() != cid.DagProtobuf {
		return nil
	}
	st, err := m.d.Repo.Store()
	if err != nil {
		return err
	}
	return merkledag.Walk(ctx, merkledag.GetLinksWithDAG(st.DAG()), root, func(c cid.Cid) bool {
		f(c)
		return true
	})
}
