package apisvc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshnode/meshnode/distill/validate"
	"github.com/meshnode/meshnode/experts/store"
	"github.com/meshnode/meshnode/mesh/advert"
	"github.com/meshnode/meshnode/mesh/blobs"
	"github.com/meshnode/meshnode/node"
	"github.com/meshnode/meshnode/node/api"
	depslib "github.com/meshnode/meshnode/node/daemon/internal/deps"
	"github.com/meshnode/meshnode/node/daemon/internal/httpx"
	"github.com/meshnode/meshnode/routing"
)

// Handle turns a function answering a request with a value or an error into the API's
// handler: the value as JSON, or the error with the status and code of its kind. A route
// registrar (Deps.Routes) is handed the service's.
type Handle = httpx.Handle

// Host is this node's libp2p host as the API shows it (the mesh's host.Host): its ID, its
// peers, their connections and latency. Called from the API's requests, concurrently.
type Host interface {
	ID() peer.ID
	Network() network.Network
	Peerstore() peerstore.Peerstore
}

// Node is the running node as the API drives it (the daemon, through an adapter: its mesh's
// Addrs, its Serve and Unserve). Called from the API's requests, concurrently.
type Node interface {
	// Addrs is this node's full multiaddrs (with /p2p/<id>), for others to bootstrap from.
	Addrs() []string
	// Reachability is what AutoNAT found (Unknown, Public or Private) or the config declared.
	Reachability() string
	// Serve starts advertising a hosted expert (by ID or name) and remembers it across restarts.
	Serve(ctx context.Context, ref string) (advert.Service, error)
	// Unserve stops advertising an expert (by ID or name); its withdrawal goes out at once.
	Unserve(ctx context.Context, ref string) error
}

// Adverts is the mesh's adverts (a *mesh.Adverts): this node's and everyone else's.
type Adverts interface {
	// Served lists the experts this node advertises.
	Served() []advert.Service
	// List returns the live remote adverts at now.
	List(now time.Time) []advert.Entry
}

// Store is the part of the expert store the API reads itself (a *store.Store).
type Store interface {
	// ListExperts lists the hosted experts.
	ListExperts(ctx context.Context) ([]store.Entry, error)
	// OpenBlob opens a held blob for reading, with its size.
	OpenBlob(ctx context.Context, c cid.Cid) (io.ReadSeekCloser, int64, error)
}

// Repo is the node's repo folder as the API needs it (a *node.Repo).
type Repo interface {
	// HostedExperts lists the hosted experts, each marked served when isServed says so.
	HostedExperts(ctx context.Context, isServed func(id string) bool) ([]api.HostedExpert, error)
	// Token reads the API token the repo holds (Start reads it once).
	Token() (string, error)
}

// StoreOps are the store's commands the API runs for a CLI that finds the daemon holding the
// store (a node.LocalOps on the repo: the methods of api.StoreOps that do not touch blobs).
// Long ones report progress through their request and stop when ctx ends.
type StoreOps interface {
	InspectExpert(ctx context.Context, ref string) (*api.InspectReport, error)
	TrainExpert(ctx context.Context, req api.TrainRequest) (*api.TrainReport, error)
	EvalExpert(ctx context.Context, ref, ds string, limit int) (*api.EvalReport, error)
	ExportExpert(ctx context.Context, ref, path string) (*api.ExportReport, error)
	ImportExpert(ctx context.Context, path string, o api.ImportOptions) (*api.ImportReport, error)
	ValidateExperts(ctx context.Context, req api.ValidateRequest) (*validate.Report, error)
	Distill(ctx context.Context, req api.DistillRequest) (*api.DistillResult, error)
	Generate(ctx context.Context, req api.GenerateRequest) (*api.GenerateResult, error)
}

// Queries is the query service (a *querysvc.Service).
type Queries interface {
	// Query routes one query of this node.
	Query(ctx context.Context, q api.QueryRequest) (*api.QueryAnswer, error)
	// Routes are the router's statistics of each provider and expert at now.
	Routes(now time.Time) []routing.PeerStat
}

// Blobs is the blob service (a *blobsvc.Service, with blobsvc.WithProgress).
type Blobs interface {
	// Put imports a file into the store and pins it (exposing and announcing it unless private).
	Put(ctx context.Context, req api.BlobPutRequest) (api.BlobInfo, error)
	// Fetch brings a blob from the mesh.
	Fetch(ctx context.Context, c cid.Cid) (api.BlobInfo, error)
	// FetchExpert brings an expert from the mesh, verifies and installs it.
	FetchExpert(ctx context.Context, id cid.Cid) (api.BlobInfo, error)
	// GC deletes the blocks nothing keeps.
	GC(ctx context.Context) (api.GCReport, error)
	// WithProgress returns ctx carrying report: a fetch under it reports its progress to it.
	WithProgress(ctx context.Context, report func(blobs.Progress)) context.Context
}

// Pins keeps blobs through gc (a *node.BlobKeeper: the blob service's keeper).
type Pins interface {
	Pin(ctx context.Context, c cid.Cid) error
	Unpin(ctx context.Context, c cid.Cid) error
}

// Market is the market service as the API needs it (a *marketsvc.Service).
type Market interface {
	// ExposureOf says, for expert serve, who gets a served expert's blocks: anyone, or only
	// receipt holders.
	ExposureOf(ctx context.Context, expert string) string
}

// Deps is what New needs. Every interface and value in it is shared with the caller, who
// keeps ownership: the service closes none of them, and the caller closes them after Close.
type Deps struct {
	// Host is this node's libp2p host: its ID and peers (GET id, status, peers). Required.
	Host Host
	// Node gives this node's addresses and serves and unserves experts. Required.
	Node Node
	// Adverts lists the experts this node advertises and the remote ones. Required.
	Adverts Adverts
	// Store is the expert store: status counts its experts, blob cat reads its blobs. Required.
	Store Store
	// Repo lists the hosted experts and holds the API token. Required.
	Repo Repo
	// Ops runs the store's commands (train, eval, export, import, inspect, validate, distill,
	// generate). Required.
	Ops StoreOps
	// Queries answers POST query and GET routes. Required.
	Queries Queries
	// Blobs puts, fetches and collects blobs. Required.
	Blobs Blobs
	// Pins pins and unpins blobs. Required.
	Pins Pins
	// Market says how a newly served expert is exposed. Required.
	Market Market
	// Routes register other services' routes on the API's mux, in order, with the service's
	// Handle (trainsvc's and marketsvc's Routes methods). New calls each once.
	Routes []func(mux *http.ServeMux, handle Handle)
	// Gatherer is the registry GET metrics answers with. Required.
	Gatherer prometheus.Gatherer
	// APIFile is where Start writes the API's URL (the repo's api.APIFile), and Close removes
	// it. Required.
	APIFile string
	// Started is when the node started, for status's uptime (zero: when New runs).
	Started time.Time
	// Logger receives the lines of the jobs run through the API (nil: discarded).
	Logger *slog.Logger
}

// check says which required dependencies are missing.
func (d Deps) check() error {
	err := depslib.Missing(
		depslib.Required{Name: "Host", IsNil: d.Host == nil},
		depslib.Required{Name: "Node", IsNil: d.Node == nil},
		depslib.Required{Name: "Adverts", IsNil: d.Adverts == nil},
		depslib.Required{Name: "Store", IsNil: d.Store == nil},
		depslib.Required{Name: "Repo", IsNil: d.Repo == nil},
		depslib.Required{Name: "Ops", IsNil: d.Ops == nil},
		depslib.Required{Name: "Queries", IsNil: d.Queries == nil},
		depslib.Required{Name: "Blobs", IsNil: d.Blobs == nil},
		depslib.Required{Name: "Pins", IsNil: d.Pins == nil},
		depslib.Required{Name: "Market", IsNil: d.Market == nil},
		depslib.Required{Name: "Gatherer", IsNil: d.Gatherer == nil},
	)
	if d.APIFile == "" {
		err = errors.Join(err, errors.New("deps: APIFile is empty"))
	}
	return err
}

// Service is the daemon's local HTTP API: the route table, behind the token, on a loopback
// listener from Start to Close.
type Service struct {
	host     Host
	node     Node
	adverts  Adverts
	store    Store
	repo     Repo
	ops      StoreOps
	queries  Queries
	blobs    Blobs
	pins     Pins
	market   Market
	gatherer prometheus.Gatherer
	apiFile  string
	started  time.Time
	log      *slog.Logger
	mux      *http.ServeMux // every route but the dashboard page, without the token check

	// Set by Start.
	srv  *http.Server
	stop context.CancelCauseFunc // cancels every request's context with errStopping
	url  string
	done chan error // Serve's end
}

// New builds the route table (calling every registrar of Deps.Routes). Nothing listens until
// Start.
func New(deps Deps) (*Service, error) {
	if err := deps.check(); err != nil {
		return nil, fmt.Errorf("start API service: %w", err)
	}
	s := &Service{host: deps.Host, node: deps.Node, adverts: deps.Adverts, store: deps.Store, repo: deps.Repo,
		ops: deps.Ops, queries: deps.Queries, blobs: deps.Blobs, pins: deps.Pins, market: deps.Market,
		gatherer: deps.Gatherer, apiFile: deps.APIFile, started: deps.Started, log: depslib.Logger(deps.Logger)}
	if s.started.IsZero() {
		s.started = time.Now()
	}
	s.mux = s.routes(deps.Routes)
	return s, nil
}

// Start listens on listen (a loopback address: the caller checks it, as node.CheckAPIListen
// does for the config and --api), reads the repo's token, writes the API's URL to
// Deps.APIFile and serves the API until Close. On an error nothing is left listening.
func (s *Service) Start(listen string) error {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("API listen on %s: %w", listen, err)
	}
	tok, err := s.repo.Token()
	if err != nil {
		ln.Close()
		return err
	}
	s.url = "http://" + ln.Addr().String()
	base, stop := context.WithCancelCause(context.Background())
	s.stop = stop
	s.srv = &http.Server{Handler: authenticate(tok, s.mux, serveUI), ReadHeaderTimeout: 5 * time.Second,
		BaseContext: func(net.Listener) context.Context { return base }}
	if err := node.WriteFileAtomic(s.apiFile, []byte(s.url+"\n"), 0o644); err != nil {
		ln.Close()
		return fmt.Errorf("write API address: %w", err)
	}
	s.done = make(chan error, 1)
	go func() { s.done <- s.srv.Serve(ln) }()
	return nil
}

// URL is the base URL of the API (empty before Start).
func (s *Service) URL() string { return s.url }

// errStopping is why a request's work ends when the daemon stops.
var errStopping = errors.New("the daemon is stopping")

// Close stops the API: every running request's context ends with errStopping at once (a job
// ends reported as interrupted, before the caller closes the store), then the server shuts
// down within ctx and the API file is removed. A service never started has nothing to close.
func (s *Service) Close(ctx context.Context) error {
	if s.srv == nil {
		return nil
	}
	var errs []error
	s.stop(errStopping)
	errs = append(errs, s.srv.Shutdown(ctx))
	if err := <-s.done; !errors.Is(err, http.ErrServerClosed) {
		errs = append(errs, err)
	}
	if err := os.Remove(s.apiFile); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
