package integration

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshnode/meshnode/node/api"
)

// TestExpertTrainWhileTheDaemonRuns: with the daemon running (it holds the store), `expert
// train` trains in the daemon and streams its epochs to the CLI; the new expert is served and
// answers at once, with no restart. Eval, export, import (into another running daemon,
// keeping the ID) and distill (from the daemon's expert, installing the student) work the
// same way. Ctrl-C on the CLI cancels a training in the daemon, which
// stores nothing and keeps running. (Before, the command failed: "another meshnode process
// (the daemon?) holds it".)
func TestExpertTrainWhileTheDaemonRuns(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "n")
	cli(t, repo, "init", "--config", testConfig(t, 30*time.Second, 10*time.Second))
	d := startDaemon(t, repo)

	out, err := exec.Command(meshnodeBin, "--repo", repo, "expert", "train", "--dataset", "iris", "--hidden", "8",
		"--epochs", "5", "--patience", "10", "--name", "iris-live").CombinedOutput()
	if err != nil {
		t.Fatalf("expert train with the daemon running: %v\n%s", err, out)
	}
	if n := strings.Count(string(out), "epoch "); n != 5 {
		t.Fatalf("the CLI showed %d epoch lines of 5 from the daemon:\n%s", n, out)
	}
	var served struct {
		ID string `json:"id"`
	}
	cliJSON(t, repo, &served, "expert", "serve", "iris-live")
	got, err := apiQuery(d, map[string]any{"expert": served.ID, "vector": []float32{5.1, 3.5, 1.4, 0.2}})
	if err != nil || got.Label == "" {
		t.Fatalf("a query of the expert just trained: %+v, %v", got, err)
	}

	// Eval, export and import go through the daemons too (a relative path is the command's).
	var ev api.EvalReport
	cliJSON(t, repo, &ev, "expert", "eval", "iris-live", "--dataset", "iris")
	if ev.ID != served.ID || ev.Evaluation.Samples == 0 {
		t.Fatalf("eval through the daemon: %+v", ev)
	}
	// API failures carry a code a script can act on.
	client, err := api.DaemonClient(repo)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		call func() error
		code string
	}{
		{func() error { _, err := client.EvalExpert(t.Context(), "no-such-expert", "iris", 0); return err }, api.ErrNotFound.Code},
		{func() error { _, err := client.EvalExpert(t.Context(), "iris-live", "no-such-dataset", 0); return err }, api.ErrBadRequest.Code},
	} {
		var ce *api.CallError
		if err := tc.call(); !errors.As(err, &ce) || ce.Code != tc.code {
			t.Errorf("%v: want code %s", err, tc.code)
		}
	}
	work := t.TempDir()
	export := exec.Command(meshnodeBin, "--repo", repo, "expert", "export", "iris-live", "live.safetensors")
	export.Dir = work
	if out, err := export.CombinedOutput(); err != nil {
		t.Fatalf("export through the daemon: %v\n%s", err, out)
	}
	other := filepath.Join(t.TempDir(), "m")
	cli(t, other, "init", "--config", testConfig(t, 30*time.Second, 10*time.Second))
	startDaemon(t, other)
	imp := exec.Command(meshnodeBin, "--json", "--repo", other, "expert", "import", "live.safetensors")
	imp.Dir = work
	raw, err := imp.Output()
	var rep api.ImportReport
	if err != nil || json.Unmarshal(raw, &rep) != nil || rep.ID != served.ID {
		t.Fatalf("import through the other daemon: %v, %s; want the same ID %s", err, raw, served.ID)
	}
	cli(t, other, "expert", "serve", served.ID)

	// A student distilled from the daemon's expert is installed in its store, signed by it.
	var dist struct {
		ExpertID string `json:"expert_id"`
	}
	cliJSON(t, repo, &dist, "distill", "--teacher", "expert:iris-live", "--domain", "iris", "--params", "100",
		"--dataset", "iris", "--output", filepath.Join(t.TempDir(), "student"))
	cli(t, repo, "expert", "serve", dist.ExpertID)

	// Ctrl-C after the first epoch: the daemon stops the training and stores nothing.
	train := startEndlessTraining(t, repo, "iris-cancelled")
	if err := train.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	train.end(t, 20*time.Second, "canceled")
	c, err := api.DaemonClient(repo)
	if err != nil {
		t.Fatalf("the daemon after the cancelled training: %v", err)
	}
	var hosted []api.HostedExpert
	if err := c.Get(t.Context(), api.PathExperts, &hosted); err != nil || len(hosted) != 2 {
		t.Fatalf("the daemon's experts after the cancelled training: %d, %v; want the trained one and its student", len(hosted), err)
	}
	for _, h := range hosted {
		if h.Name == "iris-cancelled" {
			t.Fatal("the cancelled training stored an expert")
		}
	}
}
