package integration

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshnode/meshnode/node"
)

// TestMarketUnlistLiftsThePaywall: S lists expert E for a price and B buys it. S withdraws the
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
	var l node.ListingView
	cliJSON(t, repo["S"], &l, "market", "publish", E, "--price", "40")
	for _, n := range []string{"B", "C"} {
		eventually(t, 20*time.Second, n+" hears the listing", func() bool { return marketListed(t, repo[n], l.ID) })
	}
	cli(t, repo["B"], "market", "buy", l.ID)
	if _, err := cliErr(repo["C"], "expert", "fetch", E, "--timeout-ms", "2000"); err == nil || !strings.Contains(err.Error(), "is unavailable") {
		t.Fatalf("C fetches the paid expert without buying it: %v, want it unavailable", err)
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
