package integration

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshnode/meshnode/node"
	"github.com/meshnode/meshnode/node/daemon"
)

// TestDaemonStartFailureStopsWhatItStarted: a daemon whose API address is taken fails to
// start with an error naming the address, and leaves no goroutine of the mesh, blob, market or
// training services running; the repo opens again afterwards.
func TestDaemonStartFailureStopsWhatItStarted(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	repo := filepath.Join(t.TempDir(), "n")
	r, err := node.Init(context.Background(), repo, node.InitOptions{ConfigFile: testConfig(t, 30*time.Second, 10*time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	blobLeakCheck(t) // after Init: its database stays open until r.Close below
	_, err = daemon.Start(context.Background(), r, daemon.Options{APIListen: taken.Addr().String()})
	if err == nil || !strings.Contains(err.Error(), taken.Addr().String()) {
		t.Fatalf("start on a taken API address: %v, want an error naming it", err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r, err = node.Open(repo)
	if err != nil {
		t.Fatalf("the repo does not open after a failed start: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
}
