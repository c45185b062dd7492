package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshnode/meshnode/mesh"
	"github.com/meshnode/meshnode/mesh/advert"
	"github.com/meshnode/meshnode/routing"
)

// apiQuery posts a query to a daemon's API and decodes the answer.
func apiQuery(d *daemonProc, q map[string]any) (answer, error) {
	tok, err := os.ReadFile(filepath.Join(d.repo, "api.token"))
	if err != nil {
		return answer{}, err
	}
	body, _ := json.Marshal(q)
	req, _ := http.NewRequest(http.MethodPost, d.API+"/api/v1/query", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	var a answer
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		_ = json.NewDecoder(resp.Body).Decode(&e)
		return a, fmt.Errorf("status %d: %s", resp.StatusCode, e.Error)
	}
	return a, json.NewDecoder(resp.Body).Decode(&a)
}

type answer struct {
	Label     string    `json:"Label"`
	Output    []float32 `json:"Output"`
	Candidate struct {
		Expert string `json:"expert"`
		Peer   string `json:"peer"`
		Local  bool   `json:"local"`
	} `json:"candidate"`
	Attempts []struct {
		Peer  string `json:"peer"`
		Error string `json:"error"`
	} `json:"attempts"`
}

// TestQueriesAcrossFourDaemons: node A asks for an expert hosted only on C and D. The answer is
// what evaluating the expert locally gives; killing the answering provider mid-run loses no
// query; a provider that accepts and never answers is routed around by deadline; bad input from
// a remote caller gets a clear error and leaves the serving node healthy.
func TestQueriesAcrossFourDaemons(t *testing.T) {
	cfg := testConfig(t, 30*time.Second, 10*time.Second)
	repos := make([]string, 4)
	for i := range repos {
		repos[i] = filepath.Join(t.TempDir(), "n")
		cli(t, repos[i], "init", "--config", cfg)
	}
	a, c, dd := 0, 2, 3
	id := trainTiny(t, repos[c], "iris-q")
	file := filepath.Join(t.TempDir(), "iris-q.safetensors")
	cli(t, repos[c], "expert", "export", id, file)
	cli(t, repos[dd], "expert", "import", file)
	input := []float64{5.9, 3.0, 5.1, 1.8}
	want := localAnswer(t, file, input)

	d := make([]*daemonProc, 4)
	d[0] = startDaemon(t, repos[0])
	for i := 1; i < 4; i++ {
		d[i] = startDaemon(t, repos[i], d[i-1].tcpAddr(t))
	}
	cli(t, repos[c], "expert", "serve", id)
	cli(t, repos[dd], "expert", "serve", id)
	eventually(t, 20*time.Second, "A sees both providers", func() bool {
		return remoteHas(t, repos[a], id, d[c].PeerID) && remoteHas(t, repos[a], id, d[dd].PeerID)
	})

	q := map[string]any{"expert": id, "vector": input, "timeout_ms": 3000}
	got, err := apiQuery(d[a], q)
	if err != nil {
		t.Fatal(err)
	}
	if got.Candidate.Local || (got.Candidate.Peer != d[c].PeerID && got.Candidate.Peer != d[dd].PeerID) {
		t.Fatalf("answered by %+v, want C or D", got.Candidate)
	}
	for i := range want {
		if got.Output[i] != float32(want[i]) {
			t.Fatalf("remote output %v, local evaluation %v", got.Output, want)
		}
	}

	// By name: A hosts nothing, so the name is looked up in its remote table.
	if byName, err := apiQuery(d[a], map[string]any{"expert": "iris-q", "vector": input}); err != nil || byName.Candidate.Expert != id {
		t.Fatalf("query by a remote expert's name: %+v %v", byName.Candidate, err)
	}

	// Bad input from a remote caller: a clear error; the serving node stays healthy.
	if _, err := apiQuery(d[a], map[string]any{"expert": id, "vector": []float32{1, 2}}); err == nil || !strings.Contains(err.Error(), "dimension 2") {
		t.Fatalf("wrong dimension: %v", err)
	}
	if _, err := apiQuery(d[a], map[string]any{"expert": id, "vector": input}); err != nil {
		t.Fatalf("after bad input, a good query failed: %v", err)
	}

	// Kill the provider that answers, in the middle of a run of queries: none may fail.
	first := got.Candidate.Peer
	victim, survivor := d[c], d[dd]
	if first == d[dd].PeerID {
		victim, survivor = d[dd], d[c]
	}
	var mu sync.Mutex
	var answeredBy []string
	for i := 0; i < 60; i++ {
		if i == 20 {
			victim.kill()
		}
		got, err := apiQuery(d[a], q)
		if err != nil {
			t.Fatalf("query %d (provider killed at 20): %v", i, err)
		}
		mu.Lock()
		answeredBy = append(answeredBy, got.Candidate.Peer)
		mu.Unlock()
	}
	if answeredBy[59] != survivor.PeerID {
		t.Fatalf("after the kill, queries are answered by %s, want the survivor %s", answeredBy[59], survivor.PeerID)
	}

	// A stalled provider: advertises the expert with top quality, accepts query streams and
	// never answers. Its claim does not outrank what A measured of the survivor (the quality is
	// the providers' lower median), and when A tries it, the attempt's deadline or a hedge to
	// the survivor routes around it: no query fails and the staller answers none.
	// (routing's TestDispatch* cover the deadline itself with a staller ranked first.)
	staller := newStaller(t, d[a], id)
	eventually(t, 20*time.Second, "A sees the staller's advert", func() bool {
		return remoteHas(t, repos[a], id, staller.Host.ID().String())
	})
	tried := 0
	for i := range 5 {
		start := time.Now()
		got, err = apiQuery(d[a], q)
		if err != nil {
			t.Fatalf("query %d with a stalled provider: %v", i, err)
		}
		if got.Candidate.Peer != survivor.PeerID {
			t.Fatalf("query %d answered by %s, want the survivor", i, got.Candidate.Peer)
		}
		for _, at := range got.Attempts {
			if at.Peer == staller.Host.ID().String() {
				tried++
			}
		}
		t.Logf("query %d with a stalled provider answered in %s (attempts %+v)", i, time.Since(start).Round(time.Millisecond), got.Attempts)
	}
	t.Logf("the staller was tried in %d attempts of 5 queries and answered none", tried)

	// The operator's view: metrics export and the monitor see the queries.
	var samples []struct {
		Name   string            `json:"name"`
		Labels map[string]string `json:"labels"`
		Value  float64           `json:"value"`
	}
	cliJSONRaw(t, repos[a], &samples, "metrics", "export", "--format", "json")
	routedOK := 0.0
	for _, s := range samples {
		if s.Name == "meshnode_query_duration_seconds_count" && s.Labels["outcome"] == "ok" {
			routedOK += s.Value
		}
	}
	if routedOK < 62 {
		t.Fatalf("metrics count %v successful routed queries, the test made at least 62", routedOK)
	}
	mon := cli(t, repos[a], "monitor", "--count", "2", "--interval", "200ms")
	for _, want := range []string{"peers ", "queries routed", survivor.PeerID, "balance 1000 credits"} {
		if !strings.Contains(mon, want) {
			t.Fatalf("monitor output lacks %q:\n%s", want, mon)
		}
	}
}

// cliJSONRaw runs a command whose output is JSON without --json (such as metrics export).
func cliJSONRaw(t *testing.T, repo string, out any, args ...string) {
	t.Helper()
	s := cli(t, repo, args...)
	if err := json.Unmarshal([]byte(s), out); err != nil {
		t.Fatalf("meshnode %s printed %q: %v", strings.Join(args, " "), s, err)
	}
}

// newStaller is an in-process mesh node that advertises an expert and swallows queries.
func newStaller(t *testing.T, bootstrap *daemonProc, id string) *mesh.Node {
	t.Helper()
	n := newMeshNode(t, mesh.Config{Bootstrap: []string{bootstrap.tcpAddr(t)}, AdvertRefresh: time.Second, AdvertTTL: 10 * time.Second})
	var held []network.Stream
	var mu sync.Mutex
	n.Host.SetStreamHandler(routing.QueryProtocol, func(s network.Stream) {
		mu.Lock()
		held = append(held, s) // read nothing, answer nothing
		mu.Unlock()
	})
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, s := range held {
			s.Reset()
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ai, err := peer.AddrInfoFromString(bootstrap.tcpAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Host.Connect(ctx, *ai); err != nil {
		t.Fatal(err)
	}
	if err := n.Adverts.Serve(ctx, advert.Service{ID: id, Name: "iris-q", Domains: []string{"iris"}, Quality: 1}); err != nil {
		t.Fatal(err)
	}
	return n
}
