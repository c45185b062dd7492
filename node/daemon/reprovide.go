package daemon

import (
	"context"
	"time"

	"github.com/ipfs/go-cid"
)

// provide announces c in the DHT, counting the outcome.
func (b *blobService) provide(ctx context.Context, c cid.Cid) error {
	err := b.x.Provide(ctx, c)
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	b.metrics.provides.WithLabelValues(outcome).Inc()
	return err
}

// reprovide announces every kept blob again every interval, before the DHT's provider records
// (48 h) expire: a long-running node stays findable for what it holds. The first pass comes a
// minute after start (sooner for shorter intervals), so a node that restarts more often than
// the interval still renews its records.
func (b *blobService) reprovide(ctx context.Context, every time.Duration) {
	defer close(b.reprovided)
	if every <= 0 {
		return
	}
	t := time.NewTimer(min(every, time.Minute))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			t.Reset(every)
		}
		roots, err := b.keptRoots(ctx)
		if err != nil {
			if ctx.Err() == nil {
				b.d.log.Warn("reprovide: list kept blobs", "err", err)
			}
			continue
		}
		failed := 0
		for _, c := range roots {
			pctx, cancel := context.WithTimeout(ctx, time.Minute)
			if err := b.provide(pctx, c); err != nil {
				failed++
			}
			cancel()
			if ctx.Err() != nil {
				return
			}
		}
		b.d.log.Debug("reprovided kept blobs", "roots", len(roots), "failed", failed)
	}
}
