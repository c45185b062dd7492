package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"

	"github.com/meshnode/meshnode/experts"
	"github.com/meshnode/meshnode/mesh/blobs"
	"github.com/meshnode/meshnode/node"
)

// blobService moves blobs for the daemon: put (import and announce), fetch (from any provider,
// verified), pins, and garbage collection of blocks nothing needs.
type blobService struct {
	d      *Daemon
	x      *blobs.Exchange
	keeper *node.BlobKeeper // pins and public marks; a fetch holds it so gc waits
	// provider announces blobs in the DHT (x); failed announcements are tried again every
	// retryEvery (announceRetry).
	provider interface {
		Provide(context.Context, cid.Cid) error
	}
	retryEvery time.Duration
	metrics    *blobMetrics

	announcements  chan cid.Cid // blobs waiting to be announced in the DHT
	announcedMu    sync.Mutex
	announced      map[cid.Cid]time.Time // blobs queued lately -> when
	stopBackground context.CancelFunc    // stops the announcer and the reprovider
	background     sync.WaitGroup
}

func newBlobService(ctx context.Context, d *Daemon) (*blobService, error) {
	st, err := d.Repo.Store()
	if err != nil {
		return nil, err
	}
	keeper, err := d.Repo.Blobs()
	if err != nil {
		return nil, err
	}
	cfg := blobs.TunedConfig()
	cfg.Filter = d.exposure.allow // fail closed: nothing is served until the exposure table says so
	x, err := blobs.New(ctx, d.Mesh.Host, d.Mesh.DHT, st.Blockstore(), cfg)
	if err != nil {
		return nil, err
	}
	b := &blobService{d: d, x: x, keeper: keeper, provider: x, retryEvery: announceRetry, metrics: newBlobMetrics(d.registry),
		announcements: make(chan cid.Cid, announceQueue), announced: make(map[cid.Cid]time.Time)}
	bctx, cancel := context.WithCancel(context.Background())
	b.stopBackground = cancel
	b.background.Add(2)
	go b.announcer(bctx)
	go b.reprovide(bctx, d.Repo.Config.Mesh.ReprovideInterval)
	return b, nil
}

// close stops the announcer, the reprovider and the exchange.
func (b *blobService) close() error {
	b.stopBackground()
	b.background.Wait()
	return b.x.Close()
}

// Put imports a file into the store and pins it; unless private, it exposes the blob to anyone
// and queues its announcement (a node with no peers yet announces it when it has some).
func (b *blobService) Put(ctx context.Context, path string, private bool) (node.BlobInfo, error) {
	info, c, err := b.keeper.Put(ctx, path, private)
	if err != nil {
		return node.BlobInfo{}, err
	}
	b.metrics.put.Add(float64(info.Size))
	if private {
		return info, nil
	}
	if err := b.d.exposure.refresh(ctx); err != nil {
		return node.BlobInfo{}, fmt.Errorf("blob put %s: %w", c, err)
	}
	b.announce(c)
	return info, nil
}

// Fetch pulls a blob from the mesh into the store (if not already held), exposes it to anyone
// (it was public where it came from, as in IPFS) and queues its announcement.
func (b *blobService) Fetch(ctx context.Context, c cid.Cid) (node.BlobInfo, error) {
	info, err := b.fetch(ctx, c, cid.Undef, nil)
	if err != nil {
		return info, err
	}
	if err := b.expose(ctx, c); err != nil {
		return node.BlobInfo{}, fmt.Errorf("blob get %s: %w", c, err)
	}
	b.announce(c)
	return info, nil
}

// expose marks a blob public and rebuilds the exposure table.
func (b *blobService) expose(ctx context.Context, c cid.Cid) error {
	if err := b.keeper.SetPublic(ctx, c, true); err != nil {
		return err
	}
	return b.d.exposure.refresh(ctx)
}

// fetch is Fetch, guided by a guess of the blob c links to when linked is not nil (see
// blobs.Exchange.FetchGuided); the report counts both.
func (b *blobService) fetch(ctx context.Context, c, guess cid.Cid, linked func(blocks.Block) (cid.Cid, error)) (node.BlobInfo, error) {
	defer b.keeper.Hold()()
	t0 := time.Now()
	var last blobs.Progress
	report := progressFrom(ctx)
	err := b.x.FetchGuided(ctx, c, guess, linked, func(p blobs.Progress) { last = p; report(p) })
	b.metrics.received.Add(float64(last.Received))
	outcome := "ok"
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, blobs.ErrUnavailable):
		outcome = "unavailable"
	case err != nil:
		outcome = "error"
	}
	b.metrics.fetches.WithLabelValues(outcome).Observe(time.Since(t0).Seconds())
	if err != nil {
		if outcome == "unavailable" {
			return node.BlobInfo{}, fmt.Errorf("blob %s is unavailable: no provider delivered it within %s (%d of its bytes arrived): %w",
				c, time.Since(t0).Round(time.Millisecond), last.Received, err)
		}
		return node.BlobInfo{}, err
	}
	el := time.Since(t0).Seconds()
	info := node.BlobInfo{CID: c.String(), Size: last.Total, Received: last.Received, Seconds: el}
	if el > 0 {
		info.MiBPerSecond = float64(last.Received) / (1 << 20) / el
	}
	return info, nil
}

// FetchExpert pulls an expert's manifest and weights from the mesh, checks both against their
// CIDs and installs the expert.
func (b *blobService) FetchExpert(ctx context.Context, id cid.Cid) (node.BlobInfo, error) {
	info, _, _, err := b.fetchExpert(ctx, id, b.advertisedWeights(id))
	return info, err
}

// advertisedWeights is the weights CID the mesh's live adverts of an expert agree on
// (cid.Undef when none names one, or when they disagree: one false advert must not lead a
// fetch astray).
func (b *blobService) advertisedWeights(id cid.Cid) cid.Cid {
	if b.d.Mesh == nil || b.d.Mesh.Adverts == nil {
		return cid.Undef
	}
	hint := ""
	for _, e := range b.d.Mesh.Adverts.Table().Providers(id.String(), time.Now()) {
		switch {
		case e.Weights == "" || e.Weights == hint:
		case hint == "":
			hint = e.Weights
		default:
			return cid.Undef
		}
	}
	w, err := cid.Decode(hint)
	if err != nil {
		return cid.Undef
	}
	return w
}

// fetchExpert is FetchExpert returning the installed manifest and network too. weights, when
// defined, is a guess of the manifest's weights CID (from a training round's announcement or
// the expert's adverts): manifest and weights are then asked for in one request, which saves
// a round trip (boxo holds a second message to a peer for 20 ms after the first). The manifest
// decides: a wrong guess is dropped and the weights it names are fetched. The info describes
// the weights (size) and the whole transfer (bytes received, time).
func (b *blobService) fetchExpert(ctx context.Context, id, weights cid.Cid) (node.BlobInfo, *experts.Manifest, *experts.Network, error) {
	info, _, err := b.fetchVerified(ctx, id, weights)
	if err != nil {
		return node.BlobInfo{}, nil, nil, err
	}
	st, err := b.d.Repo.Store()
	if err != nil {
		return node.BlobInfo{}, nil, nil, err
	}
	// Nothing is announced: a fetched expert is exposed when it is served (and a bought one
	// only to its seller's buyers).
	m, net, err := st.Install(ctx, id)
	if err != nil {
		return node.BlobInfo{}, nil, nil, fmt.Errorf("fetch expert %s: %w", id, err)
	}
	b.d.engine.invalidateHosted()
	info.CID, info.Name = id.String(), m.Name
	return info, m, net, nil
}

// fetchVerified brings an expert's manifest and weights into the blockstore, each block checked
// against its CID, and checks the manifest's signature; it does not install the expert (gc
// removes the blocks unless something keeps them).
func (b *blobService) fetchVerified(ctx context.Context, id, weights cid.Cid) (node.BlobInfo, *experts.Manifest, error) {
	st, err := b.d.Repo.Store()
	if err != nil {
		return node.BlobInfo{}, nil, err
	}
	linked := func(blk blocks.Block) (cid.Cid, error) {
		m, err := experts.DecodeManifestWithCID(id, blk.RawData())
		if err != nil {
			return cid.Undef, err
		}
		return m.Weights, nil
	}
	info, err := b.fetch(ctx, id, weights, linked)
	if err != nil {
		return node.BlobInfo{}, nil, err
	}
	raw, err := st.GetManifestBytes(ctx, id)
	if err != nil {
		return node.BlobInfo{}, nil, err
	}
	m, err := experts.DecodeManifestWithCID(id, raw)
	if err != nil {
		return node.BlobInfo{}, nil, fmt.Errorf("fetch expert %s: %w", id, err)
	}
	// An expert from the mesh is used only with its publisher's valid signature: the publisher
	// is who listings, evaluations and licences are checked against.
	if err := m.Verify(node.VerifyPeerSignature); err != nil {
		return node.BlobInfo{}, nil, fmt.Errorf("fetch expert %s: refused: %w", id, err)
	}
	info.Size = m.WeightsSize
	return info, m, nil
}

// GC deletes every block that is neither part of a pinned blob nor of a hosted expert.
func (b *blobService) GC(ctx context.Context) (node.GCReport, error) {
	rep, err := b.keeper.GC(ctx)
	b.metrics.gcBlocks.Add(float64(rep.Removed))
	return rep, err
}

func decodeCIDBody(body []byte) (cid.Cid, error) {
	var req struct {
		CID string `json:"cid"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return cid.Undef, node.ErrBadRequest.Wrap(fmt.Errorf("request body: want {\"cid\": ...}: %w", err))
	}
	c, err := cid.Decode(req.CID)
	if err != nil {
		return cid.Undef, node.ErrBadRequest.Wrap(fmt.Errorf("%q is not a CID: %w", req.CID, err))
	}
	return c, nil
}

// progressKey carries a fetch's progress reporter in its context, so a caller that streams
// progress (the API) and one that does not (federated rounds) share Fetch.
type progressKey struct{}

func withProgress(ctx context.Context, report func(blobs.Progress)) context.Context {
	return context.WithValue(ctx, progressKey{}, report)
}

func progressFrom(ctx context.Context) func(blobs.Progress) {
	if f, ok := ctx.Value(progressKey{}).(func(blobs.Progress)); ok {
		return f
	}
	return func(blobs.Progress) {}
}
