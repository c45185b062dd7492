package store

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/meshnode/meshnode/experts"
)

func newExpert(t *testing.T, seed uint64) (*experts.Manifest, *experts.Network) {
	t.Helper()
	n, err := experts.NewNetwork(experts.MLP(4, []int{8}, "relu", 3, experts.OutputSoftmax), seed)
	if err != nil {
		t.Fatal(err)
	}
	m := &experts.Manifest{
		Name:    "iris",
		Domains: []string{"tabular"},
		Input:   experts.InputSpec{Kind: experts.InputVector},
		Output:  experts.OutputSpec{Kind: experts.OutputClasses, Labels: []string{"a", "b", "c"}},
	}
	return m, n
}

func TestPutGetListReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	m, n := newExpert(t, 1)
	id, err := s.AddNetwork(ctx, m, n, nil)
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.AddNetwork(ctx, m, n, nil)
	if err != nil || !again.Equals(id) {
		t.Fatalf("re-adding the same expert: %v %v", again, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	list, err := s.ListExperts(ctx)
	if err != nil || len(list) != 1 || !list[0].ID.Equals(id) || list[0].Params != 67 {
		t.Fatalf("after reopen: list %+v, err %v", list, err)
	}
	got, err := s.GetExpert(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := s.LoadNetwork(ctx, got)
	if err != nil {
		t.Fatal(err)
	}
	x := []float64{0.1, -0.2, 0.3, 0.4}
	y1, _ := n.Predict(x)
	y2, _ := loaded.Predict(x)
	for i := range y1 {
		if float32(y1[i]) != float32(y2[i]) {
			t.Fatalf("stored network answers %v, original %v", y2, y1)
		}
	}
	if r, err := s.Resolve(ctx, "iris"); err != nil || !r.Equals(id) {
		t.Fatalf("resolve by name: %v %v", r, err)
	}
	if _, err := s.Resolve(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("resolve unknown: %v", err)
	}
}

func TestPutExpertRejectsMismatchedWeights(t *testing.T) {
	ctx := context.Background()
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m, n := newExpert(t, 1)
	if _, err := s.AddNetwork(ctx, m, n, nil); err != nil {
		t.Fatal(err)
	}
	_, other := newExpert(t, 2)
	otherWeights, _ := experts.EncodeWeights(other)
	_, err = s.PutExpert(ctx, m, otherWeights)
	if err == nil || !strings.Contains(err.Error(), "hash to") {
		t.Fatalf("weights of another network under this manifest: got %v", err)
	}
	list, _ := s.ListExperts(ctx)
	if len(list) != 1 {
		t.Fatalf("a rejected put changed the index: %d entries", len(list))
	}
}

func TestBlobsRoundTripAcrossChunks(t *testing.T) {
	ctx := context.Background()
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, size := range []int{0, 1, 1 << 20, 3<<20 + 17} {
		data := make([]byte, size)
		rng := rand.New(rand.NewPCG(uint64(size), 1))
		for i := range data {
			data[i] = byte(rng.UintN(256))
		}
		c, n, err := s.PutBlob(ctx, bytes.NewReader(data))
		if err != nil || n != int64(size) {
			t.Fatalf("put %d bytes: %v (size %d)", size, err, n)
		}
		want, _, _ := BlobCID(ctx, bytes.NewReader(data))
		if !c.Equals(want) || c.Version() != 1 {
			t.Fatalf("put gave %s, BlobCID %s", c, want)
		}
		if size == 1<<20 && c.Prefix().Codec != cid.Raw {
			t.Fatalf("a one-chunk blob should be a raw block, got codec %x", c.Prefix().Codec)
		}
		got, err := s.ReadBlob(ctx, c, int64(size))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("read back %d bytes: %v", size, err)
		}
	}
	missing, _, _ := BlobCID(ctx, strings.NewReader("never stored"))
	if _, err := s.ReadBlob(ctx, missing, 100); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing blob: %v", err)
	}
}

// TestInstallIndexesFetchedBlocks: blocks that arrived on their own (as bitswap writes them)
// become a hosted expert with Install; missing weights are refused and leave the index alone.
func TestInstallIndexesFetchedBlocks(t *testing.T) {
	ctx := context.Background()
	src, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	m, n := newExpert(t, 1)
	id, err := src.AddNetwork(ctx, m, n, nil)
	if err != nil {
		t.Fatal(err)
	}
	dst, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	copyBlock := func(c cid.Cid) {
		b, err := src.Blockstore().Get(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		if err := dst.Blockstore().Put(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := dst.Install(ctx, id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("install without the manifest block: %v", err)
	}
	copyBlock(id)
	if _, _, err := dst.Install(ctx, id); err == nil {
		t.Fatal("installed an expert whose weights are not in the store")
	}
	if list, _ := dst.ListExperts(ctx); len(list) != 0 {
		t.Fatalf("a refused install changed the index: %+v", list)
	}
	copyBlock(m.Weights) // one raw block: the weights are smaller than a chunk
	got, net, err := dst.Install(ctx, id)
	if err != nil || got.Name != m.Name || net.ParamCount() != n.ParamCount() {
		t.Fatalf("install: %v %v %v", got, net, err)
	}
	list, err := dst.ListExperts(ctx)
	if err != nil || len(list) != 1 || !list[0].ID.Equals(id) {
		t.Fatalf("after install: %+v, %v", list, err)
	}
}
