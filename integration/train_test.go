package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/meshnode/meshnode/distill/federated/fedjob"
	"github.com/meshnode/meshnode/experts"
	"github.com/meshnode/meshnode/experts/dataset"
	"github.com/meshnode/meshnode/node"
	"github.com/meshnode/meshnode/node/api"
	"github.com/meshnode/meshnode/node/daemon"
)

// fedNode is an in-process daemon taking part in federated training tests.
type fedNode struct {
	repo     string
	d        *daemon.Daemon
	client   *api.Client
	part     string // csv:PATH of its data share
	closed   bool
	byPolicy bool // joins jobs by its config's policy
}

func (n *fedNode) close(t *testing.T) {
	if n.closed {
		return
	}
	n.closed = true
	if err := n.d.Close(); err != nil {
		t.Error(err)
	}
}

func startFedNode(t *testing.T, repo string, o daemon.Options) *fedNode {
	t.Helper()
	r, err := node.Open(repo)
	if err != nil {
		t.Fatal(err)
	}
	d, err := daemon.Start(context.Background(), r, o)
	if err != nil {
		t.Fatal(err)
	}
	c, err := api.DaemonClient(repo)
	if err != nil {
		t.Fatal(err)
	}
	return &fedNode{repo: repo, d: d, client: c}
}

// fedMesh starts n daemons chained by bootstrap, each with a non-IID share of Fashion-MNIST
// (Dirichlet α over labels) of the first samples training images, and an untrained 784-100-10 base expert on the first. The last
// daemon starts with last's test hooks (tampering, dropping out). With policy, the last daemon's config joins
// every job of the base's domain by the first daemon with its share (no explicit join), and the
// one before it has a policy for the domain that trusts another coordinator only.
func fedMesh(t *testing.T, n, samples int, alpha float64, policy bool, last daemon.Options) ([]*fedNode, string, *node.PartitionReport) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	rep, err := node.Partition(dataset.DefaultCatalog(), "fashion-mnist", n, alpha, 7, samples, filepath.Join(dir, "parts"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range rep.Parts {
		t.Logf("%s: %d samples, classes %v", filepath.Base(p.File), p.Samples, p.ClassCounts)
	}
	cfg := testConfig(t, 30*time.Second, 10*time.Second)
	nodes := make([]*fedNode, n)
	var base, coordinator, other string
	for i := range nodes {
		repo := filepath.Join(dir, fmt.Sprintf("n%d", i))
		nodeCfg := cfg
		// The last node's policy trusts the coordinator (node 0); the one before trusts only
		// node 1, so it must not join by policy (its explicit join below would then fail).
		if trusts := map[int]string{n - 1: coordinator, n - 2: other}[i]; policy && i >= n-2 {
			nodeCfg = filepath.Join(dir, fmt.Sprintf("policy%d.yaml", i))
			conf := fmt.Sprintf("preset: development\nmesh:\n  mdns: false\ntraining:\n  join: [{domain: fashion-mnist, dataset: \"csv:%s\", coordinators: [%s]}]\n",
				rep.Parts[i].File, trusts)
			if err := os.WriteFile(nodeCfg, []byte(conf), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		r, err := node.Init(ctx, repo, node.InitOptions{ConfigFile: nodeCfg})
		if err != nil {
			t.Fatal(err)
		}
		switch i {
		case 0:
			coordinator = r.Identity.ID()
		case 1:
			other = r.Identity.ID()
		}
		if i == 0 {
			tr, err := r.TrainExpert(ctx, dataset.DefaultCatalog(), api.TrainRequest{Dataset: "fashion-mnist", Limit: 100,
				Hidden: []int{100}, Epochs: 0, Seed: 3, Name: "fmnist-fed"})
			if err != nil {
				t.Fatal(err)
			}
			base = tr.ID
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		o := daemon.Options{}
		if i == n-1 {
			o = last
		}
		if i > 0 {
			o.Bootstrap = nodes[i-1].d.Mesh.Addrs()
		}
		nodes[i] = startFedNode(t, repo, o)
		nodes[i].part = "csv:" + rep.Parts[i].File
		nodes[i].byPolicy = policy && i == n-1
		t.Cleanup(func() { nodes[i].close(t) })
	}
	return nodes, base, rep
}

// runFedJob starts a job on nodes[0] (which trains too when coordTrains), has every other
// running node join it, and waits for the coordinator to finish. during, when set, runs once
// round 2 is open and has received an update.
func runFedJob(t *testing.T, nodes []*fedNode, base string, req api.TrainStartRequest, coordTrains bool, during func(job string)) api.TrainJobInfo {
	t.Helper()
	ctx := context.Background()
	req.Base, req.EvalDataset = base, "fashion-mnist"
	if coordTrains {
		req.Dataset = nodes[0].part
	}
	var info api.TrainJobInfo
	if err := nodes[0].client.Post(ctx, api.PathTrainStart, req, &info); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes[1:] {
		if n.byPolicy {
			continue
		}
		eventually(t, 20*time.Second, "a participant hears of the job and joins", func() bool {
			err := n.client.Post(ctx, api.PathTrainJoin, api.TrainJoinRequest{Job: info.ID, Dataset: n.part}, nil)
			return err == nil
		})
	}
	status := func(n *fedNode) api.TrainJobInfo {
		var jobs []api.TrainJobInfo
		if err := n.client.Get(ctx, api.PathTrainJobs, &jobs); err != nil {
			t.Fatal(err)
		}
		for _, j := range jobs {
			if j.ID == info.ID {
				return j
			}
		}
		t.Fatalf("node %s does not know job %s", n.repo, info.ID)
		return api.TrainJobInfo{}
	}
	if during != nil {
		eventually(t, 60*time.Second, "round 2 opens and receives an update", func() bool {
			j := status(nodes[0])
			return j.Round >= 2 && j.Pending >= 1
		})
		during(info.ID)
	}
	var final api.TrainJobInfo
	eventually(t, 4*time.Minute, "the job finishes", func() bool {
		final = status(nodes[0])
		return final.State == fedjob.StateDone
	})
	for _, r := range final.History {
		t.Logf("%s round %d: %d updates, accuracy %.4f, %.2fs (%.0f%% training), %d bytes/participant",
			req.Aggregator, r.Round, r.Updates, r.Accuracy, r.Seconds, 100*r.TrainSeconds/r.Seconds, node.RoundBytes(r))
	}
	return final
}

// TestFederatedTrainingAcrossFourDaemons: four daemons with non-IID Fashion-MNIST shares run
// five rounds (three joined explicitly, one by its config's policy). Accuracy rises; every participant ends holding the same final version, whose
// parent links lead back to the base expert.
func TestFederatedTrainingAcrossFourDaemons(t *testing.T) {
	nodes, base, rep := fedMesh(t, 4, 8000, 0.3, true, daemon.Options{})
	if !slices.ContainsFunc(rep.Parts, func(p node.Part) bool { return slices.Contains(p.ClassCounts, 0) }) {
		t.Fatal("every share holds every class: the test should include a share whose file lacks one")
	}
	job := runFedJob(t, nodes, base, fedRequest("fedavg", 4), true, nil)
	h := job.History
	if len(h) != 5 {
		t.Fatalf("%d rounds closed, want 5", len(h))
	}
	if h[4].Accuracy < 0.70 || h[4].Accuracy < h[0].Accuracy+0.03 {
		t.Fatalf("accuracy went %.4f → %.4f: want a rise to at least 0.70", h[0].Accuracy, h[4].Accuracy)
	}
	for _, r := range h {
		if r.Updates != 4 {
			t.Errorf("round %d aggregated %d updates, want all 4", r.Round, r.Updates)
		}
	}
	ctx := context.Background()
	fam := fedMetrics(t, nodes[0])
	if f := fam["meshnode_train_rounds_closed_total"]; f == nil || f.GetMetric()[0].GetCounter().GetValue() != 5 {
		t.Errorf("the coordinator's rounds closed: %v, want 5", f)
	}
	accepted := 0.0
	for _, m := range fam["meshnode_train_updates_received_total"].GetMetric() {
		if m.GetLabel()[0].GetValue() == "accepted" {
			accepted = m.GetCounter().GetValue()
		}
	}
	if accepted != 20 {
		t.Errorf("the coordinator counted %v updates accepted, want 4 × 5", accepted)
	}
	var ours []*dto.MetricFamily
	for name, f := range fam {
		if strings.HasPrefix(name, "meshnode_train_") {
			ours = append(ours, f)
		}
	}
	if problems, err := promlint.NewWithMetricFamilies(ours).Lint(); err != nil || len(problems) > 0 {
		t.Errorf("training metric names break Prometheus conventions: %v %+v", err, problems)
	}
	for _, n := range nodes {
		eventually(t, 30*time.Second, "every participant holds the final version", func() bool {
			var jobs []api.TrainJobInfo
			if err := n.client.Get(ctx, api.PathTrainJobs, &jobs); err != nil {
				t.Fatal(err)
			}
			for _, j := range jobs {
				if j.ID == job.ID && j.Participant != nil && j.Participant.Final == job.Model {
					return true
				}
			}
			return false
		})
		st, err := n.d.Repo.Store()
		if err != nil {
			t.Fatal(err)
		}
		// Walk the lineage from the final version back to the base.
		id, steps := job.Model, 0
		for id != base {
			c, _ := cid.Decode(id)
			m, err := st.GetExpert(ctx, c)
			if err != nil {
				t.Fatalf("%s: version %s of the chain: %v", n.repo, id, err)
			}
			if len(m.Parents) != 1 || m.Parents[0].Relation != experts.RelFederated {
				t.Fatalf("version %s has parents %v", id, m.Parents)
			}
			id, steps = m.Parents[0].ID.String(), steps+1
		}
		if steps != 5 {
			t.Fatalf("%s: chain of %d versions back to the base, want 5", n.repo, steps)
		}
	}
}

func fedRequest(aggregator string, quorum int) api.TrainStartRequest {
	return api.TrainStartRequest{Rounds: 5, LocalEpochs: 1, BatchSize: 32, LR: 0.001, MinParticipants: quorum,
		MaxParticipants: 8, SoftDeadlineMS: 200, DeadlineMS: 20000, Aggregator: aggregator, Trim: 0.25, Seed: 5}
}

// TestFederatedTrainingSurvivesBadParticipants: one of five participants sends its updates
// sign-flipped and scaled ×10. Plain FedAvg visibly degrades; the trimmed mean stays within two
// points of its clean run. A participant that vanishes mid-job costs its updates only: the
// rounds close at their deadline. A coordinator restarted mid-job resumes from its last
// published round.
func TestFederatedTrainingSurvivesBadParticipants(t *testing.T) {
	var attack atomic.Bool
	nodes, base, _ := fedMesh(t, 5, 15000, 10, false, daemon.Options{TamperTrainingUpdates: func(d []float64) {
		if attack.Load() {
			for i := range d {
				d[i] *= -10
			}
		}
	}})
	// Final accuracy is the mean of the last three of six rounds: one round's accuracy moves
	// by a point either way, which would make a 2-point comparison a coin toss.
	final := func(aggregator string) float64 {
		req := fedRequest(aggregator, 5)
		req.LocalEpochs, req.Rounds = 3, 6
		h := runFedJob(t, nodes, base, req, true, nil).History
		return (h[3].Accuracy + h[4].Accuracy + h[5].Accuracy) / 3
	}
	cleanAvg, cleanTrim := final("fedavg"), final("trimmed-mean")
	attack.Store(true)
	badAvg, badTrim := final("fedavg"), final("trimmed-mean")
	attack.Store(false)
	t.Logf("final accuracy: fedavg %.4f clean, %.4f attacked; trimmed mean %.4f clean, %.4f attacked", cleanAvg, badAvg, cleanTrim, badTrim)
	if badAvg > cleanAvg-0.10 {
		t.Errorf("attacked FedAvg reached %.4f against %.4f clean: the attack should visibly degrade it", badAvg, cleanAvg)
	}
	if badTrim < cleanTrim-0.02 {
		t.Errorf("attacked trimmed mean reached %.4f, more than 2 points below its clean %.4f", badTrim, cleanTrim)
	}

	// Lose a participant in round 2, and restart the coordinator (which does not train
	// itself) once round 2 has accepted updates: the reopened round must get them again.
	req := fedRequest("fedavg", 4)
	req.DeadlineMS = 6000
	var before []fedjob.RoundSummary
	job := runFedJob(t, nodes, base, req, false, func(job string) {
		var jobs []api.TrainJobInfo
		if err := nodes[0].client.Get(context.Background(), api.PathTrainJobs, &jobs); err != nil {
			t.Fatal(err)
		}
		for _, j := range jobs {
			if j.ID == job {
				before = j.History
			}
		}
		nodes[4].close(t)
		old := nodes[0]
		old.close(t)
		nodes[0] = startFedNode(t, old.repo, daemon.Options{Bootstrap: nodes[1].d.Mesh.Addrs()})
		nodes[0].part = old.part
		t.Cleanup(func() { nodes[0].close(t) })
	})
	if len(job.History) != 5 || len(before) == 0 {
		t.Fatalf("the resumed job closed %d rounds (%d before the restart), want 5", len(job.History), len(before))
	}
	for i, r := range before {
		if job.History[i].Model != r.Model {
			t.Fatalf("round %d was redone after the restart: version %s became %s", r.Round, r.Model, job.History[i].Model)
		}
	}
	for _, r := range job.History[len(before):] {
		if r.Updates != 3 {
			t.Fatalf("round %d after the restart aggregated %d updates, want the 3 live participants'", r.Round, r.Updates)
		}
	}
	last := job.History[4]
	if last.Accuracy < 0.65 {
		t.Fatalf("the resumed job ended at accuracy %.4f", last.Accuracy)
	}
}

// fedMetrics parses an in-process daemon's /metrics.
func fedMetrics(t *testing.T, n *fedNode) map[string]*dto.MetricFamily {
	t.Helper()
	prom, err := n.client.Metrics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return parseMetrics(t, bytes.NewReader(prom))
}

// parseMetrics parses Prometheus text.
func parseMetrics(t *testing.T, r io.Reader) map[string]*dto.MetricFamily {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fam, err := parser.TextToMetricFamilies(r)
	if err != nil {
		t.Fatalf("/metrics is not Prometheus text: %v", err)
	}
	return fam
}
