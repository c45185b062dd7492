package daemon

import (
	"github.com/prometheus/client_golang/prometheus"
)

// queryMetrics count and time queries: those this node routes (by outcome and by whether a
// local or a remote expert answered) and those it serves for peers.
type queryMetrics struct {
	routed   *prometheus.HistogramVec
	served   *prometheus.CounterVec
	failover prometheus.Counter
	hedged   prometheus.Counter
}

func newQueryMetrics(reg prometheus.Registerer) *queryMetrics {
	m := &queryMetrics{
		routed: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "meshnode_query_duration_seconds",
			Help:    "Queries this node routed, by outcome (ok, error) and answerer (local, remote, none).",
			Buckets: prometheus.ExponentialBuckets(20e-6, 2, 18)}, []string{"outcome", "answerer"}),
		served: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meshnode_queries_served_total",
			Help: "Queries this node answered for peers, by outcome."}, []string{"outcome"}),
		failover: prometheus.NewCounter(prometheus.CounterOpts{Name: "meshnode_query_failovers_total",
			Help: "Attempts that failed and were followed by another candidate."}),
		hedged: prometheus.NewCounter(prometheus.CounterOpts{Name: "meshnode_query_hedges_total",
			Help: "Hedged second requests sent because the first was slower than its p95."}),
	}
	reg.MustRegister(m.routed, m.served, m.failover, m.hedged)
	return m
}

// trainMetrics count federated training: updates received by outcome, rounds closed, updates
// sent, and the last evaluated accuracy of each coordinated job.
type trainMetrics struct {
	updates  *prometheus.CounterVec
	rounds   prometheus.Counter
	sent     prometheus.Counter
	accuracy *prometheus.GaugeVec
}

func newTrainMetrics(reg prometheus.Registerer) *trainMetrics {
	m := &trainMetrics{
		updates: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meshnode_train_updates_received_total",
			Help: "Training updates received, by outcome (accepted, duplicate, late, full, shape, unknown_job, forged, malformed)."}, []string{"outcome"}),
		rounds: prometheus.NewCounter(prometheus.CounterOpts{Name: "meshnode_train_rounds_closed_total",
			Help: "Training rounds this node closed as coordinator."}),
		sent: prometheus.NewCounter(prometheus.CounterOpts{Name: "meshnode_train_updates_sent_total",
			Help: "Training updates this node sent as participant."}),
		accuracy: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "meshnode_train_accuracy_ratio",
			Help: "Held-out accuracy of the last version of each job this node coordinates."}, []string{"job"}),
	}
	reg.MustRegister(m.updates, m.rounds, m.sent, m.accuracy)
	return m
}
