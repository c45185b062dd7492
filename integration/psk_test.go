package integration

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshnode/meshnode/mesh"
)

// TestPrivateNetworkKey: nodes holding the same PSK connect; a node with another key cannot.
func TestPrivateNetworkKey(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	other := bytes.Repeat([]byte{8}, 32)
	a := newMeshNode(t, mesh.Config{PSK: key, ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}})
	b := newMeshNode(t, mesh.Config{PSK: key})
	c := newMeshNode(t, mesh.Config{PSK: other})
	open := newMeshNode(t, mesh.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Host.Connect(ctx, peer.AddrInfo{ID: a.Host.ID(), Addrs: a.Host.Addrs()}); err != nil {
		t.Fatalf("same key: %v", err)
	}
	for name, n := range map[string]*mesh.Node{"another key": c, "no key": open} {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		err := n.Host.Connect(ctx, peer.AddrInfo{ID: a.Host.ID(), Addrs: a.Host.Addrs()})
		cancel()
		if err == nil {
			t.Fatalf("%s: connected to a private mesh", name)
		}
	}
	for _, addr := range a.Addrs() {
		if bytes.Contains([]byte(addr), []byte("/quic")) {
			t.Fatalf("a PSK node listens on QUIC: %s", addr)
		}
	}
}
