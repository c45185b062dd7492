package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meshnode/meshnode/internal/netlab"
)

// labNode is a meshnode daemon running on a host of a network lab: its repo is on this
// machine's disk, its network is the host's namespace, and its commands run there too (the
// API listens on the namespace's loopback).
type labNode struct {
	name string
	host *netlab.Host
	repo string
	d    *daemonProc
}

// newLab builds a lab for one test and removes it when the test ends, also on failure.
func newLab(t *testing.T, name string) *netlab.Lab {
	t.Helper()
	if err := netlab.Available(); err != nil {
		t.Skipf("network lab unavailable here: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	lab, err := netlab.New(ctx, name)
	if err != nil {
		t.Fatalf("build lab: %v", err)
	}
	t.Cleanup(func() {
		if err := lab.Close(); err != nil {
			t.Errorf("remove lab: %v", err)
		}
	})
	return lab
}

// labConfig is a node's config in the lab: all interfaces of its namespace, fixed ports (each
// host has a network stack of its own), no mDNS, and the given reachability.
func labConfig(t *testing.T, reachability string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	cfg := fmt.Sprintf(`preset: development
mesh:
  listen: [/ip4/0.0.0.0/tcp/4001, /ip4/0.0.0.0/udp/4001/quic-v1]
  mdns: false
  reachability: %s
  advert_ttl: 30s
  advert_refresh: 10s
`, reachability)
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// initLabNode makes the node's repo (no network needed: it runs here).
func initLabNode(t *testing.T, h *netlab.Host, reachability string) *labNode {
	t.Helper()
	n := &labNode{name: h.Name, host: h, repo: filepath.Join(t.TempDir(), h.Name)}
	cli(t, n.repo, "init", "--config", labConfig(t, reachability))
	return n
}

// start runs the daemon in the host's namespace, bootstrapped to the given addresses.
func (n *labNode) start(t *testing.T, bootstrap ...string) {
	t.Helper()
	// Registered first, so it runs after the daemon is killed: on failure, its log.
	t.Cleanup(func() {
		if t.Failed() && n.d != nil {
			log := n.d.stderr.String()
			t.Logf("%s's log (last 6000 bytes):\n%s", n.name, log[max(0, len(log)-6000):])
		}
	})
	n.d = startDaemonVia(t, []string{"ip", "netns", "exec", n.host.NS}, n.repo, bootstrap...)
}

// addr is the daemon's TCP multiaddr on its lab address.
func (n *labNode) addr(t *testing.T) string {
	t.Helper()
	want := "/ip4/" + n.host.IP.String() + "/tcp/"
	for _, a := range n.d.Addrs {
		if strings.HasPrefix(a, want) {
			return a
		}
	}
	t.Fatalf("%s has no address on %s: %v", n.name, n.host.IP, n.d.Addrs)
	return ""
}

// addrs are the daemon's multiaddrs on its lab address (TCP and QUIC).
func (n *labNode) addrs() []string {
	var out []string
	for _, a := range n.d.Addrs {
		if strings.HasPrefix(a, "/ip4/"+n.host.IP.String()+"/") {
			out = append(out, a)
		}
	}
	return out
}

// cli runs a meshnode command against the daemon, in its namespace.
func (n *labNode) cli(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := n.host.Command(ctx, meshnodeBin, append([]string{"--repo", n.repo}, args...)...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s: meshnode %s: %w: %s", n.name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// json runs a command with --json and decodes its output.
func (n *labNode) json(out any, args ...string) error {
	s, err := n.cli(append([]string{"--json"}, args...)...)
	if err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(s), out); err != nil {
		return fmt.Errorf("%s: meshnode %s printed %q: %w", n.name, strings.Join(args, " "), s, err)
	}
	return nil
}

type labStatus struct {
	Reachability string   `json:"reachability"`
	Addrs        []string `json:"addrs"`
	Peers        int      `json:"peers"`
}

func (n *labNode) status() (labStatus, error) {
	var st labStatus
	return st, n.json(&st, "status")
}

type labPeer struct {
	ID      string   `json:"id"`
	Addrs   []string `json:"addrs"`
	Relayed bool     `json:"relayed"`
}

// peer is what the daemon's peer list says of id (ok false: not connected).
func (n *labNode) peer(id string) (labPeer, bool, error) {
	var peers []labPeer
	if err := n.json(&peers, "peers"); err != nil {
		return labPeer{}, false, err
	}
	i := slices.IndexFunc(peers, func(p labPeer) bool { return p.ID == id })
	if i < 0 {
		return labPeer{}, false, nil
	}
	return peers[i], true, nil
}

// query asks the mesh through the daemon for expert id with an input vector.
func (n *labNode) query(id string, vector []float64, timeout time.Duration) (answer, error) {
	v, _ := json.Marshal(vector)
	var a answer
	err := n.json(&a, "query", "--expert", id, "--vector", string(v), "--timeout-ms", fmt.Sprint(timeout.Milliseconds()))
	return a, err
}

// hasRemote says whether the daemon's remote table holds expert id from provider.
func (n *labNode) hasRemote(id, provider string) (bool, error) {
	var entries []remoteEntry
	if err := n.json(&entries, "expert", "list", "--remote"); err != nil {
		return false, err
	}
	return slices.ContainsFunc(entries, func(e remoteEntry) bool { return e.ID == id && e.Provider == provider }), nil
}

// waitFor polls cond every 250 ms until it holds or limit passes; it returns how long it took.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() (bool, error)) time.Duration {
	t.Helper()
	start := time.Now()
	var last error
	for time.Since(start) < limit {
		ok, err := cond()
		if ok {
			return time.Since(start)
		}
		last = err
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("%s: not true after %s (last error: %v)", what, limit, last)
	return 0
}
