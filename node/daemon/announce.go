package daemon

import (
	"context"
	"time"

	"github.com/ipfs/go-cid"
)

// announceQueue is how many blobs can wait to be announced. A DHT announcement takes a walk to
// the closest peers (milliseconds on loopback, up to seconds on a wide-area mesh); a full queue
// drops further ones, which the reprovider renews for kept blobs.
const announceQueue = 1024

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

// announce queues c to be announced in the background: a fetch or a listing returns once its
// blobs are stored, without waiting for the DHT. Peers connected to this node find the blob
// through bitswap meanwhile.
func (b *blobService) announce(c cid.Cid) {
	select {
	case b.announcements <- c:
	default:
		b.metrics.provides.WithLabelValues("dropped").Inc()
		b.d.log.Debug("announce queue full; the blob is announced at the next reprovide if kept", "cid", c)
	}
}

// announcer provides queued blobs one at a time until ctx is done.
func (b *blobService) announcer(ctx context.Context) {
	defer b.background.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case c := <-b.announcements:
			pctx, cancel := context.WithTimeout(ctx, time.Minute)
			if err := b.provide(pctx, c); err != nil && ctx.Err() == nil {
				b.d.log.Debug("announce blob", "cid", c, "err", err) // connected peers still find it
			}
			cancel()
		}
	}
}

// reprovide announces every kept blob again every interval, before the DHT's provider records
// (48 h) expire: a long-running node stays findable for what it holds. The first pass comes a
// minute after start (sooner for shorter intervals), so a node that restarts more often than
// the interval still renews its records.
func (b *blobService) reprovide(ctx context.Context, every time.Duration) {
	defer b.background.Done()
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
