package integration

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/meshnode/meshnode/market/ledger"
	"github.com/meshnode/meshnode/node"
	"github.com/meshnode/meshnode/node/api"
)

// seededReader is a deterministic byte source for key generation.
type seededReader struct{ r *rand.ChaCha8 }

func (s seededReader) Read(p []byte) (int, error) { return s.r.Read(p) }

// purchaseBook signs n purchases (payment and receipt) among 16 keys with real peer IDs, in
// an order a book can add them.
func purchaseBook(t *testing.T, n int) []*ledger.Entry {
	t.Helper()
	src := seededReader{rand.NewChaCha8([32]byte{18})}
	keys := make([]keySigner, 16)
	for i := range keys {
		k, _, err := crypto.GenerateEd25519Key(src)
		if err != nil {
			t.Fatal(err)
		}
		keys[i] = keySigner{k}
	}
	book := ledger.NewBook(ledger.Policy{Genesis: 1000}, node.VerifyPeerSignature)
	var out []*ledger.Entry
	add := func(k keySigner, kind string, fill func(*ledger.Entry)) *ledger.Entry {
		e := book.Next(k.ID(), kind)
		fill(e)
		e.Time = time.Now().UnixMilli()
		if err := e.Sign(k); err != nil {
			t.Fatal(err)
		}
		if _, err := book.Add(e); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
		return e
	}
	for i := range n {
		buyer, seller := keys[i%16], keys[(i*7+3)%16]
		if buyer.ID() == seller.ID() {
			seller = keys[(i+1)%16]
		}
		listing := fmt.Sprintf("L%d", i)
		p := add(buyer, ledger.KindPayment, func(e *ledger.Entry) { e.To, e.Amount, e.Listing = seller.ID(), 1, listing })
		add(seller, ledger.KindReceipt, func(e *ledger.Entry) { e.Ref, e.Listing = p.ID(), listing })
	}
	return out
}

// TestLedgerSyncOfALargeBook: a node that joins a peer holding a book of purchases among 16
// keys fetches all of it by the sync protocol (its chains come in parts, several chains a
// request) and shows the same book. With MESHNODE_LEDGER_SYNC_REPORT set it is the benchmark
// of the sync from a peer: 10,000 purchases (20,000 entries), time and bytes appended to that
// file.
func TestLedgerSyncOfALargeBook(t *testing.T) {
	purchases, report := 1000, os.Getenv("MESHNODE_LEDGER_SYNC_REPORT")
	if report != "" {
		purchases = 10000
	}
	cfg := marketConfig(t)
	A, B := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	cli(t, A, "init", "--config", cfg)
	cli(t, B, "init", "--config", cfg)
	entries := purchaseBook(t, purchases)
	a := startDaemon(t, A)
	var imp api.ImportResult
	cliJSON(t, A, &imp, "market", "import", writeJSONFile(t, entries))
	if imp.Added != len(entries) {
		t.Fatalf("A imported %d of %d entries", imp.Added, len(entries))
	}
	want := marketBook(t, A)
	start := time.Now()
	startDaemon(t, B, a.tcpAddr(t))
	eventually(t, 120*time.Second, "B syncs A's book", func() bool {
		return metricValue(t, B, "meshnode_ledger_entries") == float64(len(entries))
	})
	took := time.Since(start) // from B's start: its daemon's start-up counts too
	if got := marketBook(t, B); !sameBook(got, want) {
		t.Fatalf("B's synced book differs from A's: %d entries, %d keys; want %d and %d", got.Entries, len(got.Keys), want.Entries, len(want.Keys))
	}
	bytes := metricValue(t, B, "meshnode_ledger_sync_received_bytes_total")
	t.Logf("synced %d entries in %s (from the daemon's start), %.1f MB of answers", len(entries), took.Round(time.Millisecond), bytes/1e6)
	if report == "" {
		return
	}
	f, err := os.OpenFile(report, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fmt.Fprintf(f, "\n## Sync from a peer, two daemons on loopback\n\n"+
		"A new daemon bootstrapped to a peer holding %d purchases among 16 keys (%d entries) holds the\n"+
		"same book %.2f s after it was started (process start, connection, sync and every signature\n"+
		"check included), having received %.2f MB of sync answers (`TestLedgerSyncOfALargeBook`).\n",
		purchases, len(entries), took.Seconds(), bytes/1e6)
}
