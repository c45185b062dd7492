package store

import (
	"context"
	"sync"

	"github.com/ipfs/boxo/blockstore"
	blocks "github.com/ipfs/go-block-format"
)

// releaseEvery is how many bytes of blocks the store writes between two releases of the value
// log's resident pages.
const releaseEvery = 32 << 20

// releasingBlockstore is the store's blockstore. badger writes values through a shared memory
// mapping of its value-log files and keeps every file mapped, so each page a fetch writes stays
// counted in the process's resident set (a 512 MiB fetch left 536 MiB of value log resident)
// although it is page cache the kernel could reclaim. After every releaseEvery bytes written
// (writes are synced, so those pages are clean), the blockstore asks the kernel to reclaim the
// pages of the value-log files being written (see releaseValueLog): a fetch's resident memory
// then stays bounded by its window, whatever the blob's size. The pages leave the page cache
// too, so a later read of them reads the file.
type releasingBlockstore struct {
	blockstore.Blockstore
	dir string // the database folder, as the kernel names it in /proc/self/maps

	mu      sync.Mutex
	written int // bytes written since the last release
	release func(dir string) error
}

func (b *releasingBlockstore) Put(ctx context.Context, blk blocks.Block) error {
	if err := b.Blockstore.Put(ctx, blk); err != nil {
		return err
	}
	b.wrote(len(blk.RawData()))
	return nil
}

func (b *releasingBlockstore) PutMany(ctx context.Context, blks []blocks.Block) error {
	if err := b.Blockstore.PutMany(ctx, blks); err != nil {
		return err
	}
	n := 0
	for _, blk := range blks {
		n += len(blk.RawData())
	}
	b.wrote(n)
	return nil
}

func (b *releasingBlockstore) wrote(n int) {
	b.mu.Lock()
	b.written += n
	due := b.written >= releaseEvery
	if due {
		b.written = 0
	}
	b.mu.Unlock()
	if due {
		// A failed release costs resident memory, not correctness. Outside the lock: other
		// writers need not wait for it, and two releases at once do no harm.
		_ = b.release(b.dir)
	}
}
