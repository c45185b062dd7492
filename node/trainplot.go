package node

import (
	"errors"
	"fmt"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/meshnode/meshnode/distill/federated/fedjob"
)

// WriteAccuracyPlot draws a job's held-out accuracy by round as a PNG.
func WriteAccuracyPlot(path, title string, history []fedjob.RoundSummary) error {
	if len(history) == 0 {
		return errors.New("accuracy plot: no round has closed yet")
	}
	pts := make(plotter.XYs, len(history))
	for i, r := range history {
		pts[i].X, pts[i].Y = float64(r.Round), r.Accuracy
	}
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "round"
	p.Y.Label.Text = "held-out accuracy"
	line, points, err := plotter.NewLinePoints(pts)
	if err != nil {
		return fmt.Errorf("accuracy plot: %w", err)
	}
	p.Add(line, points, plotter.NewGrid())
	if err := p.Save(6*vg.Inch, 4*vg.Inch, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// RoundBytes is what a round moved per participant: its update up and the model down (in a
// secure round, every step's messages both ways).
func RoundBytes(r fedjob.RoundSummary) int64 {
	if r.Updates == 0 {
		return 0
	}
	b := r.UpdateBytes/int64(r.Updates) + r.ModelBytes
	if r.Secure != nil { // the roster and the shares dealt to it, downloaded by each participant
		b += r.Secure.SentBytes / int64(r.Updates)
	}
	return b
}
