package analyze

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshnode/meshnode/distill/ckptgen"
)

func TestWriteOutputs(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	truth, err := ckptgen.Tiny(ctx, dir, ckptgen.TinyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Run(ctx, dir, Options{Depth: DepthComprehensive, Calibration: truth.CalibrationFile})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "analysis")
	files, err := WriteOutputs(ctx, out, rep)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"report.json", "summary.md", "params.csv", "budgets.csv", "placement.csv", "experts.csv", "layers.csv",
		"clusters.csv", "cross_layer.csv", "routing.csv", "routing_layers.csv", "specialists.csv", "coactivation.csv",
		"weight_similarity_layer1.csv", "output_similarity_layer3.csv", "similarity_layer2.png", "activation_layer3.png",
		"norm_hist.png", "stable_rank_hist.png"}
	for _, w := range want {
		if !strings.Contains(strings.Join(files, " "), w) {
			t.Errorf("%s not written (wrote %v)", w, files)
		}
	}
	for _, f := range files {
		path := filepath.Join(out, f)
		switch filepath.Ext(f) {
		case ".png":
			fh, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			img, err := png.Decode(fh)
			fh.Close()
			if err != nil || img.Bounds().Dx() < 100 {
				t.Errorf("%s: not a PNG chart: %v", f, err)
			}
		case ".csv":
			fh, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			rows, err := csv.NewReader(fh).ReadAll()
			fh.Close()
			if err != nil || len(rows) < 2 {
				t.Errorf("%s: %d rows, %v", f, len(rows), err)
			}
		}
	}
	b, err := os.ReadFile(filepath.Join(out, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Format != Format || back.Quick.Params.Total != rep.Quick.Params.Total || len(back.Routing.Specialists) != 18 ||
		len(back.Standard.Experts) != 48 || len(back.Standard.Shared) != 3 {
		t.Errorf("report.json round trip lost data")
	}
	md, _ := os.ReadFile(filepath.Join(out, "summary.md"))
	for _, s := range []string{"# Mixture-of-experts analysis", "## Parameters", "## Expert weights", "## Routing", "{1 6 9}", "reasoning"} {
		if !strings.Contains(string(md), s) {
			t.Errorf("summary.md lacks %q", s)
		}
	}
	rows, _ := csv.NewReader(strings.NewReader(readFile(t, filepath.Join(out, "specialists.csv")))).ReadAll()
	if len(rows) != 19 || rows[0][2] != "domain" {
		t.Errorf("specialists.csv has %d rows", len(rows))
	}
	sim, _ := csv.NewReader(strings.NewReader(readFile(t, filepath.Join(out, "weight_similarity_layer1.csv")))).ReadAll()
	if len(sim) != 17 || len(sim[0]) != 17 || sim[1][1] != "1.0000" {
		t.Errorf("similarity matrix %d×%d, diagonal %q", len(sim), len(sim[0]), sim[1][1])
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestWriteOutputsQuick(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if _, err := ckptgen.Tiny(ctx, dir, ckptgen.TinyOptions{Family: "mixtral"}); err != nil {
		t.Fatal(err)
	}
	rep, err := Run(ctx, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	files, err := WriteOutputs(ctx, t.TempDir(), rep)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, ".png") || strings.HasPrefix(f, "experts") {
			t.Errorf("quick analysis wrote %s", f)
		}
	}
	if len(files) != 5 {
		t.Errorf("quick analysis wrote %v", files)
	}
}
