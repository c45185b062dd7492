package marketsvc

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/meshnode/meshnode/experts/dataset"
	"github.com/meshnode/meshnode/market/ledger"
	"github.com/meshnode/meshnode/market/listing"
	"github.com/meshnode/meshnode/node/api"
)

// viewLocked renders a listing with what this node knows about it.
func (m *Service) viewLocked(l *listing.Listing, now time.Time, sales map[string]int) api.ListingView {
	id := l.ID()
	v := api.ListingView{ID: id, Listing: *l, Mine: m.mine[id], Reviews: []api.ReviewView{},
		ExpiresInSec: time.UnixMilli(l.Expires).Sub(now).Seconds()}
	if set := m.reviews[id]; set != nil {
		for _, r := range set.All() {
			v.Reviews = append(v.Reviews, api.ReviewView{ID: r.ID(), Review: *r, Verified: m.reviewVerifiedLocked(r)})
		}
		// Only verified purchases count: reviews from free keys cannot move min_accuracy.
		v.ReviewMean, _ = set.Mean(m.reviewVerifiedLocked)
	}
	v.Sales = sales[id]
	return v
}

// salesLocked counts the receipts per listing, by the listing's seller.
func (m *Service) salesLocked() map[string]int {
	out := map[string]int{}
	for _, e := range m.book.Entries() {
		if l := m.listings[e.Listing]; e.Kind == ledger.KindReceipt && l != nil && e.Author == l.Seller {
			out[e.Listing]++
		}
	}
	return out
}

// list answers market list: live listings, filtered by ?domain=, ?max_price= and
// ?min_accuracy= (the seller's evaluated accuracy, or else the reviews' mean), cheapest first.
func (m *Service) list(r *http.Request) (any, error) {
	q := r.URL.Query()
	domain := q.Get("domain")
	maxPrice, minAcc := uint64(1<<63), -1.0
	if s := q.Get("max_price"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return nil, api.ErrBadRequest.Wrap(fmt.Errorf("max_price %q: %w", s, err))
		}
		maxPrice = v
	}
	if s := q.Get("min_accuracy"); s != "" {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, api.ErrBadRequest.Wrap(fmt.Errorf("min_accuracy %q: %w", s, err))
		}
		minAcc = v
	}
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []api.ListingView{}
	sales := m.salesLocked()
	for _, l := range m.listings {
		if !now.Before(time.UnixMilli(l.Expires)) || l.Price > maxPrice || m.book.Refuses(l.Seller) || m.withdrawn[l.ID()] != nil {
			continue
		}
		if domain != "" && !contains(l.Domains, domain) {
			continue
		}
		v := m.viewLocked(l, now, sales)
		acc, ok := l.Accuracy()
		if !ok {
			acc = v.ReviewMean
		}
		if minAcc >= 0 && acc < minAcc {
			continue
		}
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Price != out[j].Price {
			return out[i].Price < out[j].Price
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (m *Service) balance() api.BalanceInfo {
	m.mu.Lock()
	defer m.mu.Unlock()
	return api.BalanceInfo{PeerID: m.self, Balance: m.book.Balance(m.self), Genesis: m.cfg.Genesis,
		Entries: m.book.Len(), Chain: len(m.book.Chain(m.self)), Pending: len(m.book.Pending(m.self)), Refused: m.book.Refuses(m.self)}
}

// history lists both sides of every entry involving this node.
func (m *Service) history() []api.HistoryItem {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []api.HistoryItem{}
	for _, e := range m.book.History(m.self) {
		dir := "in"
		switch {
		case e.Kind == ledger.KindGrant:
			dir = "grant"
		case e.Kind == ledger.KindPayment && e.Author == m.self:
			dir = "out"
		case e.Kind == ledger.KindReceipt && e.Author == m.self:
			dir = "receipt-out"
		case e.Kind == ledger.KindReceipt:
			dir = "receipt-in"
		}
		id := m.book.IDOf(e)
		out = append(out, api.HistoryItem{ID: id, Entry: *e, Direction: dir, Status: m.book.Status(id).String()})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time < out[j].Time })
	return out
}

// bookView lists every key's balance as this node's book computes it: nodes whose books hold
// the same entries show the same view.
func (m *Service) bookView() api.BookView {
	m.mu.Lock()
	defer m.mu.Unlock()
	v := api.BookView{Entries: m.book.Len(), Waiting: m.book.Waiting(), Keys: []api.BookKey{}}
	for _, h := range m.book.Heads("", math.MaxInt) {
		k := api.BookKey{Key: h.Author, Balance: m.book.Balance(h.Author), Chain: int(h.Seq), Refused: h.Fork}
		for _, e := range m.book.Chain(h.Author) {
			if m.book.Status(m.book.IDOf(e)) == ledger.StatusUnfunded {
				k.Unfunded++
			}
		}
		v.Keys = append(v.Keys, k)
	}
	return v
}

func (m *Service) refused() []api.RefusedKey {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []api.RefusedKey{}
	for _, d := range m.book.Refused() {
		out = append(out, api.RefusedKey{Author: d.Author, Seq: d.Seq, A: d.AID, B: d.BID})
	}
	return out
}

// Import adds signed entries (in chain order) to the book and spreads the new ones. Entries
// the book refuses are an error naming the first; the valid ones before it are kept.
func (m *Service) Import(ctx context.Context, entries []*ledger.Entry) (api.ImportResult, error) {
	if len(entries) == 0 {
		return api.ImportResult{}, api.ErrBadRequest.Wrap(errors.New("import: no entries"))
	}
	m.mu.Lock()
	added, proofs, _, err := m.ingestLocked(ctx, entries)
	if len(added) > 0 {
		ids := make([]string, len(added))
		for i, e := range added {
			ids[i] = e.ID()
		}
		m.spread(m.bundleLocked(ids, added))
	}
	m.mu.Unlock()
	m.afterLedgerChange(ctx, added, proofs)
	res := api.ImportResult{Added: len(added), Known: len(entries) - len(added)}
	if errors.Is(err, ledger.ErrInvalid) {
		return res, api.ErrBadRequest.Wrap(fmt.Errorf("import: %w", err))
	}
	if errors.Is(err, ledger.ErrFull) {
		return res, api.ErrUnavailable.Wrap(fmt.Errorf("import: %w", err))
	}
	if err != nil { // the journal could not be written: this node's fault, not the request's
		return res, fmt.Errorf("import: %w", err)
	}
	return res, nil
}

// Grant creates credits: only a key listed in market.issuers may.
func (m *Service) Grant(ctx context.Context, req api.GrantRequest) (*ledger.Entry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.book.Rules().Issuers[m.self] {
		return nil, api.ErrBadRequest.Wrap(fmt.Errorf("grant: this node (%s) is not an issuer (market.issuers); only issuers grant credits", m.self))
	}
	e := m.book.Next(m.self, ledger.KindGrant)
	e.To, e.Amount, e.Time = req.To, req.Amount, time.Now().UnixMilli()
	if err := e.Sign(m.signer); err != nil {
		return nil, err
	}
	if _, err := m.book.Add(e); err != nil {
		return nil, api.ErrBadRequest.Wrap(fmt.Errorf("grant: %w", err))
	}
	if err := m.journal.Commit(ctx, m.book, e); err != nil {
		return nil, fmt.Errorf("grant: %w", err)
	}
	m.spreadLocked(e)
	return e, nil
}

// Review evaluates a bought expert on a data set of the catalog and publishes the signed
// result. Only a buyer reviews a paid listing: the review names its receipted payment.
func (m *Service) Review(ctx context.Context, req api.ReviewRequest) (*listing.Review, error) {
	m.mu.Lock()
	l := m.listings[req.Listing]
	var payment string
	for _, e := range m.book.Chain(m.self) {
		if e.Kind == ledger.KindPayment && e.Listing == req.Listing && m.receiptedLocked(e.ID()) {
			payment = e.ID()
		}
	}
	m.mu.Unlock()
	if l == nil {
		return nil, api.ErrBadRequest.Wrap(fmt.Errorf("%w %s", ErrUnknownListing, req.Listing))
	}
	if l.Price > 0 && payment == "" {
		return nil, api.ErrBadRequest.Wrap(fmt.Errorf("review %s: this node has no receipted payment for it; only buyers review", req.Listing))
	}
	ev, err := m.evaluator.EvalExpert(ctx, dataset.DefaultCatalog(), l.Expert, req.Dataset, req.Limit)
	if err != nil {
		return nil, api.ErrBadRequest.Wrap(fmt.Errorf("review %s: %w", req.Listing, err))
	}
	r := &listing.Review{V: listing.Version, Listing: req.Listing, Expert: l.Expert, Payment: payment, Dataset: ev.Dataset,
		Digest: ev.Digest, Samples: ev.Evaluation.Samples, Accuracy: ev.Evaluation.Accuracy, Rating: req.Rating, Text: req.Text,
		Time: time.Now().UnixMilli()}
	if err := r.Sign(m.signer); err != nil {
		return nil, err
	}
	if err := r.Verify(m.verify, time.Now()); err != nil {
		return nil, api.ErrBadRequest.Wrap(fmt.Errorf("review: %w", err))
	}
	m.mu.Lock()
	_, err = m.keepReviewLocked(ctx, r)
	if err == nil {
		err = m.store.Put(ctx, mkMyRevs.ChildString(r.ID()), []byte{})
		m.myRevs[r.ID()] = true
	}
	m.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if err := m.publish(ctx, &listing.Message{Kind: listing.KindReview, Review: r}); err != nil {
		m.log.Warn("publish review now; the next republish round retries", "err", err)
	}
	return r, nil
}
