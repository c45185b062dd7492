package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/spf13/cobra"

	"github.com/meshnode/meshnode/node"
	"github.com/meshnode/meshnode/node/api"
)

func queryCmd(e *env) *cobra.Command {
	var q api.QueryRequest
	var input, text, vector string
	var invert bool
	c := &cobra.Command{
		Use:   "query",
		Short: "Ask an expert, on this node or anywhere on the mesh",
		Long: `Run one query. With a daemon running, the query is routed to the best expert on this node
or on a peer (by --expert ID or name, or the best of a --domain), with failover to the next
candidate and a hedged request when one is slow; --k N mixes the N best experts' answers.
Without a daemon, the named hosted expert answers here.
--input takes a file holding a JSON array of numbers or a PNG/JPEG image (converted to the
expert's input spec: gray, resized, scaled to [0,1]); --text takes a string for text experts;
--vector takes a JSON array inline.`,
		Example: `  meshnode query --expert fashion --input shoe.png
  meshnode query --domain vision --k 3 --input shoe.png --json
  meshnode query --expert iris --vector '[5.1,3.5,1.4,0.2]'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			in, err := queryInput(input, text, vector)
			if err != nil {
				return err
			}
			in.Invert = invert
			if c, err := e.client(); err == nil {
				return e.queryDaemon(cmd.Context(), c, q, in)
			}
			if q.Expert == "" {
				return fmt.Errorf("without a running daemon, name a hosted expert with --expert (--domain routing needs 'meshnode daemon')")
			}
			r, err := e.repo()
			if err != nil {
				return err
			}
			defer r.Close()
			res, err := r.QueryLocal(cmd.Context(), q.Expert, in)
			if err != nil {
				return err
			}
			return e.emit(res, func(w io.Writer) { printAnswer(w, res) })
		},
	}
	c.Flags().StringVar(&q.Expert, "expert", "", "expert ID or name")
	c.Flags().StringVar(&q.Domain, "domain", "", "the best expert of this domain (daemon only)")
	c.Flags().IntVar(&q.K, "k", 1, "mix the answers of the K best experts (daemon only)")
	c.Flags().IntVar(&q.TimeoutMS, "timeout-ms", 5000, "give up after this long (daemon only)")
	c.Flags().StringVar(&input, "input", "", "file: JSON array or PNG/JPEG image")
	c.Flags().StringVar(&text, "text", "", "text, for text experts")
	c.Flags().StringVar(&vector, "vector", "", "inline JSON array of numbers")
	c.Flags().BoolVar(&invert, "invert", false, "invert image brightness first (offline only)")
	return c
}

func queryInput(input, text, vector string) (node.QueryInput, error) {
	var in node.QueryInput
	given := 0
	for _, s := range []string{input, text, vector} {
		if s != "" {
			given++
		}
	}
	if given != 1 {
		return in, fmt.Errorf("give exactly one of --input FILE, --text STR or --vector JSON")
	}
	switch {
	case input != "":
		return node.ReadQueryFile(input)
	case text != "":
		in.Text = text
	default:
		if err := json.Unmarshal([]byte(vector), &in.Vector); err != nil {
			return in, fmt.Errorf("--vector: want a JSON array of numbers: %w", err)
		}
	}
	return in, nil
}

func (e *env) queryDaemon(ctx context.Context, c *api.Client, q api.QueryRequest, in node.QueryInput) error {
	switch {
	case in.Vector != nil:
		q.Vector = make([]float32, len(in.Vector))
		for i, v := range in.Vector {
			q.Vector[i] = float32(v)
		}
	case in.ImagePath != "":
		b, err := os.ReadFile(in.ImagePath)
		if err != nil {
			return fmt.Errorf("read image: %w", err)
		}
		q.Image = b
	default:
		q.Text = in.Text
	}
	var ans api.QueryAnswer
	if err := c.Post(ctx, api.PathQuery, q, &ans); err != nil {
		return err
	}
	return e.emit(ans, func(w io.Writer) { printAnswer(w, &ans) })
}

// printAnswer shows an answer, from a daemon or from the store here, the same way.
func printAnswer(w io.Writer, ans *api.QueryAnswer) {
	switch {
	case ans.Label != "":
		fmt.Fprintf(w, "%s", ans.Label)
		for _, t := range ans.Top {
			fmt.Fprintf(w, "  %s %.3f", t.Label, t.Score)
		}
		fmt.Fprintln(w)
	default:
		fmt.Fprintf(w, "%v\n", ans.Output)
	}
	where := "on peer " + ans.Candidate.Peer
	if ans.Candidate.Local {
		where = "on this node"
	}
	fmt.Fprintf(w, "answered by %s (%s) %s in %dµs\n", ans.Candidate.Name, ans.Candidate.Expert, where, ans.Micros)
	for _, a := range ans.Attempts {
		if a.Error != "" {
			fmt.Fprintf(w, "  failed over from %s on %s: %s\n", a.Expert, a.Peer, a.Error)
		}
	}
	for _, p := range ans.Mixture {
		fmt.Fprintf(w, "  gate %.3f %s on %s %s\n", p.Gate, p.Expert, p.Peer, p.Error)
	}
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
