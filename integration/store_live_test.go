package integration

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshnode/meshnode/mesh/advert"
	"github.com/meshnode/meshnode/node/api"
)

// TestNewExpertsServedWithoutARestart: A serves an expert and B queries it without pause
// while A trains a second expert, imports a third and distils a fourth, all through A's running
// daemon. None of B's queries fails, B never loses A's first advert, and each new expert is
// served and answers B's queries, with no restart of A.
func TestNewExpertsServedWithoutARestart(t *testing.T) {
	cfg := testConfig(t, 30*time.Second, 10*time.Second)
	repoA, repoB, src := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b"), filepath.Join(t.TempDir(), "src")
	for _, r := range []string{repoA, repoB, src} {
		cli(t, r, "init", "--config", cfg)
	}
	first := trainTiny(t, repoA, "iris-first")
	third := trainTiny(t, src, "iris-third")
	thirdFile := filepath.Join(t.TempDir(), "third.safetensors")
	cli(t, src, "expert", "export", third, thirdFile)

	a := startDaemon(t, repoA)
	b := startDaemon(t, repoB, a.tcpAddr(t))
	cli(t, repoA, "expert", "serve", first)
	eventually(t, 20*time.Second, "B sees A's first expert", func() bool { return remoteHas(t, repoB, first, a.PeerID) })

	apiB, err := api.DaemonClient(repoB)
	if err != nil {
		t.Fatal(err)
	}
	input := []float32{5.9, 3.0, 5.1, 1.8}
	ctx, cancel := context.WithCancel(context.Background())
	var queries, polls atomic.Int64
	var mu sync.Mutex
	var failures []string
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(failures) < 10 {
			failures = append(failures, fmt.Sprintf(format, args...))
		}
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // B asks A's first expert, one query after another
		defer wg.Done()
		for ctx.Err() == nil {
			got, err := apiQuery(b, map[string]any{"expert": first, "vector": input, "timeout_ms": 5000})
			switch {
			case err != nil:
				fail("query %d: %v", queries.Load(), err)
			case got.Candidate.Peer != a.PeerID || got.Label == "":
				fail("query %d answered by %+v", queries.Load(), got.Candidate)
			}
			queries.Add(1)
			time.Sleep(20 * time.Millisecond)
		}
	}()
	go func() { // and watches its advert
		defer wg.Done()
		for ctx.Err() == nil {
			var entries []advert.Entry
			if err := apiB.Get(ctx, api.PathRemote, &entries); err != nil {
				if ctx.Err() == nil {
					fail("B's remote table: %v", err)
				}
				return
			}
			found := false
			for _, e := range entries {
				found = found || (e.ID == first && e.Provider == a.PeerID)
			}
			if !found {
				fail("poll %d: B's table lost A's first expert", polls.Load())
			}
			polls.Add(1)
			time.Sleep(50 * time.Millisecond)
		}
	}()

	var second, fourth struct {
		ID       string `json:"id"`
		ExpertID string `json:"expert_id"`
	}
	t0 := time.Now()
	during := func(job func()) int64 { // how many of B's queries ran during job
		before := queries.Load()
		job()
		return queries.Load() - before
	}
	var imported api.ImportReport
	counts := []int64{
		during(func() {
			cliJSON(t, repoA, &second, "expert", "train", "--dataset", "digits", "--hidden", "32", "--epochs", "150", "--patience", "150", "--name", "digits-second")
		}),
		during(func() { cliJSON(t, repoA, &imported, "expert", "import", thirdFile) }),
	}
	counts = append(counts, during(func() {
		cliJSON(t, repoA, &fourth, "distill", "--teacher", "expert:iris-first", "--domain", "iris", "--params", "100",
			"--dataset", "iris", "--output", filepath.Join(t.TempDir(), "student"))
	}))
	if imported.ID != third || second.ID == "" || fourth.ExpertID == "" {
		t.Fatalf("through A's daemon: trained %q, imported %q (want %s), distilled %q", second.ID, imported.ID, third, fourth.ExpertID)
	}
	work := time.Since(t0)
	for _, id := range []string{second.ID, third, fourth.ExpertID} {
		cli(t, repoA, "expert", "serve", id)
	}
	digit := make([]float32, 64)
	for _, x := range []struct {
		id    string
		input []float32
	}{{second.ID, digit}, {third, input}, {fourth.ExpertID, input}} {
		id := x.id
		eventually(t, 20*time.Second, "B sees "+id, func() bool { return remoteHas(t, repoB, id, a.PeerID) })
		got, err := apiQuery(b, map[string]any{"expert": id, "vector": x.input, "timeout_ms": 5000})
		if err != nil || got.Candidate.Peer != a.PeerID || got.Label == "" {
			t.Fatalf("B's query of A's new expert %s: %+v, %v", id, got.Candidate, err)
		}
	}
	cancel()
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("while A's store grew, of %d queries and %d polls from B:\n%s", queries.Load(), polls.Load(), strings.Join(failures, "\n"))
	}
	if counts[0] < 5 {
		t.Fatalf("only %d of B's queries ran while A trained: the test did not overlap them", counts[0])
	}
	t.Logf("%d queries and %d polls from B, none failed; during A's training, import and distillation (%s): %v queries",
		queries.Load(), polls.Load(), work.Round(time.Millisecond), counts)
}

// TestJobInterruptedByADaemonStop: a daemon that stops (SIGTERM) or dies (SIGKILL) while it
// trains for a command: the command exits with an error that says the job was interrupted,
// and the restarted daemon's store holds no part of the expert.
func TestJobInterruptedByADaemonStop(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "n")
	cli(t, repo, "init", "--config", testConfig(t, 30*time.Second, 10*time.Second))
	for _, how := range []string{"SIGTERM", "SIGKILL"} {
		d := startDaemon(t, repo)
		name := "half-" + strings.ToLower(how)
		train := startEndlessTraining(t, repo, name)
		if how == "SIGTERM" {
			d.stop(t)
		} else {
			d.kill()
		}
		said := train.end(t, 30*time.Second, "interrupted")
		t.Logf("%s: the command said: %s", how, strings.TrimSpace(said))
		again := startDaemon(t, repo)
		var hosted []struct {
			Name string `json:"name"`
		}
		cliJSON(t, repo, &hosted, "expert", "list")
		for _, h := range hosted {
			if strings.HasPrefix(h.Name, "half-") {
				t.Fatalf("%s: the restarted daemon hosts %q from the interrupted training", how, h.Name)
			}
		}
		again.stop(t)
	}
}
