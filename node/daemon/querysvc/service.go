package querysvc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshnode/meshnode/node/api"
	depslib "github.com/meshnode/meshnode/node/daemon/internal/deps"

	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshnode/meshnode/experts"
	"github.com/meshnode/meshnode/experts/store"
	"github.com/meshnode/meshnode/mesh/advert"
	"github.com/meshnode/meshnode/mesh/rpc"
	"github.com/meshnode/meshnode/node"
	"github.com/meshnode/meshnode/routing"
)

// Store is the part of the expert store the service uses. Its methods are called concurrently
// (from the query protocol's stream handlers and the spot checks), so they must be safe for
// that.
type Store interface {
	// ListExperts lists the hosted experts.
	ListExperts(ctx context.Context) ([]store.Entry, error)
	// GetExpert reads a hosted expert's manifest (an error wrapping store.ErrNotFound when the
	// expert is not hosted).
	GetExpert(ctx context.Context, id cid.Cid) (*experts.Manifest, error)
	// LoadNetwork loads the network of an expert whose blocks are held.
	LoadNetwork(ctx context.Context, m *experts.Manifest) (*experts.Network, error)
	// Resolve turns the name of a hosted expert into its ID.
	Resolve(ctx context.Context, ref string) (cid.Cid, error)
}

// Exposure is what this node shows to peers, as the query service needs it. Answers is called
// concurrently (from the query protocol's stream handlers).
type Exposure interface {
	// Answers says whether this node answers peers' queries for the expert: only served ones.
	Answers(expert string) bool
}

// Adverts is the mesh's discovery of remote experts (a *mesh.Adverts); used concurrently.
type Adverts interface {
	// List returns the live adverts at now.
	List(now time.Time) []advert.Entry
	// LookupDomain and LookupExpert make the list hold what the mesh serves in a domain, or
	// the providers of one expert, looking them up in the DHT when they were not lately. With
	// wait they wait a bounded time when nothing is held yet; otherwise never.
	LookupDomain(ctx context.Context, domain string, wait bool)
	LookupExpert(ctx context.Context, id string, wait bool)
}

// Fetcher brings experts for spot checks (a *blobsvc.Service); called from the checks'
// goroutines.
type Fetcher interface {
	// FetchVerified brings an expert's manifest and weights into the blockstore, checked
	// against their CIDs and the publisher's signature, without installing the expert.
	// weights, when defined, is a guess of the manifest's weights CID.
	FetchVerified(ctx context.Context, id, weights cid.Cid) (api.BlobInfo, *experts.Manifest, error)
	// AdvertisedWeights is the weights CID the live adverts of an expert agree on (cid.Undef
	// when there is none).
	AdvertisedWeights(id cid.Cid) cid.Cid
}

// FeedbackStore keeps the gating expert's feedback across restarts (a go-datastore
// Datastore).
type FeedbackStore interface {
	Get(ctx context.Context, key ds.Key) ([]byte, error)
	Put(ctx context.Context, key ds.Key, value []byte) error
}

// Deps is what New needs. Every interface and value in it is shared with the caller, who
// keeps ownership: the service closes none of them, and the caller closes them after Close.
type Deps struct {
	// Store holds the hosted experts; safe for concurrent use. Required.
	Store Store
	// Host is this node's libp2p host: the service handles the query protocol on it (from New
	// on) and calls peers over it. Required.
	Host host.Host
	// Exposure says which experts peers may query. Required.
	Exposure Exposure
	// Adverts lists the remote experts this node's queries may go to. Required.
	Adverts Adverts
	// Fetcher fetches the experts that spot checks need and this node does not host. It is
	// used only by checks, which follow the node's own queries, so the caller may have it
	// ready after New as long as it is before the first Query. Required.
	Fetcher Fetcher
	// Feedback keeps the gating expert's feedback (LoadGate reads it, Close writes it).
	// Required.
	Feedback FeedbackStore
	// Config is the repo's query settings: each peer's rate and burst of queries, and the
	// spot check rate (StreamsPerPeer is the mesh's business).
	Config node.QueryConfig
	// Registerer takes the service's metrics once, in New. Required.
	Registerer prometheus.Registerer
	// Logger receives the query server's and the spot checks' lines (nil: discarded).
	Logger *slog.Logger
}

// Service answers queries: it runs hosted experts for local and remote callers, and routes
// this node's queries to the best local or remote expert. Its methods are safe for concurrent
// use until Close.
type Service struct {
	self     string // this node's peer ID
	store    Store
	exposure Exposure
	adverts  Adverts
	feedback FeedbackStore
	router   *routing.Router // ranks candidates and keeps per-provider stats; safe for concurrent use
	client   *rpc.Client     // calls remote candidates; closed by Close
	checker  *spotChecker    // its checks stop in Close
	gate     *routing.Gate   // the gating expert; safe for concurrent use
	// gateLoaded says LoadGate was called: only then does Close write the gate's feedback, so
	// a service that never read the stored feedback does not replace it.
	gateLoaded atomic.Bool
	metrics    *metrics
	inflight   atomic.Int64  // hosted experts running now
	capacity   float64       // runs at once that make the advertised load 1
	decodes    chan struct{} // image decodes running at once (each up to 8 MiB)

	mu    sync.Mutex
	cache map[string]*loaded // hosted experts loaded so far (bounded by maxCached)
	// hosted caches the local candidates (the store's experts), refreshed every hostedTTL.
	hosted     []routing.Candidate
	hostedTime time.Time
}

// hostedTTL bounds how stale the cached list of hosted experts may be.
const hostedTTL = 2 * time.Second

const maxCached = 64

// maxDecodes bounds the query images decoded at once: a flood of images costs a peer its
// turn, not the node its memory.
const maxDecodes = 4

// New starts answering peers' queries on the host (for the experts the exposure answers for)
// and readies the router, the client and the spot checker. Close stops them.
func New(deps Deps) (*Service, error) {
	if err := deps.check(); err != nil {
		return nil, fmt.Errorf("start query service: %w", err)
	}
	log := depslib.Logger(deps.Logger)
	self := deps.Host.ID().String()
	s := &Service{self: self, store: deps.Store, exposure: deps.Exposure, adverts: deps.Adverts, feedback: deps.Feedback,
		cache: map[string]*loaded{}, capacity: 64, gate: routing.NewGate(), metrics: newMetrics(deps.Registerer),
		router: routing.NewRouter(self, routing.DefaultWeights()),
		client: rpc.NewClient(deps.Host, routing.QueryProtocol, 4<<20, 64)}
	rpc.Serve(deps.Host, routing.QueryProtocol, s.serve, rpc.ServerOptions{
		MaxRequest: 1 << 20, PeerRate: deps.Config.PeerRate, PeerBurst: deps.Config.PeerBurst,
		// Half a core per peer on average: no single stranger can take the node's CPU.
		PeerBusy: 0.5, Logger: log,
	})
	if rate := deps.Config.SpotCheckRate; rate > 0 {
		s.router.SetSpotRate(rate)
	}
	s.decodes = make(chan struct{}, maxDecodes)
	s.checker = newSpotChecker(s.router, s.load, deps.Fetcher, deps.Store, s.decodes, s.metrics.spotChecks, log)
	return s, nil
}

// check says which required dependencies are missing.
func (d Deps) check() error {
	return depslib.Missing(
		depslib.Required{Name: "Store", IsNil: d.Store == nil},
		depslib.Required{Name: "Host", IsNil: d.Host == nil},
		depslib.Required{Name: "Exposure", IsNil: d.Exposure == nil},
		depslib.Required{Name: "Adverts", IsNil: d.Adverts == nil},
		depslib.Required{Name: "Fetcher", IsNil: d.Fetcher == nil},
		depslib.Required{Name: "Feedback", IsNil: d.Feedback == nil},
		depslib.Required{Name: "Registerer", IsNil: d.Registerer == nil},
	)
}

// Close stops the spot checks in progress and waits for them, saves the gating expert's
// feedback (when LoadGate was called) and closes the query client. The query protocol's
// handler stays on the host until the host closes (it refuses what the exposure does not
// answer for).
func (s *Service) Close(ctx context.Context) error {
	s.checker.close()
	var errs []error
	if s.gateLoaded.Load() {
		errs = append(errs, s.saveGate(ctx))
	}
	errs = append(errs, s.client.Close())
	return errors.Join(errs...)
}

// Load is the share of its capacity the service uses now (what the node's adverts tell).
func (s *Service) Load() float64 { return float64(s.inflight.Load()) / s.capacity }

// Routes are the router's statistics of each provider and expert at now.
func (s *Service) Routes(now time.Time) []routing.PeerStat { return s.router.Stats(now) }

// InvalidateHosted drops the cached hosted candidates (an expert was installed or stored).
func (s *Service) InvalidateHosted() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hostedTime = time.Time{}
}

// load returns a hosted expert, loading it on first use.
func (s *Service) load(ctx context.Context, id string) (*loaded, error) {
	s.mu.Lock()
	l, ok := s.cache[id]
	s.mu.Unlock()
	if ok {
		return l, nil
	}
	c, err := cid.Decode(id)
	if err != nil {
		return nil, fmt.Errorf("expert %q is not a CID", id)
	}
	m, err := s.store.GetExpert(ctx, c)
	if err != nil {
		return nil, err
	}
	n, err := s.store.LoadNetwork(ctx, m)
	if err != nil {
		return nil, err
	}
	l = &loaded{manifest: m, net: n}
	s.mu.Lock()
	if len(s.cache) >= maxCached {
		for k := range s.cache { // evict any one; experts are cheap to reload
			delete(s.cache, k)
			break
		}
	}
	s.cache[id] = l
	s.mu.Unlock()
	return l, nil
}

// hostedCandidates lists this node's experts as candidates, from a cache at most hostedTTL old.
func (s *Service) hostedCandidates(ctx context.Context) ([]routing.Candidate, error) {
	s.mu.Lock()
	if time.Since(s.hostedTime) < hostedTTL {
		h := s.hosted
		s.mu.Unlock()
		return h, nil
	}
	s.mu.Unlock()
	list, err := s.store.ListExperts(ctx)
	if err != nil {
		return nil, err
	}
	var out []routing.Candidate
	for _, h := range list {
		m, err := s.store.GetExpert(ctx, h.ID)
		if err != nil {
			continue
		}
		sv := node.ServiceOf(h.ID, m)
		out = append(out, routing.Candidate{Expert: sv.ID, Peer: s.self, Local: true, Name: sv.Name, Domains: sv.Domains,
			Spec: sv.Spec, Quality: sv.Quality})
	}
	s.mu.Lock()
	s.hosted, s.hostedTime = out, time.Now()
	s.mu.Unlock()
	return out, nil
}
