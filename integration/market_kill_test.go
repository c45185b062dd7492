package integration

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/meshnode/meshnode/market/ledger"
	"github.com/meshnode/meshnode/node"
	"github.com/meshnode/meshnode/node/api"
)

// TestMarketSurvivesSIGKILLDuringPurchases: B buys twenty listings from A one after another
// while the test kills A or B with SIGKILL at random moments and restarts it. A buy that
// fails (its daemon or the seller's is down) is retried. After a last crash of both, every
// acknowledged payment and receipt is in both ledgers, both chains load (a daemon refuses to
// start on a chain that does not verify), no payment was signed twice, and the balances
// moved by exactly the prices.
func TestMarketSurvivesSIGKILLDuringPurchases(t *testing.T) {
	cfg := marketConfig(t)
	A, B := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	cli(t, A, "init", "--config", cfg)
	cli(t, B, "init", "--config", cfg)
	id := trainTiny(t, A, "iris-burst")
	dA := startDaemon(t, A)
	dB := startDaemon(t, B, dA.tcpAddr(t))
	const n, price = 20, 3
	var listings []string
	for range n {
		var l api.ListingView
		cliJSON(t, A, &l, "market", "publish", id, "--price", "3")
		listings = append(listings, l.ID)
	}
	eventually(t, 20*time.Second, "B hears every listing", func() bool {
		var ls []api.ListingView
		cliJSON(t, B, &ls, "market", "list")
		return len(ls) == n
	})

	var mu sync.Mutex
	acked := map[string]api.BuyResult{}
	var buyErr error
	failed := 0 // attempts that failed because a daemon was down
	done := make(chan struct{})
	starting := make(chan struct{}, 1) // a buy is about to start: a moment to crash into
	go func() {
		defer close(done)
		for _, l := range listings {
			deadline := time.Now().Add(2 * time.Minute)
			for {
				select {
				case starting <- struct{}{}:
				default:
				}
				out, err := cliErr(B, "--json", "market", "buy", l, "--timeout-ms", "15000")
				if err == nil {
					var r api.BuyResult
					if err := json.Unmarshal([]byte(out), &r); err != nil {
						buyErr = err
						return
					}
					mu.Lock()
					acked[l] = r
					mu.Unlock()
					break
				}
				mu.Lock()
				failed++
				mu.Unlock()
				if time.Now().After(deadline) {
					buyErr = err
					return
				}
				time.Sleep(100 * time.Millisecond) // retry interval while a daemon restarts
			}
		}
	}()
	seed := uint64(time.Now().UnixNano())
	t.Logf("kill schedule seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	kills := map[string]int{}
crashes:
	for range 10 {
		select {
		case <-done:
			break crashes
		case <-starting:
		}
		// A buy (a CLI process starting, then the payment, the receipt and the fetch of an
		// expert already held) takes 20 to 40 ms here: crash at a random moment within it.
		select {
		case <-done:
			break crashes
		case <-time.After(time.Duration(rng.IntN(40)) * time.Millisecond):
		}
		if rng.IntN(2) == 0 {
			dA.kill()
			dA = startDaemon(t, A, dB.tcpAddr(t))
			kills["seller"]++
		} else {
			dB.kill()
			dB = startDaemon(t, B, dA.tcpAddr(t))
			kills["buyer"]++
		}
	}
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		t.Fatal("the purchases did not finish within 5 minutes")
	}
	if buyErr != nil {
		t.Fatalf("a purchase never succeeded: %v", buyErr)
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d purchases acknowledged across %d seller and %d buyer crashes (%d attempts failed and were retried)",
		len(acked), kills["seller"], kills["buyer"], failed)
	if kills["seller"]+kills["buyer"] < 5 {
		t.Fatalf("only %d crashes happened during the burst", kills["seller"]+kills["buyer"])
	}
	if len(acked) != n {
		t.Fatalf("%d of %d purchases acknowledged", len(acked), n)
	}

	dA.kill()
	dB.kill()
	dA = startDaemon(t, A)
	dB = startDaemon(t, B, dA.tcpAddr(t))
	hA, hB := marketHistory(t, A), marketHistory(t, B)
	for l, r := range acked {
		for name, h := range map[string]map[string]api.HistoryItem{"seller": hA, "buyer": hB} {
			p, rc := h[r.PaymentID], h[r.ReceiptID]
			if p.Listing != l || p.Amount != price || rc.Ref != r.PaymentID {
				t.Fatalf("the %s's ledger lost the acknowledged purchase of %s (payment %s, receipt %s)", name, l, r.PaymentID, r.ReceiptID)
			}
		}
	}
	a, b := marketBalance(t, A), marketBalance(t, B)
	if a.Balance != 1000+n*price || b.Balance != 1000-n*price {
		t.Fatalf("balances A %d B %d, want %d and %d", a.Balance, b.Balance, 1000+n*price, 1000-n*price)
	}
	if a.Chain != n || b.Chain != n || b.Pending != 0 {
		t.Fatalf("chains: seller %d receipts, buyer %d payments (%d pending), want %d each and none pending", a.Chain, b.Chain, b.Pending, n)
	}

	// One more crash, then read both journals here, outside the daemons: every entry's ID
	// matches its bytes, every chain links and every entry verifies.
	dA.kill()
	dB.kill()
	books := map[string]*ledger.Book{}
	for name, repo := range map[string]string{"seller": A, "buyer": B} {
		r, err := node.Open(repo)
		if err != nil {
			t.Fatal(err)
		}
		st, err := r.Store()
		if err != nil {
			t.Fatal(err)
		}
		book := ledger.NewBook(ledger.Policy{Genesis: r.Config.Market.Genesis}, node.VerifyPeerSignature)
		if _, err := ledger.OpenJournal(st.Datastore("/ledger")).Load(context.Background(), book); err != nil {
			t.Fatalf("the %s's journal: %v", name, err)
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		books[name] = book
	}
	for l, r := range acked {
		for name, book := range books {
			if !book.Has(r.PaymentID) || book.ReceiptOf(r.PaymentID) == nil || book.ReceiptOf(r.PaymentID).ID() != r.ReceiptID {
				t.Fatalf("the %s's journal lacks the purchase of %s", name, l)
			}
		}
	}
}
