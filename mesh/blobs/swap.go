package blobs

import (
	"context"
	"errors"
	"slices"

	bsclient "github.com/ipfs/boxo/bitswap/client"
	bsmsg "github.com/ipfs/boxo/bitswap/message"
	bsnetwork "github.com/ipfs/boxo/bitswap/network"
	bsserver "github.com/ipfs/boxo/bitswap/server"
	"github.com/ipfs/boxo/blockstore"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"
)

// swap is boxo's bitswap, assembled as bitswap.New does (one network, one server, one client),
// with an optional second client (Config.FollowClient). boxo's client sends a peer at most one
// message of wants every 20 ms, so a want that can only be made once an earlier block has
// arrived (an expert's weights, named by its manifest) waits up to 20 ms when it goes through
// the client that asked for that block. The second client, whose message queue has not just
// sent anything, takes it instead. Both clients see every incoming message and each takes what
// its own sessions asked for.
type swap struct {
	net    bsnetwork.BitSwapNetwork
	server *bsserver.Server
	first  *bsclient.Client // every fetch's own requests
	follow *bsclient.Client // the blob a fetched root names (FetchGuided without a guess); first if none
	guard  guard
}

// guard decides which incoming messages and connections bitswap sees (Exchange: it bans peers
// that send blocks nobody asked for).
type guard interface {
	admit(p peer.ID, m bsmsg.BitSwapMessage) bool
	admitPeer(p peer.ID) bool
}

// newSwap starts the server and the clients on net; followClient adds the second client.
func newSwap(ctx context.Context, net bsnetwork.BitSwapNetwork, finder routing.ContentDiscovery, bs blockstore.Blockstore, g guard,
	followClient bool, serverOpts []bsserver.Option, clientOpts []bsclient.Option) *swap {
	s := &swap{net: net, guard: g}
	s.server = bsserver.New(ctx, net, bs, serverOpts...)
	// The server learns of blocks either client receives, to serve peers waiting for them.
	clientOpts = append(clientOpts, bsclient.WithBlockReceivedNotifier(s.server))
	s.first = bsclient.New(ctx, net, finder, bs, clientOpts...)
	s.follow = s.first
	if followClient {
		// Without boxo's count of duplicate blocks: a blockstore lookup per received block, for
		// a figure nothing reads, and the first client does it already.
		s.follow = bsclient.New(ctx, net, finder, bs, append(clientOpts, bsclient.WithoutDuplicatedBlockStats())...)
	}
	net.Start(s)
	return s
}

// clients is the distinct clients: first, and follow when it is a second one.
func (s *swap) clients() []*bsclient.Client {
	if s.follow == s.first {
		return []*bsclient.Client{s.first}
	}
	return []*bsclient.Client{s.first, s.follow}
}

// followFor is the client to fetch c through when c is named by a block just fetched: the
// second client, unless the first wants c already. A peer keeps one want per block and peer,
// so when both clients want a block from it, one client's cancel (a fetch that gave up)
// withdraws the other's want too, until that client asks again. This check avoids the plain
// case of a blob already being fetched; it cannot see a fetch through the first client that
// starts later, or blocks below c that another fetch wants. There a fetch waits longer, it does
// not fail: in a test that cancelled a follow-up fetch of a 256 MiB blob while a fetch through
// the first client wanted the same blocks, the latter finished in about 1.2 s.
func (s *swap) followFor(c cid.Cid) *bsclient.Client {
	if s.follow != s.first && slices.Contains(s.first.GetWantlist(), c) {
		return s.first
	}
	return s.follow
}

// ReceiveMessage hands an incoming message the guard admits to the clients (each takes the
// blocks, haves and don't-haves its sessions asked for) and the server (the peer's wants).
func (s *swap) ReceiveMessage(ctx context.Context, p peer.ID, m bsmsg.BitSwapMessage) {
	if !s.guard.admit(p, m) {
		return
	}
	for _, c := range s.clients() {
		c.ReceiveMessage(ctx, p, m)
	}
	s.server.ReceiveMessage(ctx, p, m)
}

// ReceiveError is called for a stream that failed to decode; bitswap.New only logs it.
func (s *swap) ReceiveError(error) {}

func (s *swap) PeerConnected(p peer.ID) {
	if !s.guard.admitPeer(p) {
		return
	}
	for _, c := range s.clients() {
		c.PeerConnected(p)
	}
	s.server.PeerConnected(p)
}

func (s *swap) PeerDisconnected(p peer.ID) {
	for _, c := range s.clients() {
		c.PeerDisconnected(p)
	}
	s.server.PeerDisconnected(p)
}

// notifyNewBlocks tells both clients (sessions waiting for the blocks) and the server (peers
// waiting for them) that the blockstore now holds blks.
func (s *swap) notifyNewBlocks(ctx context.Context, blks ...blocks.Block) error {
	var errs []error
	for _, c := range s.clients() {
		errs = append(errs, c.NotifyNewBlocks(ctx, blks...))
	}
	return errors.Join(append(errs, s.server.NotifyNewBlocks(ctx, blks...))...)
}

func (s *swap) close() {
	s.net.Stop()
	for _, c := range s.clients() {
		c.Close()
	}
	s.server.Close()
}
