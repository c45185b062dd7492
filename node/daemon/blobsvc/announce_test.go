package blobsvc

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Announce queues a blob once however often it is fetched within announceAgainAfter, drops
// (and counts) what does not fit in the queue, and queues a dropped blob when asked again.
func TestAnnounceQueuesEachBlobOnce(t *testing.T) {
	b := &Service{
		log:           slog.New(slog.DiscardHandler),
		metrics:       newMetrics(prometheus.NewRegistry()),
		announcements: make(chan cid.Cid, 2),
		announced:     make(map[cid.Cid]time.Time),
	}
	blob := func(s string) cid.Cid {
		h, err := mh.Sum([]byte(s), mh.SHA2_256, -1)
		if err != nil {
			t.Fatal(err)
		}
		return cid.NewCidV1(cid.Raw, h)
	}
	x, y, z := blob("x"), blob("y"), blob("z")
	for _, c := range []cid.Cid{x, x, y, x, y, z} {
		b.Announce(c)
	}
	if got := len(b.announcements); got != 2 {
		t.Fatalf("%d announcements queued, want 2 (x and y once each)", got)
	}
	if first, second := <-b.announcements, <-b.announcements; !first.Equals(x) || !second.Equals(y) {
		t.Fatalf("queued %s, %s; want x, y", first, second)
	}
	var m dto.Metric
	if err := b.metrics.provides.WithLabelValues("dropped").Write(&m); err != nil || m.GetCounter().GetValue() != 1 {
		t.Fatalf("dropped announcements counted %v (%v), want 1 (z, the queue was full)", m.GetCounter().GetValue(), err)
	}
	b.Announce(z) // the queue has room again, and z was not queued before
	b.Announce(x) // queued moments ago
	if got := len(b.announcements); got != 1 || !(<-b.announcements).Equals(z) {
		t.Fatalf("after draining: %d queued, want z alone", got)
	}
}

// flakyProvider fails its first failures announcements, then records the blobs it announces.
type flakyProvider struct {
	mu        sync.Mutex
	failures  int
	announced []cid.Cid
}

func (p *flakyProvider) Provide(_ context.Context, c cid.Cid) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failures > 0 {
		p.failures--
		return errors.New("failed to find any peer in table")
	}
	p.announced = append(p.announced, c)
	return nil
}

// A node with no peers yet cannot announce; the announcer tries again until it can, instead of
// failing the put or dropping the blob.
func TestAnnouncerRetriesALoneNodesBlobs(t *testing.T) {
	p := &flakyProvider{failures: 3}
	b := &Service{
		log:           slog.New(slog.DiscardHandler),
		metrics:       newMetrics(prometheus.NewRegistry()),
		announcements: make(chan cid.Cid, 2),
		announced:     make(map[cid.Cid]time.Time),
		provider:      p,
		retryEvery:    5 * time.Millisecond,
	}
	h, err := mh.Sum([]byte("lonely"), mh.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	c := cid.NewCidV1(cid.Raw, h)
	ctx, cancel := context.WithCancel(context.Background())
	b.background.Add(1)
	go b.announcer(ctx)
	defer func() { cancel(); b.background.Wait() }()
	b.Announce(c)
	deadline := time.Now().Add(10 * time.Second)
	for {
		p.mu.Lock()
		done := len(p.announced) == 1 && p.announced[0].Equals(c)
		left := p.failures
		p.mu.Unlock()
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the blob was not announced after the provider recovered (%d failures left)", left)
		}
		time.Sleep(5 * time.Millisecond)
	}
	var m dto.Metric
	if err := b.metrics.provides.WithLabelValues("error").Write(&m); err != nil || m.GetCounter().GetValue() != 3 {
		t.Fatalf("failed announcements counted %v (%v), want 3", m.GetCounter().GetValue(), err)
	}
}
