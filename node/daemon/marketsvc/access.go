package marketsvc

import (
	"context"
	"fmt"

	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"

	"github.com/meshnode/meshnode/market/listing"
)

// Restriction is a paid expert held here, as the exposure table sees it: its blocks go only
// to the holders of a receipt from its seller.
type Restriction struct {
	Expert  string          // the expert's ID
	Holders map[string]bool // peer IDs holding a receipt for a listing of it by its publisher
	Mine    bool            // this node lists it (announce it, so buyers find the seller)
	Open    bool            // its publisher (this node) withdrew its paid listing as free: anyone gets it
}

// mkBought holds the experts this node bought for a price: expert ID -> seller. A bought
// expert stays restricted after its listing expires or is forgotten (then no one may fetch it
// from here at all).
var mkBought = ds.NewKey("/bought")

// Restrictions lists the paid experts this node holds: those with a paid listing by their
// publisher (the manifest's signer; listing.ComputeAccess) and those it bought. Only listings
// by an expert's publisher count, for paying and for access alike: a listing by anyone else
// neither locks nor opens an expert. The exposure calls it on every rebuild, holding its
// rebuild lock (see Service's lock order).
func (m *Service) Restrictions(ctx context.Context) ([]Restriction, error) {
	bought, err := m.query(ctx, mkBought)
	if err != nil {
		return nil, fmt.Errorf("read bought experts: %w", err)
	}
	candidates, paidFor := map[string]bool{}, map[string]bool{}
	for _, e := range bought {
		id := ds.NewKey(e.Key).BaseNamespace()
		candidates[id], paidFor[id] = true, true
	}
	m.mu.Lock()
	mine, lifted := map[string]bool{}, map[string]bool{}
	for id, l := range m.listings {
		if l.Price > 0 {
			candidates[l.Expert] = true
			if m.mine[id] {
				mine[l.Expert] = true
				if w := m.withdrawn[id]; w != nil && w.Free {
					lifted[l.Expert] = true
				}
			}
		}
	}
	m.mu.Unlock()
	publishers := map[string]string{}
	for id := range candidates {
		root, err := cid.Decode(id)
		if err != nil {
			continue
		}
		man, err := m.expertStore.GetExpert(ctx, root)
		if err != nil {
			continue // not held here: nothing to serve, and no publisher to check listings against
		}
		publishers[id] = man.Publisher
	}
	m.mu.Lock()
	a := listing.ComputeAccess(m.book, m.listings, func(expert string) (string, bool) {
		p, ok := publishers[expert]
		return p, ok
	}, m.liftedLocked())
	m.mu.Unlock()
	var out []Restriction
	for id := range publishers {
		if !a.Paid[id] && !paidFor[id] {
			if lifted[id] && publishers[id] == m.self {
				out = append(out, Restriction{Expert: id, Mine: true, Open: true})
			}
			continue
		}
		out = append(out, Restriction{Expert: id, Holders: a.Allowed[id], Mine: mine[id]})
	}
	return out, nil
}

// refreshAccess rebuilds the node's exposure table after a change of the market's (a listing,
// a receipt, a purchase).
func (m *Service) refreshAccess(ctx context.Context) error {
	return m.exposure.Refresh(ctx)
}

// markBought remembers that this node paid for an expert.
func (m *Service) markBought(ctx context.Context, expert, seller string) error {
	if err := m.store.Put(ctx, mkBought.ChildString(expert), []byte(seller)); err != nil {
		return fmt.Errorf("remember bought expert %s: %w", expert, err)
	}
	return nil
}

// ExposureOf says, for expert serve, who gets a served expert's blocks: anyone, or (for a
// bought or paid one) only receipt holders, with the licence of its listing when known.
func (m *Service) ExposureOf(ctx context.Context, expert string) string {
	seller, err := m.store.Get(ctx, mkBought.ChildString(expert))
	m.mu.Lock()
	defer m.mu.Unlock()
	licence, paid := "", false
	for _, l := range m.listings {
		if l.Expert == expert && l.Price > 0 && (err != nil || l.Seller == string(seller)) {
			paid = true
			if l.Licence != "" {
				licence = l.Licence
			}
		}
	}
	switch {
	case err == nil:
		s := fmt.Sprintf("bought from %s: its weights go only to holders of a receipt from that seller", seller)
		if licence != "" {
			s += "; licence: " + licence + " (check it allows answering others' queries)"
		}
		return s
	case paid:
		return "listed for a price: its weights go only to buyers; anyone may query it"
	}
	return "anyone may fetch its weights and query it"
}
