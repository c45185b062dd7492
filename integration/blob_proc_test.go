package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshnode/meshnode/node/api"
)

// TestBlobAndExpertExchangeThroughDaemons: blob put on A, blob get on C (through B's mesh) gives
// the same bytes; expert fetch on C installs A's expert, which C then answers with locally; gc
// on C removes the unpinned blob but keeps the hosted expert; pin keeps a blob through gc; A
// announces what it keeps again every mesh.reprovide_interval.
func TestBlobAndExpertExchangeThroughDaemons(t *testing.T) {
	cfg := testConfig(t, 30*time.Second, 10*time.Second)
	f, err := os.OpenFile(cfg, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("  reprovide_interval: 2s\n"); err != nil { // under mesh:
		t.Fatal(err)
	}
	f.Close()
	repos := make([]string, 3)
	for i := range repos {
		repos[i] = filepath.Join(t.TempDir(), "n")
		cli(t, repos[i], "init", "--config", cfg)
	}
	id := trainTiny(t, repos[0], "iris-fetch")
	d := make([]*daemonProc, 3)
	d[0] = startDaemon(t, repos[0])
	d[1] = startDaemon(t, repos[1], d[0].tcpAddr(t))
	d[2] = startDaemon(t, repos[2], d[1].tcpAddr(t))

	data := make([]byte, 3<<20+12345) // four chunks: a real UnixFS DAG
	rng := rand.New(rand.NewPCG(9, 9))
	for i := range data {
		data[i] = byte(rng.UintN(256))
	}
	src := filepath.Join(t.TempDir(), "data.bin")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	var put struct {
		CID  string `json:"cid"`
		Size int64  `json:"size"`
	}
	cliJSON(t, repos[0], &put, "blob", "put", src)
	if put.Size != int64(len(data)) {
		t.Fatalf("put reports %d bytes", put.Size)
	}
	out := filepath.Join(t.TempDir(), "copy.bin")
	cli(t, repos[2], "blob", "get", put.CID, "--output", out, "--timeout-ms", "20000")
	got, err := os.ReadFile(out)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("fetched blob differs from the original (%d vs %d bytes, %v)", len(got), len(data), err)
	}

	fam := metricFamilies(t, d[2])
	if h := fam["meshnode_blob_fetch_duration_seconds"]; h == nil || h.GetMetric()[0].GetHistogram().GetSampleCount() < 1 {
		t.Errorf("C's metrics count no blob fetch: %v", h)
	}
	if r := fam["meshnode_blob_received_bytes_total"]; r == nil || r.GetMetric()[0].GetCounter().GetValue() < float64(len(data)) {
		t.Errorf("C's metrics count fewer received bytes than the blob's %d: %v", len(data), r)
	}
	// C announces the blob it fetched, after the fetch has returned (C keeps nothing yet, so
	// this is not its reprovider).
	eventually(t, 20*time.Second, "C announces the fetched blob", func() bool { return provided(t, d[2]) >= 1 })

	// B fetches it too, through the API with progress: progress lines, then the result.
	c, err := api.DaemonClient(repos[1])
	if err != nil {
		t.Fatal(err)
	}
	var progress, results int
	err = c.PostEvents(context.Background(), api.PathBlobFetch, map[string]any{"cid": put.CID, "progress": true, "timeout_ms": 20000},
		func(line []byte) error {
			var ev api.FetchEvent
			if err := json.Unmarshal(line, &ev); err != nil {
				return err
			}
			switch {
			case ev.Progress != nil:
				progress++
				if ev.Progress.Total != 0 && ev.Progress.Total != int64(len(data)) {
					t.Errorf("progress reports a total of %d bytes, want %d", ev.Progress.Total, len(data))
				}
			case ev.Result != nil:
				results++
				if ev.Result.Size != int64(len(data)) {
					t.Errorf("result reports %d bytes, want %d", ev.Result.Size, len(data))
				}
			default:
				t.Errorf("fetch with progress failed: %s", ev.Error)
			}
			return nil
		})
	if err != nil || progress == 0 || results != 1 {
		t.Fatalf("fetch with progress: %d progress lines, %d results, %v", progress, results, err)
	}

	// An expert moves the same way; C then hosts it and answers from it without the network
	// (C asked A for it before, so its view of what it hosts must update at once).
	var ans struct {
		Candidate struct {
			Local bool `json:"local"`
		} `json:"candidate"`
	}
	cli(t, repos[0], "expert", "serve", id)
	eventually(t, 20*time.Second, "C sees A's expert", func() bool { return remoteHas(t, repos[2], id, d[0].PeerID) })
	cliJSON(t, repos[2], &ans, "query", "--expert", id, "--vector", "[5.9,3.0,5.1,1.8]")
	if ans.Candidate.Local {
		t.Fatal("before fetching, C claims to answer locally")
	}
	cli(t, repos[2], "expert", "fetch", id, "--timeout-ms", "20000")
	cliJSON(t, repos[2], &ans, "query", "--expert", id, "--vector", "[5.9,3.0,5.1,1.8]")
	if !ans.Candidate.Local {
		t.Fatal("after expert fetch, C does not answer with its own copy")
	}

	// gc on C: the fetched blob is not pinned and goes; the hosted expert stays.
	var gc struct {
		Removed int `json:"removed_blocks"`
	}
	cliJSON(t, repos[2], &gc, "blob", "gc")
	if gc.Removed < 4 {
		t.Fatalf("gc removed %d blocks, want the fetched blob's 5", gc.Removed)
	}
	cliJSON(t, repos[2], &ans, "query", "--expert", id, "--vector", "[5.9,3.0,5.1,1.8]")
	if !ans.Candidate.Local {
		t.Fatal("gc removed a hosted expert")
	}
	// Fetch again, pin, gc: the pinned blob stays.
	cli(t, repos[2], "blob", "get", put.CID, "--output", out)
	cli(t, repos[2], "blob", "pin", put.CID)
	cliJSON(t, repos[2], &gc, "blob", "gc")
	if gc.Removed != 0 {
		t.Fatalf("gc removed %d blocks of a pinned blob", gc.Removed)
	}
	// A reprovides what it keeps (the pinned blob, the expert's manifest and weights) on its own.
	before := provided(t, d[0])
	eventually(t, 20*time.Second, "A reprovides its three kept roots", func() bool { return provided(t, d[0]) >= before+3 })

	// Unavailable: a CID nobody has fails with a clear error after the timeout.
	_, err = cliErr(repos[2], "blob", "get", "bafkreidummyrmmmmjmxnkwq6jfmuuf3ho5ifvgwp4zbdvo6hnnmbu6ixhy", "--timeout-ms", "1500")
	if err == nil || !strings.Contains(err.Error(), "is unavailable") {
		t.Fatalf("an unavailable blob: %v", err)
	}
}

// provided is how many provider records d has announced successfully.
func provided(t *testing.T, d *daemonProc) float64 {
	t.Helper()
	for _, m := range metricFamilies(t, d)["meshnode_blob_provides_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "outcome" && l.GetValue() == "ok" {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
