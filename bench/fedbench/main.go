// Command fedbench compares federated training on the mesh with centralized training of the
// same network on the same data: it splits Fashion-MNIST among N participants with Dirichlet(α)
// label shares, starts N meshnode daemons as processes on 127.0.0.1 (the first coordinates and
// trains too), runs R rounds of one local epoch each, and beside it trains the same 784-100-10
// MLP from the same initial weights on the union of the participants' training data for R
// epochs. It reports rounds to a target accuracy, both final accuracies, bytes per participant
// per round and the share of round time not spent training. Run it through bench/federated.sh.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/meshnode/meshnode/bench/internal/procs"
	"github.com/meshnode/meshnode/distill/federated/fedjob"
	"github.com/meshnode/meshnode/experts"
	"github.com/meshnode/meshnode/experts/dataset"
	"github.com/meshnode/meshnode/node"
	"github.com/meshnode/meshnode/node/api"
)

type options struct {
	bin            string
	n, rounds      int
	alpha          float64
	hidden         int
	batch          int
	lr, target     float64
	aggregator     string
	out            string
	seed, baseSeed uint64
}

func main() {
	var o options
	flag.StringVar(&o.bin, "meshnode", "bin/meshnode", "meshnode binary")
	flag.IntVar(&o.n, "n", 10, "participants (daemons)")
	flag.IntVar(&o.rounds, "rounds", 30, "rounds (centralized: epochs)")
	flag.Float64Var(&o.alpha, "alpha", 0.5, "Dirichlet concentration of the label shares")
	flag.IntVar(&o.hidden, "hidden", 100, "hidden width of the MLP")
	flag.IntVar(&o.batch, "batch", 32, "mini-batch size")
	flag.Float64Var(&o.lr, "lr", 0.001, "learning rate (Adam)")
	flag.Float64Var(&o.target, "target", 0.85, "accuracy whose first round is reported")
	flag.StringVar(&o.aggregator, "aggregator", "fedavg", "aggregator")
	flag.Uint64Var(&o.seed, "seed", 1, "seed of the partition and the shuffling")
	flag.Uint64Var(&o.baseSeed, "base-seed", 3, "seed of the initial weights (both runs)")
	flag.StringVar(&o.out, "out", "", "write the markdown report here")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "fedbench:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "fedbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cat := dataset.DefaultCatalog()
	parts, err := node.Partition(cat, "fashion-mnist", o.n, o.alpha, o.seed, 0, filepath.Join(dir, "parts"))
	if err != nil {
		return err
	}
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte("preset: development\nmesh:\n  listen: [/ip4/127.0.0.1/tcp/0]\n  mdns: false\n"), 0o644); err != nil {
		return err
	}
	ds, err := procs.Init(o.bin, dir, cfg, o.n)
	if err != nil {
		return err
	}
	defer procs.KillAll(ds)
	if err := procs.Run(o.bin, "--repo", ds[0].Repo, "expert", "train", "--dataset", "fashion-mnist", "--hidden",
		fmt.Sprint(o.hidden), "--epochs", "0", "--seed", fmt.Sprint(o.baseSeed), "--name", "fed-base"); err != nil {
		return err
	}
	if err := procs.StartChain(o.bin, ds); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "%d daemons up\n", o.n)
	var job api.TrainJobInfo
	req := api.TrainStartRequest{Base: "fed-base", EvalDataset: "fashion-mnist", Dataset: "csv:" + parts.Parts[0].File,
		Rounds: o.rounds, LocalEpochs: 1, BatchSize: o.batch, LR: o.lr, MinParticipants: o.n, MaxParticipants: o.n,
		SoftDeadlineMS: 0, DeadlineMS: 300000, Aggregator: o.aggregator, MaxShare: 0.5, Trim: 0.2, Seed: o.seed}
	if err := ds[0].Client.Post(ctx, api.PathTrainStart, req, &job); err != nil {
		return err
	}
	for i, d := range ds[1:] {
		jr := api.TrainJoinRequest{Job: job.ID, Dataset: "csv:" + parts.Parts[i+1].File}
		if err := retry(30*time.Second, func() error { return d.Client.Post(ctx, api.PathTrainJoin, jr, nil) }); err != nil {
			return fmt.Errorf("join participant %d: %w", i+1, err)
		}
	}
	t0 := time.Now()
	for {
		var jobs []api.TrainJobInfo
		if err := ds[0].Client.Get(ctx, api.PathTrainJobs, &jobs); err != nil {
			return err
		}
		for _, j := range jobs {
			if j.ID == job.ID {
				job = j
			}
		}
		if job.State != fedjob.StateRound {
			break
		}
		fmt.Fprintf(os.Stderr, "\rfederated: round %d of %d", job.Round, o.rounds)
		time.Sleep(time.Second)
	}
	fedWall := time.Since(t0)
	fmt.Fprintln(os.Stderr)
	for _, d := range ds {
		d.Stop()
	}
	central, centralWall, err := centralized(ctx, cat, parts, o)
	if err != nil {
		return err
	}
	return report(o, job, fedWall, central, centralWall)
}

// centralized trains the same network from the same initial weights on the union of the
// participants' training parts for as many epochs as the federated run had rounds, and returns
// the test accuracy after each epoch.
func centralized(ctx context.Context, cat dataset.Catalog, parts *node.PartitionReport, o options) ([]float64, time.Duration, error) {
	all := experts.Samples{Dim: 784}
	for _, p := range parts.Parts {
		train, _, err := cat.Load("csv:"+p.File, 0)
		if err != nil {
			return nil, 0, err
		}
		all.X = append(all.X, train.X...)
		all.Labels = append(all.Labels, train.Y...)
	}
	_, test, err := cat.Load("fashion-mnist", 0)
	if err != nil {
		return nil, 0, err
	}
	testSet := experts.Samples{X: test.X, Dim: test.Dim, Labels: test.Y}
	net, err := experts.NewNetwork(experts.MLP(784, []int{o.hidden}, "relu", 10, experts.OutputSoftmax), o.baseSeed)
	if err != nil {
		return nil, 0, err
	}
	var acc []float64
	var evalTime time.Duration
	t0 := time.Now()
	_, err = experts.Train(ctx, net, all, experts.Samples{}, experts.TrainConfig{Epochs: o.rounds, BatchSize: o.batch,
		LearningRate: o.lr, Seed: o.seed, Progress: func(s experts.EpochStats) {
			e0 := time.Now()
			ev, err := experts.Evaluate(net, testSet, "")
			if err == nil {
				acc = append(acc, ev.Accuracy)
			}
			evalTime += time.Since(e0)
			fmt.Fprintf(os.Stderr, "\rcentralized: epoch %d of %d", s.Epoch, s.Epochs)
		}})
	fmt.Fprintln(os.Stderr)
	return acc, time.Since(t0) - evalTime, err
}

func report(o options, job api.TrainJobInfo, fedWall time.Duration, central []float64, centralWall time.Duration) error {
	h := job.History
	if len(h) == 0 || len(central) == 0 {
		return fmt.Errorf("no rounds closed (%d) or no centralized epochs (%d)", len(h), len(central))
	}
	first := func(acc func(i int) float64, n int) string {
		for i := 0; i < n; i++ {
			if acc(i) >= o.target {
				return fmt.Sprint(i + 1)
			}
		}
		return "not reached"
	}
	var bytes int64
	var round, train, slowest, closing, fetching, steadyRound, steadySlowest float64
	for i, r := range h {
		bytes += node.RoundBytes(r)
		round += r.Seconds
		train += r.TrainSeconds
		slowest += r.MaxTrainSeconds
		closing += r.CloseSeconds
		fetching += r.FetchSeconds
		if i > 0 {
			steadyRound += r.Seconds
			steadySlowest += r.MaxTrainSeconds
		}
	}
	fedFinal, cenFinal := h[len(h)-1].Accuracy, central[len(central)-1]
	w := os.Stdout
	if o.out != "" {
		f, err := os.Create(o.out)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "# Federated against centralized training\n\n")
	fmt.Fprintf(bw, "Run: `bash bench/federated.sh` on %s, %d cores. Fashion-MNIST's 60,000 training images split among\n", time.Now().UTC().Format("2006-01-02"), runtime.NumCPU())
	fmt.Fprintf(bw, "%d participants with Dirichlet(α = %g) label shares; each trains on the 80%% training part of its share\n", o.n, o.alpha)
	fmt.Fprintf(bw, "(%d samples in all). %d meshnode daemons as processes on 127.0.0.1; the first coordinates and trains too.\n", sumSamples(h), o.n)
	fmt.Fprintf(bw, "A 784-%d-10 MLP from the same initial weights; %d rounds of one local epoch (Adam, lr %g, batch %d,\n", o.hidden, o.rounds, o.lr, o.batch)
	fmt.Fprintf(bw, "%s, quorum = all %d, no soft wait) against %d epochs of centralized training on the union of the same\n", o.aggregator, o.n, o.rounds)
	fmt.Fprintf(bw, "training parts. Accuracy is on the 10,000 test images. Budgets: federated within 2 points of centralized;\n")
	fmt.Fprintf(bw, "less than 15%% of round time not spent training.\n\n")
	fmt.Fprintf(bw, "| | final accuracy | rounds (epochs) to %.2f | wall time |\n| --- | --- | --- | --- |\n", o.target)
	fmt.Fprintf(bw, "| federated | %.4f | %s | %.1f s |\n", fedFinal, first(func(i int) float64 { return h[i].Accuracy }, len(h)), fedWall.Seconds())
	fmt.Fprintf(bw, "| centralized | %.4f | %s | %.1f s |\n\n", cenFinal, first(func(i int) float64 { return central[i] }, len(central)), centralWall.Seconds())
	fmt.Fprintf(bw, "- Gap: %.2f points (budget 2).\n", 100*(cenFinal-fedFinal))
	fmt.Fprintf(bw, "- Bytes per participant per round (its update up, the round's model down): %.0f KiB.\n", float64(bytes)/float64(len(h))/1024)
	fmt.Fprintf(bw, "- Round time not spent training: %.1f%% (budget 15%%) from round 2 on, %.1f%% with round 1 (which waits for the\n", 100*(1-steadySlowest/steadyRound), 100*(1-slowest/round))
	fmt.Fprintf(bw, "  participants to join). Participants train side by side, so a round's training takes as long as its slowest\n")
	fmt.Fprintf(bw, "  participant's; the rest is the protocol: announcing, fetching the model, sending updates, aggregating,\n")
	fmt.Fprintf(bw, "  evaluating and storing the version. Mean round %.2f s; slowest local training %.2f s on average, mean %.2f s;\n",
		round/float64(len(h)), slowest/float64(len(h)), train/float64(len(h)))
	fmt.Fprintf(bw, "  the coordinator's aggregation, evaluation on 10,000 images and storage %.3f s; a participant's fetch and\n", closing/float64(len(h)))
	fmt.Fprintf(bw, "  load of the round's model %.3f s on average; the rest (announcement, update upload, stragglers) %.3f s.\n\n",
		fetching/float64(len(h)), (round-slowest-closing)/float64(len(h))-fetching/float64(len(h)))
	fmt.Fprintf(bw, "| round | updates | federated accuracy | centralized accuracy (same epoch) | round s | slowest training s | mean training s |\n| --- | --- | --- | --- | --- | --- | --- |\n")
	for i, r := range h {
		c := "-"
		if i < len(central) {
			c = fmt.Sprintf("%.4f", central[i])
		}
		fmt.Fprintf(bw, "| %d | %d | %.4f | %s | %.2f | %.2f | %.2f |\n", r.Round, r.Updates, r.Accuracy, c, r.Seconds, r.MaxTrainSeconds, r.TrainSeconds)
	}
	return bw.Flush()
}

func sumSamples(h []fedjob.RoundSummary) int { return h[len(h)-1].Samples }

func retry(limit time.Duration, f func() error) error {
	deadline := time.Now().Add(limit)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(250 * time.Millisecond)
	}
}
