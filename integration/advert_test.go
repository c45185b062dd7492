package integration

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multihash"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/meshnode/meshnode/mesh"
	"github.com/meshnode/meshnode/mesh/advert"
)

const someExpert = "bafyreifjxgzfxnytwsoazbg3gjpwjhqiikvtyrsmk7aanciamn4m5vbwby"

func newMeshNode(t *testing.T, cfg mesh.Config) *mesh.Node {
	t.Helper()
	key, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ListenAddrs == nil {
		cfg.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0"}
	}
	n, err := mesh.New(context.Background(), key, cfg, mesh.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// attacker is a bare libp2p host with its own gossipsub and none of our validators.
type attacker struct {
	h     host.Host
	topic *pubsub.Topic
}

func newAttacker(t *testing.T, victim *mesh.Node, opts ...pubsub.Option) *attacker {
	t.Helper()
	h, topic := gossipPeer(t, nil, mesh.TopicAdverts, opts...)
	if err := h.Connect(t.Context(), peer.AddrInfo{ID: victim.Host.ID(), Addrs: victim.Host.Addrs()}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "attacker and victim see each other on the topic", func() bool {
		return slices.Contains(topic.ListPeers(), victim.Host.ID()) &&
			slices.Contains(victim.PubSub.ListPeers(mesh.TopicAdverts), h.ID())
	})
	return &attacker{h: h, topic: topic}
}

func (a *attacker) publish(t *testing.T, data []byte) {
	t.Helper()
	if err := a.topic.Publish(context.Background(), data); err != nil {
		t.Fatal(err)
	}
}

func advertJSON(t *testing.T, provider peer.ID, mutate func(*advert.Advert)) []byte {
	t.Helper()
	a := advert.Advert{V: advert.Version, Provider: provider.String(), ID: someExpert, Name: "x", Domains: []string{"vision"},
		Time: time.Now().UnixMilli(), TTL: 30000, Seq: uint64(time.Now().UnixNano())}
	mutate(&a)
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestAdvertValidatorRejectsBadAdverts: forged, unsigned, oversized, malformed and stale adverts
// are rejected by the victim's validator, never enter its table, and lower the sender's score;
// a valid advert from the same sender is accepted.
func TestAdvertValidatorRejectsBadAdverts(t *testing.T) {
	victim := newMeshNode(t, mesh.Config{AdvertTTL: 30 * time.Second})
	bystander := newMeshNode(t, mesh.Config{})
	mallory := newAttacker(t, victim)

	// gossipsub drops a message published the moment two peers meet (before its outbound stream
	// is up), so the valid advert is republished until it lands, as the refresh loop does.
	eventually(t, 10*time.Second, "the valid advert is accepted", func() bool {
		mallory.publish(t, advertJSON(t, mallory.h.ID(), func(a *advert.Advert) {}))
		return len(victim.Adverts.Table().Providers(someExpert, time.Now())) == 1
	})

	bad := map[string][]byte{
		"forged":    advertJSON(t, bystander.Host.ID(), func(a *advert.Advert) {}),
		"oversized": advertJSON(t, mallory.h.ID(), func(a *advert.Advert) { a.Spec = strings.Repeat("s", 5000) }),
		"malformed": []byte(`{"v":1,"provider":`),
		"stale":     advertJSON(t, mallory.h.ID(), func(a *advert.Advert) { a.Time = time.Now().Add(-time.Hour).UnixMilli() }),
	}
	for _, data := range bad {
		mallory.publish(t, data)
	}
	for reason := range bad {
		eventually(t, 10*time.Second, "rejection counted: "+reason, func() bool {
			return testutil.ToFloat64(victim.Metrics.AdvertsRejected.WithLabelValues(reason)) == 1
		})
	}
	eventually(t, 10*time.Second, "mallory's score drops below zero", func() bool { return victim.Score(mallory.h.ID()) < 0 })

	// Unsigned: a peer whose gossipsub does not sign. Our gossipsub rejects it before the
	// validator, and that counts against the peer too.
	// Unsigned messages carry no author or sequence number, so gossipsub's default message ID is
	// empty for all of them; the attacker IDs them by content so its own dedup lets each out.
	byContent := pubsub.WithMessageIdFn(func(m *pb.Message) string {
		sum := sha256.Sum256(m.Data)
		return string(sum[:])
	})
	unsigned := newAttacker(t, victim, pubsub.WithMessageSignaturePolicy(pubsub.StrictNoSign), pubsub.WithNoAuthor(), byContent)
	eventually(t, 10*time.Second, "the unsigned sender's score drops below zero", func() bool {
		unsigned.publish(t, advertJSON(t, unsigned.h.ID(), func(a *advert.Advert) { a.ID = "bafkreia5pst7s3kic4iqqerczbscq6rxrbbotubmyomexwo3v5bzcagxhu" }))
		return victim.Score(unsigned.h.ID()) < 0
	})

	entries := victim.Adverts.Table().List(time.Now())
	if len(entries) != 1 || entries[0].Provider != mallory.h.ID().String() || entries[0].Spec != "" {
		t.Fatalf("the table holds more than the one valid advert: %+v", entries)
	}
}

// TestAdvertFloodIsCappedAndCostsScore: one peer gossips valid adverts for far more experts than
// the per-provider limit. The victim keeps exactly the limit of them, drops the rest without
// forwarding them, lowers the flooder's gossip score below the gossip threshold, and still
// takes an honest provider's advert.
func TestAdvertFloodIsCappedAndCostsScore(t *testing.T) {
	victim := newMeshNode(t, mesh.Config{AdvertTTL: 30 * time.Second})
	mallory := newAttacker(t, victim)
	const sent = advert.DefaultPerProvider + 80
	for i := range sent {
		h, err := multihash.Sum([]byte(fmt.Sprint("flood", i)), multihash.SHA2_256, -1)
		if err != nil {
			t.Fatal(err)
		}
		id := cid.NewCidV1(cid.DagCBOR, h).String()
		mallory.publish(t, advertJSON(t, mallory.h.ID(), func(a *advert.Advert) { a.ID = id }))
		time.Sleep(2 * time.Millisecond) // under gossipsub's queues: the cap, not a queue, must stop it
	}
	held := func() int {
		n := 0
		for _, e := range victim.Adverts.Table().List(time.Now()) {
			if e.Provider == mallory.h.ID().String() {
				n++
			}
		}
		return n
	}
	eventually(t, 15*time.Second, "the flood reaches the cap", func() bool {
		return testutil.ToFloat64(victim.Metrics.AdvertsRejected.WithLabelValues("table full")) >= 10
	})
	if n := held(); n != advert.DefaultPerProvider {
		t.Fatalf("the victim holds %d of the flooder's %d adverts, want exactly its limit %d", n, sent, advert.DefaultPerProvider)
	}
	eventually(t, 10*time.Second, "the flooder's score falls below the gossip threshold", func() bool { return victim.Score(mallory.h.ID()) < -100 })
	t.Logf("flood: %d sent, %d held, %.0f refused as table full, flooder's score %.0f", sent, held(),
		testutil.ToFloat64(victim.Metrics.AdvertsRejected.WithLabelValues("table full")), victim.Score(mallory.h.ID()))

	honest := newMeshNode(t, mesh.Config{AdvertRefresh: time.Second, AdvertTTL: 10 * time.Second})
	if err := honest.Host.Connect(t.Context(), peer.AddrInfo{ID: victim.Host.ID(), Addrs: victim.Host.Addrs()}); err != nil {
		t.Fatal(err)
	}
	if err := honest.Adverts.Serve(t.Context(), advert.Service{ID: someExpert, Name: "honest", Domains: []string{"vision"}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "the honest advert is taken", func() bool {
		return slices.ContainsFunc(victim.Adverts.Table().Providers(someExpert, time.Now()), func(e advert.Entry) bool {
			return e.Provider == honest.Host.ID().String()
		})
	})
}
