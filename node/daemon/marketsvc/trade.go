package marketsvc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshnode/meshnode/market/ledger"
	"github.com/meshnode/meshnode/market/listing"
	"github.com/meshnode/meshnode/node/api"
)

// Errors a buyer gets before anything is written.
var (
	ErrInsufficient   = errors.New("insufficient balance")
	ErrUnknownListing = errors.New("unknown listing")
	ErrRefusedKey     = errors.New("key refused for double spending")
	ErrWithdrawn      = errors.New("withdrawn")
)

// maxBundle bounds the entries one purchase request carries (about 500 bytes each, under
// the protocol's 1 MiB request limit).
const maxBundle = 1500

// Publish signs a listing for a stored expert, keeps it, protects the expert's blocks when it
// has a price, and publishes it.
func (m *Service) Publish(ctx context.Context, req api.PublishRequest) (api.ListingView, error) {
	id, man, err := m.expert(ctx, req.Ref)
	if err != nil {
		return api.ListingView{}, err
	}
	if man.Publisher != m.self {
		// Only an expert's publisher sells it: a listing by anyone else would not gate its blocks
		// on any node (an expert bought or fetched here stays its publisher's).
		who := man.Publisher
		if who == "" {
			who = "no one (the manifest is unsigned)"
		}
		return api.ListingView{}, api.ErrBadRequest.Wrap(fmt.Errorf("publish %s: this node did not publish expert %s (its publisher is %s); only the publisher lists an expert",
			req.Ref, id, who))
	}
	life := m.cfg.DefaultExpiry
	if req.ExpiresMS > 0 {
		life = time.Duration(req.ExpiresMS) * time.Millisecond
	}
	now := time.Now()
	l := &listing.Listing{V: listing.Version, Expert: id.String(), Name: man.Name, Domains: man.Domains, Params: man.Params,
		Price: req.Price, Licence: req.Licence, Time: now.UnixMilli(), Expires: now.Add(life).UnixMilli()}
	for _, e := range man.Evals {
		l.Evals = append(l.Evals, listing.Eval{Dataset: e.Dataset, Metric: e.Metric, Value: e.Value, Samples: e.Samples})
	}
	if err := l.Sign(m.signer); err != nil {
		return api.ListingView{}, err
	}
	if err := l.Verify(m.verify, now); err != nil {
		return api.ListingView{}, api.ErrBadRequest.Wrap(fmt.Errorf("publish %s: %w", req.Ref, err))
	}
	m.mu.Lock()
	_, err = m.keepListingLocked(ctx, l)
	if err == nil {
		if err = m.store.Put(ctx, mkMine.ChildString(l.ID()), []byte{}); err == nil {
			m.mine[l.ID()] = true
		} else {
			err = fmt.Errorf("publish %s: mark listing %s as this node's: %w", req.Ref, l.ID(), err)
		}
	}
	m.mu.Unlock()
	if err != nil {
		return api.ListingView{}, err
	}
	if err := m.refreshAccess(ctx); err != nil {
		return api.ListingView{}, err
	}
	m.blobs.Announce(id)
	m.blobs.Announce(man.Weights)
	if err := m.publish(ctx, &listing.Message{Kind: listing.KindListing, Listing: l}); err != nil {
		m.log.Warn("publish listing now; the next republish round retries", "err", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.viewLocked(l, now, nil), nil
}

// resolve finds the listing a buy names and checks it: signed by its seller, not expired. An
// expired listing still resolves when this node has already journaled a payment for it (a
// resend of a payment whose answer was lost, or a fetch again after a receipt): the payment
// counts against this node's balance whether or not the listing has expired since.
func (m *Service) resolve(ctx context.Context, req api.BuyRequest) (*listing.Listing, error) {
	var l *listing.Listing
	if len(req.Offer) > 0 {
		var err error
		if l, err = listing.DecodeListing(req.Offer); err != nil {
			return nil, api.ErrBadRequest.Wrap(fmt.Errorf("offer: %w", err))
		}
		if req.Listing != "" && l.ID() != req.Listing {
			return nil, api.ErrBadRequest.Wrap(fmt.Errorf("offer has ID %s, not %s", l.ID(), req.Listing))
		}
	} else {
		m.mu.Lock()
		l = m.listings[req.Listing]
		m.mu.Unlock()
		if l == nil {
			return nil, api.ErrBadRequest.Wrap(fmt.Errorf("%w %s: 'market list' shows the listings this node knows", ErrUnknownListing, req.Listing))
		}
	}
	err := l.Verify(m.verify, time.Now())
	if errors.Is(err, listing.ErrExpired) && m.paidFor(l) {
		err = nil
	}
	if err != nil {
		return nil, api.ErrBadRequest.Wrap(fmt.Errorf("listing %s: %w", l.ID(), err))
	}
	if l.Seller == m.self {
		return nil, api.ErrBadRequest.Wrap(fmt.Errorf("listing %s is this node's own", l.ID()))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.withdrawn[l.ID()] != nil && !m.paidForLocked(l) {
		return nil, api.ErrBadRequest.Wrap(fmt.Errorf("listing %s: %w by its seller", l.ID(), ErrWithdrawn))
	}
	if _, err := m.keepListingLocked(ctx, l); err != nil {
		return nil, fmt.Errorf("buy %s: %w", l.ID(), err)
	}
	return l, nil
}

// Buy pays for a listing (for a price: a signed payment, journaled before it leaves, answered
// by the seller's receipt), then fetches the expert by bitswap, verifies and installs it.
func (m *Service) Buy(ctx context.Context, req api.BuyRequest) (api.BuyResult, error) {
	l, err := m.resolve(ctx, req)
	if err != nil {
		m.metrics.purchases.WithLabelValues("rejected").Inc()
		return api.BuyResult{}, err
	}
	id := l.ID()
	res := api.BuyResult{Listing: id, Expert: l.Expert, Seller: l.Seller, Price: l.Price}
	expert, err := cid.Decode(l.Expert)
	if err != nil {
		return res, fmt.Errorf("listing %s: expert: %w", id, err)
	}
	if l.Price > 0 {
		pay, bundle, err := m.preparePayment(ctx, l, id)
		if err != nil {
			m.metrics.purchases.WithLabelValues("rejected").Inc()
			return res, err
		}
		if len(bundle) > maxBundle {
			// The seller hears most entries by gossip; the newest are the ones it may lack.
			bundle = bundle[len(bundle)-maxBundle:]
		}
		res.Payment, res.PaymentID = pay, pay.ID()
		rc := m.receiptOf(pay.ID())
		if rc == nil {
			if rc, err = m.callSeller(ctx, l, id, bundle); err != nil {
				m.metrics.purchases.WithLabelValues("failed").Inc()
				return res, fmt.Errorf("buy %s: payment %s is journaled but has no receipt (run the same buy again to resend it): %w", id, pay.ID(), err)
			}
			if err := m.acceptReceipt(ctx, l, id, pay, rc); err != nil {
				m.metrics.purchases.WithLabelValues("failed").Inc()
				return res, err
			}
		}
		res.Receipt, res.ReceiptID = rc, rc.ID()
	}
	m.mu.Lock()
	res.Balance = m.book.Balance(m.self)
	m.mu.Unlock()
	if l.Price > 0 { // before it arrives: from then on it goes only to its seller's buyers
		if err := m.markBought(ctx, l.Expert, l.Seller); err != nil {
			return res, err
		}
	}
	res.Fetch, err = m.blobs.FetchExpert(ctx, expert)
	if err != nil {
		m.metrics.purchases.WithLabelValues("failed").Inc()
		return res, fmt.Errorf("buy %s: paid, but the expert did not arrive (run the same buy again to fetch without paying again): %w", id, err)
	}
	if err := m.refreshAccess(ctx); err != nil { // our copy is paid content too
		m.log.Warn("market access table", "err", err)
	}
	m.metrics.purchases.WithLabelValues("ok").Inc()
	return res, nil
}

// paidFor reports whether this node's chain holds a payment for the listing (see
// preparePayment: such a payment is resent, never signed again).
func (m *Service) paidFor(l *listing.Listing) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.paidForLocked(l)
}

func (m *Service) paidForLocked(l *listing.Listing) bool {
	id := l.ID()
	for _, e := range m.book.Chain(m.self) {
		if e.Kind == ledger.KindPayment && e.Listing == id && e.To == l.Seller && e.Amount == l.Price {
			return true
		}
	}
	return false
}

func (m *Service) receiptOf(payment string) *ledger.Entry {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.book.ReceiptOf(payment)
}

// preparePayment returns this node's payment for the listing and the entries the seller needs
// with it. An earlier payment for the listing is reused: one with no receipt yet (a crash or a
// lost answer: resending it cannot spend twice), or one already receipted (the expert is
// fetched again, not paid again). A new payment is checked against the balance, signed and
// journaled before it leaves, so a crash can never make this node sign a second entry with
// its sequence number.
func (m *Service) preparePayment(ctx context.Context, l *listing.Listing, id string) (*ledger.Entry, []*ledger.Entry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.book.Refuses(m.self) {
		return nil, nil, fmt.Errorf("%w: this node's key %s", ErrRefusedKey, m.self)
	}
	if m.book.Refuses(l.Seller) {
		return nil, nil, api.ErrBadRequest.Wrap(fmt.Errorf("%w: the seller %s", ErrRefusedKey, l.Seller))
	}
	for _, e := range m.book.Chain(m.self) {
		if e.Kind == ledger.KindPayment && e.Listing == id && e.To == l.Seller && e.Amount == l.Price {
			return e, m.paymentBundleLocked(e), nil
		}
	}
	if bal := m.book.Balance(m.self); bal < l.Price {
		return nil, nil, api.ErrBadRequest.Wrap(fmt.Errorf("%w: %d credits, the listing costs %d", ErrInsufficient, bal, l.Price))
	}
	pay := m.book.Next(m.self, ledger.KindPayment)
	pay.To, pay.Amount, pay.Listing, pay.Time = l.Seller, l.Price, id, time.Now().UnixMilli()
	if err := pay.Sign(m.signer); err != nil {
		return nil, nil, err
	}
	if _, err := m.book.Add(pay); err != nil {
		return nil, nil, fmt.Errorf("own payment: %w", err)
	}
	if st := m.book.Status(pay.ID()); st != ledger.StatusOK {
		err := m.book.Undo(pay)
		return nil, nil, errors.Join(fmt.Errorf("own payment is %s", st), err)
	}
	if err := m.journal.Commit(ctx, m.book, pay); err != nil {
		return nil, nil, fmt.Errorf("journal the payment (nothing was paid): %w", err)
	}
	return pay, m.paymentBundleLocked(pay), nil
}

// paymentBundleLocked is what a purchase request carries: the entries that justify the
// payment, the payment last (the seller reads it there).
func (m *Service) paymentBundleLocked(pay *ledger.Entry) []*ledger.Entry {
	id := m.book.IDOf(pay)
	out := make([]*ledger.Entry, 0, 8)
	for _, e := range m.book.Closure(id) {
		if e != pay {
			out = append(out, e)
		}
	}
	return append(out, pay)
}

// callSeller sends the payment to the seller and returns its answer.
func (m *Service) callSeller(ctx context.Context, l *listing.Listing, id string, bundle []*ledger.Entry) (*ledger.Entry, error) {
	seller, err := peer.Decode(l.Seller)
	if err != nil {
		return nil, fmt.Errorf("seller %q: %w", l.Seller, err)
	}
	if m.host.Network().Connectedness(seller) != network.Connected {
		fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := m.host.Connect(fctx, peer.AddrInfo{ID: seller}) // the routed host looks it up
		cancel()
		if err != nil {
			return nil, fmt.Errorf("reach seller %s: %w", seller, err)
		}
	}
	req, _ := json.Marshal(listing.PurchaseRequest{Listing: id, Entries: bundle}) // entries and strings, cannot fail
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	raw, err := m.client.Call(cctx, seller, req)
	if err != nil {
		return nil, fmt.Errorf("seller %s: %w", seller, err)
	}
	rc, err := listing.DecodePurchaseResponse(raw)
	if err != nil {
		return nil, fmt.Errorf("seller %s: %w", seller, err)
	}
	return rc, nil
}

// acceptReceipt checks the seller's receipt against the payment and journals it. A forged
// receipt (not the seller's signature) or a replayed one (naming another payment or listing)
// is refused, and the payment stays pending.
func (m *Service) acceptReceipt(ctx context.Context, l *listing.Listing, id string, pay, rc *ledger.Entry) error {
	if rc.Kind != ledger.KindReceipt || rc.Author != l.Seller || rc.Ref != pay.ID() || rc.Listing != id {
		return fmt.Errorf("buy %s: the seller's answer is not a receipt by %s for payment %s (got a %s by %s for %s)",
			id, l.Seller, pay.ID(), rc.Kind, rc.Author, rc.Ref)
	}
	m.mu.Lock()
	added, proofs, _, err := m.ingestLocked(ctx, []*ledger.Entry{rc})
	if err == nil && !m.receiptedLocked(pay.ID()) {
		err = fmt.Errorf("this book judges it %s (the payment is %s)", m.book.Status(rc.ID()), m.book.Status(pay.ID()))
	}
	m.mu.Unlock()
	m.afterLedgerChange(ctx, added, proofs)
	if err != nil {
		return fmt.Errorf("buy %s: the seller's receipt is invalid: %w", id, err)
	}
	return nil
}

// serveBuy is the seller's side of Protocol: check the payment against the listing and
// the buyer's chain, countersign a receipt, journal both, then answer.
func (m *Service) serveBuy(ctx context.Context, from peer.ID, raw []byte) ([]byte, error) {
	req, err := listing.DecodePurchaseRequest(raw)
	if err != nil {
		return nil, err
	}
	rc, added, proofs, err := m.sell(ctx, req)
	m.afterLedgerChange(ctx, added, proofs)
	if err != nil {
		m.metrics.sales.WithLabelValues("rejected").Inc()
		m.log.Info("purchase refused", "buyer", from, "listing", req.Listing, "err", err)
		return nil, err
	}
	m.metrics.sales.WithLabelValues("ok").Inc()
	if err := m.refreshAccess(ctx); err != nil {
		m.log.Warn("market access table", "err", err)
	}
	b, _ := json.Marshal(listing.PurchaseResponse{Receipt: rc}) // cannot fail
	return b, nil
}

func (m *Service) sell(ctx context.Context, req *listing.PurchaseRequest) (*ledger.Entry, []*ledger.Entry, []ledger.DoubleSpend, error) {
	pay := req.Payment()
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.listings[req.Listing]
	switch {
	case l == nil || !m.mine[req.Listing]:
		return nil, nil, nil, fmt.Errorf("listing %s is not on sale here", req.Listing)
	case m.withdrawn[req.Listing] != nil && m.book.ReceiptOf(pay.ID()) == nil:
		return nil, nil, nil, fmt.Errorf("listing %s: %w by its seller", req.Listing, ErrWithdrawn)
	case pay.Kind != ledger.KindPayment || pay.To != m.self || pay.Listing != req.Listing:
		return nil, nil, nil, fmt.Errorf("the last entry is not a payment to %s for listing %s", m.self, req.Listing)
	case pay.Amount != l.Price:
		return nil, nil, nil, fmt.Errorf("payment of %d does not match the price %d", pay.Amount, l.Price)
	}
	if rc := m.book.ReceiptOf(pay.ID()); rc != nil {
		return rc, nil, nil, nil // a resent payment gets its receipt again, and nothing moves twice
	}
	// The seller's clock decides: a fresh payment, signed while the listing was live.
	now := time.Now()
	if err := l.AcceptsPurchase(pay.Time, now); err != nil {
		return nil, nil, nil, fmt.Errorf("listing %s: %w", req.Listing, err)
	}
	added, proofs, _, err := m.ingestLocked(ctx, req.Entries)
	switch st := m.book.Status(pay.ID()); st {
	case ledger.StatusOK:
	case ledger.StatusUnfunded:
		return nil, added, proofs, fmt.Errorf("payment rejected: unfunded (this book holds %d for %s after its earlier payments)", m.book.Balance(pay.Author), pay.Author)
	default:
		if err == nil {
			err = fmt.Errorf("it is %s here (send the entries before it)", st)
		}
		return nil, added, proofs, fmt.Errorf("payment rejected: %w", err)
	}
	rc := m.book.Next(m.self, ledger.KindReceipt)
	rc.Ref, rc.Listing, rc.Time = pay.ID(), req.Listing, now.UnixMilli()
	if err := rc.Sign(m.signer); err != nil {
		return nil, added, proofs, err
	}
	if _, err := m.book.Add(rc); err != nil {
		return nil, added, proofs, fmt.Errorf("own receipt: %w", err)
	}
	if err := m.journal.Commit(ctx, m.book, rc); err != nil {
		return nil, added, proofs, fmt.Errorf("journal the receipt: %w", err)
	}
	added = append(added, rc)
	m.spreadLocked(rc)
	return rc, added, proofs, nil
}

// spreadLocked gossips the closure of an entry (mu held: it reads the book).
func (m *Service) spreadLocked(e *ledger.Entry) {
	m.spread(m.bundleLocked([]string{e.ID()}, []*ledger.Entry{e}))
}
