package integration

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshnode/meshnode/experts"
	"github.com/meshnode/meshnode/experts/dataset"
	"github.com/meshnode/meshnode/node"
	"github.com/meshnode/meshnode/node/api"
	"github.com/meshnode/meshnode/node/daemon"
)

func textLines(t *testing.T, files []string, n int) []string {
	t.Helper()
	var out []string
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() && len(out) < n {
			if l := strings.TrimSpace(sc.Text()); len(l) >= 20 {
				out = append(out, l)
			}
		}
		fh.Close()
	}
	return out
}

// addTextExpert stores an untrained text expert of one domain (the gate routes by domain; what
// the expert answers does not matter here).
func addTextExpert(t *testing.T, r *node.Repo, name, domain string) {
	t.Helper()
	tf := dataset.TextFeatures{Dim: 256, CharMin: 2, CharMax: 3, WordMin: 1, WordMax: 1}
	n, err := experts.NewNetwork(experts.MLP(256, []int{8}, "relu", 2, experts.OutputSoftmax), 1)
	if err != nil {
		t.Fatal(err)
	}
	m := &experts.Manifest{Name: name, Domains: []string{domain},
		Input:  experts.InputSpec{Kind: experts.InputText, Preprocess: tf.Spec()},
		Output: experts.OutputSpec{Kind: experts.OutputClasses, Labels: []string{"yes", "no"}}}
	st, err := r.Store()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.AddNetwork(context.Background(), m, n, r.Identity); err != nil {
		t.Fatal(err)
	}
}

// TestGatingExpertRoutesBareTexts: a text query naming no domain is routed by the gating
// expert, which learns from the queries that did name their domain — and keeps what it learnt
// across a restart of the daemon.
func TestGatingExpertRoutesBareTexts(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	r, err := node.Init(ctx, filepath.Join(dir, "repo"), node.InitOptions{ConfigFile: testConfig(t, 30e9, 10e9)})
	if err != nil {
		t.Fatal(err)
	}
	addTextExpert(t, r, "go-helper", "coding")
	addTextExpert(t, r, "licence-reader", "legal")
	d, err := daemon.Start(ctx, r, daemon.Options{})
	if err != nil {
		t.Fatal(err)
	}
	goSrc, _ := filepath.Glob(filepath.Join(goroot(t), "src", "bytes", "*.go"))
	code := textLines(t, goSrc, 300)
	legal := textLines(t, []string{"/usr/share/common-licenses/GPL-3", "/usr/share/common-licenses/Apache-2.0"}, 300)
	for i := 0; i < 200; i++ { // queries that name their domain teach the gate
		for _, q := range []api.QueryRequest{{Domain: "coding", Text: code[i]}, {Domain: "legal", Text: legal[i]}} {
			if _, err := d.Query(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
	}
	check := func(d *daemon.Daemon) float64 {
		right := 0
		for i := 200; i < 300; i++ {
			for want, text := range map[string]string{"coding": code[i], "legal": legal[i]} {
				a, err := d.Query(ctx, api.QueryRequest{Text: text})
				if err != nil {
					t.Fatal(err)
				}
				if a.Domain == want && a.Gate != nil && a.Candidate.Domains[0] == want {
					right++
				}
			}
		}
		return float64(right) / 200
	}
	acc := check(d)
	t.Logf("bare text queries routed to the right domain: %.3f", acc)
	if acc < 0.9 {
		t.Fatalf("gating accuracy %.3f, want ≥ 0.9", acc)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	r, err = node.Open(r.Path)
	if err != nil {
		t.Fatal(err)
	}
	d, err = daemon.Start(ctx, r, daemon.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if again := check(d); again < 0.9 {
		t.Fatalf("after a restart the gate routes %.3f right: its feedback was lost", again)
	}
}

// goroot is the Go installation the tests run with (its sources are real code to learn from).
func goroot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Fatalf("go env GOROOT: %v", err)
	}
	return strings.TrimSpace(string(out))
}
