package integration

import (
	"context"
	"strings"
	"testing"

	"github.com/meshnode/meshnode/node/api"
	"github.com/meshnode/meshnode/node/daemon"
)

// TestSecureFederatedTraining: four daemons train with secure aggregation. The last vanishes
// from round 2 after sending its masked update: the round still closes, with its update in
// the sum (the others' shares unmask it), and accuracy rises as in plain FedAvg. Then a job
// with differential privacy reports ε after every round, in status and metrics, and ends
// before a round would pass its target.
func TestSecureFederatedTraining(t *testing.T) {
	nodes, base, _ := fedMesh(t, 4, 8000, 0.3, false, daemon.Options{DropAfterMask: func(round int) bool { return round == 2 }})
	req := fedRequest("fedavg", 4)
	req.SecureAggregation, req.ClipNorm, req.Rounds = true, 5, 4
	job := runFedJob(t, nodes, base, req, true, nil)
	h := job.History
	if len(h) != 4 {
		t.Fatalf("%d rounds closed, want 4", len(h))
	}
	for _, r := range h {
		if r.Secure == nil {
			t.Fatalf("round %d has no secure-aggregation accounting: it was not a secure round", r.Round)
		}
		if r.Updates != 4 {
			t.Errorf("round %d summed %d updates, want all 4 (the one that vanished after masking included)", r.Round, r.Updates)
		}
		t.Logf("round %d: secure steps %.3fs (unmasking %.3fs), %d bytes received, %d sent", r.Round, r.Secure.Seconds,
			r.Secure.UnmaskSeconds, r.Secure.ReceivedBytes, r.Secure.SentBytes)
	}
	if h[3].Accuracy < 0.70 || h[3].Accuracy < h[0].Accuracy+0.03 {
		t.Fatalf("accuracy went %.4f → %.4f: want a rise to at least 0.70", h[0].Accuracy, h[3].Accuracy)
	}

	// Differential privacy: noise multiplier 3 spends ε = 1.39, 2.03, 2.54 after one, two and
	// three rounds at δ = 1e-5; a target of 2.3 allows two rounds of the four asked for.
	req = fedRequest("fedavg", 3)
	req.SecureAggregation, req.ClipNorm, req.NoiseStd, req.TargetEpsilon, req.Rounds = true, 5, 3, 2.3, 4
	job = runFedJob(t, nodes, base, req, true, nil)
	h = job.History
	if len(h) != 2 {
		t.Fatalf("%d rounds closed, want 2: the privacy budget should have ended the job after them", len(h))
	}
	if !strings.Contains(job.EndReason, "privacy budget") {
		t.Errorf("end reason %q, want the privacy budget", job.EndReason)
	}
	for i, r := range h {
		if r.Epsilon <= 0 || r.Epsilon > req.TargetEpsilon || i > 0 && r.Epsilon <= h[i-1].Epsilon {
			t.Fatalf("round %d: ε = %g after %v: want a rising ε within the target %g", r.Round, r.Epsilon, h, req.TargetEpsilon)
		}
	}
	if job.Epsilon != h[len(h)-1].Epsilon {
		t.Errorf("status ε %g, last round's %g", job.Epsilon, h[len(h)-1].Epsilon)
	}
	fam := fedMetrics(t, nodes[0])
	found := false
	for _, m := range fam["meshnode_train_dp_epsilon"].GetMetric() {
		if m.GetLabel()[0].GetValue() == job.ID {
			found = m.GetGauge().GetValue() == job.Epsilon
		}
	}
	if !found {
		t.Errorf("meshnode_train_dp_epsilon does not report job %s's ε %g", job.ID, job.Epsilon)
	}

	// Record-level DP: every participant trains with DP-SGD, calibrated to its own data size so
	// that its records stay within ε = 8 over the job's two rounds, and reports what they spent.
	req = fedRequest("fedavg", 4)
	req.SecureAggregation, req.ClipNorm, req.Rounds = true, 5, 2
	req.RecordClipNorm, req.RecordTargetEpsilon = 1, 8
	job = runFedJob(t, nodes, base, req, true, nil)
	if len(job.History) != 2 || job.History[1].Updates != 4 {
		t.Fatalf("record-DP job: %d rounds, want 2 of 4 updates each: %+v", len(job.History), job.History)
	}
	for i, n := range nodes {
		var jobs []api.TrainJobInfo
		if err := n.client.Get(context.Background(), api.PathTrainJobs, &jobs); err != nil {
			t.Fatal(err)
		}
		var p *api.TrainParticipation
		for _, j := range jobs {
			if j.ID == job.ID {
				p = j.Participant
			}
		}
		if p == nil || p.RecordEpsilon <= 0 || p.RecordEpsilon > 8 || p.Ended != "" {
			t.Errorf("node %d: participation %+v: want its records' ε in (0, 8] and no early end", i, p)
			continue
		}
		t.Logf("node %d: %d samples, records at ε = %.3f", i, p.Samples, p.RecordEpsilon)
	}
}
