package daemon

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/go-cid"
	format "github.com/ipfs/go-ipld-format"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshnode/meshnode/experts/store"
	"github.com/meshnode/meshnode/node/daemon/trainsvc"
	"github.com/meshnode/meshnode/node/exposure"
)

// exposureService owns what this node shows to peers (see package exposure): it gathers the
// grants of the services that expose something (served experts, public blobs, the market, the
// training jobs), builds the table, and is the bitswap server's request filter. Until the first
// table is built, and whenever one cannot be computed, it refuses every block (fail closed).
type exposureService struct {
	d      *Daemon
	public publicRoots // blobs exposed to anyone
	// train is the training service once it has started (its restored jobs rebuild the table
	// from their own goroutines while the daemon is still starting, so it is read atomically).
	train   atomic.Pointer[trainsvc.Service]
	table   atomic.Pointer[exposure.Table]
	failing atomic.Pointer[string] // why the last rebuild failed; nil when it succeeded
	denied  *prometheus.CounterVec

	refreshMu sync.Mutex // one rebuild at a time, so an older table never replaces a newer one
	cancel    context.CancelFunc
	done      chan struct{}

	cacheMu sync.Mutex
	blocks  map[cid.Cid][]string // root -> multihashes of its blocks (content never changes)
}

// exposureRebuild is how often the table is rebuilt even without a change known to need it
// (receipts arriving by gossip, jobs ending), and how long a failed rebuild waits to retry.
const exposureRebuild = 15 * time.Second

// maxCachedRoots bounds the cache of roots' block lists.
const maxCachedRoots = 4096

// publicRoots lists the blobs exposed to anyone (node.BlobKeeper).
type publicRoots interface {
	PublicRoots(ctx context.Context) ([]cid.Cid, error)
}

func newExposureService(d *Daemon, public publicRoots) *exposureService {
	x := &exposureService{d: d, public: public, blocks: map[cid.Cid][]string{},
		done: make(chan struct{}),
		denied: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meshnode_blocks_denied_total",
			Help: "Block requests this node refused, by reason (unexposed: nothing exposes the block; paid: the peer holds no receipt)."},
			[]string{"reason"})}
	d.registry.MustRegister(x.denied)
	x.table.Store(&exposure.Table{})
	return x
}

// start runs the periodic rebuild until close.
func (x *exposureService) start() {
	ctx, cancel := context.WithCancel(context.Background())
	x.cancel = cancel
	go func() {
		defer close(x.done)
		t := time.NewTicker(exposureRebuild)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if err := x.refresh(ctx); err != nil && ctx.Err() == nil {
				x.d.log.Warn("exposure table: refusing every block until it can be rebuilt", "err", err)
			}
		}
	}()
}

func (x *exposureService) close() {
	if x.cancel != nil {
		x.cancel()
		<-x.done
	}
}

// current is the table in force.
func (x *exposureService) current() *exposure.Table { return x.table.Load() }

// allow is the bitswap server's request filter.
func (x *exposureService) allow(p peer.ID, c cid.Cid) bool {
	switch x.current().Allow(p.String(), string(c.Hash())) {
	case exposure.Allowed:
		return true
	case exposure.DeniedPaid:
		x.denied.WithLabelValues("paid").Inc()
		if x.d.market != nil {
			x.d.market.CountDeniedPaid()
		}
	default:
		x.denied.WithLabelValues("unexposed").Inc()
	}
	return false
}

// blobExposure is the exposure service as the blob service sees it (blobsvc.Exposure).
type blobExposure struct{ x *exposureService }

func (e blobExposure) Allow(p peer.ID, c cid.Cid) bool   { return e.x.allow(p, c) }
func (e blobExposure) Refresh(ctx context.Context) error { return e.x.refresh(ctx) }
func (e blobExposure) Announced() []string               { return e.x.current().Announced() }

// queryExposure is the exposure service as the query service sees it (querysvc.Exposure).
type queryExposure struct{ x *exposureService }

func (e queryExposure) Answers(expert string) bool { return e.x.current().Answers(expert) }

// trainExposure is the exposure service as the training service sees it (trainsvc.Exposure).
type trainExposure struct{ x *exposureService }

func (e trainExposure) Refresh(ctx context.Context) error { return e.x.refresh(ctx) }

// marketExposure is the exposure service as the market sees it (marketsvc.Exposure).
type marketExposure struct{ x *exposureService }

func (e marketExposure) Refresh(ctx context.Context) error { return e.x.refresh(ctx) }

// refresh rebuilds the table from every service's grants. On failure it installs the empty
// table: nothing is served until a rebuild succeeds.
func (x *exposureService) refresh(ctx context.Context) error {
	x.refreshMu.Lock()
	defer x.refreshMu.Unlock()
	grants, err := x.grants(ctx)
	if err != nil {
		x.table.Store(&exposure.Table{})
		msg := err.Error()
		x.failing.Store(&msg)
		return fmt.Errorf("build exposure table: %w", err)
	}
	x.table.Store(exposure.Build(grants))
	x.failing.Store(nil)
	return nil
}

// grants gathers what each service exposes. A root no longer held is left out (nothing to
// serve); any other error fails the whole rebuild.
func (x *exposureService) grants(ctx context.Context) ([]exposure.Grant, error) {
	var out []exposure.Grant
	add := func(g exposure.Grant, expert bool) error {
		root, err := cid.Decode(g.Root)
		if err != nil {
			return nil // not a CID: nothing of ours
		}
		blocks, err := x.blocksOf(ctx, root, expert)
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, errNotHeld) || format.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("list the blocks of %s: %w", root, err)
		}
		g.Blocks = blocks
		out = append(out, g)
		return nil
	}
	for _, s := range x.d.Mesh.Adverts.Served() {
		if err := add(exposure.Grant{Kind: exposure.Served, Root: s.ID, Announce: true}, true); err != nil {
			return nil, err
		}
	}
	public, err := x.public.PublicRoots(ctx)
	if err != nil {
		return nil, err
	}
	for _, r := range public {
		if err := add(exposure.Grant{Kind: exposure.Public, Root: r.String(), Announce: true}, false); err != nil {
			return nil, err
		}
	}
	if x.d.market != nil {
		rs, err := x.d.market.Restrictions(ctx)
		if err != nil {
			return nil, err
		}
		for _, r := range rs {
			g := exposure.Grant{Kind: exposure.Restricted, Root: r.Expert, Peers: r.Holders, Announce: r.Mine}
			if r.Open {
				g = exposure.Grant{Kind: exposure.Public, Root: r.Expert, Announce: true}
			}
			if err := add(g, true); err != nil {
				return nil, err
			}
		}
	}
	if train := x.train.Load(); train != nil {
		for _, j := range train.ExposedModels() {
			for _, m := range j.Models {
				if err := add(exposure.Grant{Kind: exposure.Job, Root: m, Peers: j.Peers, Anyone: j.Anyone}, true); err != nil {
					return nil, err
				}
			}
		}
	}
	return out, nil
}

var errNotHeld = errors.New("root block not held")

// blocksOf lists the multihashes of root's blocks: for an expert, its manifest and every block
// of its weights; for a blob, every block of its DAG.
func (x *exposureService) blocksOf(ctx context.Context, root cid.Cid, expert bool) ([]string, error) {
	x.cacheMu.Lock()
	b, ok := x.blocks[root]
	x.cacheMu.Unlock()
	if ok {
		return b, nil
	}
	st, err := x.d.Repo.Store()
	if err != nil {
		return nil, err
	}
	roots := []cid.Cid{root}
	if expert {
		m, err := st.GetExpert(ctx, root)
		if err != nil {
			return nil, err
		}
		roots = append(roots, m.Weights)
	}
	var out []string
	for _, r := range roots {
		has, err := st.Blockstore().Has(ctx, r)
		if err != nil {
			return nil, err
		}
		if !has {
			return nil, errNotHeld
		}
		out = append(out, string(r.Hash()))
		if r.Type() != cid.DagProtobuf {
			continue
		}
		err = merkledag.Walk(ctx, merkledag.GetLinksWithDAG(st.DAG()), r, func(c cid.Cid) bool {
			out = append(out, string(c.Hash()))
			return true
		})
		if err != nil {
			return nil, err
		}
	}
	x.cacheMu.Lock()
	if len(x.blocks) >= maxCachedRoots {
		clear(x.blocks)
	}
	x.blocks[root] = out
	x.cacheMu.Unlock()
	return out, nil
}
