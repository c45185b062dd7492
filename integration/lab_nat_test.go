package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshnode/meshnode/experts"
	"github.com/meshnode/meshnode/internal/netlab"
)

// TestLabNATTraversal runs daemons in a network lab: four public nodes (one /24 each, 10 ms
// one-way to the lab's internet router) and home nodes behind NATs of two behaviours. A home
// node finds out by AutoNAT that it is private, reserves a relay slot on a public node and
// advertises the relayed address. A query from one home node to an expert on another is
// answered through the relay, and hole punching (DCUtR) then gives a direct connection
// between homes behind endpoint-independent NATs, over which the next query is answered and a
// blob is fetched whole; behind symmetric NATs the query is still answered, through the relay.
func TestLabNATTraversal(t *testing.T) {
	lab := newLab(t, "nat")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	link := netlab.Link{Delay: 10 * time.Millisecond}

	var public []*labNode
	for i := range 4 {
		h, err := lab.AddPublic(ctx, fmt.Sprintf("p%d", i), link)
		if err != nil {
			t.Fatal(err)
		}
		// A bootstrap node's operator knows it is public, and says so.
		public = append(public, initLabNode(t, h, "public"))
	}
	home := map[string]*labNode{}
	for _, s := range []struct {
		name string
		kind netlab.NATKind
	}{{"a", netlab.EndpointIndependent}, {"b", netlab.EndpointIndependent}, {"c", netlab.Symmetric}, {"d", netlab.Symmetric}} {
		nat, err := lab.AddNAT(ctx, "nat"+s.name, s.kind, link)
		if err != nil {
			t.Fatal(err)
		}
		h, err := nat.AddHost(ctx, "h"+s.name)
		if err != nil {
			t.Fatal(err)
		}
		home[s.name] = initLabNode(t, h, "auto")
	}

	// The experts: one on b (behind an endpoint-independent NAT), one on d (symmetric).
	input := []float64{5.9, 3.0, 5.1, 1.8}
	idB, wantB := labExpert(t, home["b"], "iris-b", input)
	idD, wantD := labExpert(t, home["d"], "iris-d", input)

	public[0].start(t)
	seed := public[0].addr(t)
	for _, n := range public[1:] {
		n.start(t, seed)
	}
	var boot []string
	for _, n := range public {
		boot = append(boot, n.addrs()...)
	}
	for _, k := range []string{"a", "b", "c", "d"} {
		home[k].start(t, boot...)
	}

	// AutoNAT: every home node learns it is private and takes a relayed address.
	for _, k := range []string{"a", "b", "c", "d"} {
		n := home[k]
		took := waitFor(t, 90*time.Second, n.name+" private with a relayed address", func() (bool, error) {
			st, err := n.status()
			relayed := strings.Contains(strings.Join(st.Addrs, " "), "/p2p-circuit")
			return err == nil && st.Reachability == "Private" && relayed, err
		})
		t.Logf("%s: private with a relayed address after %s", n.name, took.Round(time.Millisecond))
	}
	for _, n := range public {
		if st, err := n.status(); err != nil || st.Reachability != "Public" {
			t.Fatalf("%s: reachability %q (%v), want Public", n.name, st.Reachability, err)
		}
	}

	if _, err := home["b"].cli("expert", "serve", idB); err != nil {
		t.Fatal(err)
	}
	if _, err := home["d"].cli("expert", "serve", idD); err != nil {
		t.Fatal(err)
	}

	for _, pair := range []struct {
		from, to  string
		id        string
		want      []float64
		direct    bool // hole punching must give a direct connection
		behaviour string
	}{
		{"a", "b", idB, wantB, true, "endpoint-independent"},
		{"c", "d", idD, wantD, false, "symmetric"},
	} {
		from, to := home[pair.from], home[pair.to]
		waitFor(t, 30*time.Second, from.name+" sees "+to.name+"'s advert", func() (bool, error) {
			return from.hasRemote(pair.id, to.d.PeerID)
		})
		start := time.Now()
		ans, err := from.query(pair.id, input, 20*time.Second)
		if err != nil {
			t.Fatalf("%s NATs: query %s -> %s: %v", pair.behaviour, from.name, to.name, err)
		}
		if ans.Candidate.Peer != to.d.PeerID {
			t.Fatalf("%s NATs: answered by %+v, want %s", pair.behaviour, ans.Candidate, to.d.PeerID)
		}
		for i := range pair.want {
			if ans.Output[i] != float32(pair.want[i]) {
				t.Fatalf("%s NATs: remote output %v, local evaluation %v", pair.behaviour, ans.Output, pair.want)
			}
		}
		t.Logf("%s NATs: first query %s -> %s answered in %s", pair.behaviour, from.name, to.name, time.Since(start).Round(time.Millisecond))
		if !pair.direct {
			p, ok, err := from.peer(to.d.PeerID)
			t.Logf("%s NATs: %s to %s connected=%v relayed=%v (%v) %v", pair.behaviour, from.name, to.name, ok, p.Relayed, err, p.Addrs)
			continue
		}
		took := waitFor(t, 60*time.Second, pair.behaviour+" NATs: a direct connection "+from.name+" -> "+to.name, func() (bool, error) {
			p, ok, err := from.peer(to.d.PeerID)
			return ok && !p.Relayed, err
		})
		t.Logf("%s NATs: direct connection %s after the first query", pair.behaviour, took.Round(time.Millisecond))
		if ans, err := from.query(pair.id, input, 5*time.Second); err != nil || ans.Candidate.Peer != to.d.PeerID {
			t.Fatalf("%s NATs: query over the direct connection: %+v %v", pair.behaviour, ans.Candidate, err)
		}
		// A blob moves over the punched connection too (bitswap does not use relayed ones).
		data := make([]byte, 256<<10)
		_, _ = rand.Read(data)
		src := filepath.Join(t.TempDir(), "blob.bin")
		if err := os.WriteFile(src, data, 0o644); err != nil {
			t.Fatal(err)
		}
		var put struct {
			CID string `json:"cid"`
		}
		if err := to.json(&put, "blob", "put", src); err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(t.TempDir(), "got.bin")
		if _, err := from.cli("blob", "get", put.CID, "--output", dst, "--timeout-ms", "20000"); err != nil {
			t.Fatalf("%s NATs: blob fetch over the direct connection: %v", pair.behaviour, err)
		}
		if got, err := os.ReadFile(dst); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%s NATs: fetched blob differs from the one put (%v)", pair.behaviour, err)
		}
	}
}

// labExpert trains a tiny expert on the node's repo and returns its ID and its local answer.
func labExpert(t *testing.T, n *labNode, name string, input []float64) (string, []float64) {
	t.Helper()
	id := trainTiny(t, n.repo, name)
	file := filepath.Join(t.TempDir(), name+".safetensors")
	cli(t, n.repo, "expert", "export", id, file)
	return id, localAnswer(t, file, input)
}

// localAnswer is what evaluating an exported expert here gives for input: what a remote
// answer must equal.
func localAnswer(t *testing.T, file string, input []float64) []float64 {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := experts.DecodeWeights(raw)
	if err != nil {
		t.Fatal(err)
	}
	want, err := ref.Predict(input)
	if err != nil {
		t.Fatal(err)
	}
	return want
}
