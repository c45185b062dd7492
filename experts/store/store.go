package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/dgraph-io/badger/v4"
	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/boxo/exchange/offline"
	"github.com/ipfs/boxo/ipld/merkledag"
	ds "github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/namespace"
	badger4 "github.com/ipfs/go-ds-badger4"
	ipld "github.com/ipfs/go-ipld-format"
)

// Namespaces inside the one badger database.
var (
	nsBlocks  = ds.NewKey("/blocks")
	nsExperts = ds.NewKey("/experts")
)

// Options size the database. Zero values take the defaults noted on each field.
type Options struct {
	// MemTableSize is badger's memtable size in bytes (default 16 MiB: experts are small, and a
	// node should fit in a few hundred MiB of RAM).
	MemTableSize int64
	// BlockCacheSize is badger's block cache in bytes (default 32 MiB).
	BlockCacheSize int64
	// ValueLogFileSize caps one value-log file (default 128 MiB).
	ValueLogFileSize int64
}

// Store is a node's database. It is safe for concurrent use.
type Store struct {
	db     *badger4.Datastore
	blocks blockstore.Blockstore
	dag    ipld.DAGService
	index  ds.Datastore
}

// Open opens (creating if needed) the database in dir.
func Open(dir string, o Options) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	opts := badger4.DefaultOptions
	opts.Options = badger.DefaultOptions(dir).
		WithSyncWrites(true).
		WithMemTableSize(orDefault(o.MemTableSize, 16<<20)).
		WithBlockCacheSize(orDefault(o.BlockCacheSize, 32<<20)).
		WithValueLogFileSize(orDefault(o.ValueLogFileSize, 128<<20)).
		// Blocks of 64 KiB and more go to the value log. badger's default (1 MiB) kept every
		// block under 1 MiB in the LSM tree itself: a 512 MiB blob in boxo's 256 KiB chunks
		// then went through memtables and compactions, at 37 MiB/s with 1.8 GiB of heap.
		WithValueThreshold(64 << 10).
		WithNumVersionsToKeep(1).
		WithLoggingLevel(badger.WARNING)
	db, err := badger4.NewDatastore(dir, &opts)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	// /proc/self/maps names files by their absolute, symlink-free paths.
	mapped, err := filepath.Abs(dir)
	if err == nil {
		mapped, err = filepath.EvalSymlinks(mapped)
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	bs := &releasingBlockstore{Blockstore: blockstore.NewBlockstore(namespace.Wrap(db, nsBlocks), blockstore.NoPrefix()),
		dir: mapped, release: releaseValueLog}
	s := &Store{
		db:     db,
		blocks: bs,
		dag:    merkledag.NewDAGService(blockservice.New(bs, offline.Exchange(bs))),
		index:  namespace.Wrap(db, nsExperts),
	}
	return s, nil
}

func orDefault(v, d int64) int64 {
	if v > 0 {
		return v
	}
	return d
}

// Close flushes and closes the database.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	return nil
}

// Blockstore is the block store bitswap serves from and writes to.
func (s *Store) Blockstore() blockstore.Blockstore { return s.blocks }

// DAG is the DAG service over the local blocks only (no network).
func (s *Store) DAG() ipld.DAGService { return s.dag }

// Datastore returns the database under a namespace of its own, for subsystems that keep their
// own records (peer cache, provider records, ledger).
func (s *Store) Datastore(ns string) ds.Batching {
	return namespace.Wrap(s.db, ds.NewKey(ns))
}

// ErrNotFound is returned for an expert or blob this store does not hold.
var ErrNotFound = errors.New("not found in the local store")

func notFound(err error) bool {
	return errors.Is(err, ds.ErrNotFound) || ipld.IsNotFound(err)
}
