package rpc

import (
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// buckets is a token bucket per peer: each peer may make Rate requests a second on average,
// with bursts of Burst. It is a function of the times it is given, so it is testable without
// a clock.
type buckets struct {
	mu    sync.Mutex
	rate  float64
	burst float64
	peers map[peer.ID]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newBuckets(rate float64, burst int) *buckets {
	return &buckets{rate: rate, burst: float64(burst), peers: map[peer.ID]*bucket{}}
}

// allow takes one token from p's bucket at now, reporting whether there was one.
func (b *buckets) allow(p peer.ID, now time.Time) bool {
	if b.rate <= 0 {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	k := b.refill(p, now)
	if k.tokens < 1 {
		return false
	}
	k.tokens--
	return true
}

// ready reports whether p's bucket holds anything at now; with charge, a bucket of time that
// may run into debt: work is admitted while the bucket is positive and paid for after.
func (b *buckets) ready(p peer.ID, now time.Time) bool {
	if b.rate <= 0 {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.refill(p, now).tokens > 0
}

// charge takes cost from p's bucket at now, down to any debt.
func (b *buckets) charge(p peer.ID, now time.Time, cost float64) {
	if b.rate <= 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill(p, now).tokens -= cost
}

// refill returns p's bucket topped up to now. The caller holds mu.
func (b *buckets) refill(p peer.ID, now time.Time) *bucket {
	k, ok := b.peers[p]
	if !ok {
		if len(b.peers) > 4096 { // forget idle peers rather than grow without bound
			for id, old := range b.peers {
				if now.Sub(old.last) > time.Minute {
					delete(b.peers, id)
				}
			}
		}
		k = &bucket{tokens: b.burst, last: now}
		b.peers[p] = k
	}
	k.tokens = min(b.burst, k.tokens+now.Sub(k.last).Seconds()*b.rate)
	k.last = now
	return k
}
