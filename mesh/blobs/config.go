package blobs

import (
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/protocol"
)

// Config holds the exchange's settings. DefaultConfig gives boxo's own defaults (the baseline the
// benchmark compares against); TunedConfig gives the node's settings. Every field must be set:
// New rejects zero or negative values where they make no sense.
type Config struct {
	// ProtocolPrefix is put in front of the bitswap protocol ID, so the mesh's blocks move on a
	// protocol of its own ("/meshnode/ipfs/bitswap/1.2.0") and a node does not become a public
	// IPFS block server. Both configs use "/meshnode".
	ProtocolPrefix protocol.ID

	// Server side.

	// Filter decides which peer gets which block, from the first request on (nil: everyone
	// gets everything). SetRequestFilter replaces it later.
	Filter RequestFilter

	// TaskWorkers is the number of goroutines sending outgoing bitswap messages (boxo: 8).
	TaskWorkers int
	// EngineTaskWorkers is the number of goroutines of the decision engine that turn peers'
	// wants into message envelopes (boxo: 8).
	EngineTaskWorkers int
	// BlockstoreWorkers is the number of goroutines the decision engine uses to look blocks up
	// in the blockstore (boxo: 128).
	BlockstoreWorkers int
	// MaxOutstandingBytesPerPeer caps the bytes queued for one peer and not yet sent; it is what
	// lets the server keep a peer's pipe full (boxo: 1 MiB, which is a single 1 MiB chunk: the
	// server then sends one block, waits for the send to finish, and only then reads the next).
	MaxOutstandingBytesPerPeer int
	// TargetMessageSize is the size the server aims for when packing blocks into one message
	// (boxo: 16 KiB). A message may exceed it by one block; New keeps it at or under 1 MiB so a
	// message with a 2 MiB block stays under libp2p's 4 MiB message limit.
	TargetMessageSize int
	// WantHaveReplaceSize is the largest block the server sends straight away when a peer asks
	// whether it has it (boxo: 1 KiB). Below it a fetch takes one round trip instead of two
	// (want-have, have, want-block, block); the cost is that every connected peer holding
	// the block may send it, when a fetch broadcasts its first want.
	WantHaveReplaceSize int
	// MaxQueuedWantsPerPeer caps the wants the server keeps for one peer (boxo: 1024).
	MaxQueuedWantsPerPeer int

	// Client side.

	// ProviderSearchDelay is how long a fetch waits for connected peers to answer before it asks
	// the content router for providers (boxo: 1 s). A fetch that receives no block for this long
	// (its providers went away) also searches for providers of the blob's root, again at
	// doubling intervals up to RebroadcastDelay while it stays stalled.
	ProviderSearchDelay time.Duration
	// RebroadcastDelay is the period at which a running fetch searches the content router again
	// for more providers (boxo: 1 min).
	RebroadcastDelay time.Duration
	// MaxProviders is the most providers one provider search connects to and fetches from at
	// once (boxo: 10).
	MaxProviders int
	// MaxBlocksInFlight is the window of a fetch: blocks requested and not yet written to the
	// blockstore. It bounds a fetch's memory (the window times the block size, 1 MiB for blobs)
	// and sets how many requests are in flight to keep the pipe full. boxo has no such bound;
	// the default is 32, the concurrency of boxo's merkledag.FetchGraph.
	MaxBlocksInFlight int
	// WriteBatchBytes is how many bytes of verified blocks a fetch gathers before writing them
	// to the blockstore in one batch (one transaction and one sync). Zero writes every block on
	// its own as it arrives, as boxo's blockservice does (default). A batch is written early
	// when no block is in flight.
	WriteBatchBytes int
	// FollowClient runs a second bitswap client for the blob a fetched root names (FetchGuided
	// without a usable guess: an expert's weights, named by its manifest). boxo's client sends a
	// peer at most one message of wants every 20 ms, so that want, made once the root has
	// arrived, would wait up to 20 ms behind the root's; the second client has sent nothing
	// lately. The cost: a second message queue (and bitswap stream) for every connected peer.
	// boxo has one client (default false).
	FollowClient bool
	// FetchTimeout is how long a fetch waits without receiving any block before it fails with
	// ErrUnavailable: a blob no reachable peer holds, or serves to us, fails after this instead
	// of hanging. It is a stall timeout, not a total: a large blob that keeps arriving is never
	// cut off. boxo has none; the default is 1 min.
	FetchTimeout time.Duration
}

// DefaultConfig returns boxo's defaults (the benchmark's baseline).
func DefaultConfig() Config {
	return Config{
		ProtocolPrefix:             "/meshnode",
		TaskWorkers:                8,
		EngineTaskWorkers:          8,
		BlockstoreWorkers:          128,
		MaxOutstandingBytesPerPeer: 1 << 20,
		TargetMessageSize:          16 << 10,
		MaxQueuedWantsPerPeer:      1024,
		WantHaveReplaceSize:        1024,
		ProviderSearchDelay:        time.Second,
		RebroadcastDelay:           time.Minute,
		MaxProviders:               10,
		MaxBlocksInFlight:          32,
		WriteBatchBytes:            0,
		FetchTimeout:               time.Minute,
	}
}

// TunedConfig returns the node's settings. bench/blobs.sh measures them against DefaultConfig
// (bench/results/blobs.md); the reasons are noted on each.
func TunedConfig() Config {
	c := DefaultConfig()
	// Queue four 1 MiB blocks per peer, so reading the next block from the store overlaps
	// sending the previous one instead of alternating with it. More only adds memory: the
	// fetching side bounds what is in flight anyway.
	c.MaxOutstandingBytesPerPeer = 4 << 20
	// Four concurrent sends keep a peer's connection busy; each holds a 1 MiB block and a 2 MiB
	// message buffer on both sides, so eight (boxo) cost 24 MiB per side for no gain on one
	// connection.
	c.TaskWorkers = 4
	c.EngineTaskWorkers = 4
	// A node serves few peers at once from a local store: 16 lookups in parallel are plenty.
	c.BlockstoreWorkers = 16
	// Pack small blocks (dag-pb nodes, small blobs) into fewer messages; 1 MiB chunks go one per
	// message either way.
	c.TargetMessageSize = 1 << 20
	// Micro-experts' weights (up to 100K float32 parameters, 400 KB) come in one round trip.
	// bitswap's client holds a message to a peer for at least 20 ms after its previous one, so
	// the second round trip of want-have/have then want-block/block costs about 20 ms; with the
	// block sent in answer to the want-have, an isolated fetch takes a few ms. The cost: every
	// connected peer holding the block may send it when a fetch broadcasts its first want.
	c.WantHaveReplaceSize = 512 << 10
	// About one wide-area round trip: a neighbour that holds the block has answered by then;
	// otherwise the DHT lookup starts ten times sooner than boxo's 1 s.
	c.ProviderSearchDelay = 100 * time.Millisecond
	// Look for more providers every 10 s, so a fetch whose providers went away finds others
	// well inside FetchTimeout.
	c.RebroadcastDelay = 10 * time.Second
	// An expert fetched by its ID alone: the weights its manifest names in a few ms, not 20.
	c.FollowClient = true
	// The store syncs every write: one sync per 8 MiB instead of one per 1 MiB block.
	c.WriteBatchBytes = 8 << 20
	// 32 MiB between request and write: a batch being written, a batch being filled, and at
	// least 16 blocks in flight, which covers the client's 20 ms between want messages at
	// 800 MiB/s. It bounds the fetch's memory to 32 MiB of blocks. Against 16 blocks and 4 MiB
	// batches, in alternating runs on the benchmark machine: 512 MiB at 312-332 MiB/s against
	// 246-284, 64 MiB at 240-261 against 228-252, for 15-25 MiB more peak memory.
	c.MaxBlocksInFlight = 32
	c.FetchTimeout = 30 * time.Second
	return c
}

// maxTargetMessageSize keeps a message (target plus one block of at most 2 MiB) under libp2p's
// 4 MiB message size limit.
const maxTargetMessageSize = 1 << 20

func (c Config) validate() error {
	var errs []error
	positive := func(name string, v int) {
		if v <= 0 {
			errs = append(errs, fmt.Errorf("%s is %d, must be > 0", name, v))
		}
	}
	positive("TaskWorkers", c.TaskWorkers)
	positive("EngineTaskWorkers", c.EngineTaskWorkers)
	positive("BlockstoreWorkers", c.BlockstoreWorkers)
	positive("MaxOutstandingBytesPerPeer", c.MaxOutstandingBytesPerPeer)
	positive("TargetMessageSize", c.TargetMessageSize)
	positive("MaxQueuedWantsPerPeer", c.MaxQueuedWantsPerPeer)
	positive("MaxProviders", c.MaxProviders)
	positive("MaxBlocksInFlight", c.MaxBlocksInFlight)
	if c.TargetMessageSize > maxTargetMessageSize {
		errs = append(errs, fmt.Errorf("TargetMessageSize is %d, must be <= %d", c.TargetMessageSize, maxTargetMessageSize))
	}
	if c.WantHaveReplaceSize < 0 {
		errs = append(errs, fmt.Errorf("WantHaveReplaceSize is %d, must be >= 0", c.WantHaveReplaceSize))
	}
	if c.WriteBatchBytes < 0 {
		errs = append(errs, fmt.Errorf("WriteBatchBytes is %d, must be >= 0", c.WriteBatchBytes))
	}
	if c.ProviderSearchDelay <= 0 {
		errs = append(errs, fmt.Errorf("ProviderSearchDelay is %s, must be > 0", c.ProviderSearchDelay))
	}
	if c.RebroadcastDelay <= 0 {
		errs = append(errs, fmt.Errorf("RebroadcastDelay is %s, must be > 0", c.RebroadcastDelay))
	}
	if c.FetchTimeout <= 0 {
		errs = append(errs, fmt.Errorf("FetchTimeout is %s, must be > 0", c.FetchTimeout))
	}
	if c.ProtocolPrefix != "" && c.ProtocolPrefix[0] != '/' {
		errs = append(errs, fmt.Errorf("ProtocolPrefix %q must start with /", c.ProtocolPrefix))
	}
	return errors.Join(errs...)
}
