package node

import (
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/meshnode/meshnode/distill/federated/fedjob"
)

func TestWriteAccuracyPlot(t *testing.T) {
	path := filepath.Join(t.TempDir(), "acc.png")
	if err := WriteAccuracyPlot(path, "job", nil); err == nil {
		t.Fatal("a plot of no rounds should be an error")
	}
	h := []fedjob.RoundSummary{{Round: 1, Accuracy: 0.5}, {Round: 2, Accuracy: 0.7}, {Round: 3, Accuracy: 0.8}}
	if err := WriteAccuracyPlot(path, "job", h); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("the plot is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() < 300 || b.Dy() < 200 {
		t.Fatalf("plot of %v pixels", b)
	}
	if got := RoundBytes(fedjob.RoundSummary{Updates: 2, UpdateBytes: 200, ModelBytes: 50}); got != 150 {
		t.Fatalf("RoundBytes = %d, want 100 up + 50 down", got)
	}
}
