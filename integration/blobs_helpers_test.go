package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/boxo/blockstore"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"

	"github.com/meshnode/meshnode/experts/store"
	"github.com/meshnode/meshnode/mesh/blobs"
)

// blobNode is one in-process mesh node for the blob tests: a libp2p host on loopback TCP, a
// plain Kademlia DHT in server mode on the mesh's protocol prefix, a badger store in a temp dir
// and a blob exchange.
type blobNode struct {
	name  string
	host  host.Host
	dht   *dht.IpfsDHT
	store *store.Store
	x     *blobs.Exchange

	closeOnce sync.Once
	closeErr  error
}

// blobNodeOptions adjusts a node: wrap replaces the blockstore the exchange serves from.
type blobNodeOptions struct {
	wrap func(blockstore.Blockstore) blockstore.Blockstore
}

func blobNewNode(t testing.TB, name string, cfg blobs.Config, o blobNodeOptions) *blobNode {
	t.Helper()
	n := &blobNode{name: name}
	// Before the node's cleanup is registered, so the directory is removed after the store is
	// closed (cleanups run last-in first-out).
	dir := t.TempDir()
	h, err := libp2p.New(
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.DisableRelay(),
	)
	if err != nil {
		t.Fatalf("node %s: new host: %v", name, err)
	}
	n.host = h
	t.Cleanup(func() {
		if err := n.close(); err != nil {
			t.Errorf("node %s: close: %v", name, err)
		}
	})
	n.dht, err = dht.New(h, dht.ProtocolPrefix("/meshnode"), dht.Mode(dht.ModeServer))
	if err != nil {
		t.Fatalf("node %s: new DHT: %v", name, err)
	}
	n.store, err = store.Open(dir, store.Options{})
	if err != nil {
		t.Fatalf("node %s: open store: %v", name, err)
	}
	bs := n.store.Blockstore()
	if o.wrap != nil {
		bs = o.wrap(bs)
	}
	n.x, err = blobs.New(context.Background(), h, n.dht, bs, cfg)
	if err != nil {
		t.Fatalf("node %s: new exchange: %v", name, err)
	}
	return n
}

// close shuts the node down (exchange, DHT, host, store); it may be called early, as when a
// test takes a provider away.
func (n *blobNode) close() error {
	n.closeOnce.Do(func() {
		var errs []string
		if n.x != nil {
			if err := n.x.Close(); err != nil {
				errs = append(errs, err.Error())
			}
		}
		if n.dht != nil {
			if err := n.dht.Close(); err != nil {
				errs = append(errs, err.Error())
			}
		}
		if err := n.host.Close(); err != nil {
			errs = append(errs, err.Error())
		}
		if n.store != nil {
			if err := n.store.Close(); err != nil {
				errs = append(errs, err.Error())
			}
		}
		if len(errs) > 0 {
			n.closeErr = fmt.Errorf("%s", strings.Join(errs, "; "))
		}
	})
	return n.closeErr
}

// blobNetwork starts nodes, connects every pair and waits until every DHT routing table holds
// every other node.
func blobNetwork(t *testing.T, cfg blobs.Config, names ...string) []*blobNode {
	t.Helper()
	nodes := make([]*blobNode, len(names))
	for i, name := range names {
		nodes[i] = blobNewNode(t, name, cfg, blobNodeOptions{})
	}
	blobConnect(t, nodes...)
	return nodes
}

func blobConnect(t *testing.T, nodes ...*blobNode) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i, a := range nodes {
		for _, b := range nodes[i+1:] {
			// Once A knows B and C, C's DHT may dial B just as B dials C: both dial from their
			// listen ports (TCP reuseport), the two SYNs meet in one simultaneous-open
			// connection on which both sides start TLS as the client, and the dial fails. A
			// redial after a moment (past the swarm's dial backoff) finds the connection C
			// made, or makes its own.
			var err error
			redial := network.WithForceDirectDial(ctx, "test: redial after a simultaneous open")
			for attempt := 0; attempt < 3; attempt++ {
				dctx := ctx
				if attempt > 0 {
					dctx = redial
				}
				if err = a.host.Connect(dctx, peer.AddrInfo{ID: b.host.ID(), Addrs: b.host.Addrs()}); err == nil {
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
			if err != nil {
				t.Fatalf("connect %s to %s: %v", a.name, b.name, err)
			}
		}
	}
	blobWaitFor(t, 10*time.Second, "DHT routing tables to fill", func() bool {
		for _, n := range nodes {
			for _, m := range nodes {
				if n != m && n.dht.RoutingTable().Find(m.host.ID()) == "" {
					return false
				}
			}
		}
		return true
	})
}

// blobWaitFor polls cond until it holds or the bound passes.
func blobWaitFor(t *testing.T, bound time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", bound, what)
		}
		time.Sleep(5 * time.Millisecond) // polling interval, not synchronisation
	}
}

// blobData returns a reproducible stream of size pseudo-random bytes.
func blobData(seed uint64, size int64) io.Reader {
	var key [32]byte
	for i := range 8 {
		key[i] = byte(seed >> (8 * i))
	}
	return io.LimitReader(rand.NewChaCha8(key), size)
}

// blobPut imports size bytes of blobData(seed) into n's store.
func blobPut(t *testing.T, n *blobNode, seed uint64, size int64) cid.Cid {
	t.Helper()
	c, got, err := n.store.PutBlob(context.Background(), blobData(seed, size))
	if err != nil {
		t.Fatalf("node %s: put blob: %v", n.name, err)
	}
	if got != size {
		t.Fatalf("node %s: put blob stored %d bytes, want %d", n.name, got, size)
	}
	return c
}

// blobCheckBytes streams the blob root out of n's store and compares it with blobData(seed).
func blobCheckBytes(t *testing.T, n *blobNode, root cid.Cid, seed uint64, size int64) {
	t.Helper()
	r, got, err := n.store.OpenBlob(context.Background(), root)
	if err != nil {
		t.Fatalf("node %s: open blob: %v", n.name, err)
	}
	defer r.Close()
	if got != size {
		t.Fatalf("node %s: blob is %d bytes, want %d", n.name, got, size)
	}
	want := blobData(seed, size)
	a, b := make([]byte, 1<<20), make([]byte, 1<<20)
	for off := int64(0); off < size; {
		k := int(min(int64(len(a)), size-off))
		if _, err := io.ReadFull(r, a[:k]); err != nil {
			t.Fatalf("node %s: read blob at %d: %v", n.name, off, err)
		}
		if _, err := io.ReadFull(want, b[:k]); err != nil {
			t.Fatalf("regenerate blob at %d: %v", off, err)
		}
		if !bytes.Equal(a[:k], b[:k]) {
			t.Fatalf("node %s: blob differs from the original in the MiB at offset %d", n.name, off)
		}
		off += int64(k)
	}
}

// blobCheckStoreIntact checks that every block in n's store hashes to its CID.
func blobCheckStoreIntact(t *testing.T, n *blobNode) int {
	t.Helper()
	ctx := context.Background()
	keys, err := n.store.Blockstore().AllKeysChan(ctx)
	if err != nil {
		t.Fatalf("node %s: list blocks: %v", n.name, err)
	}
	count := 0
	for c := range keys {
		b, err := n.store.Blockstore().Get(ctx, c)
		if err != nil {
			t.Fatalf("node %s: read block %s: %v", n.name, c, err)
		}
		sum, err := c.Prefix().Sum(b.RawData())
		if err != nil || !sum.Equals(c) {
			t.Fatalf("node %s: stored block %s does not match its CID", n.name, c)
		}
		count++
	}
	return count
}

// blobTamperStore serves wrong bytes for one CID, like a faulty or malicious peer.
type blobTamperStore struct {
	blockstore.Blockstore
	bad cid.Cid
}

func (s *blobTamperStore) Get(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	b, err := s.Blockstore.Get(ctx, c)
	if err != nil || !c.Equals(s.bad) {
		return b, err
	}
	data := bytes.Clone(b.RawData())
	data[len(data)/2] ^= 0xff
	return blocks.NewBlockWithCid(data, c) // does not check the hash
}

// blobLeakCheck fails the test if goroutines it started outlive it: it records the count at the
// start and, after the test's other cleanups (nodes closed), polls until the count is back.
func blobLeakCheck(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	// Registered first, so it runs last.
	t.Cleanup(func() {
		deadline := time.Now().Add(10 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				n := runtime.Stack(buf, true)
				t.Errorf("%d goroutines still running after the test, %d before:\n%s",
					runtime.NumGoroutine(), before, buf[:n])
				return
			}
			time.Sleep(10 * time.Millisecond) // polling interval, not synchronisation
		}
	})
}

// The provider helper process: TestBlobProviderProcess runs only when blobStartProviderProcess
// starts this test binary with blobHelperEnv set. It serves one blob and exits when its stdin
// closes.
const blobHelperEnv = "MESHNODE_BLOB_PROVIDER_HELPER"

// blobStartProviderProcess starts a provider node in a child process holding size bytes of
// blobData(seed), and returns its address and the blob's CID. The child is stopped at cleanup.
func blobStartProviderProcess(t *testing.T, seed uint64, size int64) (peer.AddrInfo, cid.Cid) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestBlobProviderProcess$", "-test.timeout=2m")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d,%d", blobHelperEnv, seed, size))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start provider process: %v", err)
	}
	exited := make(chan error, 1)
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "BLOBPROVIDER "); ok {
				lines <- rest
			}
		}
		close(lines)
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		stdin.Close() // the child closes its node and exits
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("provider process: %v", err)
			}
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			t.Errorf("provider process did not exit after its stdin closed")
		}
	})
	var line string
	select {
	case l, ok := <-lines:
		if !ok {
			t.Fatal("provider process exited before it was ready")
		}
		line = l
	case <-time.After(time.Minute):
		t.Fatal("provider process not ready after a minute")
	}
	var ready struct{ Addr, Root string }
	if err := json.Unmarshal([]byte(line), &ready); err != nil {
		t.Fatalf("provider process said %q: %v", line, err)
	}
	ai, err := peer.AddrInfoFromString(ready.Addr)
	if err != nil {
		t.Fatal(err)
	}
	root, err := cid.Decode(ready.Root)
	if err != nil {
		t.Fatal(err)
	}
	go func() { // drain the rest (the test framework's own lines)
		for range lines {
		}
	}()
	return *ai, root
}

func TestBlobProviderProcess(t *testing.T) {
	spec := os.Getenv(blobHelperEnv)
	if spec == "" {
		t.Skip("helper process for TestBlobFetchBoundedMemory")
	}
	var seed uint64
	var size int64
	if _, err := fmt.Sscanf(spec, "%d,%d", &seed, &size); err != nil {
		t.Fatalf("%s=%q: %v", blobHelperEnv, spec, err)
	}
	n := blobNewNode(t, "provider", blobs.TunedConfig(), blobNodeOptions{})
	root := blobPut(t, n, seed, size)
	ready, err := json.Marshal(struct{ Addr, Root string }{
		Addr: fmt.Sprintf("%s/p2p/%s", n.host.Addrs()[0], n.host.ID()),
		Root: root.String(),
	})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("BLOBPROVIDER %s\n", ready)
	_, _ = io.Copy(io.Discard, os.Stdin) // serve until the parent closes stdin
}
