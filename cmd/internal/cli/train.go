package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/meshnode/meshnode/node"
)

func trainGroupCmd(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:     "train",
		Short:   "Federated training with other nodes",
		Example: `  meshnode train partition --dataset fashion-mnist --parts 4 --alpha 0.5 --output parts/`,
	}
	var name, dir string
	var parts int
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
			rep, err := node.Partition(e.catalog, name, parts, alpha, seed, dir)
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
	partition.Flags().StringVar(&dir, "output", "parts", "folder to write part-NN.csv files to")
	_ = partition.MarkFlagRequired("dataset")
	c.AddCommand(partition)
	return c
}
