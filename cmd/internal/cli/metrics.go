package cli

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/spf13/cobra"

	"github.com/meshnode/meshnode/distill/federated/fedjob"
	"github.com/meshnode/meshnode/node"
	"github.com/meshnode/meshnode/node/api"
)

func metricsCmd(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:     "metrics",
		Short:   "Export the running daemon's metrics",
		Example: `  meshnode metrics export --format influx`,
	}
	var format, output string
	export := &cobra.Command{
		Use:   "export",
		Short: "Write the daemon's metrics as json, csv, prometheus text or InfluxDB line protocol",
		Example: `  meshnode metrics export --format json
  meshnode metrics export --format influx --output metrics.lp`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			prom, err := c.Metrics(cmd.Context())
			if err != nil {
				return err
			}
			w := e.out
			if output != "" {
				f, err := os.Create(output)
				if err != nil {
					return fmt.Errorf("metrics export: %w", err)
				}
				defer f.Close()
				w = f
			}
			return node.ExportMetrics(prom, format, time.Now(), w)
		},
	}
	export.Flags().StringVar(&format, "format", "prometheus", "json, csv, prometheus or influx")
	export.Flags().StringVar(&output, "output", "", "file to write (default stdout)")
	c.AddCommand(export)
	return c
}

func monitorCmd(e *env) *cobra.Command {
	var interval time.Duration
	var count int
	c := &cobra.Command{
		Use:   "monitor",
		Short: "A live view of the running daemon: peers, served experts, queries/s, latency, jobs",
		Long: `Refresh a view of the daemon every --interval: peers, hosted and served experts, remote
adverts, queries routed and served per second, query latency percentiles (from the latency
histogram, over the last interval), the market balance, the training jobs this node coordinates
or trains in, and per-peer routing statistics. On a terminal the view is
redrawn in place; otherwise one block is printed per refresh. --count stops after N refreshes.`,
		Example: `  meshnode monitor --interval 5
  meshnode monitor --interval 500ms`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			tty := isTerminal(e.out)
			var prev map[string]*dto.MetricFamily
			prevAt := time.Now()
			for i := 0; count == 0 || i < count; i++ {
				fams, err := fetchFamilies(cmd.Context(), c)
				if err != nil {
					return err
				}
				var st api.StatusInfo
				if err := c.Get(cmd.Context(), api.PathStatus, &st); err != nil {
					return err
				}
				var routes []struct {
					Peer      string  `json:"peer"`
					LatencyMS float64 `json:"latency_ms"`
					P95MS     float64 `json:"p95_ms"`
					InFlight  int     `json:"in_flight"`
					Open      bool    `json:"breaker_open"`
				}
				if err := c.Get(cmd.Context(), api.PathRoutes, &routes); err != nil {
					return err
				}
				var jobs []api.TrainJobInfo
				if err := c.Get(cmd.Context(), api.PathTrainJobs, &jobs); err != nil {
					return err
				}
				var bal api.BalanceInfo
				if err := c.Get(cmd.Context(), api.PathMarketBalance, &bal); err != nil {
					return err
				}
				now := time.Now()
				var buf bytes.Buffer
				if tty {
					buf.WriteString("\x1b[H\x1b[2J")
				}
				fmt.Fprintf(&buf, "meshnode %s   up %s   %s\n", st.PeerID, time.Duration(st.UptimeSeconds*float64(time.Second)).Round(time.Second), now.Format(time.TimeOnly))
				fmt.Fprintf(&buf, "peers %d   hosted %d   served %d   remote adverts %d\n", st.Peers, st.Hosted, len(st.Served), st.RemoteAdverts)
				if prev != nil {
					dt := now.Sub(prevAt).Seconds()
					routed := histDelta(fams, prev, "meshnode_query_duration_seconds")
					served := counterSum(fams, "meshnode_queries_served_total") - counterSum(prev, "meshnode_queries_served_total")
					fmt.Fprintf(&buf, "queries routed %.1f/s   served for peers %.1f/s   latency p50 %s  p99 %s\n",
						routed.count/dt, served/dt, fmtSeconds(routed.quantile(0.5)), fmtSeconds(routed.quantile(0.99)))
				}
				for _, s := range st.Served {
					fmt.Fprintf(&buf, "serving %s  %s\n", s.ID, s.Name)
				}
				fmt.Fprintf(&buf, "balance %d credits   %d pending payments\n", bal.Balance, bal.Pending)
				for _, j := range jobs {
					if j.State != fedjob.StateRound || (!j.Coordinator && j.Participant == nil) {
						continue // active jobs this node takes part in
					}
					acc := "-"
					if n := len(j.History); n > 0 {
						acc = fmt.Sprintf("%.4f", j.History[n-1].Accuracy)
					}
					role := map[bool]string{true: "coordinating", false: "training in"}[j.Coordinator]
					fmt.Fprintf(&buf, "%s job %s  round %d/%d  accuracy %s\n", role, j.ID, j.Round, j.Spec.Rounds, acc)
				}
				tw := tabwriter.NewWriter(&buf, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "PEER\tLATENCY\tP95\tIN FLIGHT\tBREAKER")
				for _, r := range routes {
					fmt.Fprintf(tw, "%s\t%.2fms\t%.2fms\t%d\t%s\n", r.Peer, r.LatencyMS, r.P95MS, r.InFlight, map[bool]string{true: "open", false: "closed"}[r.Open])
				}
				tw.Flush()
				if !tty {
					buf.WriteString("\n")
				}
				if _, err := e.out.Write(buf.Bytes()); err != nil {
					return err
				}
				prev, prevAt = fams, now
				if count != 0 && i == count-1 {
					break
				}
				select {
				case <-cmd.Context().Done():
					return nil
				case <-time.After(interval):
				}
			}
			return nil
		},
	}
	durationFlag(c.Flags(), &interval, "interval", 2*time.Second, "refresh interval")
	c.Flags().IntVar(&count, "count", 0, "stop after this many refreshes (0: run until interrupted)")
	return c
}

func fetchFamilies(ctx context.Context, c *api.Client) (map[string]*dto.MetricFamily, error) {
	prom, err := c.Metrics(ctx)
	if err != nil {
		return nil, err
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(prom))
	if err != nil {
		return nil, fmt.Errorf("parse metrics: %w", err)
	}
	return fams, nil
}

func counterSum(f map[string]*dto.MetricFamily, name string) float64 {
	s := 0.0
	if fam, ok := f[name]; ok {
		for _, m := range fam.GetMetric() {
			s += m.GetCounter().GetValue()
		}
	}
	return s
}

// histWindow is a histogram's change between two scrapes: bucket upper bounds and counts.
type histWindow struct {
	bounds []float64
	counts []float64 // cumulative
	count  float64
}

func histDelta(now, before map[string]*dto.MetricFamily, name string) histWindow {
	cum := func(f map[string]*dto.MetricFamily) map[float64]float64 {
		out := map[float64]float64{}
		if fam, ok := f[name]; ok {
			for _, m := range fam.GetMetric() {
				for _, b := range m.GetHistogram().GetBucket() {
					out[b.GetUpperBound()] += float64(b.GetCumulativeCount())
				}
				out[math.Inf(1)] += float64(m.GetHistogram().GetSampleCount())
			}
		}
		return out
	}
	a, b := cum(now), cum(before)
	var w histWindow
	for ub := range a {
		w.bounds = append(w.bounds, ub)
	}
	sort.Float64s(w.bounds)
	for _, ub := range w.bounds {
		w.counts = append(w.counts, a[ub]-b[ub])
	}
	if n := len(w.counts); n > 0 {
		w.count = w.counts[n-1]
	}
	return w
}

// quantile estimates a quantile from the window's buckets (the upper bound of the bucket it
// falls in), NaN when the window is empty.
func (w histWindow) quantile(q float64) float64 {
	if w.count == 0 {
		return math.NaN()
	}
	for i, c := range w.counts {
		if c >= q*w.count {
			return w.bounds[i]
		}
	}
	return math.Inf(1)
}

func fmtSeconds(s float64) string {
	switch {
	case math.IsNaN(s):
		return "-"
	case math.IsInf(s, 1):
		return ">max"
	}
	return "≤" + strings.TrimSuffix(time.Duration(s*float64(time.Second)).String(), "0s")
}
