package blobs

import (
	"fmt"

	blocks "github.com/ipfs/go-block-format"
)

// queue adds a received block to the batch to be written.
func (f *fetch) queue(b blocks.Block) {
	f.batch = append(f.batch, b)
	f.batchBytes += len(b.RawData())
	f.unwritten.Add(1)
}

// flush hands the batch to the writer when it is full, when no block is in flight (nothing to
// wait for before writing), or when final is set.
func (f *fetch) flush(final bool) error {
	if len(f.batch) == 0 || (!final && f.batchBytes < f.x.cfg.WriteBatchBytes && len(f.inflight) > 0) {
		return nil
	}
	select {
	case f.writes <- f.batch:
	case err := <-f.writeErr:
		return err
	case <-f.x.done:
		return ErrClosed
	case <-f.ctx.Done():
		return f.ctx.Err()
	}
	f.batch = nil
	f.batchBytes = 0
	return nil
}

// writer writes batches of verified blocks to the blockstore and tells bitswap about them, so
// peers waiting for them are served. It stops at the first error.
func (f *fetch) writer() {
	defer close(f.writerDone)
	for batch := range f.writes {
		if err := f.x.bs.PutMany(f.ctx, batch); err != nil {
			f.writeErr <- fmt.Errorf("store %d blocks: %w", len(batch), err)
			return
		}
		if err := f.x.swap.notifyNewBlocks(f.ctx, batch...); err != nil {
			f.writeErr <- fmt.Errorf("announce %d blocks to bitswap: %w", len(batch), err)
			return
		}
		f.unwritten.Add(-int64(len(batch)))
		select {
		case f.wrote <- struct{}{}:
		default: // the fetch loop has a wake-up pending already
		}
	}
}
