// Package dstest holds datastore doubles for tests of code that persists through
// go-datastore: a store whose writes fail on demand, as a full disk or an I/O error would.
package dstest

import (
	"context"
	"errors"
	"sync/atomic"

	ds "github.com/ipfs/go-datastore"
)

// ErrDisk is what a failing store's writes return.
var ErrDisk = errors.New("disk full")

// Failing wraps a datastore; while Fail is set, Put (direct or batched) returns ErrDisk.
type Failing struct {
	ds.Batching
	Fail *atomic.Bool
}

// Put writes through unless the store is failing.
func (f Failing) Put(ctx context.Context, k ds.Key, v []byte) error {
	if f.Fail.Load() {
		return ErrDisk
	}
	return f.Batching.Put(ctx, k, v)
}

// Batch returns a batch whose Puts fail while the store is failing.
func (f Failing) Batch(ctx context.Context) (ds.Batch, error) {
	b, err := f.Batching.Batch(ctx)
	return failingBatch{b, f.Fail}, err
}

type failingBatch struct {
	ds.Batch
	fail *atomic.Bool
}

func (f failingBatch) Put(ctx context.Context, k ds.Key, v []byte) error {
	if f.fail.Load() {
		return ErrDisk
	}
	return f.Batch.Put(ctx, k, v)
}
