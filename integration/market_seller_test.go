package integration

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshnode/meshnode/market/ledger"
	"github.com/meshnode/meshnode/market/listing"
	"github.com/meshnode/meshnode/mesh/rpc"
	"github.com/meshnode/meshnode/node/daemon"
)

// TestMarketBuyerRefusesBadReceipts: a lying seller (a bare libp2p host speaking the market
// protocols) answers B's payment first with a forged receipt (not its signature), then with a
// replayed one (naming another payment). B refuses both with a clear error and records no
// receipt; its retry resends the same payment, so it never pays twice. What B cannot undo is
// the payment itself: the seller holds it (no escrow; see the README's trust assumptions).
func TestMarketBuyerRefusesBadReceipts(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "b")
	cli(t, repo, "init", "--config", marketConfig(t))
	dB := startDaemon(t, repo)
	key, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	h, topic := gossipPeer(t, key, daemon.TopicMarket)
	ctx := t.Context()
	seller := keySigner{key}
	var calls atomic.Int32
	var paid atomic.Value // the payment ID the seller received
	rpc.Serve(h, daemon.MarketProtocol, func(_ context.Context, _ peer.ID, req []byte) ([]byte, error) {
		r, err := listing.DecodePurchaseRequest(req)
		if err != nil {
			return nil, err
		}
		pay := r.Payment()
		paid.Store(pay.ID())
		rc := &ledger.Entry{Seq: 1, Kind: ledger.KindReceipt, Ref: pay.ID(), Listing: r.Listing, Time: time.Now().UnixMilli()}
		if calls.Add(1) == 1 {
			_ = rc.Sign(keySigner{other}) // forged: another key's signature
			rc.Author = seller.ID()
		} else {
			rc.Ref = "bagaaierasomeotherpaymentxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" // replayed: not this payment
			_ = rc.Sign(seller)
		}
		b, _ := json.Marshal(listing.PurchaseResponse{Receipt: rc})
		return b, nil
	}, rpc.ServerOptions{})
	ai, err := peer.AddrInfoFromString(dB.tcpAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Connect(ctx, *ai); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	l := &listing.Listing{V: listing.Version, Expert: someExpert, Name: "bait", Domains: []string{"x"}, Price: 40,
		Time: now.UnixMilli(), Expires: now.Add(time.Hour).UnixMilli()}
	if err := l.Sign(seller); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "B hears the lying seller's listing", func() bool {
		if slices.Contains(topic.ListPeers(), ai.ID) {
			m := &listing.Message{Kind: listing.KindListing, Sent: time.Now().UnixMilli(), Listing: l}
			if err := topic.Publish(ctx, m.Encode()); err != nil {
				t.Fatal(err)
			}
		}
		return marketListed(t, repo, l.ID())
	})

	mustFail(t, repo, "receipt is invalid", "market", "buy", l.ID())
	first := paid.Load()
	mustFail(t, repo, "is not a receipt by", "market", "buy", l.ID())
	if paid.Load() != first {
		t.Fatalf("the retry sent a new payment %v instead of resending %v", paid.Load(), first)
	}
	b := marketBalance(t, repo)
	if b.Chain != 1 || b.Pending != 1 || b.Balance != 1000-40 {
		t.Fatalf("B after two refused receipts: %+v; want one pending payment of 40", b)
	}
	for _, it := range marketHistory(t, repo) {
		if it.Kind == ledger.KindReceipt {
			t.Fatalf("B recorded a bad receipt: %+v", it)
		}
	}
}
