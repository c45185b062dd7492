package marketsvc

import (
	"context"
	"fmt"
	"time"

	ds "github.com/ipfs/go-datastore"

	"github.com/meshnode/meshnode/market/listing"
	"github.com/meshnode/meshnode/node/api"
)

// mkWithdrawn holds the withdrawals of listings this node keeps: listing ID -> the seller's
// signed withdrawal.
var mkWithdrawn = ds.NewKey("/withdrawn")

// Unlist withdraws one of this node's listings: it is off sale everywhere the withdrawal
// reaches, receipts already given stay valid, and with Free its expert's blocks go to anyone
// from now on (otherwise only to those who bought it).
func (m *Service) Unlist(ctx context.Context, req api.UnlistRequest) (api.ListingView, error) {
	m.mu.Lock()
	l := m.listings[req.Listing]
	mine := m.mine[req.Listing]
	m.mu.Unlock()
	switch {
	case l == nil:
		return api.ListingView{}, api.ErrBadRequest.Wrap(fmt.Errorf("unlist: %w %s", ErrUnknownListing, req.Listing))
	case !mine:
		return api.ListingView{}, api.ErrBadRequest.Wrap(fmt.Errorf("unlist %s: the listing is %s's; only its seller withdraws it", req.Listing, l.Seller))
	}
	w := &listing.Withdrawal{V: listing.Version, Listing: req.Listing, Free: req.Free, Time: time.Now().UnixMilli()}
	if err := w.Sign(m.signer); err != nil {
		return api.ListingView{}, err
	}
	m.mu.Lock()
	_, err := m.keepWithdrawalLocked(ctx, w)
	m.mu.Unlock()
	if err != nil {
		return api.ListingView{}, err
	}
	if err := m.refreshAccess(ctx); err != nil {
		return api.ListingView{}, err
	}
	if err := m.publish(ctx, &listing.Message{Kind: listing.KindUnlist, Unlist: w}); err != nil {
		m.log.Warn("publish withdrawal now; the next republish round retries", "err", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.viewLocked(l, time.Now(), nil), nil
}

// keepWithdrawalLocked keeps a verified withdrawal of a listing this node holds, by that
// listing's seller; it reports whether it was new. A later one replaces an earlier one (a
// seller may lift a closed withdrawal to free).
func (m *Service) keepWithdrawalLocked(ctx context.Context, w *listing.Withdrawal) (bool, error) {
	l := m.listings[w.Listing]
	if l == nil {
		return false, fmt.Errorf("withdrawal of %w %s", ErrUnknownListing, w.Listing)
	}
	if !w.Withdraws(l) {
		return false, fmt.Errorf("withdrawal of listing %s by %s, not its seller %s", w.Listing, w.Seller, l.Seller)
	}
	if old := m.withdrawn[w.Listing]; old != nil && (old.Time > w.Time || old.Time == w.Time && old.Free == w.Free) {
		return false, nil
	}
	if err := m.store.Put(ctx, mkWithdrawn.ChildString(w.Listing), w.Encode()); err != nil {
		return false, fmt.Errorf("keep withdrawal of %s: %w", w.Listing, err)
	}
	m.withdrawn[w.Listing] = w
	return true, nil
}

// loadWithdrawals reads the kept withdrawals (after the listings).
func (m *Service) loadWithdrawals(ctx context.Context) error {
	recs, err := m.query(ctx, mkWithdrawn)
	if err != nil {
		return err
	}
	for _, r := range recs {
		w, err := listing.DecodeWithdrawal(r.Value)
		if err == nil {
			err = w.Verify(m.verify, time.Now())
		}
		if err == nil && !w.Withdraws(m.listings[w.Listing]) {
			err = fmt.Errorf("names no listing of its seller held here")
		}
		if err != nil {
			m.log.Warn("drop a stored withdrawal", "key", r.Key, "err", err)
			if err := m.store.Delete(ctx, ds.NewKey(r.Key)); err != nil {
				return fmt.Errorf("drop a stored withdrawal: %w", err)
			}
			continue
		}
		m.withdrawn[w.Listing] = w
	}
	return nil
}

// liftedLocked lists the listings withdrawn as free: their experts are paid no more.
func (m *Service) liftedLocked() map[string]bool {
	out := map[string]bool{}
	for id, w := range m.withdrawn {
		if w.Free {
			out[id] = true
		}
	}
	return out
}
