package integration

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshnode/meshnode/market/ledger"
	"github.com/meshnode/meshnode/market/listing"
	"github.com/meshnode/meshnode/node"
	"github.com/meshnode/meshnode/node/api"
	"github.com/meshnode/meshnode/node/daemon"
)

// marketConfig is testConfig with listings republished every second.
func marketConfig(t *testing.T) string {
	t.Helper()
	path := testConfig(t, 30*time.Second, 10*time.Second)
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString("market:\n  republish: 1s\n"); err != nil {
		t.Fatal(err)
	}
	return path
}

func marketBalance(t *testing.T, repo string) api.BalanceInfo {
	t.Helper()
	var b api.BalanceInfo
	cliJSON(t, repo, &b, "market", "balance")
	return b
}

func marketHistory(t *testing.T, repo string) map[string]api.HistoryItem {
	t.Helper()
	var h []api.HistoryItem
	cliJSON(t, repo, &h, "market", "history")
	out := map[string]api.HistoryItem{}
	for _, it := range h {
		out[it.ID] = it
	}
	return out
}

func marketListed(t *testing.T, repo, id string) bool {
	t.Helper()
	var ls []api.ListingView
	cliJSON(t, repo, &ls, "market", "list")
	return slices.ContainsFunc(ls, func(l api.ListingView) bool { return l.ID == id })
}

func marketRefuses(t *testing.T, repo, key string) bool {
	t.Helper()
	var rs []api.RefusedKey
	cliJSON(t, repo, &rs, "market", "refused")
	return slices.ContainsFunc(rs, func(r api.RefusedKey) bool { return r.Author == key })
}

func writeJSONFile(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "data.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// identity opens a repo's key (only the key file and config are read: the daemon keeps the
// database), so the test can sign what a lying peer would.
func identity(t *testing.T, repo string) *node.Identity {
	t.Helper()
	r, err := node.Open(repo)
	if err != nil {
		t.Fatal(err)
	}
	return r.Identity
}

// mustFail runs a command that must fail with a message containing want.
func mustFail(t *testing.T, repo, want string, args ...string) {
	t.Helper()
	_, err := cliErr(repo, args...)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("meshnode %s: got %v, want an error containing %q", strings.Join(args, " "), err, want)
	}
}

// TestMarketBuySellAcrossThreeDaemons: A lists an expert, B buys it and answers a query with
// it, balances move by exactly the price on both sides, and C, who did not pay, cannot fetch
// its blocks from A or from B. Then the rejections: beyond the balance, a listing whose
// signature does not match, an expired listing, a forged and a replayed receipt — each with a
// clear error and no balance change. Last, B double spends: a third node detects it and every
// node refuses B's key.
func TestMarketBuySellAcrossThreeDaemons(t *testing.T) {
	cfg := marketConfig(t)
	repos := make([]string, 3)
	for i := range repos {
		repos[i] = filepath.Join(t.TempDir(), "n")
		cli(t, repos[i], "init", "--config", cfg)
	}
	A, B, C := repos[0], repos[1], repos[2]
	id := trainTiny(t, A, "iris-sale")
	d := make([]*daemonProc, 3)
	d[0] = startDaemon(t, A)
	d[1] = startDaemon(t, B, d[0].tcpAddr(t))
	d[2] = startDaemon(t, C, d[0].tcpAddr(t))
	const price = 25

	var pub api.ListingView
	cliJSON(t, A, &pub, "market", "publish", id, "--price", "25", "--licence", "CC-BY-4.0")
	eventually(t, 20*time.Second, "B and C hear A's listing", func() bool { return marketListed(t, B, pub.ID) && marketListed(t, C, pub.ID) })
	var filtered []api.ListingView
	cliJSON(t, B, &filtered, "market", "list", "--domain", "iris", "--max-price", "24")
	if len(filtered) != 0 {
		t.Fatalf("--max-price 24 shows %d listings of price %d", len(filtered), price)
	}

	// C, who has not paid, cannot fetch the paid blocks from A.
	_, err := cliErr(C, "expert", "fetch", id, "--timeout-ms", "3000")
	if err == nil || !strings.Contains(err.Error(), "is unavailable") {
		t.Fatalf("C fetched a paid expert without paying: %v", err)
	}
	if denied := metricValue(t, A, "meshnode_market_blocks_denied_total"); denied < 1 {
		t.Fatalf("A's filter denied %v block requests; C's fetch failed for another reason", denied)
	}

	var buy api.BuyResult
	cliJSON(t, B, &buy, "market", "buy", pub.ID)
	if buy.Price != price || buy.ReceiptID == "" || buy.Fetch.CID != id {
		t.Fatalf("buy: %+v", buy)
	}
	if a, b := marketBalance(t, A), marketBalance(t, B); a.Balance != 1000+price || b.Balance != 1000-price {
		t.Fatalf("after the purchase A has %d and B %d, want %d and %d", a.Balance, b.Balance, 1000+price, 1000-price)
	}
	for _, repo := range []string{A, B} { // both chains record both sides
		h := marketHistory(t, repo)
		if h[buy.PaymentID].Amount != price || h[buy.ReceiptID].Ref != buy.PaymentID {
			t.Fatalf("%s's history lacks the payment or its receipt: %+v", repo, h)
		}
	}
	var ans struct {
		Candidate struct {
			Local bool `json:"local"`
		} `json:"candidate"`
	}
	cliJSON(t, B, &ans, "query", "--expert", id, "--vector", "[5.9,3.0,5.1,1.8]")
	if !ans.Candidate.Local {
		t.Fatal("B does not answer with the expert it bought")
	}
	// B now holds the blocks too, and serves them to no one without a receipt — even when B
	// serves the expert, which says so.
	if out := cli(t, B, "expert", "serve", id); !strings.Contains(out, "only to holders of a receipt") || !strings.Contains(out, "CC-BY-4.0") {
		t.Fatalf("expert serve of a bought expert does not say who gets its weights:\n%s", out)
	}
	eventually(t, 10*time.Second, "C learns of the sale", func() bool { return marketBalance(t, C).Entries >= 2 })
	_, err = cliErr(C, "expert", "fetch", id, "--timeout-ms", "3000")
	if err == nil || !strings.Contains(err.Error(), "is unavailable") {
		t.Fatalf("C fetched the paid expert from A or B: %v", err)
	}

	// A review by B, with its own measured evaluation, shows on C's listing.
	cli(t, B, "market", "review", pub.ID, "--dataset", "iris", "--rating", "4")
	eventually(t, 20*time.Second, "C shows B's review", func() bool {
		var ls []api.ListingView
		cliJSON(t, C, &ls, "market", "list")
		for _, l := range ls {
			if l.ID == pub.ID && len(l.Reviews) == 1 && l.Reviews[0].Verified && l.Reviews[0].Samples > 0 {
				return true
			}
		}
		return false
	})

	unchanged := func(what string) {
		t.Helper()
		for _, c := range []struct {
			repo string
			want uint64
		}{{A, 1000 + price}, {B, 1000 - price}, {C, 1000}} {
			if got := marketBalance(t, c.repo).Balance; got != c.want {
				t.Fatalf("after %s, %s has %d credits, want %d", what, c.repo, got, c.want)
			}
		}
	}

	// Beyond the balance.
	var dear api.ListingView
	cliJSON(t, A, &dear, "market", "publish", id, "--price", "5000")
	eventually(t, 20*time.Second, "B hears the dear listing", func() bool { return marketListed(t, B, dear.ID) })
	mustFail(t, B, "insufficient balance", "market", "buy", dear.ID)
	unchanged("a purchase beyond the balance")

	// A listing whose signature does not match: A's offer with the price lowered.
	offer := cli(t, A, "market", "offer", pub.ID)
	l, err := listing.DecodeListing([]byte(strings.TrimSpace(offer)))
	if err != nil {
		t.Fatal(err)
	}
	l.Price = 1
	mustFail(t, C, "signature does not match", "market", "buy", "--offer", writeFile(t, l.Encode()))
	unchanged("a listing with a bad signature")

	// An expired listing, properly signed by A.
	old := *l
	old.Price, old.Time, old.Expires = 5, time.Now().Add(-2*time.Hour).UnixMilli(), time.Now().Add(-time.Hour).UnixMilli()
	if err := old.Sign(identity(t, A)); err != nil {
		t.Fatal(err)
	}
	mustFail(t, C, "expired", "market", "buy", "--offer", writeFile(t, old.Encode()))
	// And one that expires in B's table.
	var brief api.ListingView
	cliJSON(t, A, &brief, "market", "publish", id, "--price", "5", "--expires", "4s")
	eventually(t, 20*time.Second, "B hears the brief listing", func() bool { return marketListed(t, B, brief.ID) })
	eventually(t, 20*time.Second, "the brief listing leaves B's list", func() bool { return !marketListed(t, B, brief.ID) })
	mustFail(t, B, "expired", "market", "buy", brief.ID)
	unchanged("an expired listing")

	// A forged receipt: C claims A acknowledged a payment, signing with its own key.
	hist := marketHistory(t, B)
	rc := hist[buy.ReceiptID].Entry
	forged := rc
	forged.Seq, forged.Prev, forged.Sig = rc.Seq+1, buy.ReceiptID, nil
	if err := forged.Sign(identity(t, C)); err != nil {
		t.Fatal(err)
	}
	forged.Author = rc.Author // claims to be A's
	mustFail(t, C, "signature", "market", "import", writeJSONFile(t, []*ledger.Entry{&forged}))
	// A replayed receipt: A's real receipt again adds nothing and lets C fetch nothing. (A
	// second receipt of A's for the same payment is void in every book: the ledger's tests.)
	var imp api.ImportResult
	cliJSON(t, C, &imp, "market", "import", writeJSONFile(t, []*ledger.Entry{&rc}))
	if imp.Added != 0 {
		t.Fatalf("a replayed receipt was added as new: %+v", imp)
	}
	unchanged("a forged and a replayed receipt")
	_, err = cliErr(C, "expert", "fetch", id, "--timeout-ms", "2000")
	if err == nil {
		t.Fatal("C fetched the paid expert after replaying B's receipt")
	}

	// Double spend: B signs a second entry with the sequence number of its next payment, and
	// makes the payment too. C (the third node) or A catches the pair; every node refuses B.
	bID := identity(t, B)
	var cheap api.ListingView
	cliJSON(t, A, &cheap, "market", "publish", id, "--price", "7")
	eventually(t, 20*time.Second, "B hears the cheap listing", func() bool { return marketListed(t, B, cheap.ID) })
	var second api.BuyResult
	cliJSON(t, B, &second, "market", "buy", cheap.ID)
	twin := *second.Payment
	twin.To, twin.Listing, twin.Sig = d[2].PeerID, "elsewhere", nil
	if err := twin.Sign(bID); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "C holds B's payment", func() bool { return marketBalance(t, C).Entries >= 4 })
	mustFail(t, C, "double spend", "market", "import", writeJSONFile(t, []*ledger.Entry{&twin}))
	for _, repo := range repos {
		eventually(t, 20*time.Second, "every node refuses B", func() bool { return marketRefuses(t, repo, bID.ID()) })
	}
	mustFail(t, B, "refused", "market", "buy", dear.ID)
}

// metricValue reads one unlabelled metric from a daemon's /metrics.
func metricValue(t *testing.T, repo, name string) float64 {
	t.Helper()
	c, err := api.DaemonClient(repo)
	if err != nil {
		t.Fatal(err)
	}
	text, err := c.Metrics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(text), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric %s: %q", name, line)
			}
			return f
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func writeFile(t *testing.T, b []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "offer.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestMarketValidatorRejectsForgedListings: a peer publishing on the market topic a listing
// whose signature does not match (its own, with the price changed after signing) is rejected
// by a daemon's validator, which keeps the valid listing the same peer sends next.
func TestMarketValidatorRejectsForgedListings(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "n")
	cli(t, repo, "init", "--config", marketConfig(t))
	d := startDaemon(t, repo)
	key, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	h, topic := gossipPeer(t, key, daemon.TopicMarket)
	ctx := t.Context()
	ai, err := peer.AddrInfoFromString(d.tcpAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Connect(ctx, *ai); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the daemon joins the attacker's topic", func() bool { return slices.Contains(topic.ListPeers(), ai.ID) })
	signer := keySigner{key}
	mk := func(price uint64) *listing.Listing {
		now := time.Now()
		l := &listing.Listing{V: listing.Version, Expert: someExpert, Name: "x", Domains: []string{"x"}, Price: price,
			Time: now.UnixMilli(), Expires: now.Add(time.Hour).UnixMilli()}
		if err := l.Sign(signer); err != nil {
			t.Fatal(err)
		}
		return l
	}
	bad := mk(100)
	bad.Price = 1 // after signing
	good := mk(50)
	// Both go out on every poll: gossipsub may drop what is published the instant peers meet.
	eventually(t, 10*time.Second, "the valid listing arrives", func() bool {
		for _, l := range []*listing.Listing{bad, good} {
			m := &listing.Message{Kind: listing.KindListing, Sent: time.Now().UnixMilli(), Listing: l}
			if err := topic.Publish(ctx, m.Encode()); err != nil {
				t.Fatal(err)
			}
		}
		return marketListed(t, repo, good.ID())
	})
	if marketListed(t, repo, bad.ID()) {
		t.Fatal("a listing with a bad signature was kept")
	}
}

type keySigner struct{ k crypto.PrivKey }

func (s keySigner) ID() string {
	id, _ := peer.IDFromPrivateKey(s.k)
	return id.String()
}
func (s keySigner) Sign(msg []byte) ([]byte, error) { return s.k.Sign(msg) }

// TestMarketCreditsOnlyFromIssuers: with no genesis grant, credits enter only through the
// configured issuer. A non-issuer's grant is refused; the issuer's grant reaches the buyer by
// gossip and pays for a purchase, which moves exactly the price.
func TestMarketCreditsOnlyFromIssuers(t *testing.T) {
	cfg := marketConfig(t)
	repos := make([]string, 3)
	for i := range repos {
		repos[i] = filepath.Join(t.TempDir(), "n")
		cli(t, repos[i], "init", "--config", cfg)
	}
	issuer, B, C := repos[0], repos[1], repos[2]
	t.Setenv(node.EnvName("market.genesis"), "0") // the daemons and commands inherit these
	t.Setenv(node.EnvName("market.issuers"), identity(t, issuer).ID())
	id := trainTiny(t, C, "iris-credit")
	d0 := startDaemon(t, issuer)
	dB := startDaemon(t, B, d0.tcpAddr(t))
	startDaemon(t, C, d0.tcpAddr(t))
	var l api.ListingView
	cliJSON(t, C, &l, "market", "publish", id, "--price", "30")
	eventually(t, 20*time.Second, "B hears C's listing", func() bool { return marketListed(t, B, l.ID) })
	mustFail(t, B, "insufficient balance: 0 credits", "market", "buy", l.ID)
	mustFail(t, C, "not an issuer", "market", "grant", dB.PeerID, "100")
	cli(t, issuer, "market", "grant", dB.PeerID, "100")
	eventually(t, 20*time.Second, "B learns of its grant", func() bool { return marketBalance(t, B).Balance == 100 })
	cli(t, B, "market", "buy", l.ID)
	if b, c := marketBalance(t, B).Balance, marketBalance(t, C).Balance; b != 70 || c != 30 {
		t.Fatalf("after a purchase of 30, B has %d and C %d, want 70 and 30", b, c)
	}

	// The mesh changes its rules: the issuer is retired, new keys start with 50. B restarts
	// under them (before, the journal no longer verified and the daemon refused to start); its
	// grant, judged by the rules it was journaled under, still counts.
	dB.stop(t)
	t.Setenv(node.EnvName("market.genesis"), "50")
	t.Setenv(node.EnvName("market.issuers"), "")
	startDaemon(t, B, d0.tcpAddr(t))
	if b := marketBalance(t, B); b.Balance != 70 || b.Genesis != 50 {
		t.Fatalf("after the rule change B has %d (genesis %d), want 70 as before", b.Balance, b.Genesis)
	}
}
