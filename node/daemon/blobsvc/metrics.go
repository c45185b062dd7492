package blobsvc

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics count blob transfers: fetches by outcome with their duration, bytes received from
// peers and imported locally, blocks removed by gc, and DHT announcements by outcome.
type metrics struct {
	fetches  *prometheus.HistogramVec
	received prometheus.Counter
	put      prometheus.Counter
	gcBlocks prometheus.Counter
	provides *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		fetches: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "meshnode_blob_fetch_duration_seconds",
			Help:    "Blob fetches from the mesh, by outcome (ok, unavailable, error).",
			Buckets: prometheus.ExponentialBuckets(1e-3, 2, 16)}, []string{"outcome"}),
		received: prometheus.NewCounter(prometheus.CounterOpts{Name: "meshnode_blob_received_bytes_total",
			Help: "Block bytes received from peers by fetches."}),
		put: prometheus.NewCounter(prometheus.CounterOpts{Name: "meshnode_blob_put_bytes_total",
			Help: "File bytes imported as blobs on this node."}),
		gcBlocks: prometheus.NewCounter(prometheus.CounterOpts{Name: "meshnode_blob_gc_removed_blocks_total",
			Help: "Blocks removed by garbage collection."}),
		provides: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meshnode_blob_provides_total",
			Help: "Provider records this node announced in the DHT, by outcome (ok, error, dropped: the announce queue was full)."}, []string{"outcome"}),
	}
	reg.MustRegister(m.fetches, m.received, m.put, m.gcBlocks, m.provides)
	return m
}
