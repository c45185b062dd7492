package integration

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshnode/meshnode/mesh"
	"github.com/meshnode/meshnode/mesh/rpc"
)

// TestRPCLimitsAndErrors: a greedy peer runs out of tokens while a polite one is still served;
// an oversized request gets a clear error and the server keeps serving; a deadline bounds a call
// to a handler that never returns in time.
func TestRPCLimitsAndErrors(t *testing.T) {
	server := newMeshNode(t, mesh.Config{})
	greedy := newMeshNode(t, mesh.Config{})
	polite := newMeshNode(t, mesh.Config{})
	const proto = "/meshnode/test-echo/1"
	rpc.Serve(server.Host, proto, func(ctx context.Context, from peer.ID, req []byte) ([]byte, error) {
		if string(req) == "slow" {
			<-ctx.Done()
			return nil, ctx.Err()
		}
		return req, nil
	}, rpc.ServerOptions{PeerRate: 1, PeerBurst: 5, MaxRequest: 1024, HandlerLimit: 5 * time.Second})
	ctx := context.Background()
	ai := peer.AddrInfo{ID: server.Host.ID(), Addrs: server.Host.Addrs()}
	for _, n := range []*mesh.Node{greedy, polite} {
		if err := n.Host.Connect(ctx, ai); err != nil {
			t.Fatal(err)
		}
	}
	gc := rpc.NewClient(greedy.Host, proto, 0, 0)
	defer gc.Close()
	limited := 0
	for i := 0; i < 20; i++ {
		_, err := gc.Call(ctx, server.Host.ID(), []byte("hi"))
		var re *rpc.RemoteError
		if errors.As(err, &re) && re.Msg == rpc.ErrRateLimited {
			limited++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if limited < 14 {
		t.Fatalf("the greedy peer was limited %d times of 20 (burst 5, 1/s)", limited)
	}
	pc := rpc.NewClient(polite.Host, proto, 0, 0)
	defer pc.Close()
	if got, err := pc.Call(ctx, server.Host.ID(), []byte("hello")); err != nil || string(got) != "hello" {
		t.Fatalf("the polite peer was not served: %q %v", got, err)
	}
	_, err := pc.Call(ctx, server.Host.ID(), make([]byte, 4096))
	if err == nil || !strings.Contains(err.Error(), "too large") {
		t.Fatalf("oversized request: %v", err)
	}
	if got, err := pc.Call(ctx, server.Host.ID(), []byte("again")); err != nil || string(got) != "again" {
		t.Fatalf("after an oversized request the server stopped serving: %v", err)
	}
	cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, err := pc.Call(cctx, server.Host.ID(), []byte("slow")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a call past its deadline: %v", err)
	}
}
