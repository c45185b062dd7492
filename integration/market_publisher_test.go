package integration

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshnode/meshnode/market/ledger"
	"github.com/meshnode/meshnode/market/listing"
	"github.com/meshnode/meshnode/mesh/rpc"
	"github.com/meshnode/meshnode/node/api"
	"github.com/meshnode/meshnode/node/daemon"
)

// TestMarketOnlyPublisherListingsGate: S publishes expert E (listed at 100) and expert F (free).
// M, a bare libp2p host with a key of its own, gossips its own listings of E and F at price 1
// and receipts every payment (spreading payment and receipt). Only listings by an expert's
// publisher count:
//   - bypass: B "buys" M's listing of E; S still refuses E's blocks to B;
//   - lockout: M's priced listing of F does not lock F: B fetches it from S;
//   - B, holding F, cannot list it (it did not publish it).
//
// And a payment whose answer was lost just before its listing expired is resent after expiry
// (the buyer's balance already counts it).
func TestMarketOnlyPublisherListingsGate(t *testing.T) {
	cfg := marketConfig(t)
	S, B := filepath.Join(t.TempDir(), "s"), filepath.Join(t.TempDir(), "b")
	cli(t, S, "init", "--config", cfg)
	cli(t, B, "init", "--config", cfg)
	E := trainTiny(t, S, "iris-paid")
	var free struct {
		ID string `json:"id"`
	}
	// Other weights than E's (a block shared with a paid expert is paid content).
	cliJSON(t, S, &free, "expert", "train", "--dataset", "iris", "--hidden", "5", "--epochs", "2", "--name", "iris-free")
	F := free.ID
	dS := startDaemon(t, S)
	startDaemon(t, B, dS.tcpAddr(t))
	cli(t, S, "expert", "serve", F) // S shares its free expert; a hosted one it does not serve goes to no one
	var real api.ListingView
	cliJSON(t, S, &real, "market", "publish", E, "--price", "100")

	key, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	h, topic := gossipPeer(t, key, daemon.TopicMarket)
	ctx := t.Context()
	mk := keySigner{key}
	offer := func(expert string, life time.Duration) *listing.Listing {
		now := time.Now()
		l := &listing.Listing{V: listing.Version, Expert: expert, Name: "resold", Domains: []string{"iris"}, Price: 1,
			Time: now.UnixMilli(), Expires: now.Add(life).UnixMilli()}
		if err := l.Sign(mk); err != nil {
			t.Fatal(err)
		}
		return l
	}
	fakeE, squatF := offer(E, time.Hour), offer(F, time.Hour)
	var brief *listing.Listing // signed later, just before it is bought
	var mu sync.Mutex
	var seq uint64
	var prev string
	failBrief := true
	rpc.Serve(h, daemon.MarketProtocol, func(_ context.Context, _ peer.ID, req []byte) ([]byte, error) {
		r, err := listing.DecodePurchaseRequest(req)
		if err != nil {
			return nil, err
		}
		mu.Lock()
		defer mu.Unlock()
		if brief != nil && r.Listing == brief.ID() && failBrief {
			failBrief = false
			return nil, errors.New("seller busy") // the answer is lost: the payment stays pending
		}
		seq++
		rc := &ledger.Entry{Seq: seq, Prev: prev, Kind: ledger.KindReceipt, Ref: r.Payment().ID(), Listing: r.Listing, Time: time.Now().UnixMilli()}
		if err := rc.Sign(mk); err != nil {
			return nil, err
		}
		prev = rc.ID()
		m := &listing.Message{Kind: listing.KindEntries, Sent: time.Now().UnixMilli(), Entries: append(r.Entries, rc)}
		if err := topic.Publish(ctx, m.Encode()); err != nil {
			return nil, err
		}
		b, _ := json.Marshal(listing.PurchaseResponse{Receipt: rc})
		return b, nil
	}, rpc.ServerOptions{})
	ai, err := peer.AddrInfoFromString(dS.tcpAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Connect(ctx, *ai); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "S and B hear M's listings", func() bool {
		if slices.Contains(topic.ListPeers(), ai.ID) {
			for _, l := range []*listing.Listing{fakeE, squatF} {
				m := &listing.Message{Kind: listing.KindListing, Sent: time.Now().UnixMilli(), Listing: l}
				if err := topic.Publish(ctx, m.Encode()); err != nil {
					t.Fatal(err)
				}
			}
		}
		for _, repo := range []string{S, B} {
			for _, l := range []*listing.Listing{fakeE, squatF} {
				if !marketListed(t, repo, l.ID()) {
					return false
				}
			}
		}
		return true
	})

	// Bypass: B's receipt from M for M's listing of E opens nothing on S.
	_, _ = cliErr(B, "market", "buy", fakeE.ID(), "--timeout-ms", "5000")
	eventually(t, 20*time.Second, "S holds B's payment to M and M's receipt", func() bool { return marketBalance(t, S).Entries >= 2 })
	if _, err := cliErr(B, "expert", "fetch", E, "--timeout-ms", "3000"); err == nil || !strings.Contains(err.Error(), "is unavailable") {
		t.Fatalf("B fetched S's paid expert with a receipt for M's listing of it: %v", err)
	}

	// Lockout: M's priced listing of S's free expert locks no one out of it.
	cli(t, B, "expert", "fetch", F, "--timeout-ms", "20000")

	// B holds F but did not publish it: it cannot list it.
	mustFail(t, B, "did not publish", "market", "publish", F, "--price", "3")

	// A payment whose answer was lost, resent after its listing expired.
	mu.Lock()
	brief = offer(someExpert, 4*time.Second)
	mu.Unlock()
	if _, err := cliErr(B, "market", "buy", "--offer", writeFile(t, brief.Encode()), "--timeout-ms", "3000"); err == nil || !strings.Contains(err.Error(), "no receipt") {
		t.Fatalf("first buy of the brief listing: %v, want a pending payment", err)
	}
	if p := marketBalance(t, B).Pending; p != 1 {
		t.Fatalf("B has %d pending payments, want 1", p)
	}
	time.Sleep(time.Until(time.UnixMilli(brief.Expires)) + 500*time.Millisecond)
	_, err = cliErr(B, "market", "buy", brief.ID(), "--timeout-ms", "3000")
	if err != nil && !strings.Contains(err.Error(), "did not arrive") { // someExpert is held nowhere
		t.Fatalf("resending the pending payment after expiry: %v", err)
	}
	if b := marketBalance(t, B); b.Pending != 0 {
		t.Fatalf("after the resend B still has %d pending payments", b.Pending)
	}
}
