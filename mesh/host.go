package mesh

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	ds "github.com/ipfs/go-datastore"
	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/metrics"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/pnet"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	routedhost "github.com/libp2p/go-libp2p/p2p/host/routed"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	"github.com/prometheus/client_golang/prometheus"
)

// Options are the collaborators a node is given.
type Options struct {
	// Datastore persists the remote advert table and DHT records (a namespace of the node's
	// database). Nil keeps them in memory.
	Datastore ds.Batching
	// Logger receives the node's logs (default: discard).
	Logger *slog.Logger
	// Registerer receives the node's Prometheus metrics (default: a private registry).
	Registerer prometheus.Registerer
}

// Node is a running mesh node.
type Node struct {
	Host    host.Host
	DHT     *dht.IpfsDHT
	PubSub  *pubsub.PubSub
	Adverts *Adverts
	Metrics *Metrics

	// basic is the host without routing: for dials that must not look peers up (a pull from
	// a provider record's addresses: a dead provider fails at once).
	basic  host.Host
	cfg    Config
	bw     *metrics.BandwidthCounter
	log    *slog.Logger
	mdns   mdns.Service
	cancel context.CancelFunc
	wg     sync.WaitGroup
	scores *scoreBoard
	reach  atomic.Int32 // network.Reachability
}

// New starts a mesh node with the given identity.
func New(ctx context.Context, key crypto.PrivKey, cfg Config, o Options) (*Node, error) {
	cfg.defaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
	bw := metrics.NewBandwidthCounter()
	ref := &hostRef{}
	h, err := newHost(key, cfg, o.Registerer, bw, ref.get)
	if err != nil {
		return nil, err
	}
	// The node outlives the start-up context: it keeps its values, not its cancellation.
	m, err := newMetrics(o.Registerer, bw)
	if err != nil {
		h.Close()
		return nil, err
	}
	ref.set(h)
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	n := &Node{Host: h, basic: h, cfg: cfg, bw: bw, log: o.Logger, cancel: cancel, Metrics: m, scores: newScoreBoard()}
	fail := func(err error) (*Node, error) {
		n.Close()
		return nil, err
	}
	bootstrap, err := parsePeers(cfg.Bootstrap)
	if err != nil {
		return fail(err)
	}
	// A DHT server while reachability is unknown (a mesh on one machine or LAN, where AutoNAT
	// never says public) or public; a client once AutoNAT finds the node behind a NAT, so
	// peers do not put an unreachable node in their routing tables.
	dopts := []dht.Option{dht.ProtocolPrefix(protocol.ID(cfg.ProtocolPrefix)), dht.Mode(dht.ModeAutoServer)}
	if len(bootstrap) > 0 {
		dopts = append(dopts, dht.BootstrapPeers(bootstrap...))
	}
	if o.Datastore != nil {
		dopts = append(dopts, dht.Datastore(o.Datastore))
	}
	if n.DHT, err = dht.New(h, dopts...); err != nil {
		return fail(fmt.Errorf("start DHT: %w", err))
	}
	// From here on, a stream to a peer whose addresses this node does not know (an advert's
	// provider heard by gossip, a seller, a coordinator) finds them in the DHT first.
	n.basic, n.Host = h, routedhost.Wrap(h, n.DHT)
	if n.PubSub, err = newPubSub(ctx, h, cfg, o.Logger, n.scores); err != nil {
		return fail(err)
	}
	if n.Adverts, err = newAdverts(ctx, n, o.Datastore); err != nil {
		return fail(err)
	}
	if cfg.MDNS {
		n.mdns = mdns.NewMdnsService(h, cfg.MDNSService, &mdnsNotifee{n: n})
		if err := n.mdns.Start(); err != nil {
			return fail(fmt.Errorf("start mDNS: %w", err))
		}
	}
	n.wg.Add(3)
	go n.bootstrapLoop(ctx, bootstrap)
	go n.peerGauge(ctx)
	go n.watchReachability(ctx)
	return n, nil
}

func newHost(key crypto.PrivKey, cfg Config, reg prometheus.Registerer, bw *metrics.BandwidthCounter, hostOf func() host.Host) (host.Host, error) {
	limits := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&limits)
	for _, l := range cfg.StreamLimits {
		p := protocol.ID(l.Protocol)
		limits.AddProtocolLimit(p, rcmgr.BaseLimit{StreamsInbound: l.Total, StreamsOutbound: l.Total, Streams: 2 * l.Total, Memory: 64 << 20}, rcmgr.BaseLimitIncrease{})
		limits.AddProtocolPeerLimit(p, rcmgr.BaseLimit{StreamsInbound: l.PerPeer, StreamsOutbound: l.PerPeer, Streams: 2 * l.PerPeer, Memory: 16 << 20}, rcmgr.BaseLimitIncrease{})
	}
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limits.Scale(int64(cfg.MaxMemoryMiB)<<20, cfg.MaxFDs)))
	if err != nil {
		return nil, fmt.Errorf("resource manager: %w", err)
	}
	cm, err := connmgr.NewConnManager(cfg.ConnLow, cfg.ConnHigh, connmgr.WithGracePeriod(30*time.Second))
	if err != nil {
		return nil, fmt.Errorf("connection manager: %w", err)
	}
	listen := cfg.ListenAddrs
	opts := []libp2p.Option{
		libp2p.Identity(key),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Security(libp2ptls.ID, libp2ptls.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.ResourceManager(rm),
		libp2p.ConnectionManager(cm),
		libp2p.PrometheusRegisterer(reg),
		libp2p.BandwidthReporter(bw),
	}
	nat, err := natOptions(cfg, hostOf)
	if err != nil {
		return nil, err
	}
	opts = append(opts, nat...)
	if cfg.PSK != nil {
		opts = append(opts, libp2p.PrivateNetwork(pnet.PSK(cfg.PSK)))
		listen = slices.DeleteFunc(slices.Clone(listen), func(a string) bool { return strings.Contains(a, "/quic") })
	} else {
		opts = append(opts, libp2p.Transport(quic.NewTransport))
	}
	opts = append(opts, libp2p.ListenAddrStrings(listen...))
	h, err := libp2p.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("start libp2p host: %w", err)
	}
	return h, nil
}

func parsePeers(addrs []string) ([]peer.AddrInfo, error) {
	var out []peer.AddrInfo
	for _, a := range addrs {
		ai, err := peer.AddrInfoFromString(a)
		if err != nil {
			return nil, fmt.Errorf("bootstrap address %q: %w (want a multiaddr ending in /p2p/<peer ID>)", a, err)
		}
		out = append(out, *ai)
	}
	return out, nil
}

// bootstrapLoop dials the bootstrap peers until each is connected once, with capped backoff,
// then bootstraps the DHT. It ends with the node.
func (n *Node) bootstrapLoop(ctx context.Context, peers []peer.AddrInfo) {
	defer n.wg.Done()
	backoff := 100 * time.Millisecond
	pending := slices.Clone(peers)
	for len(pending) > 0 {
		pending = slices.DeleteFunc(pending, func(ai peer.AddrInfo) bool {
			dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			if err := n.Host.Connect(dctx, ai); err != nil {
				n.log.Debug("bootstrap dial failed", "peer", ai.ID, "err", err)
				return false
			}
			n.log.Info("connected to bootstrap peer", "peer", ai.ID)
			return true
		})
		if len(pending) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
	if err := n.DHT.Bootstrap(ctx); err != nil && !errors.Is(err, context.Canceled) {
		n.log.Warn("DHT bootstrap", "err", err)
	}
}

func (n *Node) peerGauge(ctx context.Context) {
	defer n.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		n.Metrics.Peers.Set(float64(len(n.Host.Network().Peers())))
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

type mdnsNotifee struct{ n *Node }

func (m *mdnsNotifee) HandlePeerFound(ai peer.AddrInfo) {
	if ai.ID == m.n.Host.ID() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := m.n.Host.Connect(ctx, ai); err != nil {
		m.n.log.Debug("mDNS peer dial failed", "peer", ai.ID, "err", err)
	}
}

// Addrs returns the node's full multiaddrs (with /p2p/<id>), for others to bootstrap from.
func (n *Node) Addrs() []string {
	var out []string
	for _, a := range n.Host.Addrs() {
		out = append(out, a.String()+"/p2p/"+n.Host.ID().String())
	}
	return out
}

// Config is the node's configuration, with its defaults filled in.
func (n *Node) Config() Config { return n.cfg }

// TrafficByProtocol is what this node's streams carried since it started, by protocol (stream
// payload only: transport, security and muxer framing are not counted).
func (n *Node) TrafficByProtocol() map[protocol.ID]metrics.Stats {
	return n.bw.GetBandwidthByProtocol()
}

// Score is the gossip score this node gives a peer (0 when unknown).
func (n *Node) Score(p peer.ID) float64 { return n.scores.get(p) }

// Penalise lowers p's gossip score for one message it authored beyond a per-author limit
// (adverts or listings over its share of a table): spam that is not invalid, so the
// validator's rejection penalty does not reach it. A few dozen take p below the graylist.
func (n *Node) Penalise(p peer.ID) {
	n.scores.penalise(p)
	if n.Metrics != nil {
		n.Metrics.SpamPenalties.Inc()
	}
}

// Close withdraws this node's adverts, then stops discovery, gossip, the DHT and the host.
func (n *Node) Close() error {
	var errs []error
	if n.Adverts != nil {
		errs = append(errs, n.Adverts.close())
	}
	if n.mdns != nil {
		errs = append(errs, n.mdns.Close())
	}
	n.cancel()
	n.wg.Wait()
	if n.DHT != nil {
		errs = append(errs, n.DHT.Close())
	}
	errs = append(errs, n.Host.Close())
	return errors.Join(errs...)
}
