package blobs

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	bsclient "github.com/ipfs/boxo/bitswap/client"
	bsmsg "github.com/ipfs/boxo/bitswap/message"
	"github.com/ipfs/boxo/bitswap/network/bsnet"
	bsserver "github.com/ipfs/boxo/bitswap/server"
	"github.com/ipfs/boxo/blockstore"
	rpqm "github.com/ipfs/boxo/routing/providerquerymanager"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/core/routing"
	"github.com/multiformats/go-multiaddr"
)

var (
	// ErrUnavailable is returned by Fetch when no block arrived for Config.FetchTimeout: no
	// reachable peer holds the blob, or none will serve it to this node.
	ErrUnavailable = errors.New("blob not available from any reachable peer")
	// ErrClosed is returned by calls on a closed Exchange.
	ErrClosed = errors.New("blob exchange closed")
	// ErrNotHeld is returned by Provide for a blob whose root block is not in the local store.
	ErrNotHeld = errors.New("blob not held locally")
)

// RequestFilter decides, on the serving side, whether peer p may get the block c. It runs on
// bitswap's message path for every requested block, so it must be quick and must not block.
type RequestFilter func(p peer.ID, c cid.Cid) bool

// Exchange moves blocks between this node and its peers over bitswap. It is safe for concurrent
// use; several fetches may run at once.
type Exchange struct {
	host   host.Host
	router routing.ContentRouting
	bs     blockstore.Blockstore
	cfg    Config
	proto  protocol.ID

	swap     *swap
	pqm      *rpqm.ProviderQueryManager
	filter   atomic.Pointer[RequestFilter]
	wanted   *recentSet // CIDs fetches asked for lately, to spot blocks nobody asked for
	banMu    sync.Mutex
	banned   map[peer.ID]time.Time // peers that sent blocks nobody asked for -> until when ignored
	notifiee banNotifiee

	mu       sync.Mutex     // guards stopping and drops.Add
	stopping bool           // Close has begun
	drops    sync.WaitGroup // goroutines disconnecting misbehaving peers

	done      <-chan struct{} // closed when the exchange stops
	cancel    context.CancelFunc
	closed    atomic.Bool
	closeOnce sync.Once
}

// New starts a bitswap client and server on h, serving blocks from bs and writing fetched
// blocks to it, finding providers through router (nil: only peers this node is connected to
// are asked). The exchange runs until Close is called or ctx is done. Close the Exchange before
// the host and the blockstore.
func New(ctx context.Context, h host.Host, router routing.ContentRouting, bs blockstore.Blockstore, cfg Config) (*Exchange, error) {
	if h == nil || bs == nil {
		return nil, errors.New("new blob exchange: host and blockstore are required")
	}
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("new blob exchange: invalid config: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	x := &Exchange{
		host:   h,
		router: router,
		bs:     bs,
		cfg:    cfg,
		proto:  cfg.ProtocolPrefix + bsnet.ProtocolBitswap,
		done:   ctx.Done(),
		cancel: cancel,
		wanted: newRecentSet(recentWants),
		banned: make(map[peer.ID]time.Time),
	}
	x.filter.Store(&cfg.Filter) // before the server starts: no request is served unfiltered
	// Only the current protocol version: every mesh node runs this code, and older versions
	// lack the HAVE/DONT_HAVE messages the client relies on.
	swapNet := bsnet.NewFromIpfsHost(h,
		bsnet.Prefix(cfg.ProtocolPrefix),
		bsnet.SupportedProtocols([]protocol.ID{bsnet.ProtocolBitswap}))

	// Our own provider query manager rather than bitswap's, to set how many providers a search
	// connects to.
	var finder routing.ContentDiscovery
	if router != nil {
		pqm, err := rpqm.New(swapNet, router, rpqm.WithMaxProviders(cfg.MaxProviders))
		if err != nil {
			cancel()
			return nil, fmt.Errorf("new blob exchange: provider query manager: %w", err)
		}
		x.pqm = pqm
		finder = pqm
	}

	x.notifiee = banNotifiee{x}
	h.Network().Notify(x.notifiee)
	x.swap = newSwap(ctx, swapNet, finder, bs, x, cfg.FollowClient,
		[]bsserver.Option{
			bsserver.TaskWorkerCount(cfg.TaskWorkers),
			bsserver.EngineTaskWorkerCount(cfg.EngineTaskWorkers),
			bsserver.EngineBlockstoreWorkerCount(cfg.BlockstoreWorkers),
			bsserver.MaxOutstandingBytesPerPeer(cfg.MaxOutstandingBytesPerPeer),
			bsserver.WithTargetMessageSize(cfg.TargetMessageSize),
			bsserver.MaxQueuedWantlistEntriesPerPeer(uint(cfg.MaxQueuedWantsPerPeer)),
			bsserver.WithWantHaveReplaceSize(cfg.WantHaveReplaceSize),
			bsserver.WithPeerBlockRequestFilter(x.allow),
		},
		[]bsclient.Option{
			bsclient.ProviderSearchDelay(cfg.ProviderSearchDelay),
			bsclient.RebroadcastDelay(cfg.RebroadcastDelay),
			bsclient.WithDefaultProviderQueryManager(false),
		})
	return x, nil
}

// allow is the filter installed in the bitswap server; it defers to the one SetRequestFilter set.
func (x *Exchange) allow(p peer.ID, c cid.Cid) bool {
	f := x.filter.Load()
	return f == nil || *f == nil || (*f)(p, c)
}

// SetRequestFilter sets which peers may get which blocks from this node (nil: everyone gets
// everything). A denied request is answered with DONT_HAVE, so the asking peer looks elsewhere.
// It applies to requests that arrive after the call.
func (x *Exchange) SetRequestFilter(f RequestFilter) {
	x.filter.Store(&f)
}

// Provide announces through the content router that this node holds the blob root. The blob
// must be in the local store. Only the root is announced: a fetch finds providers by the root and
// then asks them for the rest of the DAG, and on a provider's loss asks its connected peers and
// searches by the root again, so one record per blob keeps announcing cheap for large blobs.
// The DHT keeps a record 48 h: the caller re-provides what it holds periodically.
func (x *Exchange) Provide(ctx context.Context, root cid.Cid) error {
	if x.closed.Load() {
		return fmt.Errorf("provide %s: %w", root, ErrClosed)
	}
	if x.router == nil {
		return fmt.Errorf("provide %s: no content router configured", root)
	}
	has, err := x.bs.Has(ctx, root)
	if err != nil {
		return fmt.Errorf("provide %s: look up root block: %w", root, err)
	}
	if !has {
		return fmt.Errorf("provide %s: %w", root, ErrNotHeld)
	}
	if err := x.router.Provide(ctx, root, true); err != nil {
		return fmt.Errorf("provide %s: announce: %w", root, err)
	}
	return nil
}

// Close stops the bitswap client and server and stops answering the bitswap protocol on the
// host. Fetches in progress fail. It does not close the host, the router or the blockstore.
func (x *Exchange) Close() error {
	x.closeOnce.Do(func() {
		x.closed.Store(true)
		x.mu.Lock()
		x.stopping = true
		x.mu.Unlock()
		x.host.RemoveStreamHandler(x.proto)
		x.host.Network().StopNotify(x.notifiee)
		x.swap.close()
		if x.pqm != nil {
			x.pqm.Close()
		}
		x.cancel()
		x.drops.Wait()
	})
	return nil
}

// recentWants is how many requested CIDs the exchange remembers: far more than the blocks in
// flight at once (MaxBlocksInFlight per fetch), so a late duplicate of a block asked for is
// still known.
const recentWants = 8192

// banDuration is how long the exchange ignores a peer that sent a block nobody asked for.
const banDuration = 10 * time.Minute

// admit decides whether bitswap sees an incoming message from p. bitswap derives a received
// block's CID from its bytes, so a peer that answers a want with bytes that do not match the CID
// sends a block whose CID nobody wanted. bitswap would drop the block, but the session would
// keep waiting on that peer, which said it had the block: a tampering peer would stall a fetch
// even when an honest one holds the blob. Such a peer is banned for banDuration: its messages
// are dropped and its connections closed, now and whenever it connects again meanwhile, so
// fetches move on to other providers.
func (x *Exchange) admit(p peer.ID, msg bsmsg.BitSwapMessage) bool {
	if x.isBanned(p) {
		x.dropPeer(p)
		return false
	}
	for _, b := range msg.Blocks() {
		if !x.wanted.has(b.Cid()) {
			x.ban(p)
			x.dropPeer(p)
			return false
		}
	}
	return true
}

// banNotifiee closes every new connection of a banned peer: bitswap reports a peer's
// connection only when it had none, which a reconnection racing the ban's close may not be.
type banNotifiee struct{ x *Exchange }

func (n banNotifiee) Connected(_ network.Network, c network.Conn) { n.x.admitPeer(c.RemotePeer()) }

func (banNotifiee) Disconnected(network.Network, network.Conn)       {}
func (banNotifiee) Listen(network.Network, multiaddr.Multiaddr)      {}
func (banNotifiee) ListenClose(network.Network, multiaddr.Multiaddr) {}

// admitPeer decides whether bitswap hears of a new connection to p: not while p is banned,
// and then p's connections are closed.
func (x *Exchange) admitPeer(p peer.ID) bool {
	if x.isBanned(p) {
		x.dropPeer(p)
		return false
	}
	return true
}

func (x *Exchange) ban(p peer.ID) {
	x.banMu.Lock()
	defer x.banMu.Unlock()
	now := time.Now()
	for q, until := range x.banned { // few entries: forget the expired ones here
		if now.After(until) {
			delete(x.banned, q)
		}
	}
	x.banned[p] = now.Add(banDuration)
}

func (x *Exchange) isBanned(p peer.ID) bool {
	x.banMu.Lock()
	defer x.banMu.Unlock()
	until, ok := x.banned[p]
	return ok && time.Now().Before(until)
}

// dropPeer closes the connections to p, off bitswap's receive path.
func (x *Exchange) dropPeer(p peer.ID) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.stopping {
		return
	}
	x.drops.Add(1)
	go func() {
		defer x.drops.Done()
		_ = x.host.Network().ClosePeer(p) // best effort: p may be gone already
	}()
}

// recentSet remembers the last n CIDs added.
type recentSet struct {
	mu    sync.Mutex
	ring  []cid.Cid
	next  int
	count map[cid.Cid]int
}

func newRecentSet(n int) *recentSet {
	return &recentSet{ring: make([]cid.Cid, n), count: make(map[cid.Cid]int, n)}
}

func (s *recentSet) add(cs ...cid.Cid) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range cs {
		if old := s.ring[s.next]; old.Defined() {
			if s.count[old]--; s.count[old] == 0 {
				delete(s.count, old)
			}
		}
		s.ring[s.next] = c
		s.next = (s.next + 1) % len(s.ring)
		s.count[c]++
	}
}

func (s *recentSet) has(c cid.Cid) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count[c] > 0
}
