package marketsvc

import (
	"context"
	"errors"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshnode/meshnode/market/ledger"
	"github.com/meshnode/meshnode/market/listing"
)

// validate is the market topic's validator: size, schema, freshness and every signature
// inside (listing.DecodeMessage). Invalid messages are rejected, which counts against the
// sender's gossip score; valid ones reach the receive loop decoded.
func (m *Service) validate(ctx context.Context, _ peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
	if msg.GetFrom() == m.host.ID() {
		return pubsub.ValidationAccept
	}
	dm, err := listing.DecodeMessage(msg.Data, msg.GetFrom().String(), time.Now(), m.verify)
	if err != nil {
		m.metrics.rejected.WithLabelValues(listing.Reason(err)).Inc()
		m.log.Debug("market message rejected", "from", msg.GetFrom(), "err", err)
		return pubsub.ValidationReject
	}
	if dm.Kind == listing.KindListing {
		m.mu.Lock()
		err := error(nil)
		if m.listings[dm.Listing.ID()] == nil {
			err = m.roomLocked(ctx, dm.Listing.Seller, false)
		}
		m.mu.Unlock()
		if err != nil {
			// Dropped and not forwarded, without blame for the forwarder; a seller over its
			// own limit pays in gossip score.
			m.metrics.rejected.WithLabelValues("table full").Inc()
			if errors.Is(err, errSpam) {
				m.penaliser.Penalise(msg.GetFrom())
			}
			return pubsub.ValidationIgnore
		}
	}
	msg.ValidatorData = dm
	return pubsub.ValidationAccept
}

func (m *Service) receive(ctx context.Context) {
	defer m.wg.Done()
	for {
		msg, err := m.sub.Next(ctx)
		if err != nil {
			return // the subscription ends with the market
		}
		dm, ok := msg.ValidatorData.(*listing.Message)
		if !ok || msg.GetFrom() == m.host.ID() {
			continue
		}
		m.metrics.received.WithLabelValues(dm.Kind).Inc()
		if err := m.apply(ctx, msg.ReceivedFrom, dm); err != nil && ctx.Err() == nil {
			m.log.Debug("market message not applied", "kind", dm.Kind, "from", msg.GetFrom(), "err", err)
		}
	}
}

// apply takes a validated message into this node's state. Entries that wait for earlier ones
// of their chain make this node sync with the peer that forwarded them.
func (m *Service) apply(ctx context.Context, from peer.ID, dm *listing.Message) error {
	switch dm.Kind {
	case listing.KindListing:
		m.mu.Lock()
		isNew, err := m.keepListingLocked(ctx, dm.Listing)
		m.mu.Unlock()
		if isNew && dm.Listing.Price > 0 {
			return m.refreshAccess(ctx) // this node may hold the expert (bought elsewhere)
		}
		return err
	case listing.KindReview:
		m.mu.Lock()
		defer m.mu.Unlock()
		_, err := m.keepReviewLocked(ctx, dm.Review)
		return err
	case listing.KindUnlist:
		m.mu.Lock()
		isNew, err := m.keepWithdrawalLocked(ctx, dm.Unlist)
		m.mu.Unlock()
		if isNew {
			return m.refreshAccess(ctx)
		}
		return err
	case listing.KindEntries:
		m.mu.Lock()
		added, proofs, waiting, err := m.ingestLocked(ctx, dm.Entries)
		m.mu.Unlock()
		m.afterLedgerChange(ctx, added, proofs)
		if waiting {
			m.sync.ask(from)
		}
		return err
	case listing.KindProof:
		m.mu.Lock()
		err := m.proveLocked(ctx, dm.Entries[0], dm.Entries[1]) // gossip itself spreads the proof on
		m.mu.Unlock()
		if err != nil {
			return err
		}
		return m.refreshAccess(ctx) // receipts of refused payments open nothing any more
	}
	return nil
}

// proveLocked takes a double-spend proof a peer sent (by gossip or sync) and journals it
// when it refuses a key from a lower sequence than before.
func (m *Service) proveLocked(ctx context.Context, x, y *ledger.Entry) error {
	d, err := m.book.Prove(x, y)
	if err != nil || d == nil {
		return err
	}
	m.metrics.doubleSpends.Inc()
	m.log.Warn("double spend reported by a peer", "author", d.Author, "seq", d.Seq, "a", d.AID, "b", d.BID)
	return m.journal.SaveProof(ctx, *d)
}

// afterLedgerChange refreshes the access table when receipts may have arrived, and spreads
// new double-spend proofs.
func (m *Service) afterLedgerChange(ctx context.Context, added []*ledger.Entry, proofs []ledger.DoubleSpend) {
	for _, e := range added {
		if e.Kind == ledger.KindReceipt {
			if err := m.refreshAccess(ctx); err != nil {
				m.log.Warn("market access table", "err", err)
			}
			break
		}
	}
	var msgs []*listing.Message
	for _, d := range proofs {
		msgs = append(msgs, proofMessage(d))
	}
	m.spread(msgs...)
}

// republish sends this node's live listings, its reviews and the tail of its ledger chain
// every interval: gossipsub keeps
// no history, so peers that joined since (or missed a message in the instant a connection
// opened) hear them at the next round.
func (m *Service) republish(ctx context.Context, every time.Duration) {
	defer m.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		var msgs []*listing.Message
		m.mu.Lock()
		if n := m.evictExpiredLocked(ctx, now, listingRetention); n > 0 {
			m.log.Debug("dropped expired listings", "count", n)
		}
		for id := range m.mine {
			l := m.listings[id]
			switch w := m.withdrawn[id]; {
			case l == nil || !now.Before(time.UnixMilli(l.Expires)):
			case w != nil: // withdrawn: its withdrawal until it expires, for nodes that missed it
				msgs = append(msgs, &listing.Message{Kind: listing.KindUnlist, Unlist: w})
			default:
				msgs = append(msgs, &listing.Message{Kind: listing.KindListing, Listing: l})
			}
		}
		for _, set := range m.reviews {
			for _, r := range set.All() {
				if m.myRevs[r.ID()] {
					msgs = append(msgs, &listing.Message{Kind: listing.KindReview, Review: r})
				}
			}
		}
		if chain := m.book.Chain(m.self); len(chain) > 0 {
			// The tail of this node's own chain too: a grant or a sale a peer missed.
			tail := chain[max(0, len(chain)-8):]
			ids := make([]string, len(tail))
			for i, e := range tail {
				ids[i] = m.book.IDOf(e)
			}
			msgs = append(msgs, m.bundleLocked(ids, tail))
		}
		m.mu.Unlock()
		for _, msg := range msgs {
			if err := m.publish(ctx, msg); err != nil && ctx.Err() == nil {
				m.log.Warn("republish", "kind", msg.Kind, "err", err)
			}
		}
	}
}
