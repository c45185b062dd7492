package integration

import (
	"context"
	"testing"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
)

// gossipPeer starts a bare libp2p host on loopback TCP with its own gossipsub (none of our
// validators), joins topic and subscribes to it, so the host takes part in the topic's mesh.
// key is the host's identity; nil means a fresh one. Everything is closed when the test ends.
func gossipPeer(t *testing.T, key crypto.PrivKey, topic string, opts ...pubsub.Option) (host.Host, *pubsub.Topic) {
	t.Helper()
	hostOpts := []libp2p.Option{libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0")}
	if key != nil {
		hostOpts = append(hostOpts, libp2p.Identity(key))
	}
	h, err := libp2p.New(hostOpts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ps, err := pubsub.NewGossipSub(ctx, h, opts...)
	if err != nil {
		t.Fatal(err)
	}
	tp, err := ps.Join(topic)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := tp.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sub.Cancel)
	return h, tp
}
