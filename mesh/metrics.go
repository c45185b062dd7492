package mesh

import (
	"fmt"
	"strings"

	"github.com/libp2p/go-libp2p/core/metrics"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the mesh's Prometheus metrics.
type Metrics struct {
	Peers           prometheus.Gauge
	AdvertsSent     prometheus.Counter
	AdvertsReceived prometheus.Counter
	AdvertsRejected *prometheus.CounterVec
	TableSize       prometheus.Gauge
	SpamPenalties   prometheus.Counter
	// Provides counts DHT provides of discovery keys by result (ok, failed); Lookups counts
	// advert lookups by result (found, empty).
	Provides *prometheus.CounterVec
	Lookups  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, bw *metrics.BandwidthCounter) (*Metrics, error) {
	m := &Metrics{
		Peers: prometheus.NewGauge(prometheus.GaugeOpts{Name: "meshnode_peers",
			Help: "Peers this node is connected to."}),
		AdvertsSent: prometheus.NewCounter(prometheus.CounterOpts{Name: "meshnode_adverts_sent_total",
			Help: "Adverts (including withdrawals) this node published."}),
		AdvertsReceived: prometheus.NewCounter(prometheus.CounterOpts{Name: "meshnode_adverts_received_total",
			Help: "Adverts from other peers that passed validation."}),
		AdvertsRejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meshnode_adverts_rejected_total",
			Help: "Adverts refused, by reason (oversized, malformed, forged, stale; table full: no slot within the table's limits)."}, []string{"reason"}),
		TableSize: prometheus.NewGauge(prometheus.GaugeOpts{Name: "meshnode_remote_adverts",
			Help: "Live entries (expert, provider) in the remote advert table."}),
		SpamPenalties: prometheus.NewCounter(prometheus.CounterOpts{Name: "meshnode_gossip_spam_penalties_total",
			Help: "Gossip messages whose authors went over their own limits (adverts, listings), each lowering the author's gossip score."}),
		Provides: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meshnode_discovery_provides_total",
			Help: "DHT provides of the keys this node's experts are found under (domains, IDs), by result."}, []string{"result"}),
		Lookups: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meshnode_discovery_lookups_total",
			Help: "DHT lookups of a domain or expert with pulls of the providers' adverts, by result (found: adverts pulled)."}, []string{"result"}),
	}
	gossipSent := prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "meshnode_gossip_sent_bytes_total",
		Help: "Bytes this node sent on gossipsub streams (adverts, forwarding and control)."}, func() float64 {
		var total int64
		for proto, st := range bw.GetBandwidthByProtocol() {
			if strings.HasPrefix(string(proto), "/meshsub/") {
				total += st.TotalOut
			}
		}
		return float64(total)
	})
	sent := prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "meshnode_libp2p_sent_bytes_total",
		Help: "Bytes this node sent on all libp2p streams."}, func() float64 { return float64(bw.GetBandwidthTotals().TotalOut) })
	for _, c := range []prometheus.Collector{m.Peers, m.AdvertsSent, m.AdvertsReceived, m.AdvertsRejected, m.TableSize, m.SpamPenalties, m.Provides, m.Lookups, gossipSent, sent} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	return m, nil
}
