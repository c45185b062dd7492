package mesh

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the mesh's Prometheus metrics.
type Metrics struct {
	Peers           prometheus.Gauge
	AdvertsSent     prometheus.Counter
	AdvertsReceived prometheus.Counter
	AdvertsRejected *prometheus.CounterVec
	TableSize       prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		Peers: prometheus.NewGauge(prometheus.GaugeOpts{Name: "meshnode_peers",
			Help: "Peers this node is connected to."}),
		AdvertsSent: prometheus.NewCounter(prometheus.CounterOpts{Name: "meshnode_adverts_sent_total",
			Help: "Adverts (including withdrawals) this node published."}),
		AdvertsReceived: prometheus.NewCounter(prometheus.CounterOpts{Name: "meshnode_adverts_received_total",
			Help: "Adverts from other peers that passed validation."}),
		AdvertsRejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meshnode_adverts_rejected_total",
			Help: "Adverts the validator rejected, by reason."}, []string{"reason"}),
		TableSize: prometheus.NewGauge(prometheus.GaugeOpts{Name: "meshnode_remote_adverts",
			Help: "Live entries (expert, provider) in the remote advert table."}),
	}
	for _, c := range []prometheus.Collector{m.Peers, m.AdvertsSent, m.AdvertsReceived, m.AdvertsRejected, m.TableSize} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	return m, nil
}
