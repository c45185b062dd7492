// Package daemon runs a node: it joins the mesh with the repo's identity, advertises the
// experts the node serves, and answers the local HTTP API that commands use. It is the
// composition root of the node's services (querysvc, blobsvc, marketsvc, trainsvc and the API,
// apisvc): it builds them and starts and stops them in order, the API last up and first down.
// It is the only part of package node's family that links libp2p.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"
	"github.com/libp2p/go-libp2p/core/pnet"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/meshnode/meshnode/experts"
	"github.com/meshnode/meshnode/experts/dataset"
	"github.com/meshnode/meshnode/experts/store"
	"github.com/meshnode/meshnode/mesh"
	"github.com/meshnode/meshnode/mesh/advert"
	"github.com/meshnode/meshnode/mesh/blobs"
	"github.com/meshnode/meshnode/node"
	"github.com/meshnode/meshnode/node/api"
	"github.com/meshnode/meshnode/node/daemon/apisvc"
	"github.com/meshnode/meshnode/node/daemon/blobsvc"
	"github.com/meshnode/meshnode/node/daemon/marketsvc"
	"github.com/meshnode/meshnode/node/daemon/querysvc"
	"github.com/meshnode/meshnode/node/daemon/trainsvc"
	"github.com/meshnode/meshnode/routing"
)

// Options override the repo's config for one run of the daemon.
type Options struct {
	Listen    []string // replaces mesh.listen when not empty
	Bootstrap []string // added to mesh.bootstrap
	APIListen string   // replaces api.listen when not empty
	Logger    *slog.Logger
	// TamperTrainingUpdates, when set, rewrites every federated training update this node
	// sends before it is signed. Robustness tests use it to play a Byzantine participant.
	TamperTrainingUpdates func(delta []float64)
	// DropAfterMask, when set and true for a round, makes this node vanish from that secure
	// round after sending its masked update. Dropout tests use it.
	DropAfterMask func(round int) bool
}

// Daemon is a running node: the mesh, the local HTTP API, and the repo they serve from.
type Daemon struct {
	Repo     *node.Repo
	Mesh     *mesh.Node
	registry *prometheus.Registry
	served   ds.Datastore
	api      *apisvc.Service
	started  time.Time
	log      *slog.Logger
	queries  *querysvc.Service
	exposure *exposureService
	blobs    *blobsvc.Service
	market   *marketsvc.Service
	train    *trainsvc.Service
}

// The training service's gossip topic and update protocol (see package trainsvc).
const (
	TopicTrain    = trainsvc.Topic
	TrainProtocol = trainsvc.Protocol
)

// The market's gossip topic and purchase protocol (see package marketsvc).
const (
	TopicMarket    = marketsvc.Topic
	MarketProtocol = marketsvc.Protocol
)

// PathUI serves the dashboard (see apisvc.PathUI).
const PathUI = apisvc.PathUI

// Start opens the repo's database, joins the mesh, re-advertises the experts it served
// before, and starts the API. Close stops it.
func Start(ctx context.Context, r *node.Repo, o Options) (*Daemon, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	st, err := r.Store()
	if err != nil {
		return nil, err
	}
	cfg, err := meshConfig(r, o)
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m, err := mesh.New(ctx, r.Identity.PrivKey(), cfg, mesh.Options{Datastore: st.Datastore("/mesh"), Logger: o.Logger, Registerer: reg})
	if err != nil {
		return nil, err
	}
	served, err := r.ServedRecords()
	if err != nil {
		m.Close()
		return nil, err
	}
	d := &Daemon{Repo: r, Mesh: m, registry: reg, served: served, started: time.Now(), log: o.Logger}
	// undo stops, last first, what started before a step failed.
	undo := []func(){func() { d.Mesh.Close() }}
	fail := func(err error) (*Daemon, error) {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
		return nil, err
	}
	keeper, err := d.Repo.Blobs()
	if err != nil {
		return fail(err)
	}
	d.exposure = newExposureService(d, keeper)
	if d.queries, err = querysvc.New(querysvc.Deps{
		Store:      st,
		Host:       d.Mesh.Host,
		Exposure:   queryExposure{d.exposure},
		Adverts:    d.Mesh.Adverts,
		Fetcher:    laterBlobs{d},
		Feedback:   st.Datastore("/"),
		Config:     d.Repo.Config.Query,
		Registerer: d.registry,
		Logger:     d.log,
	}); err != nil {
		return fail(err)
	}
	d.Mesh.Adverts.SetLoad(d.queries.Load)
	// Before LoadGate, Close leaves the stored gate feedback alone.
	undo = append(undo, func() { d.queries.Close(context.Background()) })
	if d.blobs, err = blobsvc.New(ctx, blobsvc.Deps{
		Store:             st,
		Keeper:            keeper,
		Host:              d.Mesh.Host,
		Router:            d.Mesh.DHT,
		Exposure:          blobExposure{d.exposure},
		Adverts:           d.Mesh.Adverts.Table(),
		InvalidateHosted:  d.queries.InvalidateHosted,
		Registerer:        d.registry,
		Logger:            d.log,
		ReprovideInterval: d.Repo.Config.Mesh.ReprovideInterval,
	}); err != nil {
		return fail(err)
	}
	undo = append(undo, func() { d.blobs.Close() })
	if d.market, err = marketsvc.New(ctx, marketsvc.Deps{
		Store:      st,
		Evaluator:  d.Repo,
		Records:    st.Datastore("/market"),
		Journal:    st.Datastore("/ledger"),
		Signer:     d.Repo.Identity,
		Host:       d.Mesh.Host,
		PubSub:     d.Mesh.PubSub,
		Penaliser:  d.Mesh,
		Exposure:   marketExposure{d.exposure},
		Blobs:      d.blobs,
		Config:     d.Repo.Config.Market,
		Registerer: d.registry,
		Logger:     d.log,
	}); err != nil {
		return fail(err)
	}
	undo = append(undo, func() { d.market.Close() })
	if d.train, err = trainsvc.New(trainsvc.Deps{
		Store:            st,
		State:            st.Datastore("/train"),
		Signer:           d.Repo.Identity,
		Host:             d.Mesh.Host,
		PubSub:           d.Mesh.PubSub,
		Exposure:         trainExposure{d.exposure},
		Fetcher:          d.blobs,
		InvalidateHosted: d.queries.InvalidateHosted,
		Join:             d.Repo.Config.Training.Join,
		Tamper:           o.TamperTrainingUpdates,
		DropAfterMask:    o.DropAfterMask,
		Registerer:       d.registry,
		Logger:           d.log,
	}); err != nil {
		return fail(err)
	}
	undo = append(undo, d.train.Close)
	d.exposure.train.Store(d.train) // the table built below holds its resumed jobs' models
	if err := d.queries.LoadGate(ctx); err != nil {
		d.log.Warn("gating expert starts without its feedback", "err", err)
	}
	if err := d.restoreServed(ctx); err != nil {
		return fail(err)
	}
	// Until here every block was refused; from here the table says what goes to whom.
	if err := d.exposure.refresh(ctx); err != nil {
		d.log.Warn("exposure table: refusing every block until it can be rebuilt", "err", err)
	}
	d.exposure.start()
	undo = append(undo, d.exposure.close)
	listen := r.Config.API.Listen
	if o.APIListen != "" {
		listen = o.APIListen
	}
	if err := d.startAPI(st, listen); err != nil {
		return fail(err)
	}
	return d, nil
}

func meshConfig(r *node.Repo, o Options) (mesh.Config, error) {
	mc := r.Config.Mesh
	cfg := mesh.Config{
		ListenAddrs:    mc.Listen,
		Bootstrap:      slices.Concat(mc.Bootstrap, o.Bootstrap),
		MDNS:           mc.MDNS,
		MaxMemoryMiB:   mc.MaxMemoryMiB,
		ConnLow:        mc.ConnLow,
		ConnHigh:       mc.ConnHigh,
		AdvertTTL:      mc.AdvertTTL,
		AdvertRefresh:  mc.AdvertRefresh,
		DHTOnly:        !mc.AdvertGossip,
		Reachability:   mc.Reachability,
		NoRelayService: !mc.RelayService,
		Relays:         mc.Relays,
		ScoredTopics:   []string{TopicMarket, TopicTrain},
		StreamLimits: []mesh.StreamLimit{{Protocol: routing.QueryProtocol,
			Total: 16 * r.Config.Query.StreamsPerPeer, PerPeer: r.Config.Query.StreamsPerPeer},
			// A participant holds one update stream to a coordinator at a time.
			{Protocol: string(TrainProtocol), Total: 256, PerPeer: 2},
			// A buyer has one purchase in flight with a seller (a resend reuses its stream).
			{Protocol: string(MarketProtocol), Total: 256, PerPeer: 4}},
	}
	if len(o.Listen) > 0 {
		cfg.ListenAddrs = o.Listen
	}
	if mc.PSKFile != "" {
		path := mc.PSKFile
		if !filepath.IsAbs(path) {
			path = filepath.Join(r.Path, path)
		}
		f, err := os.Open(path)
		if err != nil {
			return mesh.Config{}, fmt.Errorf("config mesh.psk_file: %w", err)
		}
		defer f.Close()
		psk, err := pnet.DecodeV1PSK(f)
		if err != nil {
			return mesh.Config{}, fmt.Errorf("config mesh.psk_file %s: %w", path, err)
		}
		cfg.PSK = psk
	}
	return cfg, nil
}

// Serve starts advertising a hosted expert (by ID or name) and remembers it across restarts.
func (d *Daemon) Serve(ctx context.Context, ref string) (advert.Service, error) {
	_, id, m, err := d.Repo.Expert(ctx, ref)
	if err != nil {
		return advert.Service{}, err
	}
	s := node.ServiceOf(id, m)
	if err := d.served.Put(ctx, ds.NewKey(id.String()), []byte{}); err != nil {
		return advert.Service{}, fmt.Errorf("serve %s: %w", id, err)
	}
	if err := d.Mesh.Adverts.Serve(ctx, s); err != nil {
		return advert.Service{}, err
	}
	if err := d.exposure.refresh(ctx); err != nil {
		return advert.Service{}, fmt.Errorf("serve %s: %w", id, err)
	}
	// The mesh provides the expert's ID (and its domains) in the DHT; the weights are the
	// blob service's to announce.
	d.blobs.Announce(m.Weights)
	return s, nil
}

// Unserve stops advertising an expert; its withdrawal goes out at once.
func (d *Daemon) Unserve(ctx context.Context, ref string) error {
	st, err := d.Repo.Store()
	if err != nil {
		return err
	}
	id, err := st.Resolve(ctx, ref)
	if err != nil {
		return err
	}
	if err := d.served.Delete(ctx, ds.NewKey(id.String())); err != nil {
		return fmt.Errorf("unserve %s: %w", id, err)
	}
	if err := d.Mesh.Adverts.Unserve(ctx, id.String()); err != nil {
		return err
	}
	return d.exposure.refresh(ctx)
}

func (d *Daemon) restoreServed(ctx context.Context) error {
	res, err := d.served.Query(ctx, dsq.Query{KeysOnly: true})
	if err != nil {
		return fmt.Errorf("read served experts: %w", err)
	}
	entries, err := res.Rest()
	if err != nil {
		return fmt.Errorf("read served experts: %w", err)
	}
	for _, e := range entries {
		ref := ds.NewKey(e.Key).BaseNamespace()
		if _, err := d.Serve(ctx, ref); err != nil {
			d.log.Warn("cannot serve a remembered expert", "id", ref, "err", err)
		}
	}
	return nil
}

// APIURL is the base URL of the daemon's HTTP API.
func (d *Daemon) APIURL() string {
	if d.api == nil {
		return ""
	}
	return d.api.URL()
}

// startAPI starts the API service, last: it listens on listen and writes the repo's API file.
func (d *Daemon) startAPI(st *store.Store, listen string) error {
	svc, err := apisvc.New(apisvc.Deps{
		Host:     d.Mesh.Host,
		Node:     apiNode{d},
		Adverts:  d.Mesh.Adverts,
		Store:    st,
		Repo:     d.Repo,
		Ops:      node.LocalOps{Repo: d.Repo, Catalog: dataset.DefaultCatalog()},
		Queries:  d.queries,
		Blobs:    apiBlobs{d.blobs},
		Pins:     d.blobs.Keeper(),
		Market:   d.market,
		Routes:   []func(*http.ServeMux, apisvc.Handle){d.market.Routes, d.train.Routes},
		Gatherer: d.registry,
		APIFile:  filepath.Join(d.Repo.Path, api.APIFile),
		Started:  d.started,
		Logger:   d.log,
	})
	if err != nil {
		return err
	}
	if err := svc.Start(listen); err != nil {
		return err
	}
	d.api = svc
	return nil
}

// Close stops the API, withdraws this node's adverts, leaves the mesh and closes the repo.
func (d *Daemon) Close() error {
	var errs []error
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if d.api != nil {
		// Running jobs end now, reported as interrupted, before the store closes.
		errs = append(errs, d.api.Close(ctx))
	}
	d.train.Close()
	d.exposure.close()
	errs = append(errs, d.queries.Close(ctx)) // stops the spot checks, saves the gate's feedback, closes the client
	errs = append(errs, d.market.Close())
	errs = append(errs, d.blobs.Close())
	errs = append(errs, d.Mesh.Close())
	errs = append(errs, d.Repo.Close())
	return errors.Join(errs...)
}

// Query routes one query of this node (see querysvc.Service.Query).
func (d *Daemon) Query(ctx context.Context, q api.QueryRequest) (*api.QueryAnswer, error) {
	return d.queries.Query(ctx, q)
}

// laterBlobs is the blob service as the query service's spot checker sees it
// (querysvc.Fetcher). The query service starts first (the blob service tells it of installed
// experts), so this reads d.blobs when a check runs: checks follow the node's own queries,
// which come through the API, after Start has set d.blobs.
type laterBlobs struct{ d *Daemon }

func (b laterBlobs) FetchVerified(ctx context.Context, id, weights cid.Cid) (api.BlobInfo, *experts.Manifest, error) {
	return b.d.blobs.FetchVerified(ctx, id, weights)
}

func (b laterBlobs) AdvertisedWeights(id cid.Cid) cid.Cid { return b.d.blobs.AdvertisedWeights(id) }

// apiNode is the daemon as its API drives it (apisvc.Node).
type apiNode struct{ d *Daemon }

func (n apiNode) Addrs() []string { return n.d.Mesh.Addrs() }

func (n apiNode) Reachability() string { return n.d.Mesh.Reachability().String() }

func (n apiNode) Serve(ctx context.Context, ref string) (advert.Service, error) {
	return n.d.Serve(ctx, ref)
}

func (n apiNode) Unserve(ctx context.Context, ref string) error { return n.d.Unserve(ctx, ref) }

// apiBlobs is the blob service as the API sees it (apisvc.Blobs): a fetch reports its
// progress through blobsvc.WithProgress.
type apiBlobs struct{ *blobsvc.Service }

func (apiBlobs) WithProgress(ctx context.Context, report func(blobs.Progress)) context.Context {
	return blobsvc.WithProgress(ctx, report)
}
