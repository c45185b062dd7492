package cli

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/meshnode/meshnode/node"
)

func dataCmd(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:     "data",
		Short:   "The data sets experts train on: list them, write sample inputs",
		Example: `  meshnode data list`,
	}
	c.AddCommand(&cobra.Command{
		Use:     "list",
		Short:   "List the data set names train and eval accept",
		Example: `  meshnode data list --json`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			names := e.catalog.Names()
			return e.emit(names, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
				for _, n := range names {
					fmt.Fprintf(tw, "%s\t%s\n", n, e.catalog.Describe(n))
				}
				fmt.Fprintln(tw, "csv:PATH\tnumeric columns, integer class label last")
				tw.Flush()
			})
		},
	})
	var name, dir string
	var count int
	sample := &cobra.Command{
		Use:     "sample",
		Short:   "Write test rows of a data set as query inputs (PNG for images, JSON otherwise)",
		Example: `  meshnode data sample --dataset fashion-mnist --count 5 --output samples/`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out, err := node.WriteSamples(e.catalog, name, count, dir)
			if err != nil {
				return err
			}
			return e.emit(out, func(w io.Writer) {
				for _, s := range out {
					fmt.Fprintf(w, "%s\t%s\n", s.File, s.Label)
				}
			})
		},
	}
	sample.Flags().StringVar(&name, "dataset", "", "data set (required)")
	sample.Flags().IntVar(&count, "count", 5, "how many rows")
	sample.Flags().StringVar(&dir, "output", "samples", "folder to write to")
	_ = sample.MarkFlagRequired("dataset")
	c.AddCommand(sample)
	return c
}
