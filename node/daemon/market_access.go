package daemon

import (
	"context"
	"fmt"

	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshnode/meshnode/market/ledger"
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
// (manifest and weights, walked through their DAGs) and, from the book, every receipted
// payment for a listing of each.
func (m *market) refreshAccess(ctx context.Context) error {
	m.refreshMu.Lock() // one rebuild at a time, so an older table never replaces a newer one
	defer m.refreshMu.Unlock()
	m.mu.Lock()
	paid := make([]string, 0, len(m.paid))
	for id := range m.paid {
		paid = append(paid, id)
	}
	allowed := map[string]map[string]bool{}
	for _, e := range m.book.Entries() {
		if e.Kind != ledger.KindReceipt {
			continue
		}
		l, p := m.listings[e.Listing], m.book.Get(e.Ref)
		if l == nil || p == nil || l.Seller != e.Author {
			continue
		}
		if allowed[l.Expert] == nil {
			allowed[l.Expert] = map[string]bool{}
		}
		allowed[l.Expert][p.Author] = true
	}
	m.mu.Unlock()
	blocks := map[string]string{}
	st, err := m.d.Repo.Store()
	if err != nil {
		return err
	}
	for _, id := range paid {
		root, err := cid.Decode(id)
		if err != nil {
			continue
		}
		man, err := st.GetExpert(ctx, root)
		if err != nil {
			continue // not held here: nothing to serve
		}
		for _, r := range []cid.Cid{root, man.Weights} {
			if err := m.blocksOf(ctx, r, func(c cid.Cid) { blocks[string(c.Hash())] = id }); err != nil {
				return fmt.Errorf("list the blocks of paid expert %s: %w", id, err)
			}
		}
	}
	m.access.Store(&accessTable{blocks: blocks, allowed: allowed})
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
