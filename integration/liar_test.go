package integration

import (
	"context"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshnode/meshnode/mesh"
	"github.com/meshnode/meshnode/mesh/advert"
	"github.com/meshnode/meshnode/mesh/rpc"
	"github.com/meshnode/meshnode/routing"
)

// TestLyingProviderIsBanned: a provider advertises an expert with top quality and no load and
// answers its queries with altered outputs. A node that queries it checks the first answers
// against its own copy of the expert (fetched from an honest provider, verified) and bans the
// liar for that expert within a bounded number of its answers; the honest provider answers
// from then on.
func TestLyingProviderIsBanned(t *testing.T) {
	cfg := testConfig(t, 30*time.Second, 10*time.Second)
	A, C := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "c")
	for _, r := range []string{A, C} {
		cli(t, r, "init", "--config", cfg)
	}
	id := trainTiny(t, C, "iris-true")
	dC := startDaemon(t, C)
	dA := startDaemon(t, A, dC.tcpAddr(t))

	liar := newMeshNode(t, mesh.Config{Bootstrap: []string{dA.tcpAddr(t)}, AdvertRefresh: time.Second, AdvertTTL: 10 * time.Second})
	var lies atomic.Int64
	rpc.Serve(liar.Host, routing.QueryProtocol, func(_ context.Context, _ peer.ID, raw []byte) ([]byte, error) {
		req, err := routing.DecodeRequest(raw)
		if err != nil {
			return nil, err
		}
		lies.Add(1)
		// A confident, wrong answer: all the probability on the last class.
		return routing.EncodeResponse(routing.Response{Expert: req.Expert, Label: "virginica", Output: []float32{0, 0, 1}}), nil
	}, rpc.ServerOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ai, err := peer.AddrInfoFromString(dA.tcpAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := liar.Host.Connect(ctx, *ai); err != nil {
		t.Fatal(err)
	}
	if err := liar.Adverts.Serve(ctx, advert.Service{ID: id, Name: "iris-true", Domains: []string{"iris"}, Quality: 1}); err != nil {
		t.Fatal(err)
	}
	liarID := liar.Host.ID().String()
	eventually(t, 20*time.Second, "A sees the liar's advert", func() bool { return remoteHas(t, A, id, liarID) })

	// Only the liar advertises the expert yet: it answers, and its first answer is checked —
	// and the check waits for a reference copy until the honest provider serves one.
	q := map[string]any{"expert": id, "vector": []float32{5.1, 3.5, 1.4, 0.2}, "timeout_ms": 3000}
	if got, err := apiQuery(dA, q); err != nil || got.Candidate.Peer != liarID {
		t.Fatalf("first query: answered by %+v (%v), want the liar", got.Candidate, err)
	}
	cli(t, C, "expert", "serve", id)
	eventually(t, 20*time.Second, "A sees the honest provider", func() bool { return remoteHas(t, A, id, dC.PeerID) })

	var by []string
	for i := range 40 {
		got, err := apiQuery(dA, q)
		if err != nil {
			t.Fatalf("query %d: %v", i, err)
		}
		by = append(by, got.Candidate.Peer)
		time.Sleep(20 * time.Millisecond) // lets a check finish between queries; pacing only
	}
	told := lies.Load()
	t.Logf("the liar answered %d queries in all; of the 40 after the honest provider appeared, it answered %d",
		told, len(slices.DeleteFunc(slices.Clone(by), func(p string) bool { return p != liarID })))
	if told > 1+routing.FirstChecks+2 {
		t.Errorf("the liar answered %d queries; the first %d answers after a reference exists are checked", told, routing.FirstChecks)
	}
	// A's router tries every provider on its first answers (the ones checked), so the liar is
	// banned whichever provider answers first: by the check of its first answer (which waits
	// for a reference until the honest provider serves one) or by those of its next answers.
	for i, p := range by[len(by)-10:] {
		if p != dC.PeerID {
			t.Fatalf("query %d after the ban answered by %s, want the honest provider", len(by)-10+i, p)
		}
	}
	if banned := metricValue(t, A, `meshnode_query_spot_checks_total{outcome="banned"}`); banned < 1 {
		t.Fatalf("the liar answered %d queries and spot checks banned %v providers", told, banned)
	}
}
