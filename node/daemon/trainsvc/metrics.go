package trainsvc

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics count federated training: updates received by outcome, rounds closed, updates sent,
// and the last evaluated accuracy of each coordinated job.
type metrics struct {
	updates  *prometheus.CounterVec
	rounds   prometheus.Counter
	sent     prometheus.Counter
	accuracy *prometheus.GaugeVec
	epsilon  *prometheus.GaugeVec
	// recordEpsilon is the record-level ε of this node's own data, per job it trains in.
	recordEpsilon *prometheus.GaugeVec
	secure        *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		updates: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meshnode_train_updates_received_total",
			Help: "Training updates received, by outcome (accepted, duplicate, late, full, shape, unknown_job, forged, malformed)."}, []string{"outcome"}),
		rounds: prometheus.NewCounter(prometheus.CounterOpts{Name: "meshnode_train_rounds_closed_total",
			Help: "Training rounds this node closed as coordinator."}),
		sent: prometheus.NewCounter(prometheus.CounterOpts{Name: "meshnode_train_updates_sent_total",
			Help: "Training updates this node sent as participant."}),
		accuracy: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "meshnode_train_accuracy_ratio",
			Help: "Held-out accuracy of the last version of each job this node coordinates."}, []string{"job"}),
		epsilon: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "meshnode_train_dp_epsilon",
			Help: "Differential-privacy ε spent so far (at the job's δ) by each job this node coordinates."}, []string{"job"}),
		recordEpsilon: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "meshnode_train_record_dp_epsilon",
			Help: "Record-level differential-privacy ε (DP-SGD, at the job's δ) this node's own training data has spent, by job."}, []string{"job"}),
		secure: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meshnode_train_secure_messages_received_total",
			Help: "Secure-aggregation messages received, by outcome (accepted, pending, late, duplicate, full, shape, unknown_job, forged, malformed)."}, []string{"outcome"}),
	}
	reg.MustRegister(m.updates, m.rounds, m.sent, m.accuracy, m.epsilon, m.recordEpsilon, m.secure)
	return m
}
