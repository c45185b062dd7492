package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runAnalyzer executes the kimi-analyzer command line in-process.
func runAnalyzer(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := NewAnalyzer(&out, &errOut)
	root.SetArgs(args)
	err = root.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

func TestAnalyzeTinyThroughTheCLI(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tiny")
	if _, _, err := runAnalyzer(t, "testdata-checkpoint", "--tiny", "--output", dir); err != nil {
		t.Fatal(err)
	}
	var planted struct {
		Duplicates  map[string][][]int        `json:"duplicates"`
		Specialists map[string]map[string]int `json:"specialists"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "planted.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &planted); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "analysis")
	stdout, stderr, err := runAnalyzer(t, "--json", "analyze", "--model-path", dir, "--depth", "comprehensive",
		"--calibration", filepath.Join(dir, "calibration.safetensors"), "--output", out)
	if err != nil {
		t.Fatal(err)
	}
	if stderr != "" {
		t.Errorf("--json run printed progress: %q", stderr)
	}
	var rep struct {
		Depth    string `json:"depth"`
		Standard struct {
			Layers []struct {
				Layer    int `json:"layer"`
				Clusters []struct {
					Experts []int `json:"experts"`
				} `json:"clusters"`
			} `json:"layers"`
		} `json:"standard"`
		Routing struct {
			Specialists []struct {
				Layer  int    `json:"layer"`
				Expert int    `json:"expert"`
				Domain string `json:"domain"`
			} `json:"specialists"`
		} `json:"routing"`
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("analyze --json printed %q: %v", stdout, err)
	}
	for _, l := range rep.Standard.Layers {
		var got [][]int
		for _, c := range l.Clusters {
			got = append(got, c.Experts)
		}
		want := planted.Duplicates[itoa(l.Layer)]
		if len(got) != len(want) {
			t.Errorf("layer %d: clusters %v, planted %v", l.Layer, got, want)
		}
	}
	if len(rep.Routing.Specialists) != 18 {
		t.Errorf("%d specialists, planted 18", len(rep.Routing.Specialists))
	}
	for _, s := range rep.Routing.Specialists {
		if planted.Specialists[itoa(s.Layer)][s.Domain] != s.Expert {
			t.Errorf("layer %d %s: expert %d is not the planted specialist", s.Layer, s.Domain, s.Expert)
		}
	}
	for _, f := range []string{"report.json", "summary.md", "similarity_layer1.png", "activation_layer2.png", "experts.csv"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	// The human form, with plain progress lines on a non-terminal stderr.
	stdout, stderr, err = runAnalyzer(t, "analyze", "--model-path", dir, "--depth", "standard")
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"4 layers (1 dense, 3 MoE)", "near-duplicate clusters", "parameters:"} {
		if !strings.Contains(stdout, w) {
			t.Errorf("output lacks %q:\n%s", w, stdout)
		}
	}
	if !strings.Contains(stderr, "scanning layer 3") {
		t.Errorf("no progress lines on stderr: %q", stderr)
	}
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

// The quick analysis of the full-size Kimi-K2 stand-in, through meshnode's root.
func TestAnalyzeKimiK2StandInQuick(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "kimi")
	if _, _, err := runAnalyzer(t, "testdata-checkpoint", "--kimi-k2-standin", "--output", dir); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, "--json", "analyze", "--model-path", dir, "--node-memory", "24GiB")
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Quick struct {
			Params struct {
				RoutedExperts int64 `json:"routed_experts"`
				Total         int64 `json:"total"`
				Activated     int64 `json:"activated"`
			} `json:"params"`
			StoredParams struct {
				Total int64 `json:"total"`
			} `json:"stored_params"`
			ParamsPerExpert int64 `json:"params_per_routed_expert"`
			Placement       struct {
				NodeMemory int64 `json:"node_memory"`
				Nodes      int   `json:"nodes"`
			} `json:"placement"`
		} `json:"quick"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("analyze --json printed %q: %v", out, err)
	}
	q := rep.Quick
	if q.ParamsPerExpert != 3*7168*2048 || q.Params.RoutedExperts != 60*384*3*7168*2048 || q.StoredParams.Total != q.Params.Total {
		t.Errorf("parameters %+v", q)
	}
	if q.Params.Total < 1e12 || q.Params.Activated < 32e9 || q.Params.Activated > 34e9 {
		t.Errorf("total %d, activated %d", q.Params.Total, q.Params.Activated)
	}
	if q.Placement.NodeMemory != 24<<30 || q.Placement.Nodes == 0 {
		t.Errorf("placement %+v", q.Placement)
	}
}

func TestAnalyzeBadInput(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tiny")
	if _, _, err := runAnalyzer(t, "testdata-checkpoint", "--tiny", "--output", dir); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no model path", []string{"analyze"}, "model-path"},
		{"missing folder", []string{"analyze", "--model-path", "/nonexistent"}, "config.json"},
		{"bad depth", []string{"analyze", "--model-path", dir, "--depth", "deep"}, `depth "deep"`},
		{"calibration needs comprehensive", []string{"analyze", "--model-path", dir, "--calibration", "x"}, "--depth comprehensive"},
		{"bad node memory", []string{"analyze", "--model-path", dir, "--node-memory", "lots"}, "--node-memory"},
		{"generator needs a kind", []string{"testdata-checkpoint", "--output", dir}, "--tiny"},
		{"generator needs a folder", []string{"testdata-checkpoint", "--tiny"}, "--output"},
		{"unknown family", []string{"testdata-checkpoint", "--tiny", "--family", "llama", "--output", t.TempDir()}, "llama"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := runAnalyzer(t, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %v, want one line containing %q", err, tc.want)
			}
		})
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"16GiB", 16 << 30, true}, {"16G", 16 << 30, true}, {"64GB", 64e9, true}, {"512MiB", 512 << 20, true},
		{"1.5TiB", 3 << 39, true}, {"1000", 1000, true}, {" 2 gib ", 2 << 30, true},
		{"", 0, false}, {"GiB", 0, false}, {"-1GiB", 0, false}, {"3 parsecs", 0, false}, {"1e30TB", 0, false},
	}
	for _, tc := range tests {
		got, err := parseSize(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseSize(%q) = %d, %v", tc.in, got, err)
		}
	}
}
