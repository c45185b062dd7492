package querysvc

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics count and time queries: those this node routes (by outcome and by whether a local or
// a remote expert answered), those it serves for peers, and the spot checks of remote answers.
type metrics struct {
	routed     *prometheus.HistogramVec
	served     *prometheus.CounterVec
	failover   prometheus.Counter
	hedged     prometheus.Counter
	spotChecks *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		routed: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "meshnode_query_duration_seconds",
			Help:    "Queries this node routed, by outcome (ok, error) and answerer (local, remote, none).",
			Buckets: prometheus.ExponentialBuckets(20e-6, 2, 18)}, []string{"outcome", "answerer"}),
		served: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meshnode_queries_served_total",
			Help: "Queries this node answered for peers, by outcome."}, []string{"outcome"}),
		failover: prometheus.NewCounter(prometheus.CounterOpts{Name: "meshnode_query_failovers_total",
			Help: "Attempts that failed and were followed by another candidate."}),
		hedged: prometheus.NewCounter(prometheus.CounterOpts{Name: "meshnode_query_hedges_total",
			Help: "Hedged second requests sent because the first was slower than its p95."}),
		spotChecks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meshnode_query_spot_checks_total",
			Help: "Remote answers checked against this node's own computation, by outcome (agreed, banned, unverified, skipped)."},
			[]string{"outcome"}),
	}
	reg.MustRegister(m.routed, m.served, m.failover, m.hedged, m.spotChecks)
	return m
}
