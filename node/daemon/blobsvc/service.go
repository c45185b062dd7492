package blobsvc

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/meshnode/meshnode/node/api"
	depslib "github.com/meshnode/meshnode/node/daemon/internal/deps"

	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshnode/meshnode/experts"
	"github.com/meshnode/meshnode/mesh/advert"
	"github.com/meshnode/meshnode/mesh/blobs"
	"github.com/meshnode/meshnode/node"
)

// Exposure is what this node shows to peers, as the blob service needs it. Its methods are
// called concurrently (Allow from bitswap's server goroutines), so they must be safe for that.
type Exposure interface {
	// Allow says whether peer p may get block c (the bitswap server's request filter).
	Allow(p peer.ID, c cid.Cid) bool
	// Refresh rebuilds what is exposed after a blob was made public.
	Refresh(ctx context.Context) error
	// Announced lists the roots (CIDs as strings) this node announces in the DHT.
	Announced() []string
}

// Store is the part of the expert store the service uses.
type Store interface {
	// Blockstore holds every block; the exchange reads and writes it.
	Blockstore() blockstore.Blockstore
	// Install makes a fetched expert hosted here.
	Install(ctx context.Context, id cid.Cid) (*experts.Manifest, *experts.Network, error)
	// GetManifestBytes reads an expert's encoded manifest.
	GetManifestBytes(ctx context.Context, id cid.Cid) ([]byte, error)
}

// Adverts is the mesh's table of live adverts (an *advert.Table).
type Adverts interface {
	// Providers lists the live adverts of the expert id at now.
	Providers(id string, now time.Time) []advert.Entry
}

// Deps is what New needs. Every interface and value in it is shared with the caller, who
// keeps ownership: the service closes none of them, and the caller closes them after Close.
type Deps struct {
	// Store holds experts and blocks; safe for concurrent use. Required.
	Store Store
	// Keeper holds pins and public marks; a fetch holds it so gc waits. Safe for concurrent
	// use; Keeper returns it for pin and unpin. Required.
	Keeper *node.BlobKeeper
	// Host is this node's libp2p host; the exchange opens bitswap streams on it. Required.
	Host host.Host
	// Router finds providers and takes announcements (the DHT); safe for concurrent use.
	// Required.
	Router routing.ContentRouting
	// Exposure filters block requests from the start, is refreshed when a blob becomes public
	// and lists the roots the reprovider renews. Required.
	Exposure Exposure
	// Adverts, when not nil, gives the weights an expert is advertised with (a fetch guess).
	// Read concurrently.
	Adverts Adverts
	// InvalidateHosted, when not nil, is called after a fetched expert is installed (the
	// caller drops caches of hosted experts); it may be called from several goroutines.
	InvalidateHosted func()
	// Registerer takes the service's metrics once, in New. Required.
	Registerer prometheus.Registerer
	// Logger receives debug lines of the background announcer (nil: discarded).
	Logger *slog.Logger
	// ReprovideInterval is how often every exposed root is announced again (0 or less: never).
	ReprovideInterval time.Duration
}

// provider announces blobs in the DHT (the exchange; a fake in tests).
type provider interface {
	Provide(context.Context, cid.Cid) error
}

// Service moves blobs for the daemon: put (import and announce), fetch (from any provider,
// verified), pins, and garbage collection of blocks nothing needs. Its methods are safe for
// concurrent use until Close.
type Service struct {
	x                *blobs.Exchange
	store            Store
	keeper           *node.BlobKeeper // pins and public marks; a fetch holds it so gc waits
	exposure         Exposure
	adverts          Adverts
	invalidateHosted func()
	log              *slog.Logger
	// provider announces blobs in the DHT (x); failed announcements are tried again every
	// retryEvery (announceRetry).
	provider   provider
	retryEvery time.Duration
	metrics    *metrics

	announcements  chan cid.Cid // blobs waiting to be announced in the DHT
	announcedMu    sync.Mutex
	announced      map[cid.Cid]time.Time // blobs queued lately -> when
	stopBackground context.CancelFunc    // stops the announcer and the reprovider
	background     sync.WaitGroup
}

// New starts the exchange (refusing every block the exposure does not allow), the announcer
// and the reprovider. Close stops them.
func New(ctx context.Context, deps Deps) (*Service, error) {
	if err := deps.check(); err != nil {
		return nil, fmt.Errorf("start blob service: %w", err)
	}
	cfg := blobs.TunedConfig()
	cfg.Filter = deps.Exposure.Allow // fail closed: nothing is served until the exposure table says so
	x, err := blobs.New(ctx, deps.Host, deps.Router, deps.Store.Blockstore(), cfg)
	if err != nil {
		return nil, fmt.Errorf("start blob service: %w", err)
	}
	log := depslib.Logger(deps.Logger)
	invalidate := deps.InvalidateHosted
	if invalidate == nil {
		invalidate = func() {}
	}
	b := &Service{x: x, store: deps.Store, keeper: deps.Keeper, exposure: deps.Exposure, adverts: deps.Adverts,
		invalidateHosted: invalidate, log: log, provider: x, retryEvery: announceRetry,
		metrics: newMetrics(deps.Registerer), announcements: make(chan cid.Cid, announceQueue),
		announced: make(map[cid.Cid]time.Time)}
	bctx, cancel := context.WithCancel(context.Background())
	b.stopBackground = cancel
	b.background.Add(2)
	go b.announcer(bctx)
	go b.reprovide(bctx, deps.ReprovideInterval)
	return b, nil
}

// check says which required dependencies are missing.
func (d Deps) check() error {
	return depslib.Missing(
		depslib.Required{Name: "Store", IsNil: d.Store == nil},
		depslib.Required{Name: "Keeper", IsNil: d.Keeper == nil},
		depslib.Required{Name: "Host", IsNil: d.Host == nil},
		depslib.Required{Name: "Router", IsNil: d.Router == nil},
		depslib.Required{Name: "Exposure", IsNil: d.Exposure == nil},
		depslib.Required{Name: "Registerer", IsNil: d.Registerer == nil},
	)
}

// Close stops the announcer, the reprovider and the exchange.
func (b *Service) Close() error {
	b.stopBackground()
	b.background.Wait()
	return b.x.Close()
}

// Keeper is the blob keeper (pins and public marks) the service was built with.
func (b *Service) Keeper() *node.BlobKeeper { return b.keeper }

// Put imports a file into the store and pins it; unless private, it exposes the blob to anyone
// and queues its announcement (a node with no peers yet announces it when it has some).
func (b *Service) Put(ctx context.Context, req api.BlobPutRequest) (api.BlobInfo, error) {
	info, c, err := b.keeper.Put(ctx, req)
	if err != nil {
		return api.BlobInfo{}, err
	}
	b.metrics.put.Add(float64(info.Size))
	if req.Private {
		return info, nil
	}
	if err := b.exposure.Refresh(ctx); err != nil {
		return api.BlobInfo{}, fmt.Errorf("blob put %s: %w", c, err)
	}
	b.Announce(c)
	return info, nil
}

// expose marks a blob public and rebuilds the exposure table.
func (b *Service) expose(ctx context.Context, c cid.Cid) error {
	if err := b.keeper.SetPublic(ctx, c, true); err != nil {
		return err
	}
	return b.exposure.Refresh(ctx)
}

// GC deletes every block that is neither part of a pinned blob nor of a hosted expert.
func (b *Service) GC(ctx context.Context) (api.GCReport, error) {
	rep, err := b.keeper.GC(ctx)
	b.metrics.gcBlocks.Add(float64(rep.Removed))
	return rep, err
}
