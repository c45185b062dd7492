package daemon

import (
	"log/slog"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// announce queues a blob once however often it is fetched within announceAgainAfter, drops
// (and counts) what does not fit in the queue, and queues a dropped blob when asked again.
func TestAnnounceQueuesEachBlobOnce(t *testing.T) {
	b := &blobService{
		d:             &Daemon{log: slog.New(slog.DiscardHandler)},
		metrics:       newBlobMetrics(prometheus.NewRegistry()),
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
		b.announce(c)
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
	b.announce(z) // the queue has room again, and z was not queued before
	b.announce(x) // queued moments ago
	if got := len(b.announcements); got != 1 || !(<-b.announcements).Equals(z) {
		t.Fatalf("after draining: %d queued, want z alone", got)
	}
}
