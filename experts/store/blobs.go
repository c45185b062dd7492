package store

import (
	"context"
	"fmt"
	"io"

	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/blockstore"
	chunker "github.com/ipfs/boxo/chunker"
	"github.com/ipfs/boxo/exchange/offline"
	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/boxo/ipld/unixfs/importer/balanced"
	"github.com/ipfs/boxo/ipld/unixfs/importer/helpers"
	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	ipld "github.com/ipfs/go-ipld-format"
)

// importProfile holds the import parameters every node uses, so the same bytes get the same CID
// everywhere: CIDv1, sha2-256, raw leaves, 1 MiB chunks, 1024 links per node (IPIP-499's
// unixfs-v1-2025). A blob of one chunk is a single raw block whose CID is the hash of its bytes.
var importProfile = uio.UnixFS_v1_2025

// importBlob chunks r into a UnixFS DAG written to dag and returns its root CID and size.
func importBlob(ctx context.Context, dag ipld.DAGService, r io.Reader) (cid.Cid, int64, error) {
	return importBlobAs(ctx, dag, r, importProfile)
}

func importBlobAs(ctx context.Context, dag ipld.DAGService, r io.Reader, prof uio.UnixFSProfile) (cid.Cid, int64, error) {
	prefix, err := merkledag.PrefixForCidVersion(prof.CIDVersion)
	if err != nil {
		return cid.Undef, 0, err
	}
	prefix.MhType = prof.MhType
	prefix.MhLength = -1
	buffered := ipld.NewBufferedDAG(ctx, dag)
	params := helpers.DagBuilderParams{
		Maxlinks:   prof.FileDAGWidth,
		RawLeaves:  prof.RawLeaves,
		CidBuilder: &prefix,
		Dagserv:    buffered,
	}
	counter := &countingReader{r: r}
	db, err := params.New(chunker.NewSizeSplitter(counter, prof.ChunkSize))
	if err != nil {
		return cid.Undef, 0, err
	}
	root, err := balanced.Layout(db)
	if err != nil {
		return cid.Undef, 0, err
	}
	if err := buffered.Commit(); err != nil {
		return cid.Undef, 0, err
	}
	return root.Cid(), counter.n, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// PutBlob imports r as a UnixFS file into the store and returns its CID and size.
func (s *Store) PutBlob(ctx context.Context, r io.Reader) (cid.Cid, int64, error) {
	c, n, err := importBlob(ctx, s.dag, r)
	if err != nil {
		return cid.Undef, 0, fmt.Errorf("put blob: %w", err)
	}
	return c, n, nil
}

// PutBlobAs imports r with another UnixFS profile than the node's, for baselines: boxo's own
// importer defaults are uio.UnixFS_v0_2015 (256 KiB chunks, CIDv0). The same bytes get another
// CID than PutBlob gives them.
func (s *Store) PutBlobAs(ctx context.Context, r io.Reader, p uio.UnixFSProfile) (cid.Cid, int64, error) {
	c, n, err := importBlobAs(ctx, s.dag, r, p)
	if err != nil {
		return cid.Undef, 0, fmt.Errorf("put blob: %w", err)
	}
	return c, n, nil
}

// BlobCID computes the CID that PutBlob would give data, without storing anything.
func BlobCID(ctx context.Context, data io.Reader) (cid.Cid, int64, error) {
	bs := blockstore.NewBlockstore(dssync.MutexWrap(ds.NewMapDatastore()))
	dag := merkledag.NewDAGService(blockservice.New(bs, offline.Exchange(bs)))
	c, n, err := importBlob(ctx, dag, data)
	if err != nil {
		return cid.Undef, 0, fmt.Errorf("hash blob: %w", err)
	}
	return c, n, nil
}

// OpenBlob returns a reader over a stored blob and its size. Blocks are read as needed, so a
// large blob is never held in memory whole.
func (s *Store) OpenBlob(ctx context.Context, c cid.Cid) (io.ReadSeekCloser, int64, error) {
	node, err := s.dag.Get(ctx, c)
	if err != nil {
		if notFound(err) {
			return nil, 0, fmt.Errorf("open blob %s: %w", c, ErrNotFound)
		}
		return nil, 0, fmt.Errorf("open blob %s: %w", c, err)
	}
	r, err := uio.NewDagReader(ctx, node, s.dag)
	if err != nil {
		return nil, 0, fmt.Errorf("open blob %s: %w", c, err)
	}
	return r, int64(r.Size()), nil
}

// ReadBlob reads a whole stored blob of at most limit bytes.
func (s *Store) ReadBlob(ctx context.Context, c cid.Cid, limit int64) ([]byte, error) {
	r, size, err := s.OpenBlob(ctx, c)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	if size > limit {
		return nil, fmt.Errorf("read blob %s: %d bytes is over the %d-byte limit", c, size, limit)
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("read blob %s: %w", c, err)
	}
	return b, nil
}

// HasBlob reports whether the root block of c is stored locally.
func (s *Store) HasBlob(ctx context.Context, c cid.Cid) (bool, error) {
	return s.blocks.Has(ctx, c)
}
