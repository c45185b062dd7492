// Command fedbench measures federated training on the mesh against centralized training of
// the same network on the same data. It splits Fashion-MNIST among N participants with
// Dirichlet(α) label shares, starts N meshnode daemons as processes on 127.0.0.1 (the first
// coordinates and trains too) and runs one job per mode — plain FedAvg, FedAvg with secure
// aggregation, and secure aggregation with participant-level DP (noise at the coordinator) or
// record-level DP (DP-SGD at the participants) at target ε — from the same initial weights.
// Beside them it trains the same 784-100-10 MLP centrally on the union of the participants'
// training data, with Adam and with the jobs' optimizer, each at a constant and a decaying
// learning rate. It reports each mode's final and best accuracy against the best centralized
// epoch, rounds to a target accuracy, secure aggregation's cost per round in bytes and time,
// and the noise each ε needed. Run it through bench/federated.sh.
package main

import (
	"context"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/meshnode/meshnode/bench/internal/procs"
	"github.com/meshnode/meshnode/experts/dataset"
	"github.com/meshnode/meshnode/node"
)

type options struct {
	bin            string
	n, rounds      int
	localEpochs    int
	alpha          float64
	hidden         int
	batch          int
	lr, target     float64
	lrDecay        float64
	momentum       float64
	optimizer      string
	noCentral      bool
	dpRounds       int
	dpBatch        int
	recordClip     float64
	centralEpochs  int
	clip           float64
	delta          float64
	modes          []mode
	out            string
	seed, baseSeed uint64
}

func main() {
	var o options
	var modes string
	flag.StringVar(&o.bin, "meshnode", "bin/meshnode", "meshnode binary")
	flag.IntVar(&o.n, "n", 10, "participants (daemons)")
	flag.IntVar(&o.rounds, "rounds", 30, "rounds per job")
	flag.IntVar(&o.localEpochs, "local-epochs", 1, "local epochs a round (centralized training runs rounds × local epochs)")
	flag.Float64Var(&o.alpha, "alpha", 0.5, "Dirichlet concentration of the label shares")
	flag.IntVar(&o.hidden, "hidden", 100, "hidden width of the MLP")
	flag.IntVar(&o.batch, "batch", 32, "mini-batch size")
	flag.Float64Var(&o.lr, "lr", 0.001, "learning rate (Adam)")
	flag.Float64Var(&o.lrDecay, "lr-decay", 0, "factor of the learning rate per round (centralized: per round's epochs); 0: constant")
	flag.StringVar(&o.optimizer, "optimizer", "", "local optimizer: adam (default) or sgd; centralized training uses it too")
	flag.Float64Var(&o.momentum, "server-momentum", 0, "the coordinator's momentum over rounds (FedAvgM)")
	flag.BoolVar(&o.noCentral, "no-centralized", false, "skip centralized training; print each job's final and best accuracy only")
	flag.Float64Var(&o.target, "target", 0.85, "accuracy whose first round is reported")
	flag.Float64Var(&o.clip, "clip", 10, "clip norm of an update under secure aggregation and DP")
	flag.IntVar(&o.centralEpochs, "centralized-epochs", 40, "epochs of each centralized run (0: rounds × local epochs)")
	flag.IntVar(&o.dpRounds, "dp-rounds", 0, "rounds of the DP modes (0: -rounds)")
	flag.IntVar(&o.dpBatch, "dp-batch", 0, "mini-batch size of the DP modes (0: -batch); DP-SGD wants large batches")
	flag.Float64Var(&o.recordClip, "record-clip", 1, "per-record gradient clip norm of the recE modes (DP-SGD)")
	flag.Float64Var(&o.delta, "delta", 1e-5, "δ of the DP modes")
	flag.StringVar(&modes, "modes", "plain,secure,dp1,dp4,dp8,rec1,rec4,rec8",
		"jobs to run: plain, secure, dpE (secure with participant-level DP at ε = E), recE (secure with record-level DP-SGD at ε = E)")
	flag.Uint64Var(&o.seed, "seed", 1, "seed of the partition and the shuffling")
	flag.Uint64Var(&o.baseSeed, "base-seed", 3, "seed of the initial weights (every job and the centralized run)")
	flag.StringVar(&o.out, "out", "", "write the markdown report here")
	flag.Parse()
	var err error
	if o.modes, err = parseModes(strings.Split(modes, ",")); err == nil {
		err = run(o)
	}
	if err != nil {
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
	var runs []modeRun
	for _, m := range o.modes {
		r, err := runMode(ctx, ds, parts, o, m)
		if err != nil {
			return fmt.Errorf("mode %s: %w", m.name, err)
		}
		runs = append(runs, r)
	}
	for _, d := range ds {
		d.Stop()
	}
	if o.noCentral {
		for _, r := range runs {
			br, ba := best(r.job.History)
			fmt.Printf("%s: final %.4f, best %.4f (round %d)\n", r.name, r.job.History[len(r.job.History)-1].Accuracy, ba, br)
		}
		return nil
	}
	// Centralized training with Adam at lr 0.001 (what a user would start from) and with the
	// jobs' optimizer and learning rate, each constant and with the jobs' decay: the report
	// holds federated training against the best epoch of any of them.
	type setup struct {
		optimizer string
		lr        float64
	}
	setups := []setup{{"adam", 0.001}}
	if opt := orAdam(o.optimizer); opt != "adam" || o.lr != 0.001 {
		setups = append(setups, setup{opt, o.lr})
	}
	var centrals []centralRun
	for _, s := range setups {
		decays := []float64{0}
		if o.lrDecay > 0 {
			decays = append(decays, math.Pow(o.lrDecay, 1/float64(o.localEpochs)))
		}
		for _, d := range decays {
			c, err := centralized(ctx, cat, parts, o, s.optimizer, s.lr, d)
			if err != nil {
				return err
			}
			centrals = append(centrals, c)
		}
	}
	return writeReport(o, runs, centrals)
}

func orAdam(optimizer string) string {
	if optimizer == "" {
		return "adam"
	}
	return optimizer
}

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
