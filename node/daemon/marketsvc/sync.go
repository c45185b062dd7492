package marketsvc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/meshnode/meshnode/market/ledger"
	"github.com/meshnode/meshnode/market/listing"
	"github.com/meshnode/meshnode/mesh/rpc"
)

// LedgerSyncProtocol is the ledger's anti-entropy stream: a peer asks for a page of chain
// heads, or for up to 64 chains each from a sequence on ("chain K from N"), and gets what this
// node's book holds. Gossip spreads new entries; sync brings what gossip missed (a partition, a node
// that was down or joined late, an entry that came before its predecessor).
const LedgerSyncProtocol = protocol.ID("/meshnode/ledger/sync/1.0.0")

// Bounds of one sync with one peer: pages of heads, chain parts asked for, and time.
const (
	syncMaxPages    = 256
	syncMaxRequests = 20_000
	syncTimeout     = 2 * time.Minute
	syncAgain       = 10 * time.Second // a peer asked to sync again sooner is skipped
)

// ledgerSync runs the sync protocol: it serves this node's book and, in one goroutine, syncs
// with peers: each newly identified one that speaks the protocol, one at random every
// market.sync, and any that forwarded an entry which came before its predecessor.
type ledgerSync struct {
	m          *Service
	client     *rpc.Client
	asks       chan peer.ID
	identified event.Subscription
	last       map[peer.ID]time.Time // when a sync with the peer last started (run's alone)
}

func newLedgerSync(m *Service) (*ledgerSync, error) {
	h := m.host
	sub, err := h.EventBus().Subscribe(new(event.EvtPeerIdentificationCompleted))
	if err != nil {
		return nil, fmt.Errorf("ledger sync: subscribe to identify events: %w", err)
	}
	s := &ledgerSync{m: m, asks: make(chan peer.ID, 64), last: map[peer.ID]time.Time{}, identified: sub,
		client: rpc.NewClient(h, LedgerSyncProtocol, listing.MaxSyncResponseBytes+1024, 2)}
	rpc.Serve(h, LedgerSyncProtocol, s.serve, rpc.ServerOptions{MaxRequest: listing.MaxSyncRequestBytes,
		PeerRate: 50, PeerBurst: 200, PeerBusy: 0.5, Logger: m.log})
	for _, p := range h.Network().Peers() { // identified before the market started
		s.ask(p)
	}
	return s, nil
}

// ask queues a sync with p (dropped when the queue is full: the periodic round catches up).
func (s *ledgerSync) ask(p peer.ID) {
	if s == nil || p == s.m.host.ID() {
		return
	}
	select {
	case s.asks <- p:
	default:
	}
}

func (s *ledgerSync) close() error {
	s.m.host.RemoveStreamHandler(LedgerSyncProtocol)
	return errors.Join(s.identified.Close(), s.client.Close())
}

// run syncs until ctx ends (the market's lifetime).
func (s *ledgerSync) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		var p peer.ID
		select {
		case <-ctx.Done():
			return
		case p = <-s.asks:
		case ev, ok := <-s.identified.Out():
			if !ok {
				return
			}
			id := ev.(event.EvtPeerIdentificationCompleted)
			if !slices.Contains(id.Protocols, LedgerSyncProtocol) {
				continue
			}
			p = id.Peer
		case <-t.C:
			peers := s.m.host.Network().Peers()
			if len(peers) == 0 {
				continue
			}
			p = peers[rand.IntN(len(peers))]
		}
		if time.Since(s.last[p]) < syncAgain {
			continue
		}
		if len(s.last) > 4096 {
			clear(s.last)
		}
		s.last[p] = time.Now()
		n, err := s.syncWith(ctx, p)
		switch {
		case err != nil && ctx.Err() == nil:
			s.m.metrics.syncs.WithLabelValues("failed").Inc()
			s.m.log.Debug("ledger sync", "peer", p, "err", err)
		case err == nil:
			s.m.metrics.syncs.WithLabelValues("ok").Inc()
			if n > 0 {
				s.m.log.Info("ledger sync", "peer", p, "entries", n)
			}
		}
	}
}

// call asks p one question and decodes its answer.
func (s *ledgerSync) call(ctx context.Context, p peer.ID, req *listing.SyncRequest) (*listing.SyncResponse, error) {
	raw, _ := json.Marshal(req) // plain structs, cannot fail
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	out, err := s.client.Call(cctx, p, raw)
	if err != nil {
		return nil, err
	}
	s.m.metrics.syncBytes.Add(float64(len(out)))
	return listing.DecodeSyncResponse(req, out)
}

// syncWith fetches from p what this book lacks: p's heads page by page, then the chain parts
// that Wants lists, up to MaxSyncChains a request, and adds them. It returns how many entries
// joined the book.
func (s *ledgerSync) syncWith(ctx context.Context, p peer.ID) (int, error) {
	if err := protocolOf(s.m.host.Peerstore().SupportsProtocols, p); err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, syncTimeout)
	defer cancel()
	m := s.m
	total, requests := 0, 0
	after := ""
	for page := 0; page < syncMaxPages; page++ {
		hr, err := s.call(ctx, p, &listing.SyncRequest{Heads: &listing.HeadsRequest{After: after, Limit: listing.MaxSyncHeads}})
		if err != nil {
			return total, fmt.Errorf("heads after %q: %w", after, err)
		}
		m.mu.Lock()
		queue := m.book.Wants(hr.Heads)
		m.mu.Unlock()
		headSeq := make(map[string]uint64, len(hr.Heads))
		for _, h := range hr.Heads {
			headSeq[h.Author] = h.Seq
		}
		for len(queue) > 0 {
			if requests++; requests > syncMaxRequests {
				return total, fmt.Errorf("more than %d requests for chain parts: the rest waits for the next sync", syncMaxRequests)
			}
			batch := queue[:min(len(queue), listing.MaxSyncChains)]
			queue = queue[len(batch):]
			cr, err := s.call(ctx, p, &listing.SyncRequest{Chains: batch})
			if err != nil {
				return total, fmt.Errorf("%d chains: %w", len(batch), err)
			}
			n, err := s.take(ctx, cr)
			total += n
			if err != nil {
				return total, fmt.Errorf("%d chains: %w", len(batch), err)
			}
			if len(cr.Entries) == 0 {
				continue // the peer has nothing more of these (or no room to say it): next time
			}
			// Chains the answer cut short are asked for again from where it stopped.
			lastSeq := map[string]uint64{}
			for _, e := range cr.Entries {
				lastSeq[e.Author] = e.Seq
			}
			for _, w := range batch {
				got, ok := lastSeq[w.Author]
				if !ok {
					got = w.From - 1
				}
				if got < headSeq[w.Author] {
					queue = append(queue, ledger.Want{Author: w.Author, From: got + 1})
				}
			}
		}
		if len(hr.Heads) < listing.MaxSyncHeads {
			break
		}
		after = hr.Heads[len(hr.Heads)-1].Author
	}
	m.metrics.synced.Add(float64(total))
	return total, nil
}

// take adds chain parts (and proofs) to the book. Entries the book refuses as invalid make the
// answer an error (the peer served them); refusals for double spending or for room do not.
func (s *ledgerSync) take(ctx context.Context, r *listing.SyncResponse) (int, error) {
	m := s.m
	m.mu.Lock()
	var perrs []error
	for i := 0; i+1 < len(r.Proofs); i += 2 {
		if err := m.proveLocked(ctx, r.Proofs[i], r.Proofs[i+1]); !errors.Is(err, ledger.ErrFull) {
			perrs = append(perrs, err)
		}
	}
	added, proofs, _, err := m.ingestLocked(ctx, r.Entries)
	m.mu.Unlock()
	m.afterLedgerChange(ctx, added, proofs)
	if len(r.Proofs) > 0 {
		if err := m.refreshAccess(ctx); err != nil {
			m.log.Warn("market access table", "err", err)
		}
	}
	if errors.Is(err, ledger.ErrRefused) || errors.Is(err, ledger.ErrFull) || len(proofs) > 0 {
		err = nil
	}
	return len(added), errors.Join(append(perrs, err)...)
}

// serve answers one sync question from this node's book.
func (s *ledgerSync) serve(_ context.Context, _ peer.ID, raw []byte) ([]byte, error) {
	req, err := listing.DecodeSyncRequest(raw)
	if err != nil {
		return nil, err
	}
	m := s.m
	var resp listing.SyncResponse
	m.mu.Lock()
	if req.Heads != nil {
		resp.Heads = m.book.Heads(req.Heads.After, req.Heads.Limit)
	} else {
		size := 0
		const budget = listing.MaxSyncResponseBytes - 64<<10
	chains:
		for _, w := range req.Chains {
			if f := m.book.Fork(w.Author); f != nil {
				if size += len(f.A.Encode()) + len(f.B.Encode()) + 2; size > budget {
					break
				}
				resp.Proofs = append(resp.Proofs, f.A, f.B)
			}
			for _, e := range m.book.ChainFrom(w.Author, w.From, listing.MaxSyncEntries) {
				if size += len(e.Encode()) + 1; size > budget {
					break chains
				}
				resp.Entries = append(resp.Entries, e)
			}
		}
	}
	m.mu.Unlock()
	b, _ := json.Marshal(resp) // entries and strings, cannot fail
	return b, nil
}

// protocolOf reports whether the peerstore says p speaks the sync protocol.
func protocolOf(supports func(peer.ID, ...protocol.ID) ([]protocol.ID, error), p peer.ID) error {
	got, err := supports(p, LedgerSyncProtocol)
	if err != nil {
		return fmt.Errorf("protocols of %s: %w", p, err)
	}
	if len(got) == 0 {
		return fmt.Errorf("%s does not speak %s", p, LedgerSyncProtocol)
	}
	return nil
}
