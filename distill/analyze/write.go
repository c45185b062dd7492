package analyze

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/meshnode/meshnode/distill/checkpoint"
)

// WriteOutputs writes the report into dir: report.json, CSV tables,
// summary.md and (for standard and comprehensive depth) PNG charts.
// It returns the files written, relative to dir.
func WriteOutputs(ctx context.Context, dir string, rep *Report) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("output folder: %w", err)
	}
	w := &outWriter{ctx: ctx, dir: dir}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding report: %w", err)
	}
	w.file("report.json", append(b, '\n'))
	w.file("summary.md", []byte(Summary(rep)))
	w.quickTables(rep.Quick)
	if rep.Standard != nil {
		w.standardTables(rep.Standard)
	}
	if rep.Routing != nil {
		w.routingTables(rep.Routing)
	}
	if w.err == nil {
		w.err = writePlots(ctx, dir, rep)
		if w.err == nil {
			matches, _ := filepath.Glob(filepath.Join(dir, "*.png"))
			for _, m := range matches {
				w.files = append(w.files, filepath.Base(m))
			}
		}
	}
	return w.files, w.err
}

// outWriter writes files into one folder, keeping the first error.
type outWriter struct {
	ctx   context.Context
	dir   string
	files []string
	err   error
}

func (w *outWriter) file(name string, data []byte) {
	if w.err == nil {
		w.err = w.ctx.Err()
	}
	if w.err != nil {
		return
	}
	if err := os.WriteFile(filepath.Join(w.dir, name), data, 0o644); err != nil {
		w.err = fmt.Errorf("writing %s: %w", name, err)
		return
	}
	w.files = append(w.files, name)
}

func (w *outWriter) csv(name string, header []string, rows [][]string) {
	var sb strings.Builder
	cw := csv.NewWriter(&sb)
	_ = cw.Write(header) // a strings.Builder does not fail
	_ = cw.WriteAll(rows)
	w.file(name, []byte(sb.String()))
}

func f(v float64) string            { return strconv.FormatFloat(v, 'g', 6, 64) }
func d[T ~int | ~int64](v T) string { return strconv.FormatInt(int64(v), 10) }

func ints(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = d(x)
	}
	return strings.Join(s, " ")
}

func (w *outWriter) quickTables(q *QuickReport) {
	roles := [][2]string{{"embedding", ""}, {"lm_head", ""}, {"attention", ""}, {"norms", ""}, {"dense_mlp", ""},
		{"routers", ""}, {"routed_experts", ""}, {"shared_experts", ""}, {"other", ""}, {"total", ""},
		{"activated", ""}, {"activated_no_embedding", ""}}
	vals := func(p Params) []int64 {
		return []int64{p.Embedding, p.LMHead, p.Attention, p.Norms, p.DenseMLP, p.Routers, p.RoutedExperts,
			p.SharedExperts, p.Other, p.Total, p.Activated, p.ActivatedNoEmbedding}
	}
	cfg, st := vals(q.Params), vals(q.StoredParams)
	var rows [][]string
	for i, r := range roles {
		rows = append(rows, []string{r[0], d(cfg[i]), d(st[i])})
	}
	w.csv("params.csv", []string{"role", "from_config", "from_headers"}, rows)
	rows = nil
	for _, b := range q.Budgets {
		rows = append(rows, []string{b.Domain, d(b.Params), f(b.VsRoutedExpert), f(b.VsActivated)})
	}
	w.csv("budgets.csv", []string{"domain", "params", "compression_vs_routed_expert", "compression_vs_activated"}, rows)
	rows = nil
	for _, n := range q.Placement.Assignment {
		rows = append(rows, []string{d(n.Node), d(n.FromLayer), d(n.FromIdx), d(n.ToLayer), d(n.ToIdx), d(n.Experts)})
	}
	w.csv("placement.csv", []string{"node", "from_layer", "from_expert", "to_layer", "to_expert", "experts"}, rows)
}

func (w *outWriter) standardTables(s *StandardReport) {
	var rows [][]string
	for _, group := range [][]ExpertStats{s.Experts, s.Shared} {
		for _, e := range group {
			kind := "routed"
			if e.Expert < 0 {
				kind = "shared"
			}
			rows = append(rows, []string{d(e.Layer), d(e.Expert), kind, d(e.Params), d(e.Bytes), f(e.Norm), f(e.GateNorm),
				f(e.UpNorm), f(e.DownNorm), f(e.NearZero), f(e.GateRank), f(e.UpRank), f(e.DownRank), f(e.OutputNorm)})
		}
	}
	w.csv("experts.csv", []string{"layer", "expert", "kind", "params", "bytes", "frobenius", "gate_frobenius", "up_frobenius",
		"down_frobenius", "near_zero_share", "gate_stable_rank", "up_stable_rank", "down_stable_rank", "output_norm"}, rows)
	rows = nil
	var crows [][]string
	for _, l := range s.Layers {
		rows = append(rows, []string{d(l.Layer), f(l.MeanWeightCos), f(l.MaxWeightCos), f(l.MeanOutputCos), f(l.MaxOutputCos),
			d(len(l.Clusters)), d(l.Redundant)})
		for i, c := range l.Clusters {
			crows = append(crows, []string{d(l.Layer), d(i), ints(c.Experts), d(len(c.Experts)), f(c.MinWeightCos), f(c.MinOutputCos)})
		}
		for _, m := range []struct {
			name string
			grid checkpoint.Matrix
		}{{"weight", l.weight}, {"output", l.output}} {
			header := []string{"expert"}
			var mrows [][]string
			for i := range m.grid.Rows {
				header = append(header, d(i))
				row := []string{d(i)}
				for _, v := range m.grid.Data[i*m.grid.Cols : (i+1)*m.grid.Cols] {
					row = append(row, strconv.FormatFloat(float64(v), 'f', 4, 32))
				}
				mrows = append(mrows, row)
			}
			w.csv(fmt.Sprintf("%s_similarity_layer%d.csv", m.name, l.Layer), header, mrows)
		}
	}
	w.csv("layers.csv", []string{"layer", "mean_weight_cos", "max_weight_cos", "mean_output_cos", "max_output_cos",
		"clusters", "redundant_experts"}, rows)
	w.csv("clusters.csv", []string{"layer", "cluster", "experts", "size", "min_weight_cos", "min_output_cos"}, crows)
	rows = nil
	for _, r := range s.CrossLayer {
		rows = append(rows, []string{d(r.FromLayer), d(r.ToLayer), "", "", f(r.MeanBestMatch), f(r.MaxBestMatch), ""})
		for _, m := range r.Matches {
			rows = append(rows, []string{d(r.FromLayer), d(r.ToLayer), d(m.FromExpert), d(m.ToExpert), "", f(m.WeightCos), f(m.OutputCos)})
		}
	}
	w.csv("cross_layer.csv", []string{"from_layer", "to_layer", "from_expert", "to_expert", "mean_best_match_cos",
		"weight_cos", "output_cos"}, rows)
}

func (w *outWriter) routingTables(r *RoutingReport) {
	header := []string{"layer", "expert", "count", "rate", "mean_weight", "output_norm", "saliency", "saliency_rank"}
	for _, dn := range r.Domains {
		header = append(header, "rate_"+dn)
	}
	for _, dn := range r.Domains {
		header = append(header, "specialization_"+dn)
	}
	var rows, lrows [][]string
	for _, l := range r.Layers {
		lrows = append(lrows, []string{d(l.Layer), f(l.LoadEntropy), f(l.NormalizedLoadEntropy), f(l.TokenEntropy), ints(l.Unused)})
		for _, e := range l.Experts {
			row := []string{d(l.Layer), d(e.Expert), d(e.Count), f(e.Rate), f(e.MeanWeight), f(e.OutputNorm), f(e.Saliency), d(e.SaliencyRank)}
			for _, v := range e.RateByDomain {
				row = append(row, f(v))
			}
			for _, v := range e.Specialization {
				row = append(row, f(v))
			}
			rows = append(rows, row)
		}
	}
	w.csv("routing.csv", header, rows)
	w.csv("routing_layers.csv", []string{"layer", "load_entropy_bits", "normalized_load_entropy", "mean_token_entropy_bits", "unused_experts"}, lrows)
	rows = nil
	for _, s := range r.Specialists {
		rows = append(rows, []string{d(s.Layer), d(s.Expert), s.Domain, f(s.Share), f(s.Rate)})
	}
	w.csv("specialists.csv", []string{"layer", "expert", "domain", "specialization", "domain_rate"}, rows)
	rows = nil
	for _, c := range r.CoActivation {
		for _, p := range c.Pairs {
			rows = append(rows, []string{d(c.FromLayer), d(c.ToLayer), d(p.From), d(p.To), d(p.Count), f(p.Jaccard), f(p.Lift)})
		}
	}
	w.csv("coactivation.csv", []string{"from_layer", "to_layer", "from_expert", "to_expert", "tokens", "jaccard", "lift"}, rows)
}
