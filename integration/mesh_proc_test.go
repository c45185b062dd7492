package integration

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
)

type remoteEntry struct {
	ID       string `json:"id"`
	Provider string `json:"provider"`
	Name     string `json:"name"`
}

func remoteHas(t *testing.T, repo, id, provider string) bool {
	var entries []remoteEntry
	cliJSON(t, repo, &entries, "expert", "list", "--remote")
	for _, e := range entries {
		if e.ID == id && e.Provider == provider {
			return true
		}
	}
	return false
}

func trainTiny(t *testing.T, repo, name string) string {
	t.Helper()
	var rep struct {
		ID string `json:"id"`
	}
	cliJSON(t, repo, &rep, "expert", "train", "--dataset", "iris", "--hidden", "4", "--epochs", "2", "--name", name)
	return rep.ID
}

// TestFiveDaemonsChainedByBootstrap runs five meshnode daemons as processes, each bootstrapped
// only to the previous one. An expert served on the first reaches the fifth's remote table; when
// the first is killed with SIGKILL its advert expires everywhere within TTL plus a refresh; a
// gracefully stopped node's advert is withdrawn at once; a restarted node keeps its peer ID and
// its remote table; the API refuses calls without the token.
func TestFiveDaemonsChainedByBootstrap(t *testing.T) {
	const ttl, refresh = 3 * time.Second, time.Second
	short := testConfig(t, ttl, refresh)
	long := testConfig(t, time.Minute, 10*time.Second) // node 2: only a withdrawal can remove its advert quickly
	repos := make([]string, 5)
	for i := range repos {
		repos[i] = filepath.Join(t.TempDir(), "n")
		cfg := short
		if i == 1 {
			cfg = long
		}
		cli(t, repos[i], "init", "--config", cfg)
	}
	e1 := trainTiny(t, repos[0], "e1")
	e2 := trainTiny(t, repos[1], "e2")

	d := make([]*daemonProc, 5)
	d[0] = startDaemon(t, repos[0])
	for i := 1; i < 5; i++ {
		d[i] = startDaemon(t, repos[i], d[i-1].tcpAddr(t))
	}

	if _, err := cliErr(repos[0], "expert", "serve", "e1"); err != nil {
		t.Fatalf("serve e1: %v\ndaemon 1 log:\n%s", err, d[0].stderr)
	}
	took := eventually(t, 20*time.Second, "e1 reaches node 5", func() bool { return remoteHas(t, repos[4], e1, d[0].PeerID) })
	t.Logf("advert of e1 reached the fifth node %s after serve", took.Round(time.Millisecond))

	// The API demands the token.
	resp, err := http.Get(d[4].API + "/api/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("API call without token: status %d, want 401", resp.StatusCode)
	}
	checkMetrics(t, d[4])

	// SIGKILL: no withdrawal; the advert must expire (TTL 3 s, refresh 1 s) on every node.
	d[0].kill()
	took = eventually(t, ttl+refresh+10*time.Second, "e1 expires after SIGKILL", func() bool {
		for i := 1; i < 5; i++ {
			if remoteHas(t, repos[i], e1, d[0].PeerID) {
				return false
			}
		}
		return true
	})
	t.Logf("after SIGKILL of its provider, e1 vanished from nodes 2-5 within %s (TTL %s + refresh %s)", took.Round(time.Millisecond), ttl, refresh)

	// Node 2 serves e2 with a one-minute TTL; node 5 learns it.
	cli(t, repos[1], "expert", "serve", "e2")
	eventually(t, 20*time.Second, "e2 reaches node 5", func() bool { return remoteHas(t, repos[4], e2, d[1].PeerID) })

	// Restart node 5: same peer ID, and its persisted table still lists e2 before any refresh.
	d[4].stop(t)
	d[4] = startDaemon(t, repos[4], d[3].tcpAddr(t))
	var id struct {
		PeerID string `json:"peer_id"`
	}
	cliJSON(t, repos[4], &id, "id")
	if id.PeerID != d[4].PeerID {
		t.Fatalf("peer ID after restart %s, daemon says %s", id.PeerID, d[4].PeerID)
	}
	if !remoteHas(t, repos[4], e2, d[1].PeerID) {
		t.Fatal("restarted node 5 starts blind: e2 is not in its persisted table")
	}

	// Graceful stop of node 2: its withdrawal removes e2 everywhere long before the TTL.
	d[1].stop(t)
	took = eventually(t, 10*time.Second, "e2 withdrawn after SIGTERM", func() bool {
		for i := 2; i < 5; i++ {
			if remoteHas(t, repos[i], e2, d[1].PeerID) {
				return false
			}
		}
		return true
	})
	t.Logf("after a graceful stop, e2 vanished from nodes 3-5 within %s (its TTL is 1m)", took.Round(time.Millisecond))

	// The restarted node 2 serves e2 again from its remembered served set.
	d[1] = startDaemon(t, repos[1], d[2].tcpAddr(t))
	eventually(t, 20*time.Second, "e2 re-served after restart", func() bool { return remoteHas(t, repos[4], e2, d[1].PeerID) })
}

// checkMetrics reads the daemon's /metrics with the token and parses it as Prometheus text.
func checkMetrics(t *testing.T, d *daemonProc) {
	t.Helper()
	families := metricFamilies(t, d)
	for _, name := range []string{"meshnode_peers", "meshnode_adverts_sent_total", "meshnode_adverts_received_total",
		"meshnode_remote_adverts", "meshnode_gossip_sent_bytes_total"} {
		if _, ok := families[name]; !ok {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if got := families["meshnode_adverts_received_total"].GetMetric()[0].GetCounter().GetValue(); got < 1 {
		t.Errorf("node 5 counted %v adverts received, want ≥ 1", got)
	}
}

// metricFamilies reads a daemon's /metrics with Prometheus's own parser and checks that the
// meshnode_ families follow Prometheus naming conventions.
func metricFamilies(t *testing.T, d *daemonProc) map[string]*dto.MetricFamily {
	t.Helper()
	tok, err := os.ReadFile(filepath.Join(d.repo, "api.token"))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, d.API+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	families := parseMetrics(t, resp.Body)
	var ours []*dto.MetricFamily
	for name, f := range families {
		if strings.HasPrefix(name, "meshnode_") {
			ours = append(ours, f)
		}
	}
	problems, err := promlint.NewWithMetricFamilies(ours).Lint()
	if err != nil || len(problems) > 0 {
		t.Errorf("metric names break Prometheus conventions: %v %+v", err, problems)
	}
	return families
}
