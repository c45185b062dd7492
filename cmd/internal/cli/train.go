package cli

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshnode/meshnode/distill/federated/fedavg"
	"github.com/meshnode/meshnode/distill/federated/fedjob"
	"github.com/meshnode/meshnode/node"
	"github.com/meshnode/meshnode/node/api"
)

func trainGroupCmd(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "train",
		Short: "Federated training with other nodes",
		Long: `Federated training with no central server: any node starts a job from one of its experts,
nodes with data join it, and each round the coordinator averages their updates (robustly, if
asked) into a new version linked to the last.`,
		Example: `  meshnode train partition --dataset fashion-mnist --parts 4 --alpha 0.5 --output parts/
  meshnode train start --base fashion-mnist --eval-dataset fashion-mnist --rounds 5 --min 3
  meshnode train join 3f2a... --dataset csv:parts/part-01.csv
  meshnode train status 3f2a... --plot accuracy.png`,
	}
	c.AddCommand(trainStartCmd(e), trainJoinCmd(e), trainStatusCmd(e), trainLeaveCmd(e), trainPartitionCmd(e))
	return c
}

func trainStartCmd(e *env) *cobra.Command {
	var req api.TrainStartRequest
	var soft, hard time.Duration
	c := &cobra.Command{
		Use:   "start",
		Short: "Coordinate a federated training job from a hosted expert",
		Long: `Announce a training job on the mesh and coordinate its rounds. Each round closes once
--min updates have arrived and --soft-deadline has passed, or at --deadline with whatever
arrived; the coordinator aggregates them, measures the new version on the test part of
--eval-dataset, and publishes it (a new expert whose parent is the last version). With
--dataset the coordinator trains too.

--secure makes the coordinator learn only the sum of the updates (secure aggregation: masked
updates, with shares that unmask the round when up to a third of a neighbourhood drops out
after masking); it needs fedavg and --clip. Robust aggregators must see each update, so they
cannot be secure. --dp-noise or --target-epsilon add differential privacy: noise the
coordinator draws from its own secret source, with ε reported after every round; that protects
each participant's whole data set, which takes many participants to be useful. --record-clip
with --record-epsilon (or --record-noise) protects every training record instead:
participants train with DP-SGD and add the noise themselves, each calibrating it to its own
data size and stopping before its records would pass the target.`,
		Example: `  meshnode train start --base fashion-mnist --eval-dataset fashion-mnist --rounds 5 --min 3 \
      --aggregator median --dataset csv:parts/part-00.csv
  meshnode train start --base fashion-mnist --eval-dataset fashion-mnist --rounds 30 --min 5 \
      --secure --clip 1 --target-epsilon 4
  meshnode train start --base fashion-mnist --eval-dataset fashion-mnist --rounds 30 --min 5 \
      --secure --clip 10 --record-clip 1 --record-epsilon 8`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req.SoftDeadlineMS, req.DeadlineMS = soft.Milliseconds(), hard.Milliseconds()
			cl, err := e.client()
			if err != nil {
				return err
			}
			var info api.TrainJobInfo
			if err := cl.Post(cmd.Context(), api.PathTrainStart, req, &info); err != nil {
				return err
			}
			return e.emit(info, func(w io.Writer) {
				fmt.Fprintf(w, "job %s started: %d rounds from %s, %s aggregation, quorum %d\n", info.ID,
					info.Spec.Rounds, info.Spec.Base, info.Spec.Aggregator, info.Spec.MinParticipants)
				fmt.Fprintf(w, "others join with: meshnode train join %s --dataset DATA\n", info.ID)
			})
		},
	}
	f := c.Flags()
	f.StringVar(&req.Base, "base", "", "expert (ID or name) to start from (required)")
	f.StringVar(&req.EvalDataset, "eval-dataset", "", "data set whose test part measures every version (required)")
	f.StringVar(&req.Domain, "domain", "", "domain of the job (default: the expert's first)")
	f.StringVar(&req.Dataset, "dataset", "", "train on this local data set too")
	f.IntVar(&req.Rounds, "rounds", 5, "rounds")
	f.IntVar(&req.LocalEpochs, "local-epochs", 1, "epochs each participant trains per round")
	f.IntVar(&req.BatchSize, "batch-size", 64, "participants' mini-batch size")
	f.Float64Var(&req.LR, "lr", 0.001, "participants' learning rate (Adam)")
	f.Float64Var(&req.ProxMu, "prox-mu", 0, "FedProx proximal term μ (0: FedAvg)")
	f.Float64Var(&req.LRDecay, "lr-decay", 0, "multiply the local learning rate by this every round (0: constant)")
	f.StringVar(&req.Optimizer, "optimizer", "", "participants' local optimizer: adam (default) or sgd (momentum 0.9)")
	f.Float64Var(&req.ServerMomentum, "server-momentum", 0, "coordinator's momentum β over rounds, FedAvgM (0: FedAvg)")
	f.IntVar(&req.MinParticipants, "min", 2, "quorum: updates needed to close a round at the soft deadline")
	f.IntVar(&req.MaxParticipants, "max", 32, "most participants the job accepts")
	durationFlag(f, &soft, "soft-deadline", 5*time.Second, "a round with a quorum closes this long after it opened")
	durationFlag(f, &hard, "deadline", time.Minute, "a round closes this long after it opened, quorum or not")
	f.StringVar(&req.Aggregator, "aggregator", fedavg.FedAvg, fmt.Sprintf("one of %v", fedavg.Aggregators()))
	f.Float64Var(&req.MaxShare, "max-share", 0.5, "fedavg: cap on one participant's weight")
	f.Float64Var(&req.Trim, "trim", 0.2, "trimmed-mean: share cut at each end")
	f.Float64Var(&req.ClipNorm, "clip", 0, "clip every update to this L2 norm (0: off)")
	f.Float64Var(&req.NoiseStd, "dp-noise", 0, "differential privacy: noise multiplier z (noise z·clip on the sum of clipped updates; needs --clip; 0 with --target-epsilon: calibrated)")
	f.Float64Var(&req.DPDelta, "dp-delta", 0, "differential privacy: the δ at which ε is reported (default 1e-5)")
	f.Float64Var(&req.TargetEpsilon, "target-epsilon", 0, "differential privacy: end the job before ε would pass this")
	f.Float64Var(&req.RecordClipNorm, "record-clip", 0, "record-level DP: participants train with DP-SGD, clipping every record's gradient to this norm")
	f.Float64Var(&req.RecordNoise, "record-noise", 0, "record-level DP: DP-SGD noise multiplier (0 with --record-epsilon: each participant calibrates its own)")
	f.Float64Var(&req.RecordTargetEpsilon, "record-epsilon", 0, "record-level DP: a participant stops before its records' ε would pass this")
	f.BoolVar(&req.SecureAggregation, "secure", false, "secure aggregation: the coordinator learns only the sum of the updates (needs --clip, fedavg)")
	f.IntVar(&req.SecAggNeighbours, "secagg-neighbours", 0, "secure aggregation: neighbours each participant masks with (0: everyone; needed above 65 participants)")
	f.Float64Var(&req.SecAggThreshold, "secagg-threshold", 0, "secure aggregation: share of a neighbourhood needed to unmask (default 2/3)")
	f.Uint64Var(&req.Seed, "seed", 1, "seed of participants' shuffling")
	_ = c.MarkFlagRequired("base")
	_ = c.MarkFlagRequired("eval-dataset")
	return c
}

func trainJoinCmd(e *env) *cobra.Command {
	var dataset string
	c := &cobra.Command{
		Use:   "join JOB",
		Short: "Take part in a federated training job with local data",
		Long: `Take part in a job announced on the mesh: for each round this node fetches the round's model,
trains it on --dataset (which never leaves the machine) and sends its signed update to the
coordinator. At the end it fetches the final version.`,
		Example: `  meshnode train join 3f2a... --dataset csv:parts/part-01.csv`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := e.client()
			if err != nil {
				return err
			}
			var info api.TrainJobInfo
			if err := cl.Post(cmd.Context(), api.PathTrainJoin, api.TrainJoinRequest{Job: args[0], Dataset: dataset}, &info); err != nil {
				return err
			}
			return e.emit(info, func(w io.Writer) {
				fmt.Fprintf(w, "joined job %s (round %d of %d) with %d samples of %s\n", info.ID, info.Round,
					info.Spec.Rounds, info.Participant.Samples, dataset)
			})
		},
	}
	c.Flags().StringVar(&dataset, "dataset", "", "local data to train on: a data set name or csv:PATH (required)")
	_ = c.MarkFlagRequired("dataset")
	return c
}

func trainLeaveCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:     "leave JOB",
		Short:   "Stop taking part in a job (on its coordinator: stop the job)",
		Example: `  meshnode train leave 3f2a...`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := e.client()
			if err != nil {
				return err
			}
			var out map[string]string
			if err := cl.Post(cmd.Context(), api.PathTrainLeave, api.TrainJoinRequest{Job: args[0]}, &out); err != nil {
				return err
			}
			return e.emit(out, func(w io.Writer) { fmt.Fprintf(w, "left job %s\n", args[0]) })
		},
	}
}

func trainStatusCmd(e *env) *cobra.Command {
	var plotPath string
	var wait time.Duration
	c := &cobra.Command{
		Use:   "status [JOB]",
		Short: "Show training jobs, or one job's rounds",
		Long: `Without JOB: every job this node knows of. With JOB: its rounds (participants, held-out
accuracy and loss, bytes per participant, time); --plot writes the accuracy curve as a PNG;
--wait blocks until the job is done (or the wait runs out).`,
		Example: `  meshnode train status
  meshnode train status 3f2a... --plot accuracy.png --wait 10m`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := e.client()
			if err != nil {
				return err
			}
			if len(args) == 0 {
				var jobs []api.TrainJobInfo
				if err := cl.Get(cmd.Context(), api.PathTrainJobs, &jobs); err != nil {
					return err
				}
				return e.emit(jobs, func(w io.Writer) { printJobs(w, jobs) })
			}
			job, err := waitForJob(cmd.Context(), cl, args[0], wait)
			if err != nil {
				return err
			}
			if plotPath != "" {
				if err := node.WriteAccuracyPlot(plotPath, "job "+job.ID[:8]+" ("+job.Spec.Aggregator+")", job.History); err != nil {
					return err
				}
			}
			return e.emit(job, func(w io.Writer) { printRounds(w, job, plotPath) })
		},
	}
	c.Flags().StringVar(&plotPath, "plot", "", "write the accuracy curve to this PNG file")
	durationFlag(c.Flags(), &wait, "wait", 0, "wait up to this long for the job to finish")
	return c
}

// waitForJob returns the job's status, polling until it is no longer running when wait > 0.
func waitForJob(ctx context.Context, cl *api.Client, id string, wait time.Duration) (api.TrainJobInfo, error) {
	deadline := time.Now().Add(wait)
	for {
		var jobs []api.TrainJobInfo
		if err := cl.Get(ctx, api.PathTrainJobs, &jobs); err != nil {
			return api.TrainJobInfo{}, err
		}
		var job *api.TrainJobInfo
		for i := range jobs {
			if jobs[i].ID == id {
				job = &jobs[i]
			}
		}
		if job == nil {
			return api.TrainJobInfo{}, fmt.Errorf("train status: this node knows no job %s", id)
		}
		finished := job.State != fedjob.StateRound && (job.Participant == nil || job.Participant.Final != "" || job.State == fedjob.StateStopped)
		if wait <= 0 || finished {
			return *job, nil
		}
		if time.Now().After(deadline) {
			return *job, fmt.Errorf("train status: job %s still running after %s (round %d of %d)", id, wait, job.Round, job.Spec.Rounds)
		}
		select {
		case <-ctx.Done():
			return api.TrainJobInfo{}, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func printJobs(w io.Writer, jobs []api.TrainJobInfo) {
	if len(jobs) == 0 {
		fmt.Fprintln(w, "no training jobs known")
		return
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "JOB\tDOMAIN\tSTATE\tROUND\tAGGREGATOR\tROLE\tLAST ACCURACY")
	for _, j := range jobs {
		role := "seen"
		switch {
		case j.Coordinator:
			role = "coordinator"
		case j.Participant != nil:
			role = "participant"
		}
		acc := "-"
		if n := len(j.History); n > 0 {
			acc = fmt.Sprintf("%.4f", j.History[n-1].Accuracy)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%s\t%s\t%s\n", j.ID, j.Spec.Domain, j.State, j.Round, j.Spec.Rounds, j.Spec.Aggregator, role, acc)
	}
	tw.Flush()
}

func printRounds(w io.Writer, j api.TrainJobInfo, plotPath string) {
	fmt.Fprintf(w, "job %s  %s  round %d of %d  %s aggregation  coordinator %s\n", j.ID, j.State, j.Round,
		j.Spec.Rounds, j.Spec.Aggregator, j.Spec.Coordinator)
	fmt.Fprintf(w, "model %s\n", j.Model)
	if j.Spec.SecureAggregation {
		nb := "everyone"
		if j.Spec.SecAggNeighbours > 0 {
			nb = fmt.Sprintf("%d neighbours", j.Spec.SecAggNeighbours)
		}
		fmt.Fprintf(w, "secure aggregation: the coordinator sees only the sum (clip %g, masks with %s, unmasks with %.0f%% of a neighbourhood)\n",
			j.Spec.ClipNorm, nb, 100*j.Spec.SecAggThreshold)
	}
	if j.Spec.NoiseStd > 0 {
		fmt.Fprintf(w, "differential privacy: noise multiplier %.3f, clip %g; ε = %.3f at δ = %g", j.Spec.NoiseStd, j.Spec.ClipNorm, j.Epsilon, j.Spec.DPDelta)
		if j.Spec.TargetEpsilon > 0 {
			fmt.Fprintf(w, " (target %g)", j.Spec.TargetEpsilon)
		}
		fmt.Fprintln(w)
	}
	if j.Spec.RecordClipNorm > 0 {
		fmt.Fprintf(w, "record-level differential privacy: participants train with DP-SGD, record clip %g", j.Spec.RecordClipNorm)
		if j.Spec.RecordNoise > 0 {
			fmt.Fprintf(w, ", noise multiplier %.3f", j.Spec.RecordNoise)
		}
		if j.Spec.RecordTargetEpsilon > 0 {
			fmt.Fprintf(w, ", target ε %g at δ = %g", j.Spec.RecordTargetEpsilon, j.Spec.DPDelta)
		}
		fmt.Fprintln(w)
	}
	if j.EndReason != "" {
		fmt.Fprintf(w, "ended early: %s\n", j.EndReason)
	}
	if p := j.Participant; p != nil {
		fmt.Fprintf(w, "this node: %d samples of %s, last round sent %d", p.Samples, p.Dataset, p.LastRound)
		if p.Final != "" {
			fmt.Fprintf(w, ", holds the final version")
		}
		if p.RecordEpsilon > 0 {
			fmt.Fprintf(w, ", its records at ε = %.3f", p.RecordEpsilon)
		}
		if p.Ended != "" {
			fmt.Fprintf(w, ", stopped: %s", p.Ended)
		}
		if p.LastError != "" {
			fmt.Fprintf(w, " (last error: %s)", p.LastError)
		}
		fmt.Fprintln(w)
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', tabwriter.AlignRight)
	dp := j.Spec.NoiseStd > 0
	head := "ROUND\tUPDATES\tSAMPLES\tACCURACY\tLOSS\tTRAIN LOSS\tBYTES/PARTICIPANT\tDROPPED\tSECONDS\tTRAINING\t"
	if dp {
		head += "EPSILON\t"
	}
	fmt.Fprintln(tw, head)
	for _, r := range j.History {
		share := 0.0
		if r.Seconds > 0 {
			share = r.TrainSeconds / r.Seconds
		}
		fmt.Fprintf(tw, "%d\t%d\t%d\t%.4f\t%.4f\t%.4f\t%d\t%d\t%.2f\t%.0f%%\t", r.Round, r.Updates, r.Samples, r.Accuracy,
			r.Loss, r.TrainLoss, node.RoundBytes(r), r.Dropped, r.Seconds, 100*share)
		if dp {
			fmt.Fprintf(tw, "%.3f\t", r.Epsilon)
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	if plotPath != "" {
		fmt.Fprintf(w, "accuracy curve: %s\n", plotPath)
	}
}

func trainPartitionCmd(e *env) *cobra.Command {
	var name, dir string
	var parts, limit int
	var alpha float64
	var seed uint64
	partition := &cobra.Command{
		Use:   "partition",
		Short: "Split a data set among N participants with Dirichlet label shares (non-IID)",
		Long: `Split a data set's training part among --parts participants: for each class, the shares
of its samples follow a Dirichlet(--alpha) draw, so a small alpha (0.1–0.5) gives each part a
few dominant classes and a large one near-equal parts. Each part is written as a CSV that any
command taking a data set accepts as csv:FILE.`,
		Example: `  meshnode train partition --dataset fashion-mnist --parts 4 --alpha 0.5 --seed 1 --output parts/
  meshnode expert train --dataset csv:parts/part-00.csv --hidden 100 --epochs 3`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rep, err := node.Partition(e.catalog, name, parts, alpha, seed, limit, dir)
			if err != nil {
				return err
			}
			return e.emit(rep, func(w io.Writer) {
				for _, p := range rep.Parts {
					fmt.Fprintf(w, "%s  %6d samples  classes %v\n", p.File, p.Samples, p.ClassCounts)
				}
			})
		},
	}
	partition.Flags().StringVar(&name, "dataset", "", "data set to split (required)")
	partition.Flags().IntVar(&parts, "parts", 4, "participants")
	partition.Flags().Float64Var(&alpha, "alpha", 0.5, "Dirichlet concentration: small is skewed")
	partition.Flags().Uint64Var(&seed, "seed", 1, "seed of the draw")
	partition.Flags().IntVar(&limit, "limit", 0, "split only the first N training samples (0: all)")
	partition.Flags().StringVar(&dir, "output", "parts", "folder to write part-NN.csv files to")
	_ = partition.MarkFlagRequired("dataset")
	return partition
}
