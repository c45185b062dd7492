package blobsvc

import (
	"context"
	"errors"
	"fmt"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"

	"github.com/meshnode/meshnode/experts"
	"github.com/meshnode/meshnode/mesh/blobs"
	"github.com/meshnode/meshnode/node"
	"github.com/meshnode/meshnode/node/api"
)

// Fetch pulls a blob from the mesh into the store (if not already held), exposes it to anyone
// (it was public where it came from, as in IPFS) and queues its announcement.
func (b *Service) Fetch(ctx context.Context, c cid.Cid) (api.BlobInfo, error) {
	info, err := b.fetch(ctx, c, cid.Undef, nil)
	if err != nil {
		return info, err
	}
	if err := b.expose(ctx, c); err != nil {
		return api.BlobInfo{}, fmt.Errorf("blob get %s: %w", c, err)
	}
	b.Announce(c)
	return info, nil
}

// fetch is Fetch, guided by a guess of the blob c links to when linked is not nil (see
// blobs.Exchange.FetchGuided); the report counts both.
func (b *Service) fetch(ctx context.Context, c, guess cid.Cid, linked func(blocks.Block) (cid.Cid, error)) (api.BlobInfo, error) {
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
			return api.BlobInfo{}, fmt.Errorf("blob %s is unavailable: no provider delivered it within %s (%d of its bytes arrived): %w",
				c, time.Since(t0).Round(time.Millisecond), last.Received, err)
		}
		return api.BlobInfo{}, err
	}
	el := time.Since(t0).Seconds()
	info := api.BlobInfo{CID: c.String(), Size: last.Total, Received: last.Received, Seconds: el}
	if el > 0 {
		info.MiBPerSecond = float64(last.Received) / (1 << 20) / el
	}
	return info, nil
}

// FetchExpert pulls an expert's manifest and weights from the mesh, checks both against their
// CIDs and installs the expert.
func (b *Service) FetchExpert(ctx context.Context, id cid.Cid) (api.BlobInfo, error) {
	info, _, _, err := b.FetchExpertGuided(ctx, id, b.AdvertisedWeights(id))
	return info, err
}

// AdvertisedWeights is the weights CID the mesh's live adverts of an expert agree on
// (cid.Undef when none names one, or when they disagree: one false advert must not lead a
// fetch astray).
func (b *Service) AdvertisedWeights(id cid.Cid) cid.Cid {
	if b.adverts == nil {
		return cid.Undef
	}
	hint := ""
	for _, e := range b.adverts.Providers(id.String(), time.Now()) {
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

// FetchExpertGuided is FetchExpert returning the installed manifest and network too. weights,
// when defined, is a guess of the manifest's weights CID (from a training round's announcement
// or the expert's adverts): manifest and weights are then asked for in one request, which
// saves a round trip (boxo holds a second message to a peer for 20 ms after the first). The
// manifest decides: a wrong guess is dropped and the weights it names are fetched. The info
// describes the weights (size) and the whole transfer (bytes received, time).
func (b *Service) FetchExpertGuided(ctx context.Context, id, weights cid.Cid) (api.BlobInfo, *experts.Manifest, *experts.Network, error) {
	info, _, err := b.FetchVerified(ctx, id, weights)
	if err != nil {
		return api.BlobInfo{}, nil, nil, err
	}
	// Nothing is announced: a fetched expert is exposed when it is served (and a bought one
	// only to its seller's buyers).
	m, net, err := b.store.Install(ctx, id)
	if err != nil {
		return api.BlobInfo{}, nil, nil, fmt.Errorf("fetch expert %s: %w", id, err)
	}
	b.invalidateHosted()
	info.CID, info.Name = id.String(), m.Name
	return info, m, net, nil
}

// FetchVerified brings an expert's manifest and weights into the blockstore, each block checked
// against its CID, and checks the manifest's signature; it does not install the expert (gc
// removes the blocks unless something keeps them). weights is a guess as in FetchExpertGuided.
func (b *Service) FetchVerified(ctx context.Context, id, weights cid.Cid) (api.BlobInfo, *experts.Manifest, error) {
	linked := func(blk blocks.Block) (cid.Cid, error) {
		m, err := experts.DecodeManifestWithCID(id, blk.RawData())
		if err != nil {
			return cid.Undef, err
		}
		return m.Weights, nil
	}
	info, err := b.fetch(ctx, id, weights, linked)
	if err != nil {
		return api.BlobInfo{}, nil, err
	}
	raw, err := b.store.GetManifestBytes(ctx, id)
	if err != nil {
		return api.BlobInfo{}, nil, err
	}
	m, err := experts.DecodeManifestWithCID(id, raw)
	if err != nil {
		return api.BlobInfo{}, nil, fmt.Errorf("fetch expert %s: %w", id, err)
	}
	// An expert from the mesh is used only with its publisher's valid signature: the publisher
	// is who listings, evaluations and licences are checked against.
	if err := m.Verify(node.VerifyPeerSignature); err != nil {
		return api.BlobInfo{}, nil, fmt.Errorf("fetch expert %s: refused: %w", id, err)
	}
	info.Size = m.WeightsSize
	return info, m, nil
}

// progressKey carries a fetch's progress reporter in its context, so a caller that streams
// progress (the API) and one that does not (federated rounds) share Fetch.
type progressKey struct{}

// WithProgress returns ctx carrying report: a fetch under it calls report with its progress
// (from the fetch's goroutine, possibly often; report must be quick and safe to call
// concurrently with the caller).
func WithProgress(ctx context.Context, report func(blobs.Progress)) context.Context {
	return context.WithValue(ctx, progressKey{}, report)
}

// progressFrom is the reporter WithProgress put in ctx (one doing nothing when none is).
func progressFrom(ctx context.Context) func(blobs.Progress) {
	if f, ok := ctx.Value(progressKey{}).(func(blobs.Progress)); ok {
		return f
	}
	return func(blobs.Progress) {}
}
