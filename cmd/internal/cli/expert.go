package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/meshnode/meshnode/experts"
	"github.com/meshnode/meshnode/mesh/advert"
	"github.com/meshnode/meshnode/node"
	"github.com/meshnode/meshnode/node/api"
)

func expertCmd(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "expert",
		Short: "Train, inspect, evaluate, export and import the experts this node hosts",
		Example: `  meshnode expert train --dataset iris --hidden 16 --epochs 50
  meshnode expert list`,
	}
	c.AddCommand(trainCmd(e), listCmd(e), inspectCmd(e), evalCmd(e), exportCmd(e), importCmd(e), serveCmd(e, false), serveCmd(e, true), expertFetchCmd(e))
	return c
}

func trainCmd(e *env) *cobra.Command {
	var req api.TrainRequest
	var hidden []int
	var domains string
	c := &cobra.Command{
		Use:   "train",
		Short: "Train a micro-expert on a data set and store it",
		Long: `Train a feed-forward classifier on a data set, evaluate it on the data set's test part,
and store it (weights and signed manifest) in this node's repo. Data sets: fashion-mnist, iris,
wine, breast-cancer, digits, or csv:PATH (numeric columns, integer class label last).
--epochs 0 stores an initialised, untrained expert (the usual base of a federated job).
When the repo's daemon runs, the daemon trains and stores the expert (its epochs stream here;
Ctrl-C cancels), and it can be served at once.`,
		Example: `  meshnode expert train --dataset fashion-mnist --hidden 100 --epochs 8 --name fmnist
  meshnode expert train --dataset iris --hidden 16 --epochs 60 --seed 3 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt) // Ctrl-C cancels, here or in the daemon
			defer stop()
			ops, r, err := e.storeOps()
			if err != nil {
				return err
			}
			defer r.Close()
			req.Hidden = hidden
			if domains != "" {
				req.Domains = strings.Split(domains, ",")
			}
			if !cmd.Flags().Changed("epochs") {
				req.Epochs = r.Config.Training.Epochs
			}
			finish := e.trainProgress(&req)
			rep, err := ops.TrainExpert(ctx, req)
			finish()
			if err != nil {
				return err
			}
			return e.emit(rep, func(w io.Writer) {
				fmt.Fprintf(w, "trained %s: %s, %d parameters, %d epochs in %.1fs (%.0f samples/s)\n",
					rep.Manifest.Name, rep.Manifest.Arch, rep.Manifest.Params, len(rep.Epochs), rep.Seconds, rep.SamplesPS)
				fmt.Fprintf(w, "test accuracy %.4f on %d samples of %s\n", rep.Test.Accuracy, rep.Test.Samples, rep.Manifest.Evals[0].Dataset)
				fmt.Fprintf(w, "expert ID %s\n", rep.ID)
			})
		},
	}
	f := c.Flags()
	f.StringVar(&req.Dataset, "dataset", "", "data set to train on (required)")
	f.IntSliceVar(&hidden, "hidden", []int{100}, "hidden layer widths, e.g. 128,64")
	f.StringVar(&req.Activation, "activation", "relu", "hidden activation: relu, gelu, tanh, sigmoid")
	f.IntVar(&req.Epochs, "epochs", 10, "epochs (default: the config's)")
	f.IntVar(&req.BatchSize, "batch-size", 0, "mini-batch size (default: the config's)")
	f.Float64Var(&req.LR, "lr", 0, "learning rate (default 0.001 for adam, 0.05 for sgd)")
	f.StringVar(&req.Optimizer, "optimizer", "adam", "adam or sgd (with momentum 0.9)")
	f.Float64Var(&req.WeightDecay, "weight-decay", 0, "L2 weight decay")
	f.IntVar(&req.Patience, "patience", -1, "stop after this many epochs without a better validation loss (default: the config's)")
	f.Float64Var(&req.ValSplit, "val-split", 0.1, "share of the training rows held out for validation")
	f.Uint64Var(&req.Seed, "seed", 1, "seed for weights, split and shuffling")
	f.IntVar(&req.Limit, "limit", 0, "use only this many training (and test) rows")
	f.StringVar(&req.Name, "name", "", "expert name (default: the data set)")
	f.StringVar(&domains, "domain", "", "comma-separated domain tags (default: the data set)")
	_ = c.MarkFlagRequired("dataset")
	return c
}

// storeOps opens what runs the store's commands: the daemon's API when the repo's daemon
// answers (it holds the store; what it stores is servable at once), or the store opened in
// this process. Both give the same reports. The caller closes the repo.
func (e *env) storeOps() (api.StoreOps, *node.Repo, error) {
	r, err := e.repo()
	if err != nil {
		return nil, nil, err
	}
	return e.opsOf(r), r, nil
}

// opsOf runs the store's commands through r's daemon when one runs, else on r itself.
func (e *env) opsOf(r *node.Repo) api.StoreOps {
	if c, err := api.DaemonClient(r.Path); err == nil {
		return c
	}
	return node.LocalOps{Repo: r, Catalog: e.catalog}
}

// trainProgress installs a per-epoch reporter: a bar on a terminal, plain lines otherwise
// (never with --json, whose stdout is the result alone). It returns a function that ends it.
func (e *env) trainProgress(req *api.TrainRequest) func() {
	if e.json {
		return func() {}
	}
	if isTerminal(e.err) {
		var bar *progressbar.ProgressBar
		req.Progress = func(s experts.EpochStats) {
			if bar == nil {
				bar = progressbar.NewOptions(s.Epochs, progressbar.OptionSetWriter(e.err),
					progressbar.OptionShowCount(), progressbar.OptionSetWidth(30), progressbar.OptionClearOnFinish())
			}
			bar.Describe(fmt.Sprintf("epoch %d/%d loss %.4f acc %.4f val %.4f", s.Epoch, s.Epochs, s.TrainLoss, s.TrainAcc, s.ValAcc))
			_ = bar.Set(s.Epoch)
		}
		return func() {
			if bar != nil {
				_ = bar.Finish()
			}
		}
	}
	req.Progress = func(s experts.EpochStats) {
		fmt.Fprintf(e.err, "epoch %d/%d  loss %.4f  acc %.4f  val_loss %.4f  val_acc %.4f  %.1fs\n",
			s.Epoch, s.Epochs, s.TrainLoss, s.TrainAcc, s.ValLoss, s.ValAcc, s.Elapsed.Seconds())
	}
	return func() {}
}

func listCmd(e *env) *cobra.Command {
	var remote bool
	c := &cobra.Command{
		Use:   "list",
		Short: "List the experts this node hosts, or with --remote those the mesh advertises",
		Example: `  meshnode expert list --json
  meshnode expert list --remote`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if remote {
				return e.listRemote(cmd.Context())
			}
			return e.listHosted(cmd.Context())
		},
	}
	c.Flags().BoolVar(&remote, "remote", false, "list the remote advert table of the running daemon")
	return c
}

// hostedRow is one line of `expert list`.
type hostedRow struct {
	ID      string   `json:"id"`
	Name    string   `json:"name"`
	Domains []string `json:"domains"`
	Params  int      `json:"params"`
	Added   string   `json:"added"`
	Served  bool     `json:"served"`
}

// listHosted lists the repo's experts, through its daemon when one runs.
func (e *env) listHosted(ctx context.Context) error {
	ops, r, err := e.storeOps()
	if err != nil {
		return err
	}
	defer r.Close()
	hosted, err := ops.ListExperts(ctx)
	if err != nil {
		return err
	}
	rows := []hostedRow{} // JSON [] rather than null
	for _, x := range hosted {
		rows = append(rows, hostedRow{x.ID.String(), x.Name, x.Domains, x.Params, x.Added.Format(time.RFC3339), x.Served})
	}
	return e.emit(rows, func(w io.Writer) {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tDOMAINS\tPARAMS\tSERVED\tADDED")
		for _, x := range rows {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%v\t%s\n", x.ID, x.Name, strings.Join(x.Domains, ","), x.Params, x.Served, x.Added)
		}
		tw.Flush()
	})
}

func (e *env) listRemote(ctx context.Context) error {
	c, err := e.client()
	if err != nil {
		return err
	}
	var entries []advert.Entry
	if err := c.Get(ctx, api.PathRemote, &entries); err != nil {
		return err
	}
	if entries == nil {
		entries = []advert.Entry{}
	}
	return e.emit(entries, func(w io.Writer) {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tDOMAINS\tPARAMS\tQUALITY\tPROVIDER\tEXPIRES")
		for _, x := range entries {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%.4f\t%s\t%s\n", x.ID, x.Name, strings.Join(x.Domains, ","), x.Params,
				x.Quality, x.Provider, time.Until(x.Expires()).Round(time.Second))
		}
		tw.Flush()
	})
}

func inspectCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:     "inspect ID|NAME",
		Short:   "Show an expert's manifest: architecture, specs, evaluations, lineage, signature",
		Example: `  meshnode expert inspect fashion-mnist`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ops, r, err := e.storeOps()
			if err != nil {
				return err
			}
			defer r.Close()
			rep, err := ops.InspectExpert(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return e.emit(rep, func(w io.Writer) { printManifest(w, rep.ID, rep.Manifest, rep.Signature) })
		},
	}
}

func printManifest(w io.Writer, id string, m *experts.Manifest, sig string) {
	fmt.Fprintf(w, "ID           %s\nname         %s\ndomains      %s\n", id, m.Name, strings.Join(m.Domains, ", "))
	fmt.Fprintf(w, "architecture %s (%d parameters)\n", m.Arch, m.Params)
	fmt.Fprintf(w, "input        %s, dimension %d %s\n", m.Input.Kind, m.Input.Dim, m.Input.Preprocess)
	fmt.Fprintf(w, "output       %s, dimension %d", m.Output.Kind, m.Output.Dim)
	if len(m.Output.Labels) > 0 {
		fmt.Fprintf(w, ": %s", strings.Join(m.Output.Labels, ", "))
	}
	fmt.Fprintf(w, "\nweights      %s (%d bytes)\n", m.Weights, m.WeightsSize)
	for _, p := range m.Parents {
		fmt.Fprintf(w, "parent       %s (%s)\n", p.ID, p.Relation)
	}
	for _, ev := range m.Evals {
		fmt.Fprintf(w, "evaluation   %s %.4f on %d samples of %s (data sha256 %.12s…)\n", ev.Metric, ev.Value, ev.Samples, ev.Dataset, ev.Digest)
	}
	for _, k := range sortedKeys(m.Meta) {
		fmt.Fprintf(w, "meta         %s = %s\n", k, m.Meta[k])
	}
	fmt.Fprintf(w, "publisher    %s\nsignature    %s\n", orDash(m.Publisher), sig)
}

func evalCmd(e *env) *cobra.Command {
	var ds string
	var limit int
	c := &cobra.Command{
		Use:     "eval ID|NAME",
		Short:   "Evaluate an expert on a data set's test part",
		Example: `  meshnode expert eval fashion-mnist --dataset fashion-mnist`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ops, r, err := e.storeOps()
			if err != nil {
				return err
			}
			defer r.Close()
			rep, err := ops.EvalExpert(cmd.Context(), args[0], ds, limit)
			if err != nil {
				return err
			}
			return e.emit(rep, func(w io.Writer) {
				fmt.Fprintf(w, "%s on %s: accuracy %.4f, loss %.4f, %d samples in %.2fs\n", rep.Name, rep.Dataset,
					rep.Evaluation.Accuracy, rep.Evaluation.Loss, rep.Evaluation.Samples, rep.Seconds)
				printConfusion(w, rep.Labels, rep.Evaluation.Confusion)
			})
		},
	}
	c.Flags().StringVar(&ds, "dataset", "", "data set (required)")
	c.Flags().IntVar(&limit, "limit", 0, "evaluate only this many test rows")
	_ = c.MarkFlagRequired("dataset")
	return c
}

func printConfusion(w io.Writer, labels []string, conf [][]int) {
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "true\\pred\t")
	for i := range conf {
		fmt.Fprintf(tw, "%d\t", i)
	}
	fmt.Fprintln(tw, "recall\t")
	for i, row := range conf {
		total := 0
		for _, v := range row {
			total += v
		}
		fmt.Fprintf(tw, "%d %s\t", i, labels[i])
		for _, v := range row {
			fmt.Fprintf(tw, "%d\t", v)
		}
		recall := 0.0
		if total > 0 {
			recall = float64(row[i]) / float64(total)
		}
		fmt.Fprintf(tw, "%.3f\t\n", recall)
	}
	tw.Flush()
}

func exportCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "export ID|NAME FILE",
		Short: "Write an expert's weights (safetensors) and manifest (FILE.manifest.cbor)",
		Long: `Write the expert's weights as a safetensors file (loadable by PyTorch and Hugging Face
tools; byte for byte the blob its manifest names) and its manifest beside it, so that
'expert import FILE' on another node restores the same expert with the same ID.`,
		Example: `  meshnode expert export fashion-mnist fmnist.safetensors`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ops, r, err := e.storeOps()
			if err != nil {
				return err
			}
			defer r.Close()
			rep, err := ops.ExportExpert(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			return e.emit(rep, func(w io.Writer) {
				fmt.Fprintf(w, "wrote %s (%d bytes) and %s\n", rep.WeightsFile, rep.Bytes, rep.ManifestFile)
			})
		},
	}
}

func importCmd(e *env) *cobra.Command {
	var o api.ImportOptions
	var domains, labels string
	c := &cobra.Command{
		Use:   "import FILE",
		Short: "Store an expert from a safetensors file (and its manifest, if beside it)",
		Long: `Import a weights file. With FILE.manifest.cbor beside it (as export writes), the expert
keeps its ID and the weights must be exactly those the manifest names. Without one, the
architecture is read from the file's metadata and a new manifest is signed by this node.`,
		Example: `  meshnode expert import fmnist.safetensors
  meshnode expert import model.safetensors --name my-model --labels cat,dog`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ops, r, err := e.storeOps()
			if err != nil {
				return err
			}
			defer r.Close()
			if domains != "" {
				o.Domains = strings.Split(domains, ",")
			}
			if labels != "" {
				o.Labels = strings.Split(labels, ",")
			}
			rep, err := ops.ImportExpert(cmd.Context(), args[0], o)
			if err != nil {
				return err
			}
			return e.emit(rep, func(w io.Writer) {
				how := "new manifest"
				if rep.WithManifest {
					how = "with its manifest"
				}
				fmt.Fprintf(w, "imported %s (%s, %d parameters)\nexpert ID %s\n", rep.Name, how, rep.Params, rep.ID)
			})
		},
	}
	c.Flags().StringVar(&o.Name, "name", "", "name, when the file has no manifest (default: the file name)")
	c.Flags().StringVar(&domains, "domain", "", "comma-separated domain tags, when the file has no manifest")
	c.Flags().StringVar(&labels, "labels", "", "comma-separated class labels, when the file has no manifest")
	return c
}
