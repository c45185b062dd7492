package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/meshnode/meshnode/bench/internal/procs"
	"github.com/meshnode/meshnode/distill/federated/fedjob"
	"github.com/meshnode/meshnode/node"
	"github.com/meshnode/meshnode/node/api"
)

// mode is one way of running the federated job.
type mode struct {
	name    string
	secure  bool
	epsilon float64 // target ε; 0 without differential privacy
	record  bool    // ε is per training record (DP-SGD at the participants), not per participant
}

func parseModes(names []string) ([]mode, error) {
	var ms []mode
	for _, n := range names {
		switch n = strings.TrimSpace(n); {
		case n == "plain":
			ms = append(ms, mode{name: n})
		case n == "secure":
			ms = append(ms, mode{name: n, secure: true})
		case strings.HasPrefix(n, "dp"), strings.HasPrefix(n, "rec"):
			prefix := n[:len(n)-len(strings.TrimLeft(n, "dprec"))]
			eps, err := strconv.ParseFloat(n[len(prefix):], 64)
			if err != nil || eps <= 0 {
				return nil, fmt.Errorf("mode %q: want %s followed by a positive ε", n, prefix)
			}
			ms = append(ms, mode{name: n, secure: true, epsilon: eps, record: prefix == "rec"})
		default:
			return nil, fmt.Errorf("unknown mode %q (want plain, secure, dpE or recE)", n)
		}
	}
	return ms, nil
}

func (m mode) label() string {
	switch {
	case m.record:
		return fmt.Sprintf("secure + record DP-SGD ε = %g", m.epsilon)
	case m.epsilon > 0:
		return fmt.Sprintf("secure + participant DP ε = %g", m.epsilon)
	case m.secure:
		return "secure aggregation"
	}
	return "plain FedAvg"
}

// modeRun is a finished job of one mode.
type modeRun struct {
	mode
	job    api.TrainJobInfo
	wall   time.Duration
	rounds int
	// recordEps is, for record-level DP, the largest ε a participant's records spent.
	recordEps float64
}

// batchFor is a mode's mini-batch size: DP modes use dpBatch.
func (o options) batchFor(m mode) int {
	if m.epsilon > 0 && o.dpBatch > 0 {
		return o.dpBatch
	}
	return o.batch
}

// roundsFor is how many rounds a mode runs: DP modes run dpRounds.
func (o options) roundsFor(m mode) int {
	if m.epsilon > 0 && o.dpRounds > 0 {
		return o.dpRounds
	}
	return o.rounds
}

// runMode runs one job with every daemon taking part and waits for it to end.
func runMode(ctx context.Context, ds []*procs.Daemon, parts *node.PartitionReport, o options, m mode) (modeRun, error) {
	req := api.TrainStartRequest{Base: "fed-base", EvalDataset: "fashion-mnist", Dataset: "csv:" + parts.Parts[0].File,
		Rounds: o.roundsFor(m), LocalEpochs: o.localEpochs, BatchSize: o.batchFor(m), LR: o.lr, LRDecay: o.lrDecay, ServerMomentum: o.momentum, Optimizer: o.optimizer, MinParticipants: o.n, MaxParticipants: o.n,
		SoftDeadlineMS: 0, DeadlineMS: 300000, Aggregator: "fedavg", Seed: o.seed}
	if m.secure {
		req.SecureAggregation, req.ClipNorm = true, o.clip
	}
	switch {
	case m.record:
		req.RecordClipNorm, req.RecordTargetEpsilon, req.DPDelta = o.recordClip, m.epsilon, o.delta
	case m.epsilon > 0:
		req.TargetEpsilon, req.DPDelta = m.epsilon, o.delta
	}
	var job api.TrainJobInfo
	if err := ds[0].Client.Post(ctx, api.PathTrainStart, req, &job); err != nil {
		return modeRun{}, err
	}
	for i, d := range ds[1:] {
		jr := api.TrainJoinRequest{Job: job.ID, Dataset: "csv:" + parts.Parts[i+1].File}
		if err := retry(30*time.Second, func() error { return d.Client.Post(ctx, api.PathTrainJoin, jr, nil) }); err != nil {
			return modeRun{}, fmt.Errorf("join participant %d: %w", i+1, err)
		}
	}
	t0 := time.Now()
	for time.Since(t0) < time.Duration(o.roundsFor(m))*5*time.Minute {
		var jobs []api.TrainJobInfo
		if err := ds[0].Client.Get(ctx, api.PathTrainJobs, &jobs); err != nil {
			return modeRun{}, err
		}
		for _, j := range jobs {
			if j.ID == job.ID {
				job = j
			}
		}
		if job.State != fedjob.StateRound {
			break
		}
		fmt.Fprintf(os.Stderr, "\r%s: round %d of %d", m.name, job.Round, o.roundsFor(m))
		time.Sleep(time.Second)
	}
	fmt.Fprintln(os.Stderr)
	if job.State != fedjob.StateDone {
		return modeRun{}, fmt.Errorf("job %s ended in state %s: %s", job.ID, job.State, job.Error)
	}
	r := modeRun{mode: m, job: job, wall: time.Since(t0), rounds: o.roundsFor(m)}
	if m.record {
		for _, d := range ds {
			var jobs []api.TrainJobInfo
			if err := d.Client.Get(ctx, api.PathTrainJobs, &jobs); err != nil {
				return modeRun{}, err
			}
			for _, j := range jobs {
				if j.ID == job.ID && j.Participant != nil {
					r.recordEps = max(r.recordEps, j.Participant.RecordEpsilon)
				}
			}
		}
	}
	return r, nil
}
