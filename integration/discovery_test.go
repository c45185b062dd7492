package integration

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/meshnode/meshnode/mesh"
	"github.com/meshnode/meshnode/mesh/advert"
	"github.com/meshnode/meshnode/mesh/rpc"
)

const (
	malloryExpert = "bafyreigflvdryiwe3jxjl7263d6svfvzn2y3h4cwhlmkfnjn6sstphek2q"
	forgedExpert  = "bafyreighzeipwm6lr45u5n5bfdvltby7sxcmuw5l5tatagwodznu5x3j6y"
)

// TestDHTDiscovery: with advert gossip off, an expert served on one node is found from the
// others by its domain and by its ID (DHT lookup, then a pull from the provider), nobody joins
// the adverts topic, a provider's forged pull answers and pushes are refused, and a
// withdrawal reaches the nodes that pulled at once.
func TestDHTDiscovery(t *testing.T) {
	ctx := t.Context()
	cfg := mesh.Config{DHTOnly: true}
	seed := newMeshNode(t, cfg)
	cfg.Bootstrap = seed.Addrs()
	var nodes []*mesh.Node
	for range 5 {
		nodes = append(nodes, newMeshNode(t, cfg))
	}
	a, e, f, g := nodes[0], nodes[2], nodes[3], nodes[4]
	served := advert.Service{ID: someExpert, Name: "fashion", Domains: []string{"vision"}, Spec: "s", Params: 10, Quality: 0.8}
	if err := a.Adverts.Serve(ctx, served); err != nil {
		t.Fatal(err)
	}
	holds := func(n *mesh.Node, id string, provider peer.ID) bool {
		return slices.ContainsFunc(n.Adverts.Table().Providers(id, time.Now()), func(e advert.Entry) bool { return e.Provider == provider.String() })
	}
	took := eventually(t, 20*time.Second, "F finds A's expert by its domain", func() bool {
		f.Adverts.LookupDomain(ctx, "vision", true)
		return holds(f, someExpert, a.Host.ID())
	})
	t.Logf("found by domain %s after serving", took.Round(time.Millisecond))
	eventually(t, 10*time.Second, "E finds A's expert by its ID", func() bool {
		e.Adverts.LookupExpert(ctx, someExpert, true)
		return holds(e, someExpert, a.Host.ID())
	})
	for _, n := range append(nodes, seed) {
		if slices.Contains(n.PubSub.GetTopics(), mesh.TopicAdverts) {
			t.Fatalf("%s joined %s with gossip off", n.Host.ID(), mesh.TopicAdverts)
		}
	}

	// Mallory provides the domain too, but answers pulls with an advert in A's name.
	mallory := newMeshNode(t, cfg)
	if err := mallory.Adverts.Serve(ctx, advert.Service{ID: malloryExpert, Name: "m", Domains: []string{"vision"}, Spec: "s"}); err != nil {
		t.Fatal(err)
	}
	forged := advertJSON(t, a.Host.ID(), func(x *advert.Advert) { x.ID = forgedExpert })
	rpc.Serve(mallory.Host, mesh.PullProtocol, func(context.Context, peer.ID, []byte) ([]byte, error) {
		return fmt.Appendf(nil, `{"adverts":[%s]}`, forged), nil
	}, rpc.ServerOptions{})
	eventually(t, 20*time.Second, "Mallory provides the domain and her expert", func() bool {
		return testutil.ToFloat64(mallory.Metrics.Provides.WithLabelValues("ok")) == 2
	})
	eventually(t, 20*time.Second, "G's lookup pulls from Mallory and refuses her forgery", func() bool {
		g.Adverts.LookupDomain(ctx, "vision", true)
		return testutil.ToFloat64(g.Metrics.AdvertsRejected.WithLabelValues("forged")) >= 1
	})
	if len(g.Adverts.Table().Providers(forgedExpert, time.Now())) != 0 {
		t.Fatal("G took an advert Mallory forged in A's name")
	}
	if !holds(g, someExpert, a.Host.ID()) {
		t.Fatal("G did not pull A's own advert")
	}

	// Pushes carry withdrawals, each in its sender's own name.
	client := rpc.NewClient(mallory.Host, mesh.PullProtocol, 1<<16, 1)
	t.Cleanup(func() { client.Close() })
	push := func(adv []byte) error {
		_, err := client.Call(ctx, f.Host.ID(), fmt.Appendf(nil, `{"adverts":[%s]}`, adv))
		return err
	}
	if err := push(advertJSON(t, mallory.Host.ID(), func(x *advert.Advert) { x.ID = forgedExpert })); err == nil || !strings.Contains(err.Error(), "only withdrawals") {
		t.Fatalf("push of a live advert: %v, want refused", err)
	}
	if err := push(advertJSON(t, a.Host.ID(), func(x *advert.Advert) { x.Withdraw, x.Seq = true, x.Seq+1<<40 })); err == nil || !strings.Contains(err.Error(), "forged") {
		t.Fatalf("push of a withdrawal in A's name: %v, want refused as forged", err)
	}
	if !holds(f, someExpert, a.Host.ID()) {
		t.Fatal("Mallory's push withdrew A's expert from F")
	}

	// A withdraws: the nodes that pulled hear it at once, without gossip.
	if err := a.Adverts.Unserve(ctx, someExpert); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*mesh.Node{e, f, g} {
		eventually(t, 5*time.Second, "a puller forgets A's withdrawn expert", func() bool { return !holds(n, someExpert, a.Host.ID()) })
	}
}
