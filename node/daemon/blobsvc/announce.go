package blobsvc

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
func (b *Service) provide(ctx context.Context, c cid.Cid) error {
	err := b.provider.Provide(ctx, c)
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	b.metrics.provides.WithLabelValues(outcome).Inc()
	return err
}

// announceAgainAfter is how long a queued announcement of a blob makes further ones of it
// redundant: a provider record lasts 48 h, and the reprovider renews kept blobs' records.
const announceAgainAfter = 10 * time.Minute

// Announce queues c to be announced in the background: a fetch or a listing returns once its
// blobs are stored, without waiting for the DHT. Peers connected to this node find the blob
// through bitswap meanwhile. A blob queued in the last announceAgainAfter is not queued again
// (fetching a held blob returns at once, and each announcement is a DHT walk). It never blocks.
func (b *Service) Announce(c cid.Cid) {
	now := time.Now()
	b.announcedMu.Lock()
	if at, ok := b.announced[c]; ok && now.Sub(at) < announceAgainAfter {
		b.announcedMu.Unlock()
		return
	}
	if len(b.announced) >= announceQueue {
		for k, at := range b.announced {
			if now.Sub(at) >= announceAgainAfter {
				delete(b.announced, k)
			}
		}
	}
	b.announced[c] = now
	b.announcedMu.Unlock()
	select {
	case b.announcements <- c:
	default:
		b.announcedMu.Lock()
		delete(b.announced, c) // not queued: a later call may queue it
		b.announcedMu.Unlock()
		b.metrics.provides.WithLabelValues("dropped").Inc()
		b.log.Debug("announce queue full; the blob is announced at the next reprovide if kept", "cid", c)
	}
}

// announceRetry is how long a failed announcement waits to be tried again (a node with no
// peers yet, or whose DHT walk found none, announces once it has some), and
// announceAttempts how often it is tried before the reprovider's next pass takes over.
const (
	announceRetry    = 30 * time.Second
	announceAttempts = 10
)

// announcer provides queued blobs one at a time until ctx is done, trying failed ones again
// every announceRetry (at most announceAttempts times each, at most announceQueue of them);
// what is still queued at the end is dropped (the reprovider announces kept blobs after the
// next start).
func (b *Service) announcer(ctx context.Context) {
	defer b.background.Done()
	failed := map[cid.Cid]int{} // blob -> failed attempts
	retry := time.NewTicker(b.retryEvery)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-retry.C:
			for c, n := range failed {
				if ctx.Err() != nil {
					return
				}
				if b.provideOnce(ctx, c) {
					delete(failed, c)
				} else if failed[c] = n + 1; n+1 >= announceAttempts {
					delete(failed, c)
				}
			}
		case c := <-b.announcements:
			if ctx.Err() != nil {
				return
			}
			if !b.provideOnce(ctx, c) && len(failed) < announceQueue {
				failed[c] = 1
			}
		}
	}
}

// provideOnce announces c with a minute's bound and says whether it worked.
func (b *Service) provideOnce(ctx context.Context, c cid.Cid) bool {
	pctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	err := b.provide(pctx, c)
	if err != nil && ctx.Err() == nil {
		b.log.Debug("announce blob; trying again later", "cid", c, "err", err) // connected peers still find it
	}
	return err == nil
}

// reprovide announces every exposed root (served experts, public blobs, this node's paid
// listings) again every interval, before the DHT's provider records
// (48 h) expire: a long-running node stays findable for what it holds. The first pass comes a
// minute after start (sooner for shorter intervals), so a node that restarts more often than
// the interval still renews its records.
func (b *Service) reprovide(ctx context.Context, every time.Duration) {
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
		var roots []cid.Cid
		for _, r := range b.exposure.Announced() {
			if c, err := cid.Decode(r); err == nil {
				roots = append(roots, c)
			}
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
		b.log.Debug("reprovided exposed roots", "roots", len(roots), "failed", failed)
	}
}
