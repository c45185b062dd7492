package node

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"

	"github.com/meshnode/meshnode/experts/store"
	"github.com/meshnode/meshnode/node/api"
)

// BlobKeeper owns a store's records of blobs: which are pinned (kept through gc) and which are
// public (served to anyone and announced). A daemon and a command run without one use the same
// keeper (Repo.Blobs), so put, pin, unpin and gc do the same either way; what the daemon adds
// is serving and announcing. Safe for concurrent use: a gc excludes every put and fetch that
// holds the keeper (Hold), so it never deletes a block that one is writing.
type BlobKeeper struct {
	st     *store.Store
	pins   ds.Datastore // roots kept through gc -> {}
	public ds.Datastore // roots exposed to anyone -> {}
	gc     sync.RWMutex
}

func newBlobKeeper(st *store.Store) *BlobKeeper {
	return &BlobKeeper{st: st, pins: st.Datastore("/pins"), public: st.Datastore("/public")}
}

// Hold keeps gc away until the returned release is called (a fetch writing blocks holds it).
func (k *BlobKeeper) Hold() (release func()) {
	k.gc.RLock()
	return k.gc.RUnlock
}

// Put imports the file at req.Path, pins it and, unless req.Private, marks it public, telling
// req.Progress (when set) how far it has come at most every 200 ms.
func (k *BlobKeeper) Put(ctx context.Context, req api.BlobPutRequest) (api.BlobInfo, cid.Cid, error) {
	defer k.Hold()()
	path, private := req.Path, req.Private
	f, err := os.Open(path)
	if err != nil {
		return api.BlobInfo{}, cid.Undef, fmt.Errorf("blob put: %w", err)
	}
	defer f.Close()
	var r io.Reader = f
	if req.Progress != nil {
		fi, err := f.Stat()
		if err != nil {
			return api.BlobInfo{}, cid.Undef, fmt.Errorf("blob put: %w", err)
		}
		r = &progressReader{r: f, total: fi.Size(), report: req.Progress}
	}
	t0 := time.Now()
	c, n, err := k.st.PutBlob(ctx, r)
	if err != nil {
		return api.BlobInfo{}, cid.Undef, fmt.Errorf("blob put %s: %w", path, err)
	}
	if err := k.pin(ctx, c); err != nil {
		return api.BlobInfo{}, cid.Undef, fmt.Errorf("blob put %s: pin: %w", c, err)
	}
	if !private {
		if err := k.SetPublic(ctx, c, true); err != nil {
			return api.BlobInfo{}, cid.Undef, fmt.Errorf("blob put %s: %w", c, err)
		}
	}
	return api.BlobInfo{CID: c.String(), Size: n, Seconds: time.Since(t0).Seconds(), Pinned: true, Private: private}, c, nil
}

func (k *BlobKeeper) pin(ctx context.Context, c cid.Cid) error {
	return k.pins.Put(ctx, ds.NewKey(c.String()), []byte{})
}

// Pin keeps a held blob through gc.
func (k *BlobKeeper) Pin(ctx context.Context, c cid.Cid) error {
	if has, err := k.st.HasBlob(ctx, c); err != nil || !has {
		return api.ErrBadRequest.Errorf("pin %s: not held here (fetch it first)", c)
	}
	return k.pin(ctx, c)
}

// Unpin lets gc remove a blob.
func (k *BlobKeeper) Unpin(ctx context.Context, c cid.Cid) error {
	if has, _ := k.pins.Has(ctx, ds.NewKey(c.String())); !has {
		return api.ErrBadRequest.Errorf("unpin %s: not pinned", c)
	}
	return k.pins.Delete(ctx, ds.NewKey(c.String()))
}

// SetPublic marks a blob as exposed to anyone (or, with public false, no longer).
func (k *BlobKeeper) SetPublic(ctx context.Context, root cid.Cid, public bool) error {
	key := ds.NewKey(root.String())
	if public {
		if err := k.public.Put(ctx, key, []byte{}); err != nil {
			return fmt.Errorf("mark public: %w", err)
		}
		return nil
	}
	return k.public.Delete(ctx, key)
}

// PublicRoots are the blobs marked public.
func (k *BlobKeeper) PublicRoots(ctx context.Context) ([]cid.Cid, error) {
	roots, err := keyRoots(ctx, k.public)
	if err != nil {
		return nil, fmt.Errorf("read public blobs: %w", err)
	}
	return roots, nil
}

// keyRoots reads the CIDs that are the keys of d.
func keyRoots(ctx context.Context, d ds.Datastore) ([]cid.Cid, error) {
	res, err := d.Query(ctx, dsq.Query{KeysOnly: true})
	if err != nil {
		return nil, err
	}
	entries, err := res.Rest()
	if err != nil {
		return nil, err
	}
	var out []cid.Cid
	for _, e := range entries {
		if c, err := cid.Decode(ds.NewKey(e.Key).BaseNamespace()); err == nil {
			out = append(out, c)
		}
	}
	return out, nil
}

// keptRoots are the roots gc keeps, each once: pinned blobs, and hosted experts' manifests and
// weights.
func (k *BlobKeeper) keptRoots(ctx context.Context) ([]cid.Cid, error) {
	roots, err := keyRoots(ctx, k.pins)
	if err != nil {
		return nil, err
	}
	hosted, err := k.st.ListExperts(ctx)
	if err != nil {
		return nil, err
	}
	for _, h := range hosted {
		roots = append(roots, h.ID)
		if m, err := k.st.GetExpert(ctx, h.ID); err == nil {
			roots = append(roots, m.Weights)
		}
	}
	seen := make(map[cid.Cid]bool, len(roots))
	return slices.DeleteFunc(roots, func(c cid.Cid) bool {
		dup := seen[c]
		seen[c] = true
		return dup
	}), nil
}

// GC deletes every block that is neither part of a pinned blob nor of a hosted expert
// (manifest and weights).
func (k *BlobKeeper) GC(ctx context.Context) (api.GCReport, error) {
	k.gc.Lock()
	defer k.gc.Unlock()
	roots, err := k.keptRoots(ctx)
	if err != nil {
		return api.GCReport{}, fmt.Errorf("gc: %w", err)
	}
	live := map[string]bool{} // by multihash: the blockstore's key
	for _, r := range roots {
		live[string(r.Hash())] = true
		if r.Type() != cid.DagProtobuf {
			continue
		}
		err := merkledag.Walk(ctx, merkledag.GetLinksWithDAG(k.st.DAG()), r, func(c cid.Cid) bool {
			if live[string(c.Hash())] && !c.Equals(r) {
				return false
			}
			live[string(c.Hash())] = true
			return true
		})
		if err != nil {
			return api.GCReport{}, fmt.Errorf("gc: walk %s: %w", r, err)
		}
	}
	keys, err := k.st.Blockstore().AllKeysChan(ctx)
	if err != nil {
		return api.GCReport{}, fmt.Errorf("gc: %w", err)
	}
	var rep api.GCReport
	for key := range keys {
		if live[string(key.Hash())] {
			rep.Kept++
			continue
		}
		size, _ := k.st.Blockstore().GetSize(ctx, key)
		if err := k.st.Blockstore().DeleteBlock(ctx, key); err != nil {
			return rep, fmt.Errorf("gc: delete %s: %w", key, err)
		}
		rep.Removed++
		rep.Bytes += int64(size)
	}
	return rep, nil
}

// progressReader tells report how many bytes were read, at most every 200 ms and at the end.
type progressReader struct {
	r      io.Reader
	done   int64
	total  int64
	last   time.Time
	report func(api.BlobPutProgress)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.done += int64(n)
	if now := time.Now(); now.Sub(p.last) >= 200*time.Millisecond || err == io.EOF {
		p.last = now
		p.report(api.BlobPutProgress{Bytes: p.done, Total: p.total})
	}
	return n, err
}
