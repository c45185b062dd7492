package trainsvc

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/meshnode/meshnode/node/api"
	depslib "github.com/meshnode/meshnode/node/daemon/internal/deps"

	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshnode/meshnode/distill/federated/fedjob"
	"github.com/meshnode/meshnode/experts"
	"github.com/meshnode/meshnode/experts/dataset"
	"github.com/meshnode/meshnode/mesh/rpc"
	"github.com/meshnode/meshnode/node"
)

// Federated training on the mesh: coordinators gossip their jobs' announcements on Topic and
// receive participants' updates over Protocol.
const (
	Topic    = "/meshnode/train/1"
	Protocol = protocol.ID("/meshnode/train/1.0.0")
	// SecureProtocol carries the steps of secure rounds (package secagg).
	SecureProtocol = protocol.ID("/meshnode/train-secure/1.0.0")
	// announceEvery is how often a coordinator republishes its job's current announcement, so
	// a node that joined late or lost a message catches up.
	announceEvery = 2 * time.Second
	// maxUpdateValues bounds an update: a 1M-parameter model (4 MiB of float32).
	maxUpdateValues = 1 << 20
)

// Store is the part of the expert store the service uses (an *store.Store). Its methods are
// called concurrently (from every job's goroutine and the API), so they must be safe for that.
type Store interface {
	// Resolve turns the ID or name of a hosted expert into its ID.
	Resolve(ctx context.Context, ref string) (cid.Cid, error)
	// GetExpert reads a hosted expert's manifest.
	GetExpert(ctx context.Context, id cid.Cid) (*experts.Manifest, error)
	// LoadNetwork loads the network of an expert whose blocks are held.
	LoadNetwork(ctx context.Context, m *experts.Manifest) (*experts.Network, error)
	// AddNetwork stores a network and its manifest, signed by signer, and returns its ID.
	AddNetwork(ctx context.Context, m *experts.Manifest, n *experts.Network, signer experts.Signer) (cid.Cid, error)
}

// StateStore keeps the service's state across restarts: the jobs it coordinates, those it
// takes part in and what it heard of (a go-datastore Datastore of its own namespace). Written
// concurrently by the jobs' goroutines.
type StateStore interface {
	Put(ctx context.Context, key ds.Key, value []byte) error
	Delete(ctx context.Context, key ds.Key) error
	Query(ctx context.Context, q dsq.Query) (dsq.Results, error)
}

// Signer is this node's identity (a *node.Identity): it signs specs, announcements, updates and
// the versions a coordinator stores.
type Signer = depslib.Signer

// PubSub is the mesh's gossip (a *pubsub.PubSub), on which the service joins Topic.
type PubSub = depslib.PubSub

// Exposure is what this node shows to peers, as the service needs it. Refresh is called from
// the coordinators' goroutines.
type Exposure interface {
	// Refresh rebuilds what is exposed (a job's models changed: see Service.ExposedModels).
	Refresh(ctx context.Context) error
}

// Fetcher brings round models and final versions (a *blobsvc.Service); called from the
// participants' goroutines.
type Fetcher interface {
	// FetchExpertGuided fetches, verifies and installs an expert; weights, when defined, is a
	// guess of its manifest's weights CID.
	FetchExpertGuided(ctx context.Context, id, weights cid.Cid) (api.BlobInfo, *experts.Manifest, *experts.Network, error)
}

// Deps is what New needs. Every interface and value in it is shared with the caller, who
// keeps ownership: the service closes none of them, and the caller closes them after Close.
type Deps struct {
	// Store holds the experts jobs start from and the versions they make. Required.
	Store Store
	// State keeps the service's own records (the store's "/train" namespace). Required.
	State StateStore
	// Signer is this node's identity. Required.
	Signer Signer
	// Host is this node's libp2p host: the service handles Protocol on it (from New on), calls
	// coordinators over it and gives its addresses in announcements. It must find the
	// addresses of a coordinator that cannot be dialled at the announced ones (the mesh's
	// routed host: the DHT). Required.
	Host host.Host
	// PubSub is the gossip the service joins Topic on (and validates it), in New. Required.
	PubSub PubSub
	// Exposure is refreshed when a job starts and after each round, before the announcement
	// naming the new model goes out. Required.
	Exposure Exposure
	// Fetcher fetches the models participants train. Required.
	Fetcher Fetcher
	// InvalidateHosted, when not nil, is called after a coordinator stores a version (the
	// caller drops caches of hosted experts); it may be called from several goroutines.
	InvalidateHosted func()
	// Join is the config's policy for federated jobs (training.join): a job announced for one
	// of its domains, by a coordinator it trusts, is joined with the named data set. New copies
	// it.
	Join []node.TrainJoinPolicy
	// Tamper, when set, rewrites every update this node sends before it is signed (robustness
	// tests play a Byzantine participant with it). Called from the participants' goroutines.
	Tamper func(delta []float64)
	// DropAfterMask, when set and true for a round, makes this node vanish from a secure round
	// after sending its masked update (dropout tests). Called from the participants' goroutines.
	DropAfterMask func(round int) bool
	// Registerer takes the service's metrics once, in New. Required.
	Registerer prometheus.Registerer
	// Logger receives the jobs' lines (nil: discarded).
	Logger *slog.Logger
}

// Service runs this node's federated training: jobs it coordinates, jobs it takes part in,
// and what it has heard of everyone else's. Its methods are safe for concurrent use until
// Close.
type Service struct {
	store            Store
	state            StateStore
	signer           Signer
	host             host.Host
	exposure         Exposure
	fetcher          Fetcher
	invalidateHosted func()
	policies         []node.TrainJoinPolicy // read only
	log              *slog.Logger
	catalog          dataset.Catalog
	topic            *pubsub.Topic
	sub              *pubsub.Subscription
	client           *rpc.Client // sends updates to coordinators; closed by Close
	secureClient     *rpc.Client // sends secure-round steps; closed by Close
	metrics          *metrics
	// tamper, when set, rewrites this node's outgoing updates (robustness tests).
	tamper func(delta []float64)
	// dropAfterMask, when set, makes this node leave secure rounds after masking (tests).
	dropAfterMask func(round int) bool

	saveMu      sync.Mutex // serialises saveSeen
	mu          sync.Mutex
	policyTried map[string]bool         // jobs the config's join policy was tried on
	seen        map[string]*seenJob     // by job ID: the latest announcement and the rounds heard of
	coords      map[string]*coordinator // jobs this node coordinates
	parts       map[string]*participant // jobs this node takes part in

	ctx    context.Context // ends in Close: every job's goroutine stops
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// seenJob is what a node has heard of a job on the topic.
type seenJob struct {
	Ann     *fedjob.Announcement  `json:"announcement"`
	History []fedjob.RoundSummary `json:"history"`
}

// New joins Topic (validating what arrives), serves Protocol on the host, resumes the jobs this
// node coordinated or took part in before it stopped, and starts listening to announcements.
// Close stops it.
func New(deps Deps) (*Service, error) {
	if err := deps.check(); err != nil {
		return nil, fmt.Errorf("start training service: %w", err)
	}
	log := depslib.Logger(deps.Logger)
	invalidate := deps.InvalidateHosted
	if invalidate == nil {
		invalidate = func() {}
	}
	s := &Service{store: deps.Store, state: deps.State, signer: deps.Signer, host: deps.Host,
		exposure: deps.Exposure, fetcher: deps.Fetcher, invalidateHosted: invalidate, policies: slices.Clone(deps.Join),
		log: log, catalog: dataset.DefaultCatalog(), tamper: deps.Tamper, dropAfterMask: deps.DropAfterMask,
		client:       rpc.NewClient(deps.Host, Protocol, 1<<16, 16),
		secureClient: rpc.NewClient(deps.Host, SecureProtocol, fedjob.MaxSecureReply, 16), metrics: newMetrics(deps.Registerer),
		seen: map[string]*seenJob{}, policyTried: map[string]bool{}, coords: map[string]*coordinator{}, parts: map[string]*participant{}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if err := deps.PubSub.RegisterTopicValidator(Topic, s.validate); err != nil {
		return nil, fmt.Errorf("register %s validator: %w", Topic, err)
	}
	var err error
	if s.topic, err = deps.PubSub.Join(Topic); err != nil {
		return nil, fmt.Errorf("join %s: %w", Topic, err)
	}
	if s.sub, err = s.topic.Subscribe(); err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", Topic, err)
	}
	// A participant sends one update a round: a few a second is plenty, and bounds what a
	// flood of 4 MiB requests can cost.
	rpc.Serve(deps.Host, Protocol, s.serveUpdate, rpc.ServerOptions{
		MaxRequest: 64<<10 + 4*maxUpdateValues, ReadTimeout: 30 * time.Second, PeerRate: 2, PeerBurst: 8, PeerBusy: 0.5, Logger: log})
	// A secure round takes four steps and three polls a participant; a poll waits at most
	// securePoll, and only for the round's members, so handler time is not what to bound.
	rpc.Serve(deps.Host, SecureProtocol, s.serveSecure, rpc.ServerOptions{
		MaxRequest: fedjob.MaxSecureHeader + 8*(maxUpdateValues+2) + 64, ReadTimeout: 30 * time.Second,
		PeerRate: 10, PeerBurst: 30, Logger: log})
	if err := s.restore(); err != nil {
		s.Close()
		return nil, err
	}
	s.wg.Add(1)
	go s.receive()
	return s, nil
}

// check says which required dependencies are missing.
func (d Deps) check() error {
	return depslib.Missing(
		depslib.Required{Name: "Store", IsNil: d.Store == nil},
		depslib.Required{Name: "State", IsNil: d.State == nil},
		depslib.Required{Name: "Signer", IsNil: d.Signer == nil},
		depslib.Required{Name: "Host", IsNil: d.Host == nil},
		depslib.Required{Name: "PubSub", IsNil: d.PubSub == nil},
		depslib.Required{Name: "Exposure", IsNil: d.Exposure == nil},
		depslib.Required{Name: "Fetcher", IsNil: d.Fetcher == nil},
		depslib.Required{Name: "Registerer", IsNil: d.Registerer == nil},
	)
}

// Close stops every job's goroutine and waits for them, leaves Topic and closes the update
// client. Protocol's handler stays on the host until the host closes (it answers that this
// node coordinates no such job).
func (s *Service) Close() {
	s.cancel()
	s.wg.Wait()
	if s.sub != nil {
		s.sub.Cancel()
	}
	if s.topic != nil {
		_ = s.topic.Close()
	}
	_ = s.client.Close()
	_ = s.secureClient.Close()
}

// expert finds a hosted expert by ID or name: its ID and its manifest.
func (s *Service) expert(ctx context.Context, ref string) (cid.Cid, *experts.Manifest, error) {
	id, err := s.store.Resolve(ctx, ref)
	if err != nil {
		return cid.Undef, nil, err
	}
	m, err := s.store.GetExpert(ctx, id)
	if err != nil {
		return cid.Undef, nil, err
	}
	return id, m, nil
}

// restore resumes the jobs this node coordinated or took part in before it stopped, and
// reloads what it had heard of others.
func (s *Service) restore() error {
	res, err := s.state.Query(s.ctx, dsq.Query{})
	if err != nil {
		return fmt.Errorf("read training state: %w", err)
	}
	entries, err := res.Rest()
	if err != nil {
		return fmt.Errorf("read training state: %w", err)
	}
	for _, e := range entries {
		k := ds.NewKey(e.Key)
		switch k.Parent().BaseNamespace() {
		case "seen":
			var j seenJob
			if json.Unmarshal(e.Value, &j) == nil && j.Ann != nil {
				s.seen[k.BaseNamespace()] = &j
			}
		case "coord":
			var st coordState
			if err := json.Unmarshal(e.Value, &st); err != nil {
				return fmt.Errorf("training state %s: %w", k, err)
			}
			s.startCoordinator(&st)
		case "part":
			var rec partRecord
			if err := json.Unmarshal(e.Value, &rec); err != nil {
				return fmt.Errorf("training state %s: %w", k, err)
			}
			if _, err := s.startParticipant(rec); err != nil {
				s.log.Warn("cannot resume a training job", "job", rec.Spec.ID(), "err", err)
			}
		}
	}
	return nil
}

// jobs lists what this node knows of every job.
func (s *Service) jobs() []api.TrainJobInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []api.TrainJobInfo{}
	for id, j := range s.seen {
		info := api.TrainJobInfo{ID: id, Spec: j.Ann.Spec, State: j.Ann.State, Round: j.Ann.Round, Model: j.Ann.Model,
			Deadline: j.Ann.Deadline, History: j.History}
		if c := s.coords[id]; c != nil {
			c.describe(&info)
		}
		if p := s.parts[id]; p != nil {
			info.Participant = p.describe()
		}
		out = append(out, info)
	}
	sortJobs(out)
	return out
}

// job is what this node knows of one job, or false.
func (s *Service) job(id string) (api.TrainJobInfo, bool) {
	for _, j := range s.jobs() {
		if j.ID == id {
			return j, true
		}
	}
	return api.TrainJobInfo{}, false
}

// sortJobs orders jobs newest first (then by ID).
func sortJobs(j []api.TrainJobInfo) {
	sort.Slice(j, func(a, b int) bool {
		if j[a].Spec.Created != j[b].Spec.Created {
			return j[a].Spec.Created > j[b].Spec.Created
		}
		return j[a].ID < j[b].ID
	})
}
