package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"sort"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// series is the runs of one discovery, by N, and the power law fitted to their traffic.
type series struct {
	discovery string
	runs      []result
	fit       powerLaw
	fitErr    error
}

// report reads the results (one JSON line per run), groups them by the discovery the nodes
// ran, fits each group's per-node discovery traffic to a power law of N, and writes the
// markdown tables and the PNG plot.
func report(results, pngPath, mdPath string) error {
	rs, err := readResults(results)
	if err != nil {
		return err
	}
	if len(rs) == 0 {
		return fmt.Errorf("%s: no results", results)
	}
	var groups []*series
	byName := map[string]*series{}
	for _, r := range rs {
		g, ok := byName[r.Discovery]
		if !ok {
			g = &series{discovery: r.Discovery}
			byName[r.Discovery] = g
			groups = append(groups, g)
		}
		g.runs = append(g.runs, r)
	}
	var b strings.Builder
	for _, g := range groups {
		sort.SliceStable(g.runs, func(i, j int) bool { return g.runs[i].Nodes < g.runs[j].Nodes })
		g.fit, g.fitErr = fitPowerLaw(g.runs)
		writeTable(&b, g)
	}
	if err := os.WriteFile(mdPath, []byte(b.String()), 0o644); err != nil {
		return err
	}
	return writePlot(pngPath, groups)
}

func writeTable(b *strings.Builder, g *series) {
	fmt.Fprintf(b, "### %s\n\n", g.discovery)
	fmt.Fprintf(b, "| N | discovery B/s per node (mean / p99) | gossip B/s | DHT B/s | adverts in /s | connections idle (mean / max) | connections under churn (mean / max) | CPU (cores: per node, all) | heap MiB per node | RSS MiB per node | found p50 / p99 ms (n, not found) | queries answered | query p50 / p99 ms |\n")
	fmt.Fprintf(b, "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, r := range g.runs {
		rate := 0.0
		if r.Queries > 0 {
			rate = 100 * float64(r.Answered) / float64(r.Queries)
		}
		fmt.Fprintf(b, "| %d | %.0f / %.0f | %.0f | %.0f | %.1f | %.1f / %.0f | %.1f / %.0f | %.4f, %.2f%s | %.1f | %.1f | %.0f / %.0f (%d, %d) | %d / %d (%.2f%%) | %.1f / %.0f |\n",
			r.Nodes, r.DiscoveryBytes.Mean, r.DiscoveryBytes.P99, r.GossipBytes.Mean, r.DHTBytes.Mean, r.AdvertsIn.Mean,
			r.IdleConns.Mean, r.IdleConns.Max, r.Conns.Mean, r.Conns.Max, r.CPUPerNode, r.CPUPerNode*float64(r.Nodes), mark(r.saturated(), " (saturated)"), r.HeapMiB, r.RSSMiB, r.FoundMs.P50, r.FoundMs.P99, r.FoundMs.N, r.NotFound,
			r.Answered, r.Queries, rate, r.QueryMs.P50, r.QueryMs.P99)
	}
	b.WriteString("\n")
	for _, r := range g.runs {
		if len(r.QueryFailures) > 0 {
			fmt.Fprintf(b, "- N = %d, failed queries by reason: %s\n", r.Nodes, failureList(r.QueryFailures))
		}
	}
	if g.fitErr == nil {
		fmt.Fprintf(b, "\nFitted to the measured points (least squares on log-log): per-node discovery traffic ≈ %.3g · N^%.2f B/s. "+
			"Extrapolation, not measurement: %.0f B/s at N = 10,000 and %.0f B/s at N = 100,000.\n\n",
			g.fit.a, g.fit.b, g.fit.at(10_000), g.fit.at(100_000))
	} else {
		fmt.Fprintf(b, "\nNo model fitted: %v.\n\n", g.fitErr)
	}
}

func mark(ok bool, s string) string {
	if ok {
		return s
	}
	return ""
}

func failureList(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

func readResults(path string) ([]result, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []result
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var r result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, r)
	}
	return out, sc.Err()
}

// saturated says whether the run used 90% or more of the machine's cores: its numbers are
// then bounded by the machine, not by the mesh, and no model is fitted to them.
func (r result) saturated() bool {
	return r.CPUPerNode*float64(r.Nodes) >= 0.9*float64(r.Cores)
}

// powerLaw is traffic = a · N^b.
type powerLaw struct{ a, b float64 }

func (p powerLaw) at(n float64) float64 { return p.a * math.Pow(n, p.b) }

// fitPowerLaw fits log(traffic) = log(a) + b·log(N) by least squares over the runs' mean
// per-node discovery traffic.
func fitPowerLaw(rs []result) (powerLaw, error) {
	var xs, ys []float64
	for _, r := range rs {
		if r.DiscoveryBytes.Mean > 0 && !r.saturated() {
			xs = append(xs, math.Log(float64(r.Nodes)))
			ys = append(ys, math.Log(r.DiscoveryBytes.Mean))
		}
	}
	if len(xs) < 2 {
		return powerLaw{}, errors.New("fewer than two sizes measured without saturating the machine")
	}
	var mx, my float64
	for i := range xs {
		mx += xs[i]
		my += ys[i]
	}
	mx, my = mx/float64(len(xs)), my/float64(len(xs))
	var sxy, sxx float64
	for i := range xs {
		sxy += (xs[i] - mx) * (ys[i] - my)
		sxx += (xs[i] - mx) * (xs[i] - mx)
	}
	if sxx == 0 {
		return powerLaw{}, errors.New("every run has the same N")
	}
	b := sxy / sxx
	return powerLaw{a: math.Exp(my - b*mx), b: b}, nil
}

func writePlot(path string, groups []*series) error {
	p := plot.New()
	p.Title.Text = "Per-node discovery traffic against mesh size"
	p.X.Label.Text = "nodes (N)"
	p.Y.Label.Text = "bytes/s per node (gossip + DHT, in + out)"
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	p.X.Tick.Marker, p.Y.Tick.Marker = plot.LogTicks{Prec: -1}, plot.LogTicks{Prec: -1}
	drawn := 0
	for i, g := range groups {
		pts := make(plotter.XYs, 0, len(g.runs))
		for _, r := range g.runs {
			if r.DiscoveryBytes.Mean > 0 {
				pts = append(pts, plotter.XY{X: float64(r.Nodes), Y: r.DiscoveryBytes.Mean})
			}
		}
		if len(pts) == 0 {
			continue
		}
		drawn++
		measured, err := plotter.NewScatter(pts)
		if err != nil {
			return err
		}
		measured.Color = plotutil.Color(i)
		measured.Shape = plotutil.Shape(i)
		p.Add(measured)
		p.Legend.Add("measured: "+shortName(g.discovery), measured)
		if g.fitErr == nil {
			model := plotter.NewFunction(g.fit.at)
			model.Color = plotutil.Color(i)
			model.Dashes = []vg.Length{vg.Points(1), vg.Points(3)}
			model.XMin, model.XMax = 50, 100_000
			p.Add(model)
			p.Legend.Add(fmt.Sprintf("fit %.3g·N^%.2f (extrapolated)", g.fit.a, g.fit.b), model)
		}
	}
	if drawn == 0 {
		return errors.New("plot: no run measured any traffic")
	}
	budget := plotter.NewFunction(func(float64) float64 { return 2048 })
	budget.Dashes = []vg.Length{vg.Points(4), vg.Points(4)}
	p.Add(budget, plotter.NewGrid())
	p.Legend.Add("budget 2 KB/s", budget)
	p.X.Min, p.X.Max = 50, 100_000
	p.Y.Min = math.Min(p.Y.Min, 100) // the budget stays in view
	p.Legend.Top = true
	if err := p.Save(7*vg.Inch, 4.5*vg.Inch, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// shortName is a discovery's description up to its first parenthesis or semicolon.
func shortName(d string) string {
	if i := strings.IndexAny(d, ";("); i > 0 {
		return strings.TrimSpace(d[:i])
	}
	return d
}
