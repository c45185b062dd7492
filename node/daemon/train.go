package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/meshnode/meshnode/distill/federated/fedjob"
	"github.com/meshnode/meshnode/experts/dataset"
	"github.com/meshnode/meshnode/mesh/rpc"
	"github.com/meshnode/meshnode/node"
)

// Federated training on the mesh: coordinators gossip their jobs' announcements on TopicTrain
// and receive participants' updates over TrainProtocol.
const (
	TopicTrain    = "/meshnode/train/1"
	TrainProtocol = protocol.ID("/meshnode/train/1.0.0")
	// announceEvery is how often a coordinator republishes its job's current announcement, so
	// a node that joined late or lost a message catches up.
	announceEvery = 2 * time.Second
	// maxUpdateValues bounds an update: a 1M-parameter model (4 MiB of float32).
	maxUpdateValues = 1 << 20
)

// trainService runs this node's federated training: jobs it coordinates, jobs it takes part
// in, and what it has heard of everyone else's.
type trainService struct {
	d       *Daemon
	catalog dataset.Catalog
	topic   *pubsub.Topic
	sub     *pubsub.Subscription
	client  *rpc.Client
	store   ds.Datastore
	metrics *trainMetrics
	// tamper, when set, rewrites this node's outgoing updates (robustness tests).
	tamper func(delta []float64)

	saveMu      sync.Mutex // serialises saveSeen
	mu          sync.Mutex
	policyTried map[string]bool         // jobs the config's join policy was tried on
	seen        map[string]*seenJob     // by job ID: the latest announcement and the rounds heard of
	coords      map[string]*coordinator // jobs this node coordinates
	parts       map[string]*participant // jobs this node takes part in

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// seenJob is what a node has heard of a job on the topic.
type seenJob struct {
	Ann     *fedjob.Announcement  `json:"announcement"`
	History []fedjob.RoundSummary `json:"history"`
}

func newTrainService(d *Daemon, tamper func([]float64)) (*trainService, error) {
	st, err := d.Repo.Store()
	if err != nil {
		return nil, err
	}
	s := &trainService{d: d, catalog: dataset.DefaultCatalog(), store: st.Datastore("/train"), tamper: tamper,
		client: rpc.NewClient(d.Mesh.Host, TrainProtocol, 1<<16, 16), metrics: newTrainMetrics(d.registry),
		seen: map[string]*seenJob{}, policyTried: map[string]bool{}, coords: map[string]*coordinator{}, parts: map[string]*participant{}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if err := d.Mesh.PubSub.RegisterTopicValidator(TopicTrain, s.validate); err != nil {
		return nil, fmt.Errorf("register %s validator: %w", TopicTrain, err)
	}
	if s.topic, err = d.Mesh.PubSub.Join(TopicTrain); err != nil {
		return nil, fmt.Errorf("join %s: %w", TopicTrain, err)
	}
	if s.sub, err = s.topic.Subscribe(); err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", TopicTrain, err)
	}
	// A participant sends one update a round: a few a second is plenty, and bounds what a
	// flood of 4 MiB requests can cost.
	rpc.Serve(d.Mesh.Host, TrainProtocol, s.serveUpdate, rpc.ServerOptions{
		MaxRequest: 64<<10 + 4*maxUpdateValues, ReadTimeout: 30 * time.Second, PeerRate: 2, PeerBurst: 8, PeerBusy: 0.5, Logger: d.log})
	if err := s.restore(); err != nil {
		s.close()
		return nil, err
	}
	s.wg.Add(1)
	go s.receive()
	return s, nil
}

func (s *trainService) validate(_ context.Context, _ peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
	a, err := fedjob.DecodeAnnouncement(msg.Data, msg.GetFrom().String(), time.Now(), node.VerifyPeerSignature)
	if err != nil {
		s.d.log.Debug("training announcement rejected", "from", msg.GetFrom(), "err", err)
		return pubsub.ValidationReject
	}
	msg.ValidatorData = a
	return pubsub.ValidationAccept
}

func (s *trainService) receive() {
	defer s.wg.Done()
	for {
		msg, err := s.sub.Next(s.ctx)
		if err != nil {
			return
		}
		if a, ok := msg.ValidatorData.(*fedjob.Announcement); ok {
			s.heard(a)
		}
	}
}

// maxSeenJobs bounds the jobs a node keeps hearing of; beyond it, the stalest job this node
// takes no part in makes room.
const maxSeenJobs = 256

// heard records an announcement and hands it to this node's participation in the job, or
// joins the job when the config's policy names data for its domain.
func (s *trainService) heard(a *fedjob.Announcement) {
	id := a.Spec.ID()
	s.mu.Lock()
	j := s.seen[id]
	if j == nil {
		if len(s.seen) >= maxSeenJobs && !s.evictSeenLocked() {
			s.mu.Unlock()
			return
		}
		j = &seenJob{}
		s.seen[id] = j
	}
	newer := j.Ann == nil || a.Issued >= j.Ann.Issued
	changed := j.Ann == nil || j.Ann.State != a.State || j.Ann.Round != a.Round
	if newer {
		j.Ann = a
	}
	if a.Last != nil && (len(j.History) == 0 || j.History[len(j.History)-1].Round < a.Last.Round) {
		j.History = append(j.History, *a.Last)
		changed = true
	}
	p := s.parts[id]
	policy := ""
	if p == nil && newer && a.State == fedjob.StateRound && !s.policyTried[id] {
		for _, pol := range s.d.Repo.Config.Training.Join {
			trusted := len(pol.Coordinators) == 0 || slices.Contains(pol.Coordinators, a.Spec.Coordinator)
			if pol.Domain == a.Spec.Domain && trusted {
				policy, s.policyTried[id] = pol.Dataset, true
				break
			}
		}
	}
	s.mu.Unlock()
	if p != nil && changed {
		s.saveSeen(id) // what a participant heard of its job survives a restart
	}
	switch {
	case !newer:
	case p != nil:
		p.offer(a)
	case policy != "":
		// Joining loads a data set: not on the gossip loop. One try per job.
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if _, err := s.join(s.ctx, id, policy); err != nil {
				s.d.log.Warn("join by policy failed", "job", id, "dataset", policy, "err", err)
			}
		}()
	}
}

// evictSeenLocked drops the job heard of longest ago that this node takes no part in, and
// reports whether there was one.
func (s *trainService) evictSeenLocked() bool {
	victim, oldest := "", int64(0)
	for id, j := range s.seen {
		if s.coords[id] != nil || s.parts[id] != nil {
			continue
		}
		if victim == "" || j.Ann.Issued < oldest {
			victim, oldest = id, j.Ann.Issued
		}
	}
	if victim != "" {
		delete(s.seen, victim)
		delete(s.policyTried, victim)
	}
	return victim != ""
}

// saveSeen persists what this node heard of a job; saves are serialised so an older snapshot
// never overwrites a newer one.
func (s *trainService) saveSeen(id string) {
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	s.mu.Lock()
	saved, err := json.Marshal(s.seen[id])
	s.mu.Unlock()
	if err == nil {
		err = s.store.Put(s.ctx, ds.NewKey("/seen/"+id), saved)
	}
	if err != nil {
		s.d.log.Warn("cannot persist a training announcement", "job", id, "err", err)
	}
}

// publish signs and gossips an announcement, and hands it to this node's own participation.
func (s *trainService) publish(ctx context.Context, a fedjob.Announcement) error {
	a.Issued = time.Now().UnixMilli()
	for _, ad := range s.d.Mesh.Host.Addrs() {
		if len(a.Addrs) < fedjob.MaxAddrs {
			a.Addrs = append(a.Addrs, ad.String())
		}
	}
	if err := a.Sign(s.d.Repo.Identity); err != nil {
		return err
	}
	err := s.topic.Publish(ctx, a.Encode()) // the mesh first: heard may write to disk
	s.heard(&a)
	if err != nil {
		return fmt.Errorf("announce job %s: %w", a.Spec.ID(), err)
	}
	return nil
}

// serveUpdate receives a participant's update for a job this node coordinates.
func (s *trainService) serveUpdate(_ context.Context, from peer.ID, req []byte) ([]byte, error) {
	// The cheap check first: a node that coordinates no such job decodes nothing more.
	job, err := fedjob.PeekUpdateJob(req)
	if err != nil {
		s.metrics.updates.WithLabelValues("malformed").Inc()
		return nil, err
	}
	s.mu.Lock()
	known := s.coords[job] != nil
	s.mu.Unlock()
	if !known {
		s.metrics.updates.WithLabelValues(fedjob.ReplyUnknown).Inc()
		return json.Marshal(fedjob.Reply{Code: fedjob.ReplyUnknown, Error: "this node coordinates no job " + job})
	}
	u, err := fedjob.DecodeUpdate(req, maxUpdateValues)
	if err != nil {
		s.metrics.updates.WithLabelValues("malformed").Inc()
		return nil, err
	}
	if u.Participant != from.String() {
		s.metrics.updates.WithLabelValues("forged").Inc()
		return nil, fmt.Errorf("update signed for %s arrived from %s", u.Participant, from)
	}
	if err := u.Verify(node.VerifyPeerSignature); err != nil {
		s.metrics.updates.WithLabelValues("forged").Inc()
		return nil, err
	}
	return json.Marshal(s.accept(u, len(req)))
}

// accept hands a verified update to the coordinator of its job and says how it went.
func (s *trainService) accept(u *fedjob.Update, size int) fedjob.Reply {
	s.mu.Lock()
	c := s.coords[u.Job]
	s.mu.Unlock()
	if c == nil {
		s.metrics.updates.WithLabelValues(fedjob.ReplyUnknown).Inc()
		return fedjob.Reply{Code: fedjob.ReplyUnknown, Error: "this node coordinates no job " + u.Job}
	}
	r := fedjob.Reply{Code: fedjob.ReplyAccepted}
	if err := c.add(u, size); err != nil {
		r = fedjob.Reply{Code: fedjob.ReplyCode(err), Error: err.Error()}
	}
	s.metrics.updates.WithLabelValues(r.Code).Inc()
	return r
}

// restore resumes the jobs this node coordinated or took part in before it stopped, and
// reloads what it had heard of others.
func (s *trainService) restore() error {
	res, err := s.store.Query(s.ctx, dsq.Query{})
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
				s.d.log.Warn("cannot resume a training job", "job", rec.Spec.ID(), "err", err)
			}
		}
	}
	return nil
}

// Jobs lists what this node knows of every job.
func (s *trainService) Jobs() []node.TrainJobInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []node.TrainJobInfo{}
	for id, j := range s.seen {
		info := node.TrainJobInfo{ID: id, Spec: j.Ann.Spec, State: j.Ann.State, Round: j.Ann.Round, Model: j.Ann.Model,
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

func (s *trainService) close() {
	s.cancel()
	s.wg.Wait()
	if s.sub != nil {
		s.sub.Cancel()
	}
	if s.topic != nil {
		_ = s.topic.Close()
	}
	_ = s.client.Close()
}

func (d *Daemon) trainRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST "+node.PathTrainStart, d.handle(func(r *http.Request) (any, error) {
		var req node.TrainStartRequest
		if err := decodeBody(r, &req); err != nil {
			return nil, err
		}
		return d.train.Start(r.Context(), req)
	}))
	mux.HandleFunc("POST "+node.PathTrainJoin, d.handle(func(r *http.Request) (any, error) {
		var req node.TrainJoinRequest
		if err := decodeBody(r, &req); err != nil {
			return nil, err
		}
		if req.Job == "" || req.Dataset == "" {
			return nil, node.ErrBadRequest.Wrap(errors.New("train join: job and dataset are required"))
		}
		return d.train.join(r.Context(), req.Job, req.Dataset)
	}))
	mux.HandleFunc("POST "+node.PathTrainLeave, d.handle(func(r *http.Request) (any, error) {
		var req node.TrainJoinRequest
		if err := decodeBody(r, &req); err != nil {
			return nil, err
		}
		return map[string]string{"left": req.Job}, d.train.leave(r.Context(), req.Job)
	}))
	mux.HandleFunc("GET "+node.PathTrainJobs, d.handle(func(r *http.Request) (any, error) {
		return d.train.Jobs(), nil
	}))
}

// decodeBody reads a JSON request body into v, refusing unknown fields.
func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, node.MaxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return node.ErrBadRequest.Wrap(fmt.Errorf("request body: %w", err))
	}
	return nil
}
