package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"

	"github.com/spf13/cobra"

	"github.com/meshnode/meshnode/node"
)

func queryCmd(e *env) *cobra.Command {
	var expert, input, text, vector string
	var invert bool
	c := &cobra.Command{
		Use:   "query",
		Short: "Ask an expert: a JSON vector, an image (PNG/JPEG) or a text",
		Long: `Run one query against a hosted expert. --input takes a file holding a JSON array of
numbers or a PNG/JPEG image (converted to the expert's input spec: gray, resized, scaled to
[0,1]); --text takes a string for text experts; --vector takes a JSON array inline.`,
		Example: `  meshnode query --expert fashion-mnist --input shoe.png
  meshnode query --expert iris --vector '[5.1,3.5,1.4,0.2]' --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var in node.QueryInput
			given := 0
			for _, s := range []string{input, text, vector} {
				if s != "" {
					given++
				}
			}
			if given != 1 {
				return fmt.Errorf("give exactly one of --input FILE, --text STR or --vector JSON")
			}
			switch {
			case input != "":
				var err error
				if in, err = node.ReadQueryFile(input); err != nil {
					return err
				}
			case text != "":
				in.Text = text
			default:
				if err := json.Unmarshal([]byte(vector), &in.Vector); err != nil {
					return fmt.Errorf("--vector: want a JSON array of numbers: %w", err)
				}
			}
			in.Invert = invert
			r, err := e.repo()
			if err != nil {
				return err
			}
			defer r.Close()
			res, err := r.QueryLocal(cmd.Context(), expert, in)
			if err != nil {
				return err
			}
			return e.emit(res, func(w io.Writer) {
				if res.Label != "" {
					fmt.Fprintf(w, "%s", res.Label)
					for _, t := range res.Top {
						fmt.Fprintf(w, "  %s %.3f", t.Label, t.Score)
					}
					fmt.Fprintln(w)
				} else {
					fmt.Fprintf(w, "%v\n", res.Output)
				}
				fmt.Fprintf(w, "answered by %s (%s) on peer %s in %dµs\n", res.Name, res.Expert, res.Peer, res.Micros)
			})
		},
	}
	c.Flags().StringVar(&expert, "expert", "", "expert ID or name (required)")
	c.Flags().StringVar(&input, "input", "", "file: JSON array or PNG/JPEG image")
	c.Flags().StringVar(&text, "text", "", "text, for text experts")
	c.Flags().StringVar(&vector, "vector", "", "inline JSON array of numbers")
	c.Flags().BoolVar(&invert, "invert", false, "invert image brightness first (dark object on white → white on black)")
	_ = c.MarkFlagRequired("expert")
	return c
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
