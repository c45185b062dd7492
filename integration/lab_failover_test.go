package integration

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/meshnode/meshnode/internal/netlab"
)

// TestLabProviderKilledMidQuery: a node 100 ms (RTT) away from two providers of an expert
// queries it in a steady stream; the provider answering is killed (SIGKILL) while queries are
// in flight. Every query is answered, by the survivor after the kill.
func TestLabProviderKilledMidQuery(t *testing.T) {
	lab := newLab(t, "kill")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// 25 ms one-way on each site's link: 2 × (25 + 25) = 100 ms between any two sites.
	link := netlab.Link{Delay: 25 * time.Millisecond}
	var nodes []*labNode
	for i := range 3 {
		h, err := lab.AddPublic(ctx, fmt.Sprintf("k%d", i), link)
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, initLabNode(t, h, "public"))
	}
	q, p1, p2 := nodes[0], nodes[1], nodes[2]
	input := []float64{5.9, 3.0, 5.1, 1.8}
	id, want := labExpert(t, p1, "iris-kill", input)
	file := t.TempDir() + "/e.safetensors"
	cli(t, p1.repo, "expert", "export", id, file)
	cli(t, p2.repo, "expert", "import", file)

	q.start(t)
	p1.start(t, q.addr(t))
	p2.start(t, q.addr(t))
	for _, p := range []*labNode{p1, p2} {
		if _, err := p.cli("expert", "serve", id); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 30*time.Second, "q sees both providers", func() (bool, error) {
		a, err := q.hasRemote(id, p1.d.PeerID)
		b, err2 := q.hasRemote(id, p2.d.PeerID)
		return a && b, errors.Join(err, err2)
	})

	const total, killAt = 30, 10
	var answeredBy []string
	var latencies []time.Duration
	var victim, survivor *labNode
	for i := range total {
		if i == killAt {
			victim, survivor = p1, p2
			if answeredBy[i-1] == p2.d.PeerID {
				victim, survivor = p2, p1
			}
			// Kill it while the next query is on its way to it.
			go func() {
				time.Sleep(60 * time.Millisecond)
				victim.d.kill()
			}()
		}
		start := time.Now()
		ans, err := q.query(id, input, 10*time.Second)
		if err != nil {
			t.Fatalf("query %d (kill after %d): %v", i, killAt, err)
		}
		latencies = append(latencies, time.Since(start))
		if latencies[i] > time.Second {
			t.Logf("query %d took %s: %+v", i, latencies[i].Round(time.Millisecond), ans.Attempts)
		}
		for j := range want {
			if ans.Output[j] != float32(want[j]) {
				t.Fatalf("query %d: output %v, local evaluation %v", i, ans.Output, want)
			}
		}
		answeredBy = append(answeredBy, ans.Candidate.Peer)
	}
	if slices.Contains(answeredBy[killAt+1:], victim.d.PeerID) {
		t.Fatalf("the killed provider answered after its death: %v", answeredBy)
	}
	if answeredBy[total-1] != survivor.d.PeerID {
		t.Fatalf("last answer by %s, want the survivor %s", answeredBy[total-1], survivor.d.PeerID)
	}
	sorted := slices.Clone(latencies)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	t.Logf("%d queries at 100 ms RTT, provider killed at %d: all answered; CLI round trip p50 %s, max %s, the query at the kill %s",
		total, killAt, sorted[total/2].Round(time.Millisecond), sorted[total-1].Round(time.Millisecond), latencies[killAt].Round(time.Millisecond))
}
