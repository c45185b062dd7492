package mesh

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/autorelay"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/proto"
)

// Reachability modes of Config.Reachability.
const (
	// ReachAuto lets AutoNAT find out: peers dial this node back; a node they cannot reach is
	// private, reserves a slot on a relay and advertises the relayed address, and hole punching
	// (DCUtR) upgrades relayed connections to direct ones where the NATs allow it.
	ReachAuto = "auto"
	// ReachPublic declares the node publicly reachable (a bootstrap or relay node with a
	// public address): it serves relay slots and the DHT at once, without waiting for AutoNAT.
	ReachPublic = "public"
	// ReachPrivate declares the node unreachable: it uses relays from the start.
	ReachPrivate = "private"
)

// natOptions are the libp2p options for NAT traversal: AutoNAT's service for others, the relay
// client, a relay service (it runs only while this node is publicly reachable, with libp2p's
// default limits: 128 reservations, circuits of 2 min and 128 KiB), auto-relay fed by static
// relays or by this node's connected peers that offer the hop protocol, and hole punching.
func natOptions(cfg Config, hostOf func() host.Host) ([]libp2p.Option, error) {
	opts := []libp2p.Option{libp2p.EnableNATService(), libp2p.EnableRelay(), libp2p.EnableHolePunching()}
	switch cfg.Reachability {
	case ReachAuto:
	case ReachPublic:
		opts = append(opts, libp2p.ForceReachabilityPublic())
	case ReachPrivate:
		opts = append(opts, libp2p.ForceReachabilityPrivate())
	default:
		return nil, fmt.Errorf("mesh config: reachability %q (want %s, %s or %s)", cfg.Reachability, ReachAuto, ReachPublic, ReachPrivate)
	}
	if !cfg.NoRelayService {
		opts = append(opts, libp2p.EnableRelayService())
	}
	relayOpts := []autorelay.Option{
		// A small mesh may have one relay: use what there is instead of waiting 3 minutes
		// for more candidates, and retry a refused relay after a minute, not an hour.
		autorelay.WithMinCandidates(1),
		autorelay.WithNumRelays(2),
		autorelay.WithBootDelay(0),
		autorelay.WithBackoff(time.Minute),
		autorelay.WithMinInterval(10 * time.Second),
	}
	static, err := parsePeers(cfg.Relays)
	if err != nil {
		return nil, fmt.Errorf("mesh config: relays: %w", err)
	}
	if len(static) > 0 {
		opts = append(opts, libp2p.EnableAutoRelayWithStaticRelays(static, relayOpts...))
	} else {
		opts = append(opts, libp2p.EnableAutoRelayWithPeerSource(relayCandidates(hostOf), relayOpts...))
	}
	return opts, nil
}

// relayCandidates offers auto-relay the connected peers that speak the relay hop protocol over
// a direct connection (a peer reached through a relay cannot be one).
func relayCandidates(hostOf func() host.Host) autorelay.PeerSource {
	return func(ctx context.Context, num int) <-chan peer.AddrInfo {
		out := make(chan peer.AddrInfo, max(num, 0))
		defer close(out)
		h := hostOf()
		if h == nil || num <= 0 {
			return out
		}
		for _, p := range h.Network().Peers() {
			if len(out) == num {
				break
			}
			if ok, _ := h.Peerstore().SupportsProtocols(p, proto.ProtoIDv2Hop); len(ok) == 0 {
				continue
			}
			direct := slices.ContainsFunc(h.Network().ConnsToPeer(p), func(c network.Conn) bool { return !c.Stat().Limited })
			if direct {
				out <- peer.AddrInfo{ID: p, Addrs: h.Peerstore().Addrs(p)}
			}
		}
		return out
	}
}

// hostRef is set once the host exists, for callbacks libp2p takes before it is built.
type hostRef struct{ p atomic.Pointer[host.Host] }

func (r *hostRef) set(h host.Host) { r.p.Store(&h) }

func (r *hostRef) get() host.Host {
	if h := r.p.Load(); h != nil {
		return *h
	}
	return nil
}

// watchReachability records what AutoNAT concludes about this node and logs each change.
func (n *Node) watchReachability(ctx context.Context) {
	defer n.wg.Done()
	sub, err := n.basic.EventBus().Subscribe(new(event.EvtLocalReachabilityChanged))
	if err != nil {
		n.log.Warn("subscribe to reachability events", "err", err)
		return
	}
	defer sub.Close()
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-sub.Out():
			if !ok {
				return
			}
			r := e.(event.EvtLocalReachabilityChanged).Reachability
			n.reach.Store(int32(r))
			n.log.Info("reachability changed", "reachability", r.String())
		}
	}
}

// Reachability is what AutoNAT (or the config) says of this node: Unknown, Public or Private.
func (n *Node) Reachability() network.Reachability { return network.Reachability(n.reach.Load()) }
