package integration

import (
	"encoding/json"
	"path/filepath"
	"strings"
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

// TestMarketUnlistLiftsThePaywall: S lists expert E for a price and B buys it; a payment
// backdated by an hour is refused. S withdraws the
// listing: C can neither buy it (every node hears the withdrawal) nor fetch E, while B's
// purchase stands. S then withdraws it as free: C fetches E from S without paying.
func TestMarketUnlistLiftsThePaywall(t *testing.T) {
	cfg := marketConfig(t)
	repo := map[string]string{}
	for _, n := range []string{"S", "B", "C"} {
		repo[n] = filepath.Join(t.TempDir(), n)
		cli(t, repo[n], "init", "--config", cfg)
	}
	E := trainTiny(t, repo["S"], "iris-unlist")
	s := startDaemon(t, repo["S"])
	startDaemon(t, repo["B"], s.tcpAddr(t))
	startDaemon(t, repo["C"], s.tcpAddr(t))
	var l api.ListingView
	cliJSON(t, repo["S"], &l, "market", "publish", E, "--price", "40")
	for _, n := range []string{"B", "C"} {
		eventually(t, 20*time.Second, n+" hears the listing", func() bool { return marketListed(t, repo[n], l.ID) })
	}
	cli(t, repo["B"], "market", "buy", l.ID)
	if _, err := cliErr(repo["C"], "expert", "fetch", E, "--timeout-ms", "2000"); err == nil || !strings.Contains(err.Error(), "is unavailable") {
		t.Fatalf("C fetches the paid expert without buying it: %v, want it unavailable", err)
	}

	// A buyer that backdates its payment is refused by the seller's clock (a bare libp2p host
	// with a key of its own, speaking the purchase protocol to S's daemon).
	key, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := gossipPeer(t, key, daemon.TopicMarket)
	ai, err := peer.AddrInfoFromString(s.tcpAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Connect(t.Context(), *ai); err != nil {
		t.Fatal(err)
	}
	pay := &ledger.Entry{Seq: 1, Kind: ledger.KindPayment, To: s.PeerID, Amount: 40, Listing: l.ID, Time: time.Now().Add(-time.Hour).UnixMilli()}
	if err := pay.Sign(keySigner{key}); err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(listing.PurchaseRequest{Listing: l.ID, Entries: []*ledger.Entry{pay}})
	client := rpc.NewClient(h, daemon.MarketProtocol, 1<<20, 1)
	defer client.Close()
	if _, err := client.Call(t.Context(), ai.ID, body); err == nil || !strings.Contains(err.Error(), "before the seller's clock") {
		t.Fatalf("a payment backdated by an hour: %v, want the seller's refusal", err)
	}

	cli(t, repo["S"], "market", "unlist", l.ID)
	eventually(t, 20*time.Second, "C hears the withdrawal", func() bool { return !marketListed(t, repo["C"], l.ID) })
	mustFail(t, repo["C"], "withdrawn", "market", "buy", l.ID)
	if _, err := cliErr(repo["C"], "expert", "fetch", E, "--timeout-ms", "2000"); err == nil || !strings.Contains(err.Error(), "is unavailable") {
		t.Fatalf("C fetches the expert of a listing withdrawn as closed: %v, want it unavailable", err)
	}
	if b := marketBalance(t, repo["B"]); b.Balance != 960 || b.Pending != 0 {
		t.Fatalf("B's purchase after the withdrawal: balance %d, %d pending; want 960 and none", b.Balance, b.Pending)
	}

	cli(t, repo["S"], "market", "unlist", l.ID, "--free")
	eventually(t, 20*time.Second, "C fetches the expert for free", func() bool {
		_, err := cliErr(repo["C"], "expert", "fetch", E, "--timeout-ms", "2000")
		return err == nil
	})
	if b := marketBalance(t, repo["C"]); b.Balance != 1000 || b.Chain != 0 {
		t.Fatalf("C paid for a free expert: balance %d, %d entries of its own", b.Balance, b.Chain)
	}
}
