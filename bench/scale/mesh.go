package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/multiformats/go-multihash"

	"github.com/meshnode/meshnode/mesh"
	"github.com/meshnode/meshnode/mesh/advert"
)

// queryProtocol is the bench's stand-in for the query protocol: one line in, one line out.
const queryProtocol = protocol.ID("/meshnode-bench/query/1")

// benchNode is one mesh node of the bench and the experts it serves.
type benchNode struct {
	node    *mesh.Node
	served  []advert.Service
	started time.Time
	// stopped is set once the node is being stopped (so no query is sent from it).
	mu      sync.Mutex
	stopped bool
}

func (b *benchNode) live() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return !b.stopped
}

// startNode starts a mesh node bootstrapped to seeds and installs the query responder.
func startNode(ctx context.Context, cfg mesh.Config, seeds []string) (*benchNode, error) {
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, err
	}
	cfg.Bootstrap = seeds
	n, err := mesh.New(ctx, key, cfg, mesh.Options{})
	if err != nil {
		return nil, fmt.Errorf("start node: %w", err)
	}
	n.Host.SetStreamHandler(queryProtocol, func(s network.Stream) {
		defer s.Close()
		_ = s.SetDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 128)
		if _, err := s.Read(buf); err != nil && err != io.EOF {
			_ = s.Reset()
			return
		}
		_, _ = s.Write([]byte("ok\n"))
	})
	return &benchNode{node: n, started: time.Now()}, nil
}

// serve advertises k new synthetic experts in domains drawn by pick.
func (b *benchNode) serve(ctx context.Context, k int, pick func() string) ([]advert.Service, error) {
	var out []advert.Service
	for range k {
		id, err := randomCID()
		if err != nil {
			return nil, err
		}
		s := advert.Service{ID: id, Name: "bench-" + id[len(id)-6:], Domains: []string{pick()}, Spec: "bench", Params: 1000, Quality: 0.9}
		if err := b.node.Adverts.Serve(ctx, s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	b.mu.Lock()
	b.served = append(b.served, out...)
	b.mu.Unlock()
	return out, nil
}

// stop ends the node: gracefully (withdrawals go out) or as a crash (the host goes first).
func (b *benchNode) stop(crash bool) error {
	b.mu.Lock()
	b.stopped = true
	b.mu.Unlock()
	if crash {
		_ = b.node.Host.Close()
	}
	return b.node.Close()
}

// providers is what this node's discovery knows of the experts in domain d, other than its
// own, after the lookup a query makes.
func (b *benchNode) providers(ctx context.Context, d string) []advert.Entry {
	b.node.Adverts.LookupDomain(ctx, d, true)
	now := time.Now()
	self := b.node.Host.ID().String()
	var out []advert.Entry
	for _, e := range b.node.Adverts.Table().List(now) {
		if e.Provider == self {
			continue
		}
		for _, x := range e.Domains {
			if x == d {
				out = append(out, e)
				break
			}
		}
	}
	return out
}

// knows says whether this node's discovery finds expert id, after the lookup a query for it
// makes.
func (b *benchNode) knows(ctx context.Context, id string) bool {
	b.node.Adverts.LookupExpert(ctx, id, true)
	return len(b.node.Adverts.Table().Providers(id, time.Now())) > 0
}

// ask sends one query to provider p and waits for the answer.
func (b *benchNode) ask(ctx context.Context, p string) error {
	id, err := peer.Decode(p)
	if err != nil {
		return err
	}
	s, err := b.node.Host.NewStream(ctx, id, queryProtocol)
	if err != nil {
		return err
	}
	defer s.Close()
	if d, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(d)
	}
	if _, err := s.Write([]byte("query\n")); err != nil {
		_ = s.Reset()
		return err
	}
	if err := s.CloseWrite(); err != nil {
		return err
	}
	reply, err := io.ReadAll(io.LimitReader(s, 64))
	if err != nil {
		return err
	}
	if strings.TrimSpace(string(reply)) != "ok" {
		return fmt.Errorf("reply %q", reply)
	}
	return nil
}

// traffic is what the node's gossip streams, DHT streams and all its streams carried, in and
// out.
func (b *benchNode) traffic() (gossip, dht, total int64) {
	for p, st := range b.node.TrafficByProtocol() {
		n := st.TotalIn + st.TotalOut
		total += n
		switch {
		case strings.HasPrefix(string(p), "/meshsub/"):
			gossip += n
		case strings.Contains(string(p), "/kad/"):
			dht += n
		}
	}
	return gossip, dht, total
}

func randomCID() (string, error) {
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return "", err
	}
	h, err := multihash.Sum(buf, multihash.SHA2_256, -1)
	if err != nil {
		return "", err
	}
	return cid.NewCidV1(cid.DagCBOR, h).String(), nil
}
