package integration

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromiumPath is Debian's chromium, installed by scripts/setup.sh.
const chromiumPath = "/usr/bin/chromium"

// TestDashboardAnswersAQuery opens the dashboard of the last node of a three-node mesh in
// headless Chromium, sends a query through the page and sees the answer and the answering peer
// (the first node, which serves the expert), the federated job the first node ran, with its
// accuracy curve, and the first node's market listing beside the node's balance. The screenshot is kept in $MESHNODE_ARTIFACTS
// (default integration/artifacts).
func TestDashboardAnswersAQuery(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("headless browser test needs %s: run scripts/setup.sh (%v)", chromiumPath, err)
	}
	cfg := testConfig(t, 30*time.Second, 10*time.Second)
	repos := make([]string, 3)
	for i := range repos {
		repos[i] = filepath.Join(t.TempDir(), "n")
		cli(t, repos[i], "init", "--config", cfg)
	}
	id := trainTiny(t, repos[0], "iris-ui")
	d := make([]*daemonProc, 3)
	d[0] = startDaemon(t, repos[0])
	d[1] = startDaemon(t, repos[1], d[0].tcpAddr(t))
	d[2] = startDaemon(t, repos[2], d[1].tcpAddr(t))
	cli(t, repos[0], "expert", "serve", id)
	cli(t, repos[0], "market", "publish", id, "--price", "10", "--licence", "CC-BY-4.0")
	// A short federated job on the first node: the third sees it by gossip, with its curve.
	cli(t, repos[0], "train", "start", "--base", id, "--eval-dataset", "iris", "--dataset", "iris",
		"--rounds", "2", "--min", "1", "--soft-deadline", "100ms")
	eventually(t, 20*time.Second, "the third node sees the expert", func() bool { return remoteHas(t, repos[2], id, d[0].PeerID) })
	var dash struct {
		URL string `json:"url"`
	}
	cliJSON(t, repos[2], &dash, "dashboard")

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	poll := func(expr string) chromedp.Action[chromedp.Void] {
		return chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(20*time.Second))
	}
	err := chromedp.Do(bctx,
		chromedp.Navigate(dash.URL),
		poll(`document.querySelectorAll("#remote tbody tr").length > 0`),
		chromedp.SendKeys(chromedp.CSS("#q-domain"), "iris"),
		chromedp.SendKeys(chromedp.CSS("#q-vector"), "[5.9, 3.0, 5.1, 1.8]"),
		chromedp.Click(chromedp.CSS("#q-send")),
		poll(`document.getElementById("answer").textContent.includes("answering peer")`),
		poll(`[...document.querySelectorAll("#jobs tbody tr")].some(r => r.textContent.includes("done") && r.querySelector("svg.curve"))`),
		poll(`document.querySelectorAll("#listings tbody tr").length > 0`),
	)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	answer, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("#answer")))
	if err != nil {
		t.Fatal(err)
	}
	jobs, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("#jobs tbody")))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(jobs, "iris") || !strings.Contains(jobs, "2/2") {
		t.Fatalf("the training jobs table shows %q, want the finished iris job", jobs)
	}
	market, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("#listings tbody")))
	if err != nil {
		t.Fatal(err)
	}
	balance, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("#balance")))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(market, "iris-ui") || !strings.Contains(market, d[0].PeerID) || !strings.Contains(balance, "balance 1000 credits") {
		t.Fatalf("the market section shows %q and %q, want the first node's listing and the genesis balance", market, balance)
	}
	peers, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("#peers tbody")))
	if err != nil {
		t.Fatal(err)
	}
	shot, err := chromedp.Run(bctx, chromedp.FullScreenshot(100)) // quality 100 is PNG
	if err != nil {
		t.Fatal(err)
	}
	dir := os.Getenv("MESHNODE_ARTIFACTS")
	if dir == "" {
		dir = "artifacts"
	}
	if err := os.MkdirAll(dir, 0o755); err == nil {
		_ = os.WriteFile(filepath.Join(dir, "dashboard.png"), shot, 0o644)
	}
	if !strings.Contains(answer, "answering peer: "+d[0].PeerID) || !strings.Contains(answer, "answer: ") {
		t.Fatalf("the page shows %q, want an answer from %s", answer, d[0].PeerID)
	}
	if !strings.Contains(peers, d[1].PeerID) {
		t.Fatalf("the peers table lacks the bootstrap peer %s: %q", d[1].PeerID, peers)
	}
}
