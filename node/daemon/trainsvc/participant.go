package trainsvc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"

	"github.com/meshnode/meshnode/distill/federated/fedavg"
	"github.com/meshnode/meshnode/distill/federated/fedjob"
	"github.com/meshnode/meshnode/experts"
	"github.com/meshnode/meshnode/mesh/rpc"
	"github.com/meshnode/meshnode/node/api"
)

// partRecord is this node's persistent part in a job.
type partRecord struct {
	Spec    fedjob.Spec `json:"spec"`
	Dataset string      `json:"dataset"`
	// LastRound and LastDeadline name the last round instance this node sent an update for
	// (or was refused in): a coordinator that restarted reopens a round with a new deadline,
	// and then the participant sends again.
	LastRound    int    `json:"last_round"`
	LastDeadline int64  `json:"last_deadline"`
	Final        string `json:"final,omitempty"`
	Ended        string `json:"ended,omitempty"` // why it stopped taking part before the end
	// RecordSteps counts the DP-SGD steps this node's records have been through (every
	// training run, also of rounds that were later reopened); RecordEpsilon is their ε.
	RecordSteps   int     `json:"record_steps,omitempty"`
	RecordEpsilon float64 `json:"record_epsilon,omitempty"`
}

// participant takes part in one job: for each round announced it fetches the round's model,
// trains on local data and sends its signed update to the coordinator.
type participant struct {
	s       *Service
	data    experts.Samples
	offers  chan *fedjob.Announcement // latest announcement wins
	cancel  context.CancelFunc
	done    chan struct{} // closed when run returns
	mu      sync.Mutex
	rec     partRecord
	lastErr string
	// secret draws DP-SGD's samples and noise (record-level DP): seeded from crypto/rand.
	secret *rand.Rand
}

// loadPart loads a participant's local data (the training part of a data set) for a job.
func (s *Service) loadPart(spec fedjob.Spec, name string) (experts.Samples, error) {
	train, _, err := s.catalog.Load(name, 0)
	if err != nil {
		return experts.Samples{}, fmt.Errorf("training data: %w", err)
	}
	if train.Dim != spec.Input.Dim {
		return experts.Samples{}, fmt.Errorf("training data %s has %d features; job %s trains a model of %d inputs",
			name, train.Dim, spec.ID(), spec.Input.Dim)
	}
	// A share read from a file knows only the classes it contains: put them where the
	// model's outputs are.
	if err := train.AlignClasses(spec.Output.Labels); err != nil {
		return experts.Samples{}, fmt.Errorf("training data for job %s: %w", spec.ID(), err)
	}
	if train.Len() == 0 {
		return experts.Samples{}, fmt.Errorf("training data %s is empty", name)
	}
	return experts.Samples{X: train.X, Dim: train.Dim, Labels: train.Y}, nil
}

// join takes part in a job this node has heard of, training on the named data set.
func (s *Service) join(ctx context.Context, job, datasetName string) (api.TrainJobInfo, error) {
	s.mu.Lock()
	j := s.seen[job]
	s.mu.Unlock()
	if j == nil {
		return api.TrainJobInfo{}, api.ErrBadRequest.Wrap(fmt.Errorf("train join: no job %s has been announced on the mesh (yet)", job))
	}
	if j.Ann.State != fedjob.StateRound {
		return api.TrainJobInfo{}, api.ErrBadRequest.Wrap(fmt.Errorf("train join: job %s is %s", job, j.Ann.State))
	}
	p, err := s.startParticipant(partRecord{Spec: j.Ann.Spec, Dataset: datasetName})
	if err != nil {
		return api.TrainJobInfo{}, api.ErrBadRequest.Wrap(err)
	}
	if err := p.save(ctx); err != nil {
		return api.TrainJobInfo{}, err
	}
	p.offer(j.Ann)
	if info, ok := s.job(job); ok {
		return info, nil
	}
	return api.TrainJobInfo{}, fmt.Errorf("train join: job %s vanished", job)
}

// leave stops taking part in a job (and, on its coordinator, stops the job).
func (s *Service) leave(ctx context.Context, job string) error {
	s.mu.Lock()
	p, c := s.parts[job], s.coords[job]
	delete(s.parts, job)
	s.mu.Unlock()
	if p == nil && c == nil {
		return api.ErrBadRequest.Wrap(fmt.Errorf("train leave: this node takes no part in job %s", job))
	}
	if p != nil {
		p.cancel()
		<-p.done // its last save lands before the record goes
		if err := s.state.Delete(ctx, ds.NewKey("/part/"+job)); err != nil {
			return fmt.Errorf("train leave %s: %w", job, err)
		}
	}
	if c != nil {
		c.cancel()
		<-c.done // its last save lands before the stopped state
		c.mu.Lock()
		running := c.st.State == fedjob.StateRound
		if running {
			c.st.State = fedjob.StateStopped
		}
		st := c.st
		c.mu.Unlock()
		if running {
			if err := s.saveCoord(ctx, &st); err != nil {
				return err
			}
			ann := fedjob.Announcement{Spec: st.Spec, State: fedjob.StateStopped, Round: st.Round - 1, Model: st.Model}
			return s.publish(ctx, ann)
		}
	}
	return nil
}

// startParticipant takes part in a job with the record's data, unless this node already does.
func (s *Service) startParticipant(rec partRecord) (*participant, error) {
	id := rec.Spec.ID()
	s.mu.Lock()
	if s.parts[id] != nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("already taking part in job %s", id)
	}
	p := &participant{s: s, rec: rec, offers: make(chan *fedjob.Announcement, 1), done: make(chan struct{}),
		secret: fedavg.SecretRand()}
	s.parts[id] = p // reserved: a second join of the same job fails here
	s.mu.Unlock()
	data, err := s.loadPart(rec.Spec, rec.Dataset)
	if err != nil {
		s.mu.Lock()
		delete(s.parts, id)
		s.mu.Unlock()
		return nil, err
	}
	ctx, cancel := context.WithCancel(s.ctx)
	p.data, p.cancel = data, cancel
	if rec.Final != "" || rec.Ended != "" {
		close(p.done)
		return p, nil
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(p.done)
		p.run(ctx)
	}()
	return p, nil
}

func (p *participant) save(ctx context.Context) error {
	p.mu.Lock()
	b, err := json.Marshal(p.rec)
	p.mu.Unlock()
	if err != nil {
		return err
	}
	return p.s.state.Put(ctx, ds.NewKey("/part/"+p.rec.Spec.ID()), b)
}

// offer hands the participant the latest announcement, replacing one it has not taken yet.
func (p *participant) offer(a *fedjob.Announcement) {
	for {
		select {
		case p.offers <- a:
			return
		default:
		}
		select {
		case <-p.offers:
		default:
		}
	}
}

func (p *participant) describe() *api.TrainParticipation {
	p.mu.Lock()
	defer p.mu.Unlock()
	return &api.TrainParticipation{Dataset: p.rec.Dataset, Samples: p.data.Len(), LastRound: p.rec.LastRound,
		Final: p.rec.Final, Ended: p.rec.Ended, LastError: p.lastErr, RecordEpsilon: p.rec.RecordEpsilon}
}

func (p *participant) run(ctx context.Context) {
	for {
		var a *fedjob.Announcement
		select {
		case <-ctx.Done():
			return
		case a = <-p.offers:
		}
		err := p.step(ctx, a)
		p.mu.Lock()
		p.lastErr = ""
		if err != nil {
			p.lastErr = err.Error()
		}
		done := p.rec.Final != "" || p.rec.Ended != ""
		p.mu.Unlock()
		if err != nil && ctx.Err() == nil {
			p.s.log.Warn("training round", "job", a.Spec.ID(), "round", a.Round, "err", err)
		}
		if done {
			return
		}
	}
}

// step acts on one announcement: train and send for a new round, or fetch the final version.
func (p *participant) step(ctx context.Context, a *fedjob.Announcement) error {
	model, err := cid.Decode(a.Model)
	if err != nil {
		return err
	}
	var weights cid.Cid // the announcement's hint, if it parses
	if a.Weights != "" {
		weights, _ = cid.Decode(a.Weights)
	}
	if a.State == fedjob.StateDone {
		// The final version goes to the job's roster from the coordinator (it has no provider
		// records), so connect to it first.
		if coord, err := p.coordinator(a); err == nil && coord.ID != p.s.host.ID() {
			if err := p.s.ensureConnected(ctx, coord); err != nil {
				p.s.log.Debug("connect to coordinator", "job", a.Spec.ID(), "err", err)
			}
		}
		if _, _, _, err := p.s.fetcher.FetchExpertGuided(ctx, model, weights); err != nil {
			return fmt.Errorf("fetch final version: %w", err)
		}
		p.mu.Lock()
		p.rec.Final, p.rec.LastRound = a.Model, a.Round
		p.mu.Unlock()
		return p.save(ctx)
	}
	if a.State == fedjob.StateStopped {
		return p.end(ctx, "the coordinator stopped the job")
	}
	p.mu.Lock()
	last, lastDeadline := p.rec.LastRound, p.rec.LastDeadline
	p.mu.Unlock()
	if a.State != fedjob.StateRound || a.Round < last || a.Round == last && a.Deadline == lastDeadline {
		return nil // a round instance this node has done
	}
	deadline := time.UnixMilli(a.Deadline)
	if time.Until(deadline) <= 0 {
		return nil // heard too late; the next round will come
	}
	rctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	taken := time.Now()
	coord, err := p.coordinator(a)
	if err != nil {
		return err
	}
	// Connected to the coordinator, bitswap asks it for the model first.
	if coord.ID != p.s.host.ID() {
		if err := p.s.ensureConnected(rctx, coord); err != nil {
			p.s.log.Debug("connect to coordinator", "job", a.Spec.ID(), "err", err)
		}
	}
	_, m, net, err := p.s.fetcher.FetchExpertGuided(rctx, model, weights)
	if err != nil {
		return fmt.Errorf("round %d: fetch model: %w", a.Round, err)
	}
	if m.Input.Dim != a.Spec.Input.Dim || m.Output.Dim != a.Spec.Output.Dim {
		return fmt.Errorf("round %d: model %s does not match the job's input and output", a.Round, model)
	}
	me := p.s.signer.ID()
	cfg := fedavg.LocalConfig{Epochs: a.Spec.LocalEpochs, BatchSize: a.Spec.BatchSize, LearningRate: a.Spec.RoundLR(a.Round),
		Optimizer: a.Spec.Optimizer, ProxMu: a.Spec.ProxMu, Seed: roundSeed(a.Spec.Seed, me, a.Round)}
	var rp recordPrivacy
	if a.Spec.RecordClipNorm > 0 {
		if rp, err = p.recordPrivacy(&a.Spec); err != nil {
			return fmt.Errorf("round %d: %w", a.Round, err)
		}
		if a.Spec.RecordTargetEpsilon > 0 && rp.after > a.Spec.RecordTargetEpsilon {
			return p.end(ctx, fmt.Sprintf("privacy budget: training round %d would bring this node's records to ε = %.3f, past the target %g",
				a.Round, rp.after, a.Spec.RecordTargetEpsilon))
		}
		cfg.DP = &experts.DPSGD{ClipNorm: a.Spec.RecordClipNorm, NoiseMultiplier: rp.noise, Rand: p.secret}
	}
	t0 := time.Now()
	upd, err := fedavg.LocalUpdate(rctx, net, p.data, cfg, me)
	if err != nil {
		return fmt.Errorf("round %d: %w", a.Round, err)
	}
	if cfg.DP != nil { // the records are spent once trained on, whatever happens to the update
		if err := p.spendRecords(ctx, rp); err != nil {
			return err
		}
	}
	secs := time.Since(t0).Seconds()
	if p.s.tamper != nil {
		p.s.tamper(upd.Delta)
	}
	if a.Spec.SecureAggregation {
		reply, err := p.sendSecure(ctx, a, upd.Delta, upd.Samples, upd.Loss, secs, t0.Sub(taken).Seconds())
		if err != nil {
			// This round instance is over for this node: its keys are gone.
			p.mu.Lock()
			p.rec.LastRound, p.rec.LastDeadline = a.Round, a.Deadline
			p.mu.Unlock()
			if serr := p.save(ctx); serr != nil {
				return serr
			}
			return fmt.Errorf("round %d: secure aggregation: %w", a.Round, err)
		}
		p.s.metrics.sent.Inc()
		return p.answered(ctx, a, fedjob.Reply{Code: reply.Code, Error: reply.Error})
	}
	u := &fedjob.Update{Job: a.Spec.ID(), Round: a.Round, Samples: upd.Samples, TrainLoss: upd.Loss, Seconds: secs,
		FetchSeconds: t0.Sub(taken).Seconds(),
		Delta:        fedjob.Float32s(upd.Delta)}
	if err := u.Sign(p.s.signer); err != nil {
		return err
	}
	reply, err := p.send(rctx, a, u)
	if err != nil {
		return fmt.Errorf("round %d: send update: %w", a.Round, err)
	}
	p.s.metrics.sent.Inc()
	return p.answered(ctx, a, reply)
}

// answered records the coordinator's answer to this node's update for a round instance.
func (p *participant) answered(ctx context.Context, a *fedjob.Announcement, reply fedjob.Reply) error {
	// Whatever the answer, this round instance is done: a refusal would not change on retry.
	p.mu.Lock()
	p.rec.LastRound, p.rec.LastDeadline = a.Round, a.Deadline
	p.mu.Unlock()
	switch reply.Code {
	case fedjob.ReplyAccepted, fedjob.ReplyDuplicate:
		return p.save(ctx)
	case fedjob.ReplyFull, fedjob.ReplyShape:
		return p.end(ctx, "the coordinator refused this node: "+reply.Error)
	default:
		if err := p.save(ctx); err != nil {
			return err
		}
		return fmt.Errorf("round %d: the coordinator refused the update: %s", a.Round, reply.Error)
	}
}

// end stops taking part for good, saying why.
func (p *participant) end(ctx context.Context, why string) error {
	p.mu.Lock()
	p.rec.Ended = why
	p.mu.Unlock()
	return p.save(ctx)
}

// send delivers an update to the coordinator (directly when this node coordinates), retrying
// transport failures until the round's deadline, and returns the coordinator's answer.
func (p *participant) send(ctx context.Context, a *fedjob.Announcement, u *fedjob.Update) (fedjob.Reply, error) {
	b := u.Encode()
	if a.Spec.Coordinator == p.s.signer.ID() {
		return p.s.accept(u, len(b)), nil
	}
	to, err := p.coordinator(a)
	if err != nil {
		return fedjob.Reply{}, err
	}
	raw, err := p.call(ctx, p.s.client, to, b, 500*time.Millisecond)
	if err != nil {
		return fedjob.Reply{}, err
	}
	var r fedjob.Reply
	if jerr := json.Unmarshal(raw, &r); jerr != nil {
		return fedjob.Reply{}, fmt.Errorf("coordinator answered %q: %w", raw, jerr)
	}
	return r, nil
}

// call sends b to the coordinator over client, redialling and retrying transport failures
// every pause until ctx ends. A refusal (the coordinator could not decode or verify what it
// got) is returned at once: a retry would not change it.
func (p *participant) call(ctx context.Context, client *rpc.Client, to peer.AddrInfo, b []byte, pause time.Duration) ([]byte, error) {
	for {
		err := p.s.ensureConnected(ctx, to)
		var raw []byte
		if err == nil {
			raw, err = client.Call(ctx, to.ID, b)
		}
		if err == nil {
			return raw, nil
		}
		var refused *rpc.RemoteError
		if errors.As(err, &refused) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
		case <-time.After(pause):
		}
	}
}

// coordinator is where a job's announcement says its coordinator listens.
func (p *participant) coordinator(a *fedjob.Announcement) (peer.AddrInfo, error) {
	id, err := peer.Decode(a.Spec.Coordinator)
	if err != nil {
		return peer.AddrInfo{}, fmt.Errorf("job %s: coordinator: %w", a.Spec.ID(), err)
	}
	ai := peer.AddrInfo{ID: id}
	for _, s := range a.Addrs {
		if ma, err := multiaddr.NewMultiaddr(s); err == nil {
			ai.Addrs = append(ai.Addrs, ma)
		}
	}
	return ai, nil
}

// ensureConnected dials a peer at the addresses it announced and those already known; the
// routed host looks it up in the DHT when that fails.
func (s *Service) ensureConnected(ctx context.Context, to peer.AddrInfo) error {
	if len(s.host.Network().ConnsToPeer(to.ID)) > 0 {
		return nil
	}
	if err := s.host.Connect(ctx, to); err != nil {
		return fmt.Errorf("reach coordinator %s: %w", to.ID, err)
	}
	return nil
}

// roundSeed gives every participant and round its own shuffling order.
func roundSeed(seed uint64, who string, round int) uint64 {
	h := fnv.New64a()
	h.Write([]byte(who))
	return seed ^ h.Sum64() ^ uint64(round)*0x9e3779b97f4a7c15
}
