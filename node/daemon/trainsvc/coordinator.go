package trainsvc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"

	"github.com/meshnode/meshnode/distill/federated/fedavg"
	"github.com/meshnode/meshnode/distill/federated/fedjob"
	"github.com/meshnode/meshnode/experts"
	"github.com/meshnode/meshnode/node"
	"github.com/meshnode/meshnode/node/api"
)

// coordState is a coordinated job's persistent state: enough to resume after a restart from
// the last published round.
type coordState struct {
	Spec        fedjob.Spec           `json:"spec"`
	EvalDataset string                `json:"eval_dataset"`
	Round       int                   `json:"round"` // the round to collect next (Rounds+1 when done)
	Model       string                `json:"model"` // the version that round starts from
	Roster      []string              `json:"roster"`
	History     []fedjob.RoundSummary `json:"history"`
	State       string                `json:"state"`
	Error       string                `json:"error,omitempty"`      // why a stopped job stopped
	EndReason   string                `json:"end_reason,omitempty"` // why a job ended before its last round
}

// coordinator runs one job: it opens each round, collects updates, aggregates, evaluates and
// publishes the next version.
type coordinator struct {
	s      *Service
	cancel context.CancelFunc
	done   chan struct{} // closed when run returns

	mu      sync.Mutex
	st      coordState
	col     *fedjob.Collector   // the open round, nil between rounds
	sec     *fedjob.SecureRound // the open secure round, nil between rounds
	arrived chan struct{}       // signalled when an update or secure message is accepted
	eval    *heldOut            // the coordinator's held-out data
	// noise draws differential-privacy noise: seeded from crypto/rand when the coordinator
	// starts, known to nobody else.
	noise fedavg.NoiseSource
	// momentum carries the server's velocity over rounds. It lives in memory: a restarted
	// coordinator starts it again from zero.
	momentum *fedavg.Momentum
}

// startJob coordinates a new job from a hosted expert.
func (s *Service) startJob(ctx context.Context, req api.TrainStartRequest) (api.TrainJobInfo, error) {
	base, m, err := s.expert(ctx, req.Base)
	if err != nil {
		return api.TrainJobInfo{}, err
	}
	if m.Output.Kind != experts.OutputClasses {
		return api.TrainJobInfo{}, api.ErrBadRequest.Wrap(fmt.Errorf("train start: expert %s is not a classifier", base))
	}
	if m.Params > maxUpdateValues {
		return api.TrainJobInfo{}, api.ErrBadRequest.Wrap(fmt.Errorf("train start: expert %s has %d parameters; updates carry at most %d", base, m.Params, maxUpdateValues))
	}
	if req.EvalDataset == "" {
		return api.TrainJobInfo{}, api.ErrBadRequest.Wrap(errors.New("train start: an evaluation data set is required (the coordinator measures every version on it)"))
	}
	if _, err := s.evalData(req.EvalDataset, m); err != nil {
		return api.TrainJobInfo{}, api.ErrBadRequest.Wrap(err)
	}
	domain := req.Domain
	if domain == "" && len(m.Domains) > 0 {
		domain = m.Domains[0]
	}
	spec := fedjob.Spec{Base: base.String(), Domain: domain, Input: m.Input, Output: m.Output,
		Rounds: req.Rounds, LocalEpochs: req.LocalEpochs, BatchSize: req.BatchSize, LR: req.LR, LRDecay: req.LRDecay, ServerMomentum: req.ServerMomentum, Optimizer: req.Optimizer, ProxMu: req.ProxMu,
		MinParticipants: req.MinParticipants, MaxParticipants: req.MaxParticipants,
		SoftDeadlineMS: req.SoftDeadlineMS, DeadlineMS: req.DeadlineMS, Aggregator: req.Aggregator,
		MaxShare: req.MaxShare, Trim: req.Trim, ClipNorm: req.ClipNorm, NoiseStd: req.NoiseStd,
		DPDelta: req.DPDelta, TargetEpsilon: req.TargetEpsilon, RecordClipNorm: req.RecordClipNorm, RecordNoise: req.RecordNoise,
		RecordTargetEpsilon: req.RecordTargetEpsilon, SecureAggregation: req.SecureAggregation,
		SecAggNeighbours: req.SecAggNeighbours, SecAggThreshold: req.SecAggThreshold, SecAggPhaseMS: req.SecAggPhaseMS,
		Seed: req.Seed, Created: time.Now().UnixMilli()}
	if spec.TargetEpsilon > 0 && spec.NoiseStd == 0 {
		z, err := calibrateNoise(samplingRate, spec.Rounds, orDefault(spec.DPDelta, fedjob.DefaultDPDelta), spec.TargetEpsilon)
		if err != nil {
			return api.TrainJobInfo{}, api.ErrBadRequest.Wrap(fmt.Errorf("train start: %w", err))
		}
		spec.NoiseStd = z
	}
	spec.FillPrivacyDefaults()
	if spec.TargetEpsilon > 0 {
		if eps, err := epsilonAfter(&spec, 1); err != nil || eps > spec.TargetEpsilon {
			return api.TrainJobInfo{}, api.ErrBadRequest.Wrap(fmt.Errorf("train start: one round at noise %g spends ε = %.3g (%v), more than the target %g",
				spec.NoiseStd, eps, err, spec.TargetEpsilon))
		}
	}
	if err := spec.Sign(s.signer); err != nil {
		return api.TrainJobInfo{}, err
	}
	if err := spec.Check(node.VerifyPeerSignature); err != nil {
		return api.TrainJobInfo{}, api.ErrBadRequest.Wrap(err)
	}
	if req.Dataset != "" { // the coordinator's own data must fit before anything starts
		if _, err := s.loadPart(spec, req.Dataset); err != nil {
			return api.TrainJobInfo{}, api.ErrBadRequest.Wrap(err)
		}
	}
	cs := &coordState{Spec: spec, EvalDataset: req.EvalDataset, Round: 1, Model: base.String(), State: fedjob.StateRound}
	if err := s.saveCoord(ctx, cs); err != nil {
		return api.TrainJobInfo{}, err
	}
	s.startCoordinator(cs)
	if req.Dataset != "" {
		if _, err := s.join(ctx, spec.ID(), req.Dataset); err != nil {
			return api.TrainJobInfo{}, err
		}
	}
	if j, ok := s.job(spec.ID()); ok {
		return j, nil
	}
	return api.TrainJobInfo{}, fmt.Errorf("train start: job %s vanished", spec.ID())
}

func (s *Service) saveCoord(ctx context.Context, cs *coordState) error {
	b, err := json.Marshal(cs)
	if err != nil {
		return err
	}
	if err := s.state.Put(ctx, ds.NewKey("/coord/"+cs.Spec.ID()), b); err != nil {
		return fmt.Errorf("save job %s: %w", cs.Spec.ID(), err)
	}
	return nil
}

// startCoordinator runs a job's rounds (a finished job only answers status).
func (s *Service) startCoordinator(cs *coordState) {
	ctx, cancel := context.WithCancel(s.ctx)
	c := &coordinator{s: s, st: *cs, cancel: cancel, arrived: make(chan struct{}, 1), done: make(chan struct{}),
		noise: fedavg.SecretNoise(), momentum: &fedavg.Momentum{Beta: cs.Spec.ServerMomentum}}
	id := cs.Spec.ID()
	s.mu.Lock()
	s.coords[id] = c
	if s.seen[id] == nil { // status knows the job before its first announcement goes out
		s.seen[id] = &seenJob{Ann: &fedjob.Announcement{Spec: cs.Spec, State: cs.State, Round: cs.Round, Model: cs.Model}}
	}
	s.mu.Unlock()
	if cs.State != fedjob.StateRound {
		cancel()
		close(c.done)
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(c.done)
		if err := c.run(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("training job failed; stopping it", "job", id, "err", err)
			c.fail(err)
		}
	}()
}

// fail stops a job that cannot go on (its store failed, its held-out data vanished): the state
// says why, and the mesh hears that it stopped.
func (c *coordinator) fail(cause error) {
	c.mu.Lock()
	c.st.State, c.st.Error = fedjob.StateStopped, cause.Error()
	c.col, c.sec = nil, nil
	st := c.st
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.s.saveCoord(ctx, &st); err != nil {
		c.s.log.Error("save stopped job", "job", st.Spec.ID(), "err", err)
	}
	ann := fedjob.Announcement{Spec: st.Spec, State: fedjob.StateStopped, Round: st.Round - 1, Model: st.Model}
	if err := c.s.publish(ctx, ann); err != nil {
		c.s.log.Warn("announce stopped job", "job", st.Spec.ID(), "err", err)
	}
}

func (c *coordinator) add(u *fedjob.Update, size int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.col == nil {
		return fmt.Errorf("%w: job %s has no open round", fedjob.ErrLate, c.st.Spec.ID())
	}
	if err := c.col.Add(u, size, time.Now()); err != nil {
		return err
	}
	select {
	case c.arrived <- struct{}{}:
	default:
	}
	return nil
}

func (c *coordinator) describe(info *api.TrainJobInfo) {
	c.mu.Lock()
	defer c.mu.Unlock()
	info.Coordinator = true
	info.State, info.Round, info.Model = c.st.State, min(c.st.Round, c.st.Spec.Rounds), c.st.Model
	info.History = append([]fedjob.RoundSummary(nil), c.st.History...)
	info.Error, info.EndReason = c.st.Error, c.st.EndReason
	if n := len(c.st.History); n > 0 {
		info.Epsilon = c.st.History[n-1].Epsilon
	}
	if c.col != nil {
		info.Pending = c.col.Count()
		info.Deadline = c.col.Deadline().UnixMilli()
	}
	if c.sec != nil {
		info.Pending = c.sec.Count()
		info.Deadline = c.sec.Deadline().UnixMilli()
	}
}

// run collects and closes rounds until the job is done.
func (c *coordinator) run(ctx context.Context) error {
	spec := &c.st.Spec
	net, err := c.prepare(ctx)
	if err != nil {
		return err
	}
	// The base model goes out before the first announcement names it.
	if err := c.s.exposure.Refresh(ctx); err != nil {
		c.s.log.Warn("exposure table at a job's start", "job", spec.ID(), "err", err)
	}
	for c.st.Round <= spec.Rounds {
		if reason := c.overBudget(); reason != "" {
			c.mu.Lock()
			c.st.State, c.st.EndReason = fedjob.StateDone, reason
			st := c.st
			c.mu.Unlock()
			c.s.log.Info("training job ends early", "job", spec.ID(), "reason", reason)
			if err := c.s.saveCoord(ctx, &st); err != nil {
				return err
			}
			break
		}
		sum, next, err := c.round(ctx, net)
		if err != nil {
			return err
		}
		if next == nil {
			continue // nobody sent an update: the round opens again
		}
		net = next
		c.mu.Lock()
		c.st.History = append(c.st.History, *sum)
		c.st.Round++
		c.st.Model = sum.Model
		if c.st.Round > spec.Rounds {
			c.st.State = fedjob.StateDone
		}
		st := c.st
		c.mu.Unlock()
		if err := c.s.saveCoord(ctx, &st); err != nil {
			return err
		}
		// The new version goes out before the announcement that names it.
		if err := c.s.exposure.Refresh(ctx); err != nil {
			c.s.log.Warn("exposure table after a round", "job", spec.ID(), "err", err)
		}
		c.s.metrics.rounds.Inc()
		c.s.metrics.accuracy.WithLabelValues(spec.ID()).Set(sum.Accuracy)
		if spec.NoiseStd > 0 {
			c.s.metrics.epsilon.WithLabelValues(spec.ID()).Set(sum.Epsilon)
		}
	}
	// Done: keep announcing the final version for a while so every participant hears it.
	last := c.st.History[len(c.st.History)-1]
	last.Participants = nil
	ann := fedjob.Announcement{Spec: *spec, State: fedjob.StateDone, Round: len(c.st.History), Model: c.st.Model, Last: &last}
	ann.Weights = c.weightsOf(ctx, ann.Model)
	for range 30 {
		if err := c.s.publish(ctx, ann); err != nil && ctx.Err() == nil {
			c.s.log.Warn("announce", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(announceEvery):
		}
	}
	return nil
}

// weightsOf is the CID of a stored version's weights for an announcement's hint ("" if the
// manifest cannot be read: participants then fetch it first and follow its link).
func (c *coordinator) weightsOf(ctx context.Context, model string) string {
	_, m, err := c.s.expert(ctx, model)
	if err != nil {
		return ""
	}
	return m.Weights.String()
}

// prepare loads the held-out data and the model the next round starts from.
func (c *coordinator) prepare(ctx context.Context) (*experts.Network, error) {
	id, m, err := c.s.expert(ctx, c.st.Model)
	if err != nil {
		return nil, fmt.Errorf("job %s: model %s: %w", c.st.Spec.ID(), c.st.Model, err)
	}
	net, err := c.s.store.LoadNetwork(ctx, m)
	if err != nil {
		return nil, fmt.Errorf("job %s: model %s: %w", c.st.Spec.ID(), id, err)
	}
	c.eval, err = c.s.evalData(c.st.EvalDataset, m)
	return net, err
}

// round opens round c.st.Round on net, waits for it to close, and makes the next version. A
// round that gathered nothing it could aggregate returns a nil network (it opens again).
func (c *coordinator) round(ctx context.Context, net *experts.Network) (*fedjob.RoundSummary, *experts.Network, error) {
	if c.st.Spec.SecureAggregation {
		return c.secureRound(ctx, net)
	}
	spec := &c.st.Spec
	started := time.Now()
	c.mu.Lock()
	c.col = fedjob.NewCollector(spec, c.st.Round, net.ParamCount(), started, c.st.Roster)
	col := c.col
	c.mu.Unlock()
	err := c.collect(ctx, col.Deadline(), func(now time.Time) (bool, time.Time, error) {
		c.mu.Lock()
		defer c.mu.Unlock()
		due, at := col.Due(now)
		return due, at, nil
	})
	if err != nil {
		return nil, nil, err
	}
	closing := time.Now()
	c.mu.Lock()
	res := col.Close()
	c.col = nil
	c.st.Roster = col.Roster()
	c.mu.Unlock()
	if len(res.Updates) == 0 {
		c.s.log.Info("round closed without updates; opening it again", "job", spec.ID(), "round", c.st.Round)
		return nil, nil, nil
	}
	delta, err := fedavg.Aggregate(res.Updates, spec.AggregateConfig(c.noise))
	if err != nil { // e.g. multi-krum with fewer updates than it needs, at the hard deadline
		c.s.log.Warn("round could not aggregate; opening it again", "job", spec.ID(), "round", c.st.Round,
			"updates", len(res.Updates), "err", err)
		return nil, nil, nil
	}
	return c.closeRound(ctx, net, delta, res, started, closing, nil)
}

// announcement is the announcement of the open round, whose advertising or updates end at
// deadline.
func (c *coordinator) announcement(ctx context.Context, deadline time.Time) fedjob.Announcement {
	c.mu.Lock()
	var last *fedjob.RoundSummary
	if n := len(c.st.History); n > 0 {
		l := c.st.History[n-1]
		l.Participants = nil
		last = &l
	}
	ann := fedjob.Announcement{Spec: c.st.Spec, State: fedjob.StateRound, Round: c.st.Round, Model: c.st.Model,
		Deadline: deadline.UnixMilli(), Last: last}
	c.mu.Unlock()
	ann.Weights = c.weightsOf(ctx, ann.Model)
	return ann
}

// collect announces the open round every announceEvery until it has gathered what it waits
// for, and wakes on every message: step reports whether to stop and when to ask next.
func (c *coordinator) collect(ctx context.Context, deadline time.Time, step func(now time.Time) (bool, time.Time, error)) error {
	spec := &c.st.Spec
	ann := c.announcement(ctx, deadline)
	nextAnnounce := time.Now()
	for {
		now := time.Now()
		if !now.Before(nextAnnounce) && now.Before(deadline) {
			if err := c.s.publish(ctx, ann); err != nil && ctx.Err() == nil {
				c.s.log.Warn("announce", "job", spec.ID(), "err", err)
			}
			nextAnnounce = now.Add(announceEvery)
		}
		done, at, err := step(now)
		if err != nil || done {
			return err
		}
		wake := at
		if now.Before(deadline) && nextAnnounce.Before(wake) {
			wake = nextAnnounce
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.arrived:
		case <-time.After(time.Until(wake)):
		}
	}
}

// closeRound applies a round's aggregate to net, evaluates and publishes the new version.
func (c *coordinator) closeRound(ctx context.Context, net *experts.Network, delta []float64, res fedjob.Result,
	started, closing time.Time, secure *fedjob.SecureSummary) (*fedjob.RoundSummary, *experts.Network, error) {
	spec := &c.st.Spec
	step := delta
	if spec.ServerMomentum > 0 {
		var err error
		if step, err = c.momentum.Step(delta); err != nil {
			return nil, nil, fmt.Errorf("job %s round %d: %w", spec.ID(), c.st.Round, err)
		}
	}
	next, err := fedavg.Apply(net, step)
	if err != nil {
		return nil, nil, err
	}
	ev, err := experts.Evaluate(next, c.eval.samples, "")
	if err != nil {
		return nil, nil, fmt.Errorf("job %s round %d: evaluate: %w", spec.ID(), c.st.Round, err)
	}
	id, size, err := c.publishVersion(ctx, next, ev, len(res.Participants))
	if err != nil {
		return nil, nil, err
	}
	sum := &fedjob.RoundSummary{Round: c.st.Round, Model: id.String(), Parent: c.st.Model, Participants: res.Participants,
		Updates: len(res.Participants), Samples: res.Samples, Accuracy: ev.Accuracy, Loss: ev.Loss, TrainLoss: res.TrainLoss,
		UpdateBytes: res.Bytes, ModelBytes: size, Dropped: res.Dropped, Seconds: time.Since(started).Seconds(),
		TrainSeconds: res.TrainSeconds, MaxTrainSeconds: res.MaxTrain, CloseSeconds: time.Since(closing).Seconds(),
		FetchSeconds: res.FetchSeconds, Started: started.UnixMilli(), Secure: secure}
	if spec.NoiseStd > 0 {
		if sum.Epsilon, err = epsilonAfter(spec, c.st.Round); err != nil {
			return nil, nil, fmt.Errorf("job %s round %d: privacy accounting: %w", spec.ID(), c.st.Round, err)
		}
	}
	c.s.log.Info("round closed", "job", spec.ID(), "round", sum.Round, "updates", sum.Updates, "accuracy", sum.Accuracy)
	return sum, next, nil
}

// publishVersion stores the round's new version (signed, linked to its parent, with its
// evaluation) and announces its blocks to the mesh.
func (c *coordinator) publishVersion(ctx context.Context, net *experts.Network, ev experts.Evaluation, participants int) (cid.Cid, int64, error) {
	spec := &c.st.Spec
	parentID, parent, err := c.s.expert(ctx, c.st.Model)
	if err != nil {
		return cid.Undef, 0, err
	}
	m := &experts.Manifest{Name: parent.Name, Domains: parent.Domains, Input: parent.Input, Output: parent.Output,
		Parents: []experts.Parent{{ID: parentID, Relation: experts.RelFederated}},
		Evals: []experts.EvalResult{{Dataset: c.eval.name, Digest: c.eval.digest, Samples: ev.Samples,
			Metric: "accuracy", Value: ev.Accuracy}},
		Meta: map[string]string{"job": spec.ID(), "round": strconv.Itoa(c.st.Round), "aggregator": spec.Aggregator,
			"participants": strconv.Itoa(participants)}}
	id, err := c.s.store.AddNetwork(ctx, m, net, c.s.signer)
	if err != nil {
		return cid.Undef, 0, fmt.Errorf("job %s round %d: store version: %w", spec.ID(), c.st.Round, err)
	}
	c.s.invalidateHosted()
	// Participants reach the coordinator at the addresses its announcements give, and bitswap
	// asks connected peers first: a round's model needs no provider records (each would cost
	// a DHT walk and a record stored on up to 20 peers, every round). Nor does the final
	// version: it goes only to the job's roster, who fetch it from here; serving it to the mesh
	// is the user's choice (expert serve).
	return id, m.WeightsSize, nil
}

// JobModels is what a coordinated job exposes: its base and every version, to anyone while the
// job is open (anyone may join it), to its roster once it ends.
type JobModels struct {
	Models []string        // the base, the current version and every round's version (CIDs)
	Anyone bool            // the job is open: anyone may fetch them
	Peers  map[string]bool // the job's roster (peer IDs), who may fetch them once it ends
}

// ExposedModels lists the models of the jobs this node coordinates, for the exposure table. The
// caller owns what it returns.
func (s *Service) ExposedModels() []JobModels {
	s.mu.Lock()
	coords := make([]*coordinator, 0, len(s.coords))
	for _, c := range s.coords {
		coords = append(coords, c)
	}
	s.mu.Unlock()
	var out []JobModels
	for _, c := range coords {
		c.mu.Lock()
		j := JobModels{Models: []string{c.st.Spec.Base, c.st.Model}, Anyone: c.st.State == fedjob.StateRound,
			Peers: map[string]bool{}}
		for _, h := range c.st.History {
			j.Models = append(j.Models, h.Model)
		}
		for _, p := range c.st.Roster {
			j.Peers[p] = true
		}
		c.mu.Unlock()
		out = append(out, j)
	}
	return out
}

// heldOut is data a coordinator measures versions on.
type heldOut struct {
	samples      experts.Samples
	name, digest string
}

// evalData loads the test part of a data set and checks it fits the expert.
func (s *Service) evalData(name string, m *experts.Manifest) (*heldOut, error) {
	_, test, err := s.catalog.Load(name, 0)
	if err != nil {
		return nil, fmt.Errorf("evaluation data: %w", err)
	}
	if test.Dim != m.Input.Dim {
		return nil, fmt.Errorf("evaluation data %s has %d features; the expert takes %d", name, test.Dim, m.Input.Dim)
	}
	if err := test.AlignClasses(m.Output.Labels); err != nil {
		return nil, fmt.Errorf("evaluation data: %w", err)
	}
	return &heldOut{samples: experts.Samples{X: test.X, Dim: test.Dim, Labels: test.Y}, name: test.Name, digest: test.Digest()}, nil
}
