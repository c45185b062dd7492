package integration

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/meshnode/meshnode/mesh"
)

// TestMDNSFindsPeersInANetworkNamespace: two nodes with mDNS on and no bootstrap find each
// other. Multicast never touches a real interface: the test re-runs itself inside a new network
// namespace whose only interface is a loopback with multicast turned on.
func TestMDNSFindsPeersInANetworkNamespace(t *testing.T) {
	if os.Getenv("MESHNODE_IN_NETNS") == "" {
		exe, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		script := `ip link set lo up && ip link set lo multicast on && ip route add 224.0.0.0/4 dev lo && exec "$0" -test.run '^TestMDNSFindsPeersInANetworkNamespace$' -test.v`
		cmd := exec.Command("unshare", "-n", "sh", "-c", script, exe)
		cmd.Env = append(os.Environ(), "MESHNODE_IN_NETNS=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestMDNSFindsPeersInANetworkNamespace") {
			t.Fatalf("inside a network namespace (needs root, unshare and ip): %v\n%s", err, out)
		}
		return
	}
	cfg := mesh.Config{MDNS: true, MDNSService: "meshnode-test"}
	a := newMeshNode(t, cfg)
	b := newMeshNode(t, cfg)
	took := eventually(t, 20*time.Second, "mDNS connects the two nodes", func() bool {
		return len(a.Host.Network().ConnsToPeer(b.Host.ID())) > 0
	})
	t.Logf("mDNS connected the nodes after %s", took.Round(time.Millisecond))
}
