package integration

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/meshnode/meshnode/node"
	"github.com/meshnode/meshnode/node/api"
)

// copyDir copies a stopped repo, badger store included: the clone a user restores from a
// backup.
func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o700)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, info.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
}

func marketBook(t *testing.T, repo string) api.BookView {
	t.Helper()
	var v api.BookView
	cliJSON(t, repo, &v, "market", "book")
	return v
}

// TestLedgerHealsAPartition: a mesh split in two trades on both sides of the cut, and one key
// spends its credits twice, once on each side (a node restored from a backup and started on
// the other side: two payments with one sequence number, each receipted by its seller). When a
// node that reaches both sides joins, sync and gossip bring every entry everywhere: every node
// refuses the double spender from its fork point, the innocent purchases stand, and every node
// shows the same book. A node that joins later still, knowing one peer, syncs the whole book
// and agrees.
func TestLedgerHealsAPartition(t *testing.T) {
	cfg := marketConfig(t)
	t.Setenv(node.EnvName("market.sync"), "2s") // the daemons inherit it
	names := []string{"S1", "X1", "S2", "X2", "B", "L", "L2"}
	repo := map[string]string{}
	for _, n := range names {
		repo[n] = filepath.Join(t.TempDir(), n)
		cli(t, repo[n], "init", "--config", cfg)
	}
	clone := filepath.Join(t.TempDir(), "B-restored")
	copyDir(t, repo["B"], clone) // before B has paid anything
	e1, e2 := trainTiny(t, repo["S1"], "iris-left"), trainTiny(t, repo["S2"], "iris-right")

	// The two sides, each knowing only its own peers.
	s1 := startDaemon(t, repo["S1"])
	x1 := startDaemon(t, repo["X1"], s1.tcpAddr(t))
	s2 := startDaemon(t, repo["S2"])
	startDaemon(t, repo["X2"], s2.tcpAddr(t))
	var l1, l2 api.ListingView
	cliJSON(t, repo["S1"], &l1, "market", "publish", e1, "--price", "100")
	cliJSON(t, repo["S2"], &l2, "market", "publish", e2, "--price", "200")
	b := startDaemon(t, repo["B"], s1.tcpAddr(t))
	for _, n := range []string{"X1", "B"} {
		eventually(t, 20*time.Second, n+" hears S1's listing", func() bool { return marketListed(t, repo[n], l1.ID) })
		cli(t, repo[n], "market", "buy", l1.ID)
	}
	b.stop(t)
	restored := startDaemon(t, clone, s2.tcpAddr(t))
	for _, r := range []string{repo["X2"], clone} {
		eventually(t, 20*time.Second, "S2's listing heard", func() bool { return marketListed(t, r, l2.ID) })
		cli(t, r, "market", "buy", l2.ID)
	}
	restored.stop(t)
	if refusedIn(marketBook(t, repo["S1"]), identity(t, repo["B"]).ID()) {
		t.Fatal("the left side knows of the double spend before the heal")
	}

	// The heal: L reaches both sides.
	startDaemon(t, repo["L"], s1.tcpAddr(t), s2.tcpAddr(t))
	bID := identity(t, repo["B"]).ID()
	healed := []string{"S1", "X1", "S2", "X2", "L"}
	var want api.BookView
	took := eventually(t, 90*time.Second, "every node shows the same book, B refused", func() bool {
		want = marketBook(t, repo["S1"])
		for _, n := range healed {
			v := marketBook(t, repo[n])
			if !sameBook(v, want) || !refusedIn(v, bID) {
				return false
			}
		}
		return true
	})
	t.Logf("healed in %s: %d entries", took.Round(time.Millisecond), want.Entries)
	// B's payments at its fork point never move: S1 and S2 are paid by X1 and X2 only.
	balances := map[string]uint64{}
	for _, k := range want.Keys {
		balances[k.Key] = k.Balance
	}
	for n, bal := range map[string]uint64{"S1": 1100, "S2": 1200, "X1": 900, "X2": 800} {
		if got := balances[identity(t, repo[n]).ID()]; got != bal {
			t.Errorf("%s holds %d in the healed book, want %d", n, got, bal)
		}
	}

	// A node that joins now, knowing only X1, syncs the whole book.
	startDaemon(t, repo["L2"], x1.tcpAddr(t))
	eventually(t, 60*time.Second, "the late node's book matches", func() bool {
		v := marketBook(t, repo["L2"])
		return sameBook(v, want)
	})
}

func sameBook(a, b api.BookView) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

func refusedIn(v api.BookView, key string) bool {
	for _, k := range v.Keys {
		if k.Key == key {
			return k.Refused > 0
		}
	}
	return false
}
