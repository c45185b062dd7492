package analyze

import (
	"context"
	"fmt"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/palette"
	"gonum.org/v1/plot/palette/moreland"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/meshnode/meshnode/distill/checkpoint"
)

// grid adapts a matrix to plotter.GridXYZ: column c, row r is m[r][c],
// clamped to [lo, hi] so rounding (a cosine of 1.0000001) stays in range.
type grid struct {
	m      checkpoint.Matrix
	lo, hi float64
}

func (g grid) Dims() (int, int)   { return g.m.Cols, g.m.Rows }
func (g grid) Z(c, r int) float64 { return min(max(float64(g.m.Data[r*g.m.Cols+c]), g.lo), g.hi) }
func (g grid) X(c int) float64    { return float64(c) }
func (g grid) Y(r int) float64    { return float64(r) }

// heatmap writes m as a PNG heat map with values clamped to [lo, hi];
// xNames, if given, label the columns.
func heatmap(path, title, xLabel, yLabel string, m checkpoint.Matrix, pal palette.Palette, lo, hi float64, xNames []string) error {
	if m.Rows == 0 || m.Cols == 0 {
		return nil
	}
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = xLabel
	p.Y.Label.Text = yLabel
	h := plotter.NewHeatMap(grid{m, lo, hi}, pal)
	h.Min, h.Max = lo, hi
	// Cells drawn one by one stay sharp; big grids are drawn as one image.
	h.Rasterized = m.Rows*m.Cols > 256*256
	p.Add(h)
	if len(xNames) == m.Cols {
		var ticks []plot.Tick
		for i, n := range xNames {
			ticks = append(ticks, plot.Tick{Value: float64(i), Label: n})
		}
		p.X.Tick.Marker = plot.ConstantTicks(ticks)
	}
	side := vg.Length(min(max(m.Cols, m.Rows)*6+240, 1400))
	if err := p.Save(side, side, path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// histogram writes a PNG histogram of values.
func histogram(path, title, xLabel string, values []float64) error {
	if len(values) == 0 {
		return nil
	}
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = xLabel
	p.Y.Label.Text = "experts"
	h, err := plotter.NewHist(plotter.Values(values), min(max(len(values)/4, 5), 60))
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	p.Add(h)
	if err := p.Save(6*vg.Inch, 4*vg.Inch, path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// writePlots draws the report's charts into dir.
func writePlots(ctx context.Context, dir string, rep *Report) error {
	if s := rep.Standard; s != nil {
		div := moreland.SmoothBlueRed().Palette(255)
		for _, l := range s.Layers {
			if err := ctx.Err(); err != nil {
				return err
			}
			name := filepath.Join(dir, fmt.Sprintf("similarity_layer%d.png", l.Layer))
			title := fmt.Sprintf("layer %d: weight cosine similarity of experts", l.Layer)
			if err := heatmap(name, title, "expert", "expert", l.weight, div, -1, 1, nil); err != nil {
				return err
			}
		}
		var norms, ranks []float64
		for _, e := range s.Experts {
			norms = append(norms, e.Norm)
			ranks = append(ranks, (e.GateRank+e.UpRank+e.DownRank)/3)
		}
		if err := histogram(filepath.Join(dir, "norm_hist.png"), "Frobenius norms of routed experts", "‖W‖_F", norms); err != nil {
			return err
		}
		if err := histogram(filepath.Join(dir, "stable_rank_hist.png"), "Stable rank of routed experts (mean of projections)", "stable rank", ranks); err != nil {
			return err
		}
	}
	if r := rep.Routing; r != nil {
		seq := moreland.ExtendedBlackBody().Palette(255)
		for _, l := range r.Layers {
			if err := ctx.Err(); err != nil {
				return err
			}
			m := checkpoint.Matrix{Rows: len(l.Experts), Cols: len(r.Domains), Data: make([]float32, len(l.Experts)*len(r.Domains))}
			for i, e := range l.Experts {
				for d, v := range e.RateByDomain {
					m.Data[i*m.Cols+d] = float32(v)
				}
			}
			name := filepath.Join(dir, fmt.Sprintf("activation_layer%d.png", l.Layer))
			title := fmt.Sprintf("layer %d: routing rate by domain", l.Layer)
			if r.Approximation {
				title = fmt.Sprintf("layer %d: routing rate (embedding approximation)", l.Layer)
			}
			if err := heatmap(name, title, "domain", "expert", m, seq, 0, 1, r.Domains); err != nil {
				return err
			}
		}
	}
	return nil
}
