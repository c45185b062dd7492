package integration

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/meshnode/meshnode/node"
	"github.com/meshnode/meshnode/node/api"
)

// outcome is what a user sees of one command: its output streams and exit code.
type outcome struct {
	stdout, stderr string
	code           int
}

// runIn runs meshnode with args in dir (the command's working folder).
func runIn(t *testing.T, dir string, args ...string) outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, meshnodeBin, args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	o := outcome{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		o.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("meshnode %s: %v", strings.Join(args, " "), err)
	}
	return o
}

// What differs between two runs of one command on two equal repos, by nature: times of day,
// measured durations, rates and memory, the repos' own paths and peer IDs.
var (
	maskTimestamp = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)`)
	maskDuration  = regexp.MustCompile(`\d+(\.\d+)?(e[-+]?\d+)? ?(ns|µs|us|ms|s|MiB/s|q/s|/s)\b`)
	maskTiming    = regexp.MustCompile(`"([a-z_]*(seconds|latency|_ms|_us|_ns|p50|p95|p99|per_second|qps|throughput|memory|bytes_per|rss|heap|alloc)[a-z_0-9]*)": ?-?[0-9.e+-]+`)
	maskPeer      = regexp.MustCompile(`12D3Koo[1-9A-HJ-NP-Za-km-z]+`)
	maskMeasured  = regexp.MustCompile(`heap [0-9.]+ [KMG]?i?B`)
	maskCID       = regexp.MustCompile(`bafy[a-z2-7]+|"signature": "[^"]*"`)
	maskRate      = regexp.MustCompile(`[0-9.]+ samples/s`)
)

func normalize(s string, repos ...string) string {
	for _, r := range repos {
		s = strings.ReplaceAll(s, r, "REPO")
	}
	s = maskTimestamp.ReplaceAllString(s, "TIME")
	s = maskTiming.ReplaceAllString(s, `"$1": T`)
	s = maskDuration.ReplaceAllString(s, "D")
	s = maskMeasured.ReplaceAllString(s, "heap M")
	s = maskRate.ReplaceAllString(s, "R samples/s")
	return maskPeer.ReplaceAllString(s, "PEER")
}

// TestStoreCommandsSameWithAndWithoutDaemon: every command that touches a repo's store prints
// the same and exits the same whether it opens the store itself or goes through the repo's
// running daemon. Two repos hold the same expert (imported from one file, so one ID); each
// command runs on the first without a daemon and on the second through its daemon, with
// --json and without, and on failures too.
func TestStoreCommandsSameWithAndWithoutDaemon(t *testing.T) {
	base := t.TempDir()
	local, remote := filepath.Join(base, "local"), filepath.Join(base, "daemon")
	src := filepath.Join(base, "src")
	for _, r := range []string{local, remote, src} {
		cli(t, r, "init", "--config", testConfig(t, 30*time.Second, 10*time.Second))
	}
	cli(t, src, "expert", "train", "--dataset", "iris", "--hidden", "8", "--epochs", "4", "--name", "iris")
	shared := filepath.Join(base, "iris.safetensors")
	cli(t, src, "expert", "export", "iris", shared)
	cli(t, local, "expert", "import", shared)
	cli(t, remote, "expert", "import", shared)
	startDaemon(t, remote)
	analysis := filepath.Join(base, "analysis")
	tiny := filepath.Join(base, "tiny") // the analysis names the checkpoint by this path
	for _, args := range [][]string{{"testdata-checkpoint", "--tiny", "--output", tiny},
		{"analyze", "--model-path", tiny, "--depth", "comprehensive", "--calibration", filepath.Join(tiny, "calibration.safetensors"), "--output", analysis}} {
		if o := runIn(t, base, args...); o.code != 0 {
			t.Fatalf("meshnode %s: exit %d\n%s", strings.Join(args, " "), o.code, o.stderr)
		}
	}

	// Each repo's commands run in a working folder of their own, with the same files in it.
	work := map[string]string{}
	for _, r := range []string{local, remote} {
		w := filepath.Join(base, "work-"+filepath.Base(r))
		if err := os.MkdirAll(w, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, body := range map[string]string{"public.txt": "a blob anyone may fetch\n", "private.txt": "a blob kept here\n"} {
			if err := os.WriteFile(filepath.Join(w, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		work[r] = w
	}
	publicCID := strings.Fields(cli(t, src, "blob", "put", filepath.Join(work[local], "public.txt"), "--private"))[0]
	const unknownCID = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"

	steps := []struct {
		ok   bool // exits 0
		args []string
	}{
		{true, []string{"expert", "list"}},
		{true, []string{"expert", "inspect", "iris"}},
		{false, []string{"expert", "inspect", "no-such-expert"}},
		{true, []string{"expert", "eval", "iris", "--dataset", "iris"}},
		{false, []string{"expert", "eval", "iris", "--dataset", "no-such-dataset"}},
		{true, []string{"expert", "export", "iris", "out.safetensors"}},
		{true, []string{"expert", "import", "out.safetensors"}},
		{false, []string{"expert", "import", "missing.safetensors"}},
		{true, []string{"blob", "put", "public.txt"}},
		{true, []string{"blob", "put", "private.txt", "--private"}},
		{false, []string{"blob", "put", "missing.txt"}},
		{true, []string{"blob", "unpin", publicCID}},
		{false, []string{"blob", "unpin", publicCID}},
		{true, []string{"blob", "pin", publicCID}},
		{false, []string{"blob", "pin", unknownCID}},
		{false, []string{"blob", "pin", "not-a-cid"}},
		{true, []string{"blob", "gc"}},
		{true, []string{"validate", "--experts-dir", "REPO", "--benchmark", "quick"}},
		{true, []string{"expert", "train", "--dataset", "iris", "--hidden", "4", "--epochs", "2", "--name", "iris-2"}},
		{false, []string{"expert", "train", "--dataset", "no-such-dataset"}},
		{true, []string{"distill", "--teacher", "expert:iris", "--domain", "iris", "--params", "60", "--dataset", "iris", "--epochs", "5", "--output", "student"}},
		{false, []string{"distill", "--teacher", "expert:no-such-expert", "--domain", "iris", "--output", "student"}},
		{true, []string{"generate", "--analysis-dir", analysis, "--domains", "reasoning", "--output", "micro", "--epochs", "3", "--probes", "256"}},
		{false, []string{"generate", "--analysis-dir", "no-such-analysis", "--domains", "reasoning", "--output", "micro"}},
	}
	for _, st := range steps {
		step := st.args
		for _, json := range []bool{false, true} {
			var got [2]outcome
			for i, r := range []string{local, remote} {
				args := []string{"--repo", r}
				if json {
					args = append(args, "--json")
				}
				for _, a := range step {
					args = append(args, strings.ReplaceAll(a, "REPO", r))
				}
				o := runIn(t, work[r], args...)
				o.stdout, o.stderr = normalize(o.stdout, r, work[r]), normalize(o.stderr, r, work[r])
				if step[1] == "train" || step[0] == "distill" || step[0] == "generate" { // each node signs what it makes: signatures and IDs differ
					o.stdout, o.stderr = maskCID.ReplaceAllString(o.stdout, "CID"), maskCID.ReplaceAllString(o.stderr, "CID")
				}
				got[i] = o
			}
			name := strings.Join(step, " ")
			if json {
				name = "--json " + name
			}
			if !json && (got[0].code == 0) != st.ok { // the --json run comes second, on the state the first left
				t.Errorf("meshnode %s without a daemon: exit %d, want success %v\n%s%s", name, got[0].code, st.ok, got[0].stdout, got[0].stderr)
			}
			if got[0] != got[1] {
				t.Errorf("meshnode %s differs with the daemon:\nwithout: exit %d\n%s%s\nwith:    exit %d\n%s%s",
					name, got[0].code, got[0].stdout, got[0].stderr, got[1].code, got[1].stdout, got[1].stderr)
			}
		}
	}

	// A put that streams its progress (as the CLI asks on a terminal) stores the same blob, and
	// its last progress line counts every byte, through the daemon and without one.
	big := filepath.Join(base, "big.bin")
	data := make([]byte, 3<<20+12345)
	for i := range data {
		data[i] = byte(i * 7)
	}
	if err := os.WriteFile(big, data, 0o644); err != nil {
		t.Fatal(err)
	}
	client, err := api.DaemonClient(remote)
	if err != nil {
		t.Fatal(err)
	}
	repo, err := node.Open(local)
	if err != nil {
		t.Fatal(err)
	}
	defer repo.Close()
	var cids []string
	for _, ops := range []api.StoreOps{node.LocalOps{Repo: repo}, client} {
		var last api.BlobPutProgress
		info, err := ops.PutBlob(t.Context(), api.BlobPutRequest{Path: big, Progress: func(p api.BlobPutProgress) { last = p }})
		if err != nil {
			t.Fatalf("%T: put with progress: %v", ops, err)
		}
		if last.Bytes != int64(len(data)) || last.Total != int64(len(data)) || info.Size != int64(len(data)) {
			t.Fatalf("%T: last progress %+v, blob %+v; want %d bytes of %d", ops, last, info, len(data), len(data))
		}
		cids = append(cids, info.CID)
	}
	if cids[0] != cids[1] {
		t.Fatalf("the same file put without and with a daemon: %s and %s", cids[0], cids[1])
	}
}
