package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// run executes the meshnode command line in-process and returns stdout and the error.
func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := NewMeshnode(&out, &errOut)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, err := run(t, args...)
	if err != nil {
		t.Fatalf("meshnode %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func TestExpertLifecycleThroughTheCLI(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "n1")
	mustRun(t, "--repo", repo, "init", "--preset", "fast")
	var train struct {
		ID   string `json:"id"`
		Test struct {
			Accuracy float64 `json:"accuracy"`
		} `json:"test"`
	}
	out := mustRun(t, "--repo", repo, "--json", "expert", "train", "--dataset", "wine", "--hidden", "16",
		"--epochs", "80", "--lr", "0.01", "--batch-size", "16", "--seed", "2")
	if err := json.Unmarshal([]byte(out), &train); err != nil {
		t.Fatalf("train --json printed %q: %v", out, err)
	}
	if train.Test.Accuracy < 0.9 {
		t.Fatalf("wine test accuracy %.3f, want ≥ 0.9", train.Test.Accuracy)
	}
	var list []struct {
		ID, Name string
		Params   int
	}
	if err := json.Unmarshal([]byte(mustRun(t, "--repo", repo, "--json", "expert", "list")), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ID != train.ID || list[0].Name != "wine" || list[0].Params != 13*16+16+16*3+3 {
		t.Fatalf("list: %+v", list)
	}
	insp := mustRun(t, "--repo", repo, "expert", "inspect", "wine")
	for _, want := range []string{train.ID, "13-16(relu)-3 softmax", "signature    valid", "class_0"} {
		if !strings.Contains(insp, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, insp)
		}
	}
	var q struct {
		Label  string    `json:"label"`
		Output []float64 `json:"output"`
		Expert string    `json:"expert"`
	}
	vec := "[13.2,1.78,2.14,11.2,100,2.65,2.76,0.26,1.28,4.38,1.05,3.4,1050]" // a class_0 wine
	if err := json.Unmarshal([]byte(mustRun(t, "--repo", repo, "--json", "query", "--expert", train.ID, "--vector", vec)), &q); err != nil {
		t.Fatal(err)
	}
	if q.Label != "class_0" || len(q.Output) != 3 || q.Expert != train.ID {
		t.Fatalf("query: %+v", q)
	}
	file := filepath.Join(t.TempDir(), "wine.safetensors")
	mustRun(t, "--repo", repo, "expert", "export", "wine", file)
	repo2 := filepath.Join(t.TempDir(), "n2")
	mustRun(t, "--repo", repo2, "init")
	if out := mustRun(t, "--repo", repo2, "expert", "import", file); !strings.Contains(out, train.ID) {
		t.Fatalf("import on another node did not keep the ID %s:\n%s", train.ID, out)
	}
	ev := mustRun(t, "--repo", repo2, "expert", "eval", train.ID, "--dataset", "wine")
	if !strings.Contains(ev, "accuracy") || !strings.Contains(ev, "recall") {
		t.Fatalf("eval output: %s", ev)
	}
}

func TestBadInputIsOneLineError(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "n1")
	mustRun(t, "--repo", repo, "init")
	mustRun(t, "--repo", repo, "expert", "train", "--dataset", "iris", "--hidden", "4", "--epochs", "1")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--repo", filepath.Join(t.TempDir(), "none"), "expert", "list"}, "no meshnode repo"},
		{[]string{"--repo", repo, "expert", "train", "--dataset", "imagenet"}, "unknown dataset"},
		{[]string{"--repo", repo, "query", "--expert", "iris", "--vector", "[1,2]"}, "dimension 2"},
		{[]string{"--repo", repo, "query", "--expert", "iris", "--vector", "[1,2"}, "--vector"},
		{[]string{"--repo", repo, "query", "--expert", "iris"}, "exactly one"},
		{[]string{"--repo", repo, "query", "--expert", "nope", "--vector", "[1,2,3,4]"}, "no hosted expert"},
		{[]string{"--repo", repo, "expert", "import", filepath.Join(t.TempDir(), "missing.safetensors")}, "no such file"},
		{[]string{"--repo", repo, "init"}, "already exists"},
		{[]string{"--repo", filepath.Join(t.TempDir(), "n2"), "init", "--preset", "turbo"}, "unknown preset"},
		{[]string{"config", "--preset", "turbo"}, "unknown preset"},
		{[]string{"--repo", repo, "expert", "train", "--dataset", "iris", "--epochs", "-1"}, "negative"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args[2:], " "), func(t *testing.T) {
			_, err := run(t, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("got %v, want a one-line error mentioning %q", err, tc.want)
			}
		})
	}
}

// TestEveryCommandHasHelpWithExample walks both command trees.
func TestEveryCommandHasHelpWithExample(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Name() != "help" && c.Name() != "completion" && c.Runnable() && c.Example == "" {
			t.Errorf("%q has no example in its help", c.CommandPath())
		}
		if c.Short == "" && c.Name() != "help" {
			t.Errorf("%q has no short description", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	var buf bytes.Buffer
	walk(NewMeshnode(&buf, &buf))
	walk(NewAnalyzer(&buf, &buf))
}
