package routing

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// lines reads up to n non-trivial lines (≥ 20 characters) from the files.
func lines(t *testing.T, files []string, n int) []string {
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
	if len(out) < n {
		t.Fatalf("only %d lines in %v", len(out), files)
	}
	return out
}

// TestGateLearnsDomainsFromFeedback trains the gate on real text: lines of Go's own source
// (coding) and of the licences Debian ships (legal), given as feedback, and checks it routes
// held-out lines of each to the right domain.
func TestGateLearnsDomainsFromFeedback(t *testing.T) {
	goSrc, _ := filepath.Glob(filepath.Join(goroot(t), "src", "strings", "*.go"))
	licences := []string{"/usr/share/common-licenses/GPL-3", "/usr/share/common-licenses/Apache-2.0", "/usr/share/common-licenses/GFDL-1.3"}
	code := lines(t, goSrc, 600)
	legal := lines(t, licences, 600)
	g := NewGate()
	g.SetDomains(map[string][]string{"coding": {"go-snippets"}, "legal": {"licence-reader"}})
	for i := 0; i < 300; i++ {
		g.Observe(code[2*i], "coding")
		g.Observe(legal[2*i], "legal")
	}
	right := 0
	for i := 0; i < 300; i++ {
		if d, _, err := g.Choose(context.Background(), code[2*i+1]); err != nil {
			t.Fatal(err)
		} else if d == "coding" {
			right++
		}
		if d, _, _ := g.Choose(context.Background(), legal[2*i+1]); d == "legal" {
			right++
		}
	}
	acc := float64(right) / 600
	t.Logf("gate accuracy on 600 held-out lines: %.3f", acc)
	if acc < 0.9 {
		t.Fatalf("gate accuracy %.3f on held-out lines, want ≥ 0.9", acc)
	}
}

func TestGateWithoutDomains(t *testing.T) {
	if _, _, err := NewGate().Choose(context.Background(), "anything"); err != ErrNoDomains {
		t.Fatalf("got %v, want ErrNoDomains", err)
	}
	g := NewGate()
	g.SetDomains(map[string][]string{"only": nil})
	if d, _, err := g.Choose(context.Background(), "x"); err != nil || d != "only" {
		t.Fatalf("a lone domain: %q %v", d, err)
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
